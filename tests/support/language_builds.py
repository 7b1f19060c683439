"""Guests in C, C++ and Rust built for tests, with guests/build.py's command lines.

`build_c`, `build_cpp` and `build_rust` compile one source file to `out` (a
path under a temporary directory: never the source tree) and return `out`;
`compile_with` adds flags, `rustc_output` runs rustc with other arguments.  Each skips the test only
when its compiler is missing, naming the Debian packages that bring it
(scripts/install-deps.sh installs them all); a compile that fails is an
AssertionError carrying the compiler's stderr.
"""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType

import pytest
from paths import ROOT


def _guest_build() -> ModuleType:
    """guests/build.py: the one place the guests' compiler command lines are."""
    spec = importlib.util.spec_from_file_location("guest_build", ROOT / "guests" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


guest_build = _guest_build()

# The wasi_map crate compiled once per test session, in a directory removed at exit.
_rlib_dir: tempfile.TemporaryDirectory[str] | None = None


def build_c(src: Path, out: Path, defines: Mapping[str, str] | None = None) -> Path:
    """Compile a C guest; `defines` become -DNAME=VALUE (VALUE is the macro's text,
    so a string is given with its quotes: {"PEER_MODULE": '"cpp"'})."""
    _run(src, guest_build.command(src, out, dict(defines or {})))
    return out


def build_cpp(src: Path, out: Path) -> Path:
    """Compile a C++ guest against wasi_map.hpp."""
    _run(src, guest_build.command(src, out))
    return out


def build_rust(src: Path, out: Path) -> Path:
    """Compile a Rust guest (a cdylib) against the guests/rust crate."""
    _run(src, guest_build.command(src, out, rlib=_wasi_map_rlib()))
    return out


def compile_with(src: Path, out: Path, *extra: str) -> str:
    """Build a C or C++ guest with `extra` flags after the usual ones (a later -std=
    wins); the compiler's stderr."""
    command = guest_build.command(src, out)
    return _run(src, [*command[:-3], *extra, *command[-3:]])  # before -o OUT SRC


def rustc_output(*args: str) -> str:
    """Run rustc with guests/build.py's Rust flags and `args`; its stderr (warnings)."""
    rustc = guest_build.RUSTC
    return _run(Path("x.rs"), [rustc, *guest_build.RUST_FLAGS, *args])


def _wasi_map_rlib() -> Path:
    """The wasi_map crate as an rlib, compiled on first use in this session."""
    global _rlib_dir
    if _rlib_dir is None:
        made = tempfile.TemporaryDirectory(prefix="wasi-map-rlib-")
        rlib = Path(made.name) / "libwasi_map.rlib"
        _run(Path("lib.rs"), guest_build.crate_command(rlib))
        _rlib_dir = made  # kept only once built: a failed build is tried again
    return Path(_rlib_dir.name) / "libwasi_map.rlib"


def _run(source: Path, command: Sequence[str]) -> str:
    """Run one compiler command; its stderr, which is the assertion's message if it
    fails.  Skips the test when the compiler for `source`'s language is missing."""
    problem = guest_build.missing(source)
    if problem:
        pytest.skip(f"cannot build the guest: {problem} (scripts/install-deps.sh)")
    done = subprocess.run(command, capture_output=True, text=True, env=guest_build.compiler_env())
    assert done.returncode == 0, f"{shlex.join(command)}\nexited {done.returncode}:\n{done.stderr}"
    return done.stderr
