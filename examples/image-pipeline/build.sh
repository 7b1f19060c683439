#!/bin/sh
# Compile the image-pipeline guests to .wasm next to this script (the files
# app.toml names).  Needs Debian's clang, lld, wasi-libc and
# libclang-rt-14-dev-wasm32; CC=... picks another clang.
#
# -mmultivalue with the experimental-mv ABI: a struct returned by value
# becomes several Wasm results, so sink.run and loader.main return
# (checksum i64, above i32) and `wasi-map run` prints both.
# -nostartfiles, --no-entry: library modules with no _start; what each
# exports is marked in the source with export_name.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
include="$here/../../guests/include"
CC=${CC:-clang}
for module in loader grayscale edges sink; do
    # Build under a temporary name, then rename: a concurrent build or run
    # never sees a half-written module.
    tmp="$here/.$module.wasm.$$"
    "$CC" --target=wasm32-wasi -O2 -Wall -Wextra \
        -mmultivalue -Xclang -target-abi -Xclang experimental-mv \
        -nostartfiles -Wl,--no-entry \
        -I "$include" -o "$tmp" "$here/$module.c"
    mv -f "$tmp" "$here/$module.wasm"
done
