"""wasmtime-py's private attributes and C layouts: the one module that reaches into them.

The C core calls wasmtime's C API itself (through the addresses handed to
it here) and reads wasmtime's structs, whose sizes it was compiled for
(the `_Static_assert`s of native/wasmtime_abi.h).  At import the installed
wasmtime's sizes and entry points are compared with those; a mismatch is a
WasmtimeMismatchError.  Everything the rest of the package hands the core
from a wasmtime object goes through a function here.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
from typing import Any

import wasmtime
from wasmtime import _ffi as wt

from ..errors import WasmtimeMismatchError
from .core import Native, ffi, lib

WASMTIME_PIN = "50.0.1"
WASMTIME_ENTRY_POINTS = {
    "caller_context": "wasmtime_caller_context",
    "caller_export_get": "wasmtime_caller_export_get",
    "memory_data": "wasmtime_memory_data",
    "memory_data_size": "wasmtime_memory_data_size",
    "linker_define_func_unchecked": "wasmtime_linker_define_func_unchecked",
    "func_call_unchecked": "wasmtime_func_call_unchecked",
    "trap_new": "wasmtime_trap_new",
    "error_message": "wasmtime_error_message",
    "error_delete": "wasmtime_error_delete",
    "byte_vec_delete": "wasm_byte_vec_delete",
    "error_new": "wasmtime_error_new",
    "context_set_epoch_deadline": "wasmtime_context_set_epoch_deadline",
    "store_epoch_deadline_callback": "wasmtime_store_epoch_deadline_callback",
    "engine_clone": "wasmtime_engine_clone",
    "engine_delete": "wasm_engine_delete",
    "engine_increment_epoch": "wasmtime_engine_increment_epoch",
}


def _installed_wasmtime() -> str:
    try:
        return importlib.metadata.version("wasmtime")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def check_layouts() -> None:
    """Refuse to run when wasmtime's C layouts differ from the ones compiled in."""
    pairs = {
        "wasmtime_memory_t": (ctypes.sizeof(wt.wasmtime_memory_t), lib.wm_sizeof_wasmtime_memory()),
        "wasmtime_func_t": (ctypes.sizeof(wt.wasmtime_func_t), lib.wm_sizeof_wasmtime_func()),
        "wasmtime_val_raw_t": (
            ctypes.sizeof(wt.wasmtime_val_raw_t),
            lib.wm_sizeof_wasmtime_val_raw(),
        ),
        "wasmtime_extern_t": (ctypes.sizeof(wt.wasmtime_extern_t), lib.wm_sizeof_wasmtime_extern()),
    }
    bad = [
        f"{name} is {have} bytes, expected {want}"
        for name, (have, want) in pairs.items()
        if have != want
    ]
    missing = [sym for sym in WASMTIME_ENTRY_POINTS.values() if not hasattr(wt.dll, sym)]
    if bad or missing:
        problems = "; ".join(bad + [f"missing symbol {m}" for m in missing])
        raise WasmtimeMismatchError(
            f"wasi-map's C core was built for wasmtime {WASMTIME_PIN}, but wasmtime "
            f"{_installed_wasmtime()} is installed and its C layouts differ ({problems}). "
            f"Install wasmtime=={WASMTIME_PIN}."
        )


check_layouts()


def address(ptr: Any) -> Native:
    """A ctypes pointer (or address) as a cffi void*."""
    value = ptr if isinstance(ptr, int) else ctypes.cast(ptr, ctypes.c_void_p).value
    return ffi.cast("void *", value or 0)


def pointer(obj: wasmtime.Engine | wasmtime.Linker | wasmtime.FuncType | wasmtime.Store) -> Native:
    """The C object behind a wasmtime-py object, as a cffi void*."""
    return address(obj.ptr())


def context_of(store: wasmtime.Store) -> Native:
    """The store's wasmtime_context_t*."""
    return address(store._context())


def memory_address(memory: wasmtime.Memory) -> Native:
    """Where the wasmtime_memory_t of `memory` lives (the core keeps a copy)."""
    return address(ctypes.addressof(memory._memory))


def func_bytes(func: wasmtime.Func) -> bytes:
    """The wasmtime_func_t of `func`, as the core copies it into a link."""
    return ctypes.string_at(ctypes.addressof(func._func), ctypes.sizeof(func._func))


def _ctypes_pointer(p: Native, ctype: Any) -> Any:
    return ctypes.cast(int(ffi.cast("uintptr_t", p)), ctypes.POINTER(ctype))


def wasmtime_error(ptr: Native) -> wasmtime.WasmtimeError:
    """Wrap (and take ownership of) a wasmtime_error_t* returned by the core."""
    return wasmtime.WasmtimeError._from_ptr(_ctypes_pointer(ptr, wt.wasmtime_error_t))


def trap_message(ptr: Native) -> str:
    """The message of (and ownership of) a wasm_trap_t* returned by the core."""
    trap = wasmtime.Trap._from_ptr(_ctypes_pointer(ptr, wt.wasm_trap_t))
    return str(trap.message)


def wasmtime_api() -> Native:
    """The wasmtime entry points the core calls, by address (kept for the process)."""
    api = ffi.new("wm_wasmtime_api *")
    for field, symbol in WASMTIME_ENTRY_POINTS.items():
        setattr(api, field, address(ctypes.cast(getattr(wt.dll, symbol), ctypes.c_void_p).value))
    return api


API = wasmtime_api()
