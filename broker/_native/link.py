"""A caller's way to one export (native/link.c): guest imports' trampolines, host calls."""

from __future__ import annotations

from dataclasses import dataclass

import wasmtime

from ..errors import ConfigError, StoreFailure
from .core import Native, ffi, lib
from .failures import clear_host_error, reach_store, take_host_error
from .module import NativeModule
from .pool import NativePool
from .wasmtime_layouts import func_bytes, pointer, trap_message, wasmtime_error


@dataclass(frozen=True)
class Trapped:
    """How a call trapped: wasmtime's message, and the store's failure during the call."""

    message: str
    store_failure: StoreFailure | None
    host_error: BaseException | None = None  # what a host function raised (the trap's cause)


def pass_problem(err: int, code: int, handle: int, *, twice: bool = False) -> str:
    """Why `handle` could not pass as `code` (a WM_PASS_* parameter), and what
    to do: the words a guest's trap says (native/link.c)."""
    out = ffi.new("char[512]")
    lib.wm_pass_explain(out, len(out), err, code, lib.WM_WHY_TWICE if twice else 0, handle)
    return str(ffi.string(out).decode())


class NativeLink:
    """A caller's way to one export (native/link.c): a guest import's
    trampoline, or the host's way in.  Freed with the broker."""

    def __init__(
        self, caller: NativeModule, label: str, nparams: int, nresults: int, export: str
    ) -> None:
        ptr = lib.wm_link_new(caller.ptr, label.encode(), nparams, nresults)
        if ptr == ffi.NULL:
            raise MemoryError("wm_link_new failed")
        self.broker = caller.broker
        self.ptr = ptr
        self.id = int(lib.wm_link_id(ptr))
        self.broker.link_labels[self.id] = export
        self.nslots = max(nparams, nresults)

    def resolve(self, pool: NativePool, funcs: list[wasmtime.Func], how: list[int]) -> None:
        """Point the link at an export of `pool`: `funcs` is it in each instance."""
        if len(funcs) != pool.n:
            raise ValueError(f"{len(funcs)} functions for a pool of {pool.n} instances")
        blob = b"".join(func_bytes(f) for f in funcs)
        if lib.wm_link_resolve(self.ptr, pool.ptr, blob, bytes(how)) != 0:
            raise MemoryError("wm_link_resolve failed")

    def set_func(self, index: int, func: wasmtime.Func) -> None:
        """Instance `index` of the link's pool was replaced: this is the export in it."""
        if lib.wm_link_set_func(self.ptr, index, func_bytes(func)) != 0:
            raise ValueError(f"the link has no instance {index}")

    def unresolve(self) -> None:
        lib.wm_link_unresolve(self.ptr)

    def retire(self) -> None:
        """The link goes with its module: its label, once the tracer has its events."""
        self.broker.retired_links.append(self.id)

    def set_loading(self, loading: NativeModule | None) -> None:
        """A module of the target's name is instantiating (None: no longer)."""
        lib.wm_link_set_loading(self.ptr, loading.ptr if loading is not None else ffi.NULL)

    def define(
        self, linker: wasmtime.Linker, module: str, name: str, functype: wasmtime.FuncType
    ) -> None:
        error = lib.wm_link_define(
            self.ptr, pointer(linker), module.encode(), name.encode(), pointer(functype)
        )
        if error != ffi.NULL:
            raise wasmtime_error(error)

    def call(self, args: Native, masks: bytes | None) -> tuple[int, Trapped | None, int]:
        """(errno, None, the handle parameter that could not pass), else (OK,
        how the call trapped or None, 0).  The guest code it runs may reach
        the store: its failure goes to the trap, or (no trap) nowhere but the
        broker's record.  Threads may call through one link at once."""
        if self.broker.closed:
            raise ConfigError("the broker is closed")
        trap, bad = ffi.new("void **"), ffi.new("uint32_t *")
        clear_host_error()
        err, failure = reach_store(
            lib.wm_link_call,
            self.ptr,
            args,
            self.nslots,
            masks if masks is not None else ffi.NULL,
            trap,
            bad,
        )
        host_error = take_host_error()
        if err:
            return err, None, int(bad[0])
        if trap[0] != ffi.NULL:
            return 0, Trapped(trap_message(trap[0]), failure, host_error), 0
        return 0, None, 0


def new_args(n: int) -> Native:
    """A buffer of n wasmtime_val_raw_t slots for `NativeLink.call`."""
    return ffi.new("wm_val_raw[]", max(n, 1))


def int64_view(args: Native) -> Native:
    """The same slots as an int64_t array (slot i's low half is element 2*i)."""
    return ffi.cast("int64_t *", args)
