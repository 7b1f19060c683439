"""The cffi build, and the guest header into the wheel; everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HEADER = Path("guests/include/wasi_map.h")


class BuildPy(build_py):
    """Also copy the C guest header into the package (broker/guest_header.py finds it)."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "broker" / "include"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HEADER, target / HEADER.name)


setup(cffi_modules=["native/ffi_build.py:ffibuilder"], cmdclass={"build_py": BuildPy})
