"""Calls from the host into modules: the call, its trap, and the drop notices after.

`Dispatcher.call` enters an export through a `HostCall` (broker/calls.py,
kept per module and export), tears down the module a trap began in and
turns the trap into a `GuestTrap`, and delivers the drop notices queued
meanwhile (each a call of the module's `wasi_map_on_drop`).  A host
operation on a `MapRef` ends in `after_host_op`, which delivers notices
too, unless a guest call is running (it does so when it returns).  The
`HostSide` that MapRefs and host calls hold is made here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import wasmtime

from . import _native
from .abi import DROP_EXPORT
from .calls import HostCall
from .errors import ConfigError, GuestTrap, ModuleError
from .hostside import HostSide
from .loaded import LoadedModule
from .module_spec import ExportDecl
from .names import listed

if TYPE_CHECKING:
    from .guard import Guard
    from .registry import Registry

NOTICE_BATCH = 4096  # drop notices taken from the C core at a time


def split_target(target: str) -> tuple[str, str]:
    """`module.export` as (module, export); ConfigError when it is not one."""
    module, sep, export = target.partition(".")
    if not sep or not export:
        raise ConfigError(f"call target {target!r}: expected MODULE.EXPORT")
    return module, export


class Dispatcher:
    """The host's calls into one broker's modules, and the notices they leave."""

    def __init__(
        self,
        native: _native.NativeBroker,
        registry: Registry,
        guard: Guard,
        drain: Callable[[], None],
        tracing: Callable[[], bool],
    ) -> None:
        self._native = native
        self._registry = registry
        self._guard = guard
        self._drain = drain  # take trace events, drop retired links
        self._tracing = tracing
        self._delivering = False
        self._calls: dict[str, dict[str, HostCall]] = {}  # module -> export -> its HostCall
        self.side = HostSide(native, guard, self.after_host_op)

    # --- calls ---------------------------------------------------------------

    def call(self, target: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """Call `module.export`; its results, after the notices it queued are delivered."""
        module, export = split_target(target)
        self._guard.check_open()  # before the lock: a forked copy's lock may never come free
        with self._guard.lock:
            if _native.inside_host_function():
                raise ConfigError(
                    f"call {target!r}: not from inside a host function (a guest call is "
                    "running on this thread): return what the guest needs instead"
                )
            loaded = self._registry.get(module)
            try:
                with self._guard.guest():
                    trap, values = self.host_call(loaded, export).invoke(args)
                error = self.trapped(module, export, trap) if trap is not None else None
                drop_trap = self.deliver_notices()
            finally:
                self._drain()
        if error or drop_trap:
            raise error or drop_trap  # type: ignore[misc]
        return values

    def signature(self, target: str) -> ExportDecl:
        """How `module.export`'s parameters and results pass: declared kinds, else Wasm types."""
        module, export = split_target(target)
        self._guard.check_open()
        with self._guard.lock:
            loaded = self._registry.get(module)
            ty = self.export_func(loaded, export).type(loaded.store)
            decl = loaded.decls.get(export) or ExportDecl((), ())
        params = decl.params + tuple(str(t) for t in ty.params[len(decl.params) :])
        results = decl.results + tuple(str(t) for t in ty.results[len(decl.results) :])
        return ExportDecl(params, results)

    def initialize(self, loaded: LoadedModule) -> None:
        """Run a reactor's `_initialize`, if it exports one (lock held); ModuleError on a trap."""
        if loaded.export_func("_initialize") is None:
            return
        with self._guard.guest():
            trap, _ = self.host_call(loaded, "_initialize").invoke(())
        if trap is not None:
            self._registry.blame_peer(loaded.name, "_initialize")
            raise ModuleError(
                f"{loaded.source}: trapped in _initialize: "
                f"{GuestTrap(loaded.name, '_initialize', trap.message).reason}"
            )

    def host_call(self, loaded: LoadedModule, export: str) -> HostCall:
        calls = self._calls.setdefault(loaded.name, {})
        fn = calls.get(export)
        if fn is None:
            fn = calls[export] = HostCall(
                self.side, loaded, export, self.export_func(loaded, export)
            )
        return fn

    @staticmethod
    def export_func(loaded: LoadedModule, export: str) -> wasmtime.Func:
        """The exported function `export` of `loaded`; a ConfigError naming its
        functions when it has none of that name (as for an unknown module)."""
        func = loaded.export_func(export)
        if func is None:
            raise ConfigError(
                f"module {loaded.name!r} has no exported function {export!r} "
                f"({listed('its functions', loaded.functions())})"
            )
        return func

    def forget(self, name: str) -> None:
        """`name` is being unloaded: the host's links into it go (the C side frees them)."""
        for host_call in self._calls.pop(name, {}).values():
            host_call.retire()

    def close(self) -> None:
        self._calls.clear()

    # --- traps ---------------------------------------------------------------

    def trapped(self, module: str, export: str, trap: _native.Trapped) -> GuestTrap:
        """Tear down the module the trap began in; the GuestTrap to raise."""
        origin_id = self._native.take_trap_origin()
        origin = (
            self._registry.by_id.get(origin_id)
            if origin_id is not None
            else self._registry.modules[module]
        )
        if origin is not None and not origin.torn_down:
            origin.native.teardown()
            origin.torn_down = f"trapped in {module}.{export}"
        where = origin.name if origin is not None and origin.name != module else None
        error = GuestTrap(
            module, export, trap.message, origin=where, store_failure=trap.store_failure
        )
        if trap.host_error is not None and trap.store_failure is None:
            error.__cause__ = trap.host_error  # the exception a host function raised
        return error

    # --- drop notices --------------------------------------------------------

    def deliver_now(self) -> None:
        """`Broker.deliver_notices()`: deliver what is queued, raise the first trap."""
        self._guard.check_open()
        with self._guard.lock:
            self._guard.check_open()
            trap = self.deliver_notices()
        if trap is not None:
            raise trap

    def deliver_notices(self) -> GuestTrap | None:
        """Call wasi_map_on_drop(cookie) for every notice queued so far whose
        module is loaded and exports it; the first trap, if any (lock held).

        Notices that the handlers themselves queue wait for the next
        delivery: a handler that feeds itself cannot keep the operation that
        delivers from returning (each handler call is bounded by its
        module's time limit, the batch by the watches quotas)."""
        if self._delivering or self._guard.closed or self._guard.running:
            return None  # the outermost operation delivers when it ends
        self._delivering = True
        first: GuestTrap | None = None
        queued: list[tuple[int, int]] = []
        while batch := self._native.take_notices(NOTICE_BATCH):
            queued += batch
        try:
            for module_id, cookie in queued:
                loaded = self._registry.by_id.get(module_id)
                if loaded is None or loaded.torn_down or loaded.export_func(DROP_EXPORT) is None:
                    continue
                with self._guard.guest():
                    trap, _ = self.host_call(loaded, DROP_EXPORT).invoke((cookie,))
                if trap is not None:
                    error = self.trapped(loaded.name, DROP_EXPORT, trap)
                    first = first or error
        finally:
            self._delivering = False
        return first

    def after_host_op(self) -> None:
        """After a host operation: take its trace events and deliver the notices
        of maps it reclaimed, unless a call is running (it does both when it
        returns)."""
        lock = self._guard.lock
        wanted = self._tracing() or self._native.has_notices()
        if not wanted or not lock.acquire(blocking=False):
            return
        if self._guard.running:  # this thread is inside a guest call: it does both later
            lock.release()
            return
        try:
            trap = self.deliver_notices()
            self._drain()
        finally:
            lock.release()
        if trap is not None:
            raise trap
