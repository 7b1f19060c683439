"""Calls from the host into modules: the call, its trap, and the drop notices after.

`Dispatcher.call` enters an export through a `HostCall` (broker/calls.py,
kept per module and export), which runs in a free instance of the module;
calls from many threads run at once (the gate, broker/guard.py, is passed
shared).  A trap tears down the instance it began in and becomes a
`GuestTrap`; before the call returns, the broker replaces that instance
(broker/registry.py) while calls go on in the others.  Drop notices
queued meanwhile are delivered (each a call of `wasi_map_on_drop` in the
instance that asked for it).  A host operation on a `MapRef` ends in
`after_host_op`, which delivers notices too, unless a guest call is
running (it does so when it returns).  The `HostSide` that MapRefs and
host calls hold is made here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import wasmtime

from . import _native
from .abi import DROP_EXPORT
from .calls import HostCall
from .errors import ConfigError, GuestTrap, ModuleError
from .hostside import HostSide
from .loaded import Instance, LoadedModule
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
        self._replacing = threading.Lock()  # one replacement of torn-down instances at a time
        # module -> export (or (export, instance id) for one instance) -> its HostCall
        self._calls: dict[str, dict[object, HostCall]] = {}
        self.side = HostSide(native, guard, self.after_host_op)

    # --- calls ---------------------------------------------------------------

    def call(self, target: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """Call `module.export`; its results, after the notices it queued are delivered."""
        module, export = split_target(target)
        guard = self._guard
        guard.check_open()  # before the gate: a forked copy's may never open
        if _native.inside_host_function():
            raise ConfigError(
                f"call {target!r}: not from inside a host function (a guest call is "
                "running on this thread): return what the guest needs instead"
            )
        guard.gate.enter_shared()
        try:
            loaded = self._registry.get(module)
            host_call = self.host_call(loaded, export)
            with guard.guest():
                trap, values = host_call.invoke(args)
            error = self.trapped(module, export, trap) if trap is not None else None
            drop_trap = self.deliver_notices()
            self.replace_torn()
        finally:
            guard.gate.leave_shared()
            with guard.lock:
                self._drain()
        if error or drop_trap:
            raise error or drop_trap  # type: ignore[misc]
        return values

    def signature(self, target: str) -> ExportDecl:
        """How `module.export`'s parameters and results pass: declared kinds, else Wasm types."""
        module, export = split_target(target)
        self._guard.check_open()
        with self._guard.gate.shared():
            loaded = self._registry.get(module)
            ty = self.export_type(loaded, export)
            decl = loaded.decls.get(export) or ExportDecl((), ())
        params = decl.params + tuple(str(t) for t in ty.params[len(decl.params) :])
        results = decl.results + tuple(str(t) for t in ty.results[len(decl.results) :])
        return ExportDecl(params, results)

    def initialize(self, loaded: LoadedModule, instance: Instance) -> None:
        """Run a reactor's `_initialize` in `instance`, if it exports one;
        ModuleError on a trap."""
        if "_initialize" not in loaded.types:
            return
        with self._guard.guest():
            trap, _ = self.host_call(loaded, "_initialize", instance).invoke(())
        if trap is not None:
            self._registry.blame_peer(loaded.name, "_initialize")
            raise ModuleError(
                f"{loaded.source}: trapped in _initialize: "
                f"{GuestTrap(loaded.name, '_initialize', trap.message).reason}"
            )

    def host_call(
        self, loaded: LoadedModule, export: str, instance: Instance | None = None
    ) -> HostCall:
        """The host's way into `export`: in any free instance, or in `instance`."""
        key: object = export if instance is None else (export, instance.native.id)
        fn = self._calls.get(loaded.name, {}).get(key)
        if fn is None:
            self.export_type(loaded, export)
            with self._guard.lock:
                calls = self._calls.setdefault(loaded.name, {})
                fn = calls.get(key)
                if fn is None:
                    fn = calls[key] = HostCall(self.side, loaded, export, instance)
        return fn

    @staticmethod
    def export_type(loaded: LoadedModule, export: str) -> wasmtime.FuncType:
        """The type of `loaded`'s exported function `export`; a ConfigError
        naming its functions when it has none of that name (as for an
        unknown module)."""
        ty = loaded.types.get(export)
        if ty is None:
            raise ConfigError(
                f"module {loaded.name!r} has no exported function {export!r} "
                f"({listed('its functions', loaded.functions())})"
            )
        return ty

    def forget(self, name: str) -> None:
        """`name` is being unloaded: the host's links into it go (the C side frees them)."""
        for host_call in self._calls.pop(name, {}).values():
            host_call.retire()

    def forget_instance(self, name: str, instance: Instance) -> None:
        """`instance` of `name` is going: the host's calls pinned to it go too."""
        with self._guard.lock:
            calls = self._calls.get(name, {})
            for key in [k for k in calls if isinstance(k, tuple) and k[1] == instance.native.id]:
                calls.pop(key).retire()

    def close(self) -> None:
        self._calls.clear()

    # --- traps ---------------------------------------------------------------

    def trapped(self, module: str, export: str, trap: _native.Trapped) -> GuestTrap:
        """Tear down the instance the trap began in; the GuestTrap to raise."""
        origin_id = self._native.take_trap_origin()
        if origin_id is None:  # no origin noted: a module of one instance is the only choice
            loaded = self._registry.modules.get(module)
            if loaded is not None and len(loaded.instances) == 1:
                origin_id = loaded.native.id
        origin = None
        if origin_id is not None:
            with self._guard.lock:
                origin, fresh = self._registry.mark_torn(origin_id, f"trapped in {module}.{export}")
            if origin is not None and fresh:
                origin.native.teardown()  # waits for other threads' calls in it: not under the lock
                with self._guard.lock:
                    self._registry.queue_replacement(origin)
        where = origin.label if origin is not None and origin.label != module else None
        error = GuestTrap(
            module, export, trap.message, origin=where, store_failure=trap.store_failure
        )
        if trap.host_error is not None and trap.store_failure is None:
            error.__cause__ = trap.host_error  # the exception a host function raised
        return error

    def replace_torn(self) -> None:
        """Replace the instances traps tore down, unless this thread is inside
        a guest call (the outermost call does it) or another thread is at it."""
        if not self._registry.torn or self._guard.running:
            return
        if not self._replacing.acquire(blocking=False):
            return
        try:
            with self._guard.lock:
                torn, self._registry.torn = self._registry.torn, []
            later = []
            for name, index in torn:
                if not self._registry.replace(name, index, self._repoint, self.initialize):
                    later.append((name, index))
            with self._guard.lock:
                self._registry.torn += later
        finally:
            self._replacing.release()

    def _repoint(self, loaded: LoadedModule, index: int) -> None:
        """Instance `index` of `loaded` is being replaced: the host's calls into
        the module go to the new one."""
        with self._guard.lock:
            for key, host_call in self._calls.get(loaded.name, {}).items():
                if not isinstance(key, tuple):  # pinned ones go with their instance
                    host_call.repoint(index, loaded.funcs[key][index])  # type: ignore[index]

    # --- drop notices --------------------------------------------------------

    def deliver_now(self) -> None:
        """`Broker.deliver_notices()`: deliver what is queued, raise the first trap."""
        self._guard.check_open()
        with self._guard.gate.shared():
            self._guard.check_open()
            trap = self.deliver_notices()
        if trap is not None:
            raise trap

    def deliver_notices(self) -> GuestTrap | None:
        """Call wasi_map_on_drop(cookie) for every notice queued so far in the
        instance that asked for it, if it is loaded and exports it; the first
        trap, if any (the gate passed shared).

        Notices that the handlers themselves queue wait for the next
        delivery: a handler that feeds itself cannot keep the operation that
        delivers from returning (each handler call is bounded by its
        module's time limit, the batch by the watches quotas).  One thread
        delivers at a time; the lock is not held around the handlers."""
        guard = self._guard
        with guard.lock:
            if self._delivering or guard.closed or guard.running:
                return None  # the outermost operation (or the thread at it) delivers
            self._delivering = True
            queued: list[tuple[int, int]] = []
            while batch := self._native.take_notices(NOTICE_BATCH):
                queued += batch
        first: GuestTrap | None = None
        try:
            for module_id, cookie in queued:
                found = self._registry.by_id.get(module_id)
                if found is None or found[1].torn_down or DROP_EXPORT not in found[0].types:
                    continue
                loaded, instance = found
                with guard.guest():
                    trap, _ = self.host_call(loaded, DROP_EXPORT, instance).invoke((cookie,))
                if trap is not None:
                    error = self.trapped(loaded.name, DROP_EXPORT, trap)
                    first = first or error
        finally:
            with guard.lock:
                self._delivering = False
        return first

    def after_host_op(self) -> None:
        """After a host operation: take its trace events and deliver the notices
        of maps it reclaimed, unless a call is running on this thread (it does
        both when it returns)."""
        guard = self._guard
        wanted = self._tracing() or self._native.has_notices()
        if not wanted or guard.running:
            return
        with guard.gate.shared():
            trap = self.deliver_notices()
            with guard.lock:
                self._drain()
        if trap is not None:
            raise trap
