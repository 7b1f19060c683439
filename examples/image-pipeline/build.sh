#!/bin/sh
# Compile the image-pipeline guests to .wasm next to this script (the files
# app.toml names): loader and sink in C, grayscale in Rust, edges in C++.
# Needs Debian's clang, lld, wasi-libc, libclang-rt-14-dev-wasm32, rustc
# and libstd-rust-dev-wasm32 (scripts/install-deps.sh); CC=..., CXX=... and
# RUSTC=... pick other compilers.  The Rust compiler is /usr/bin/rustc, not
# a rustup toolchain that may come first on PATH (it has no wasm32 std).
#
# C and C++: -mmultivalue with the experimental-mv ABI: a struct returned by
# value becomes several Wasm results, so sink.run and loader.main return
# (checksum i64, above i32) and `wasi-map run` prints both.
# -nostartfiles, --no-entry: library modules with no _start; what each
# exports is marked in the source with export_name.  C++ is freestanding
# (no exceptions, no RTTI, no C++ standard library: -nostdlib++) and a
# reactor (-mexec-model=reactor instead of -nostartfiles, which would run
# global constructors and destructors around every export).
# Rust: the wasi_map crate (guests/rust) first, then the stage against it;
# panic=abort makes a panic a trap.  docs/guest-rust.md and
# docs/guest-cpp.md explain every flag.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
guests="$here/../../guests"
CC=${CC:-clang}
CXX=${CXX:-clang++}
RUSTC=${RUSTC:-/usr/bin/rustc}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
multivalue="-mmultivalue -Xclang -target-abi -Xclang experimental-mv"
library="-nostartfiles -Wl,--no-entry"
rust="--edition 2021 --target wasm32-unknown-unknown -C opt-level=2 -C panic=abort"

# Each module is built under a temporary name, then renamed: a concurrent
# build or run never sees a half-written module.
for module in loader sink; do
    "$CC" --target=wasm32-wasi -O2 -Wall -Wextra $multivalue $library \
        -I "$guests/include" -o "$scratch/$module.wasm" "$here/$module.c"
done
"$CXX" --target=wasm32-wasi -O2 -Wall -Wextra -std=c++17 -fno-exceptions -fno-rtti \
    -nostdlib++ -mexec-model=reactor $multivalue \
    -I "$guests/include" -o "$scratch/edges.wasm" "$here/edges.cpp"
"$RUSTC" $rust --crate-type rlib --crate-name wasi_map \
    -o "$scratch/libwasi_map.rlib" "$guests/rust/src/lib.rs"
"$RUSTC" $rust -C strip=debuginfo --crate-type cdylib \
    --extern wasi_map="$scratch/libwasi_map.rlib" -o "$scratch/grayscale.wasm" "$here/grayscale.rs"
for module in loader grayscale edges sink; do
    mv -f "$scratch/$module.wasm" "$here/.$module.wasm.$$"
    mv -f "$here/.$module.wasm.$$" "$here/$module.wasm"
done
