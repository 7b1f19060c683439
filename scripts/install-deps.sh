#!/bin/sh
# Debian packages the project needs beyond Python: gcc (the C core), clang,
# lld, wasi-libc and the wasm32 compiler runtime (the C and C++ guests),
# rustc and its wasm32 standard library (the Rust guests: Debian's rustc,
# called as /usr/bin/rustc, not a rustup toolchain that may be on PATH),
# graphviz (`dot`, for ownership graphs), redis-server (the Redis store's
# tests and benchmark start their own on a free port), nodejs and npm (the
# Node.js host, hosts/node; NodeSource's Node 20 where the machine has it).
# Installs only what is missing; uses sudo when not root.
set -eu
packages="gcc libc6-dev clang lld wasi-libc libclang-rt-14-dev-wasm32 rustc libstd-rust-dev-wasm32 graphviz redis-server nodejs"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# NodeSource's nodejs carries npm; Debian's does not.
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
