"""C floors for the benchmarks: compile a tiny cffi extension, register a C
callback through wasmtime's unchecked C API (the path wasi-map uses)."""

from __future__ import annotations

import ctypes
import importlib.util
import tempfile
from typing import Any

import cffi
import wasmtime
from wasmtime import _ffi as wt

# Our own prototype over the symbol's address: wasmtime-py's bindings share
# the dll's function object, whose argtypes we must not change.
_DEFINE_UNCHECKED = ctypes.CFUNCTYPE(
    ctypes.c_void_p,  # wasmtime_error_t *
    ctypes.c_void_p,  # wasmtime_linker_t *
    ctypes.c_char_p,
    ctypes.c_size_t,
    ctypes.c_char_p,
    ctypes.c_size_t,
    ctypes.c_void_p,  # const wasm_functype_t *
    ctypes.c_void_p,  # callback
    ctypes.c_void_p,  # env
    ctypes.c_void_p,  # finalizer
)


def symbol(name: str) -> int:
    """The address of a function in the wheel's _libwasmtime.so."""
    address = ctypes.cast(getattr(wt.dll, name), ctypes.c_void_p).value
    assert address is not None, name
    return address


def compile_cffi(name: str, cdef: str, source: str, **build: Any) -> tuple[cffi.FFI, Any]:
    """Compile a cffi API-mode extension in a temp dir and load it; (ffi, lib).
    `build` goes to `set_source` (sources, include_dirs, extra_compile_args...)."""
    ffi = cffi.FFI()
    ffi.cdef(cdef)
    ffi.set_source(name, source, **build)
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as tmp:
        path = ffi.compile(tmpdir=tmp, verbose=False)
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # loaded: the file may go with the temp dir
    return module.ffi, module.lib


def define_unchecked(
    linker: wasmtime.Linker,
    module: str,
    name: str,
    ty: wasmtime.FuncType,
    callback: int,
    env: int | None = None,
) -> None:
    """Define `module.name` in `linker` as the C `callback` (unchecked API)."""
    define = _DEFINE_UNCHECKED(symbol("wasmtime_linker_define_func_unchecked"))
    err = define(
        ctypes.cast(linker.ptr(), ctypes.c_void_p),
        module.encode(),
        len(module),
        name.encode(),
        len(name),
        ctypes.cast(ty.ptr(), ctypes.c_void_p),
        callback,
        env,
        None,
    )
    if err:
        raise wasmtime.WasmtimeError._from_ptr(
            ctypes.cast(err, ctypes.POINTER(wt.wasmtime_error_t))
        )
