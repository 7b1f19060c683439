"""cffi build script (API mode, out of line): compiles native/ into broker._wm.

Named in pyproject.toml's cffi_modules, so `pip install .` builds the C core.
The cdef is native/wm.h itself, minus its preprocessor lines: the header is
the one contract between C and Python.
"""

import os
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
SOURCES = [
    "abi.c",
    "broker.c",
    "deadline.c",
    "gc.c",
    "handles.c",
    "link.c",
    "module.c",
    "names.c",
    "ops.c",
    "ops_handles.c",
    "ops_memory.c",
    "ops_store.c",
    "ownership.c",
    "refcount.c",
    "snapshot.c",
    "store.c",
    "table.c",
    "ticker.c",
    "trace.c",
    "traps.c",
    "wasi_poll.c",
]


def cdef_text() -> str:
    """wm.h without preprocessor lines (cffi's cdef takes declarations only)."""
    lines = (HERE / "wm.h").read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def make_ffi(module: str = "broker._wm", extra_args: "list[str] | None" = None) -> FFI:
    """The FFI builder; benchmarks and the sanitizer build reuse it."""
    ffi = FFI()
    ffi.cdef(cdef_text())
    # The store function the broker calls for named maps in sqlite or Redis
    # (broker/_store_calls.py defines it): one Python call per operation.
    ffi.cdef('extern "Python" int wm_py_store(void *, wm_store_req *);')
    # Relative paths: setuptools refuses absolute ones in sources.
    rel = os.path.relpath(HERE, os.getcwd())
    flags = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    ffi.set_source(
        module,
        '#include "wm_core.h"',
        sources=[os.path.join(rel, s) for s in SOURCES],
        include_dirs=[str(HERE)],
        extra_compile_args=flags + (extra_args or []),
        extra_link_args=list(extra_args or []),
        libraries=["pthread"],
    )
    return ffi


ffibuilder = make_ffi()
