"""Only here to name the cffi build; everything else is in pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["native/ffi_build.py:ffibuilder"])
