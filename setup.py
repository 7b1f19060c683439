"""The cffi build, and the guest bindings into the wheel; everything else is in pyproject.toml."""

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

from setuptools import setup
from setuptools.command.build_py import build_py

# What guests build against, and where the package keeps it (broker/guest_header.py finds it).
GUEST_FILES = {
    "guests/include/wasi_map.h": "include/wasi_map.h",
    "guests/include/wasi_map.hpp": "include/wasi_map.hpp",
    "guests/rust/Cargo.toml": "rust/Cargo.toml",
    "guests/rust/src/lib.rs": "rust/src/lib.rs",
    "guests/rust/src/abi.rs": "rust/src/abi.rs",
}


class BuildPy(build_py):
    """Also copy the guest headers and the Rust crate into the package."""

    def run(self) -> None:
        super().run()
        for source, packaged in GUEST_FILES.items():
            target = Path(self.build_lib) / "broker" / packaged
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def ffi_build() -> ModuleType:
    """native/ffi_build.py, where the C builds are defined."""
    spec = importlib.util.spec_from_file_location("wasi_map_ffi_build", "native/ffi_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


setup(
    cffi_modules=["native/ffi_build.py:ffibuilder"],
    ext_modules=[ffi_build().hostmap_extension()],
    cmdclass={"build_py": BuildPy},
)
