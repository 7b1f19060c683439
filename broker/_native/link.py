"""A caller's way to one export (native/link.c): guest imports' trampolines, host calls."""

from __future__ import annotations

from dataclasses import dataclass

import wasmtime

from ..errors import ConfigError, StoreFailure
from .core import Native, ffi, lib
from .failures import clear_host_error, reach_store, take_host_error
from .module import NativeModule
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
        self._trap = ffi.new("void **")
        self._bad = ffi.new("uint32_t *")

    def resolve(self, target: NativeModule, func: wasmtime.Func, how: list[int]) -> None:
        lib.wm_link_resolve(self.ptr, target.ptr, func_bytes(func), bytes(how))

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

    def call(self, args: Native, masks: bytes | None) -> tuple[int, Trapped | None]:
        """(errno, None) when handle parameter `bad_param` could not pass, else
        (OK, how the call trapped or None).  The guest code it runs may reach
        the store: its failure goes to the trap, or (no trap) nowhere but the
        broker's record."""
        if self.broker.closed:
            raise ConfigError("the broker is closed")
        trap = self._trap
        clear_host_error()
        err, failure = reach_store(
            lib.wm_link_call,
            self.ptr,
            args,
            self.nslots,
            masks if masks is not None else ffi.NULL,
            trap,
            self._bad,
        )
        host_error = take_host_error()
        if err:
            return err, None
        if trap[0] != ffi.NULL:
            caught, trap[0] = trap[0], ffi.NULL
            return 0, Trapped(trap_message(caught), failure, host_error)
        return 0, None

    @property
    def bad_param(self) -> int:
        return int(self._bad[0])


def new_args(n: int) -> Native:
    """A buffer of n wasmtime_val_raw_t slots for `NativeLink.call`."""
    return ffi.new("wm_val_raw[]", max(n, 1))


def int64_view(args: Native) -> Native:
    """The same slots as an int64_t array (slot i's low half is element 2*i)."""
    return ffi.cast("int64_t *", args)
