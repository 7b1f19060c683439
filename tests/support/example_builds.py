"""The example apps' C guests built by their build.sh, and their scripts loaded as modules."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from language_builds import guest_build

compiler_env = guest_build.compiler_env  # the compilers run without a preloaded sanitizer


def build_guest(example: Path) -> None:
    """Run `example`/build.sh; skip the test only when there is no clang to build with."""
    cc = os.environ.get("CC", "clang")  # build.sh honours CC too
    if shutil.which(cc) is None:
        pytest.skip(f"cannot build the C guest: no {cc!r} (scripts/install-deps.sh)")
    done = subprocess.run(
        ["sh", str(example / "build.sh")], capture_output=True, text=True, env=compiler_env()
    )
    assert done.returncode == 0, f"build.sh failed:\n{done.stderr}"


def script_module(path: Path, name: str) -> ModuleType:
    """A script as a module `name` (its directory need not be a package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while it loads
    spec.loader.exec_module(module)
    return module
