"""Build the image-pipeline guests from Python (for tests): runs build.sh.

`python build.py` builds; `build()` returns the .wasm paths, and
`toolchain_missing()` says why the guests cannot be built here, or None:
loader and sink are C, edges is C++, grayscale is Rust.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULES = ("loader", "grayscale", "edges", "sink")
INSTALL = (
    "apt-get install -y --no-install-recommends clang lld wasi-libc libclang-rt-14-dev-wasm32"
    " rustc libstd-rust-dev-wasm32"
)
# The compilers build.sh runs, and the variables that pick others.
COMPILERS = {"CC": "clang", "CXX": "clang++", "RUSTC": "/usr/bin/rustc"}


def toolchain_missing() -> str | None:
    """Why the guests cannot be built (a compiler or sh missing), or None."""
    for variable, default in COMPILERS.items():
        compiler = os.environ.get(variable, default)
        if shutil.which(compiler) is None:
            return f"{compiler!r} not found; install the toolchain: {INSTALL}"
    if shutil.which("sh") is None:
        return "no 'sh' to run build.sh"
    return None


class BuildError(RuntimeError):
    """build.sh failed; the message carries the compiler's output."""


def build(env: dict[str, str] | None = None) -> list[Path]:
    """Compile every guest to HERE/NAME.wasm (in `env`, default this process's);
    raises BuildError with the compiler's output."""
    done = subprocess.run(["sh", str(HERE / "build.sh")], capture_output=True, text=True, env=env)
    if done.returncode:
        raise BuildError(f"build.sh failed (exit {done.returncode}):\n{done.stderr}")
    return [HERE / f"{m}.wasm" for m in MODULES]


if __name__ == "__main__":
    problem = toolchain_missing()
    if problem:
        sys.exit(f"build.py: {problem}")
    try:
        for path in build():
            print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)
    except BuildError as exc:
        sys.exit(f"build.py: {exc}")
