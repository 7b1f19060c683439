#!/bin/sh
# Compile counter.c to counter.wasm next to this script (the file app.toml
# names).  Needs Debian's clang, lld, wasi-libc and
# libclang-rt-14-dev-wasm32; CC=... picks another clang.
#
# -nostartfiles, --no-entry: a library module with no _start; its exports
# are marked in the source with export_name.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
include="$here/../../guests/include"
CC=${CC:-clang}
# Build under a temporary name, then rename: a concurrent build or run never
# sees a half-written module.
tmp="$here/.counter.wasm.$$"
"$CC" --target=wasm32-wasi -O2 -Wall -Wextra \
    -nostartfiles -Wl,--no-entry \
    -I "$include" -o "$tmp" "$here/counter.c"
mv -f "$tmp" "$here/counter.wasm"
