"""The cffi build, and the guest bindings into the wheel; everything else is in pyproject.toml."""

import shutil
from pathlib import Path

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


setup(cffi_modules=["native/ffi_build.py:ffibuilder"], cmdclass={"build_py": BuildPy})
