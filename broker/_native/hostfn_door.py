"""The host-function door: how a guest's call of an app's host function reaches Python.

native/hostfn.c calls `wm_py_hostfn` (an `extern "Python"` function) once
per call of a host function, after the declared handle parameters have
passed into the host module and without the C lock held.  `ctx` is the
handle of the function the import was served with (`serve`), which gets
the call: its raw argument slots (`call.words[2 * i]`), and through the
functions below the caller's memory behind C's bounds checks and the
passing of its handle results.  An exception it
raises traps the guest: its words become the trap's, and the exception
waits on this thread for the entry into C that is running (`NativeLink.call`
or instantiating), which makes it the `__cause__` of what is raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import wasmtime

from .. import abi
from ..errors import FaultError, error_for
from .core import Native, ffi, lib
from .failures import record_host_error
from .link import NativeLink, pass_problem

log = logging.getLogger("wasi_map.hostfn")


def hostcall_read(call: Native, ptr: int, length: int) -> bytes:
    """`length` bytes at `ptr` of the calling guest's memory; FaultError when outside."""
    _check_span(ptr, length)
    out = ffi.new("uint8_t[]", length or 1)
    if lib.wm_hostcall_read(call, ptr, out, length) != abi.Errno.OK:
        raise _outside(call, "read", ptr, length)
    return bytes(ffi.buffer(out, length))


def hostcall_write(call: Native, ptr: int, data: bytes) -> None:
    """Write `data` at `ptr` of the calling guest's memory; FaultError when outside."""
    _check_span(ptr, len(data))
    if lib.wm_hostcall_write(call, ptr, data, len(data)) != abi.Errno.OK:
        raise _outside(call, "write", ptr, len(data))


def hostcall_memory_size(call: Native) -> int:
    """The calling guest's memory size in bytes (0: it has none)."""
    return int(lib.wm_hostcall_memory_size(call))


def _outside(call: Native, what: str, ptr: int, length: int) -> FaultError:
    return FaultError(
        f"{what} of {length} bytes at {ptr} is outside the guest's memory "
        f"({hostcall_memory_size(call)} bytes)"
    )


def hostcall_results(call: Native, codes: list[int], nparams: int) -> None:
    """Pass the declared handle results now in the slots to the guest, all or none;
    the error for the one that could not pass."""
    bad, twice = ffi.new("uint32_t *"), ffi.new("uint32_t *")
    err = int(lib.wm_hostcall_results(call, bad, twice))
    if err:
        i = int(bad[0])
        code = codes[nparams + i]
        handle = int(call.words[2 * i]) & 0xFFFFFFFF
        why = pass_problem(err, code, handle, twice=bool(twice[0]))
        raise error_for(err, f"result {i}: {why}")


def inside_host_function() -> bool:
    """Whether a host function is running on this thread."""
    return bool(lib.wm_inside_host_function())


def _check_span(ptr: int, length: int) -> None:
    if type(ptr) is not int or not 0 <= ptr < 1 << 32:
        raise FaultError(f"a guest address is an int in [0, 2**32), not {ptr!r}")
    if not 0 <= length < 1 << 32:
        raise FaultError(f"a length is an int in [0, 2**32), not {length!r}")


def _crashed(exc_type: Any, exc: BaseException, tb: Any) -> int:
    log.error("host function dispatch failed", exc_info=(exc_type, exc, tb))
    return 1


@ffi.def_extern(onerror=_crashed)  # type: ignore[untyped-decorator]
def wm_py_hostfn(ctx: Native, call: Native) -> int:
    run: Callable[[Native], None] = ffi.from_handle(ctx)
    try:
        run(call)
        return 0
    except BaseException as exc:  # the guest traps; the exception is the trap's cause
        record_host_error(exc)
        words = f"host function raised {type(exc).__name__}: {exc}".encode(errors="replace")
        words = words[: call.message_cap - 1]
        ffi.memmove(call.message, words + b"\0", len(words) + 1)
        return 1


class ServedLink:
    """A guest import served by a Python function: its link and the handle C holds."""

    def __init__(self, link: NativeLink, run: Callable[[Native], None], codes: list[int]):
        self.link = link
        self.handle = ffi.new_handle(run)  # C's ctx: kept alive with the link
        lib.wm_link_serve(link.ptr, lib.wm_py_hostfn, self.handle, bytes(codes))

    def define(
        self, linker: wasmtime.Linker, module: str, name: str, functype: wasmtime.FuncType
    ) -> None:
        self.link.define(linker, module, name, functype)
