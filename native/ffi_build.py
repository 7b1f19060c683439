"""cffi build script (API mode, out of line): compiles native/ into broker._wm.

Named in pyproject.toml's cffi_modules, so `pip install .` builds the C core.
The cdef is native/wm.h itself, minus its preprocessor lines: the header is
the one contract between C and Python.  The sha256 of wm.h and of the ABI
package broker/abi/ are baked into the core, so that broker/_native/core.py
can refuse a core built from other sources than those beside it; both sides
hash with broker/_native/digest.py.
"""

import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from cffi import FFI

if TYPE_CHECKING:
    from setuptools import Extension

HERE = Path(__file__).resolve().parent
# The files whose hash the core carries, and the C function that returns it
# (broker/_native/core.py reads them by these names).
BAKED = {
    "wm_built_abi_sha256": HERE.parent / "broker" / "abi",
    "wm_built_wm_h_sha256": HERE / "wm.h",
}
SOURCES = [
    "abi.c",
    "broker.c",
    "deadline.c",
    "gc.c",
    "handles.c",
    "hostfn.c",
    "leveldb_db.c",
    "leveldb_store.c",
    "link.c",
    "module.c",
    "names.c",
    "ops.c",
    "ops_handles.c",
    "ops_memory.c",
    "ops_store.c",
    "ownership.c",
    "pool.c",
    "refcount.c",
    "snapshot.c",
    "store.c",
    "stripes.c",
    "table.c",
    "ticker.c",
    "trace.c",
    "traps.c",
    "wasi_poll.c",
]
# The core's compiler flags (benchmarks/_abi_ladder.py compiles its pieces with them too).
FLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"]


def cdef_text() -> str:
    """wm.h without preprocessor lines (cffi's cdef takes declarations only)."""
    lines = (HERE / "wm.h").read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def load_digest() -> ModuleType:
    """broker/_native/digest.py, loaded by its path: broker itself is not
    importable while the core it needs is being built."""
    path = HERE.parent / "broker" / "_native" / "digest.py"
    spec = importlib.util.spec_from_file_location("wasi_map_build_digest", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: cannot be loaded to hash the core's sources")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def baked_source() -> str:
    """The C functions that return the baked hashes."""
    digest_of = load_digest().source_sha256
    out = []
    for name, path in BAKED.items():
        digest = digest_of(path)
        out.append(f'const char *{name}(void) {{ return "{digest}"; }}\n')
    return "".join(out)


def make_ffi(module: str = "broker._wm", extra_args: "list[str] | None" = None) -> FFI:
    """The FFI builder; benchmarks and the sanitizer build reuse it."""
    ffi = FFI()
    ffi.cdef(cdef_text())
    # The store function the broker calls for named maps in sqlite or Redis
    # (broker/_native/store_door.py defines it): one Python call per operation.
    ffi.cdef('extern "Python" int wm_py_store(void *, wm_store_req *);')
    # A failure of the LevelDB store answered in C (native/leveldb_store.c):
    # Python runs only then (broker/_native/leveldb_door.py defines it).
    ffi.cdef('extern "Python" int wm_py_store_failed(void *, wm_store_req *, const char *);')
    ffi.cdef('extern "Python" int wm_py_hostfn(void *, wm_hostcall *);')
    ffi.cdef("".join(f"const char *{name}(void);\n" for name in BAKED))
    # Relative paths: setuptools refuses absolute ones in sources.
    rel = os.path.relpath(HERE, os.getcwd())
    ffi.set_source(
        module,
        '#include "wm_core.h"\n' + baked_source(),
        sources=[os.path.join(rel, s) for s in SOURCES],
        include_dirs=[str(HERE)],
        extra_compile_args=FLAGS + (extra_args or []),
        extra_link_args=list(extra_args or []),
        libraries=["pthread"],
    )
    return ffi


def hostmap_extension(extra_args: "list[str] | None" = None, absolute: bool = False) -> "Extension":
    """The host MapRef's hot path, broker._hostmap (native/hostmap.c): a plain
    extension beside the core, built with the hashes the core bakes in.
    Its source path is relative for setup.py, which refuses absolute ones."""
    from setuptools import Extension

    digest_of = load_digest().source_sha256
    hashes = {
        "WM_H_SHA256": BAKED["wm_built_wm_h_sha256"],
        "WM_ABI_SHA256": BAKED["wm_built_abi_sha256"],
    }
    source = HERE / "hostmap.c"
    return Extension(
        "broker._hostmap",
        sources=[str(source) if absolute else os.path.relpath(source, os.getcwd())],
        include_dirs=[str(HERE)],
        define_macros=[(macro, f'"{digest_of(path)}"') for macro, path in hashes.items()],
        extra_compile_args=FLAGS + (extra_args or []),
        extra_link_args=list(extra_args or []),
        py_limited_api=True,
    )


def build_hostmap_here(extra_args: "list[str] | None" = None) -> None:
    """Build broker._hostmap into ./broker/ (the sanitizer build's copy)."""
    from setuptools import Distribution

    os.makedirs("broker", exist_ok=True)
    dist = Distribution({"ext_modules": [hostmap_extension(extra_args, absolute=True)]})
    dist.get_command_obj("build_ext").inplace = True  # type: ignore[attr-defined]
    dist.run_command("build_ext")


ffibuilder = make_ffi()
