"""Build a guest in C, C++ or Rust with the flags docs/guest-*.md give.

    python guests/build.py SOURCE.{c,cpp,rs} OUT.wasm [-DNAME=VALUE ...]

The one place the tests and benchmarks take their compiler command lines
from (the how-to pages show the same commands, and tests run the pages).
Needs only the standard library; the compilers are Debian's (clang 14 for
C and C++, /usr/bin/rustc 1.63 for Rust: scripts/install-deps.sh).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

GUESTS = Path(__file__).resolve().parent
INCLUDE = GUESTS / "include"
CRATE = GUESTS / "rust" / "src" / "lib.rs"
RUSTC = os.environ.get("RUSTC", "/usr/bin/rustc")  # not a rustup toolchain on PATH

C_FLAGS = ["--target=wasm32-wasi", "-O2", "-Wall", "-Wextra", "-nostartfiles", "-Wl,--no-entry"]
# C++: no libc++ for wasm32 is needed (-nostdlib++: the header uses none),
# no exceptions or RTTI, and a reactor: with -nostartfiles every export would
# run the global constructors and destructors, closing a global map per call.
CPP_FLAGS = [
    "--target=wasm32-wasi", "-std=c++17", "-O2", "-Wall", "-Wextra",
    "-fno-exceptions", "-fno-rtti", "-nostdlib++", "-mexec-model=reactor",
]  # fmt: skip
RUST_FLAGS = ["--edition=2021", "--target=wasm32-unknown-unknown", "-Copt-level=2", "-Cpanic=abort"]
COMPILERS = {".c": "clang", ".cpp": "clang++", ".rs": RUSTC}
PACKAGES = {
    ".c": "clang lld wasi-libc libclang-rt-14-dev-wasm32",
    ".cpp": "clang lld wasi-libc libclang-rt-14-dev-wasm32",
    ".rs": "rustc libstd-rust-dev-wasm32",
}


# A sanitizer runtime preloaded into this process (tests/native/run_sanitized.sh
# runs the suite so) must not reach the compilers: rustc fails under it.
SANITIZER_VARS = ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")


def compiler_env() -> dict[str, str]:
    """This process's environment, less a preloaded sanitizer runtime."""
    return {k: v for k, v in os.environ.items() if k not in SANITIZER_VARS}


class BuildError(RuntimeError):
    """The compiler failed; the message carries its output."""


def missing(source: Path) -> str | None:
    """Why a guest in `source`'s language cannot be built here, or None."""
    compiler = COMPILERS[source.suffix]
    if shutil.which(compiler) is None:
        return f"no {compiler} to build {source.name}: apt-get install {PACKAGES[source.suffix]}"
    return None


def crate_command(rlib: Path) -> list[str]:
    """The rustc command that compiles the wasi_map crate to `rlib`."""
    return [
        RUSTC,
        *RUST_FLAGS,
        "--crate-type=rlib",
        "--crate-name=wasi_map",
        "-o",
        str(rlib),
        str(CRATE),
    ]


def command(
    source: Path, out: Path, defines: dict[str, str] | None = None, rlib: Path | None = None
) -> list[str]:
    """The compiler command that builds `source` (.c, .cpp, or .rs against `rlib`) to `out`."""
    if source.suffix == ".rs":
        if rlib is None or defines:
            raise ValueError("a Rust guest needs the crate's rlib, and takes no defines")
        return [
            RUSTC, *RUST_FLAGS, "-Cstrip=debuginfo", "--crate-type=cdylib",
            f"--extern=wasi_map={rlib}", "-o", str(out), str(source),
        ]  # fmt: skip
    flags = C_FLAGS if source.suffix == ".c" else CPP_FLAGS
    macros = [f"-D{name}={value}" for name, value in (defines or {}).items()]
    return [
        COMPILERS[source.suffix],
        *flags,
        *macros,
        "-I",
        str(INCLUDE),
        "-o",
        str(out),
        str(source),
    ]


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, env=compiler_env())
    if done.returncode:
        raise BuildError(f"{' '.join(argv)}\n{done.stderr}")


def build(source: Path, out: Path, defines: dict[str, str] | None = None) -> Path:
    """Compile `source` to `out` (for Rust, the crate first, in a temporary directory)."""
    if source.suffix != ".rs":
        _run(command(source, out, defines))
        return out
    with tempfile.TemporaryDirectory() as scratch:
        rlib = Path(scratch) / "libwasi_map.rlib"
        _run(crate_command(rlib))
        _run(command(source, out, defines, rlib))
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    source, out = Path(argv[0]), Path(argv[1])
    defines = dict(d.removeprefix("-D").partition("=")[::2] for d in argv[2:])
    if source.suffix not in COMPILERS:
        print(f"build.py: {source}: not a .c, .cpp or .rs guest", file=sys.stderr)
        return 2
    if not source.is_file():
        print(f"build.py: {source}: no such file", file=sys.stderr)
        return 2
    problem = missing(source)
    if problem:
        print(f"build.py: {problem}", file=sys.stderr)
        return 1
    try:
        build(source, out, defines)
    except BuildError as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
