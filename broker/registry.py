"""The loaded modules of one broker: loading a checked spec, finding, removing.

A module comes in as a `ModuleSpec` (broker/module_spec.py), checked
already; here it is compiled, given its side of the C core and its grants,
instantiated in its own store (broker/runtime.py) and linked to its peers.
Loading it whole or not at all, and removing it whole (its handles closed,
its links, table, id and store given back), is this module's job; the
broker's lock is held by the caller (broker/host.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ConfigError, ModuleError
from .loaded import LoadedModule
from .module_spec import ModuleSpec
from .names import listed

if TYPE_CHECKING:
    from ._native import NativeBroker
    from .guard import Guard
    from .runtime import Runtime


class Registry:
    """Every loaded module, by name and by its id in the C core."""

    def __init__(self, native: NativeBroker, runtime: Runtime, guard: Guard) -> None:
        self._native = native
        self._runtime = runtime
        self._guard = guard
        self.modules: dict[str, LoadedModule] = {}
        self.by_id: dict[int, LoadedModule] = {}
        self._names: dict[int, str] = {native.host.id: "host"}  # every module ever loaded

    def name_of(self, module_id: int) -> str:
        """The name of a module id, loaded now or before ("host" for the host)."""
        return self._names.get(module_id, f"module#{module_id}")

    def get(self, name: str, *, allow_torn_down: bool = False) -> LoadedModule:
        """The loaded module `name`; ConfigError naming the loaded ones if none is,
        ModuleError if it was torn down (unless `allow_torn_down`)."""
        self._guard.check_open()
        loaded = self.modules.get(name)
        if loaded is None:
            raise ConfigError(
                f"no module named {name!r} is loaded ({listed('loaded', self.modules)})"
            )
        if loaded.torn_down and not allow_torn_down:
            raise ModuleError(f"module {name!r} was torn down ({loaded.torn_down}); load it again")
        return loaded

    def add(self, spec: ModuleSpec) -> LoadedModule:
        """Compile, instantiate and link `spec`'s module (lock held).

        On failure nothing of it stays: what its start function made is
        closed, and a trap that began in a peer tears that peer down."""
        name = spec.name
        if name in self.modules:
            raise ConfigError(f"module {name!r} is already loaded")
        compiled, label = self._runtime.compile(name, spec.source)
        native = self._native.new_module(spec.limits, name)
        self._names[native.id] = name
        try:
            for gname, rights in spec.grants.items():
                native.grant(gname, int(rights))
            with self._guard.guest():
                loaded = self._runtime.instantiate(
                    name, compiled, label, native, spec.limits, spec.exports, self.modules
                )
        except BaseException:
            self.blame_peer(name, "start")
            native.unload()
            raise
        self.modules[name] = self.by_id[native.id] = loaded
        try:
            self._runtime.links.resolve_into(loaded)
        except BaseException:
            self.remove(name)
            raise
        return loaded

    def remove(self, name: str) -> LoadedModule:
        """Unload `name` whole: its handles closed, its links, watches, table,
        id and wasmtime store (its linear memory) given back.  Host calls into
        it are the caller's to retire first (broker/dispatch.py)."""
        loaded = self.modules.pop(name)
        self.by_id.pop(loaded.native.id, None)
        self._runtime.forget(name)
        loaded.native.unload()
        loaded.store.close()
        return loaded

    def blame_peer(self, name: str, where: str) -> None:
        """Loading `name` failed: a trap that began in another module tears
        that one down, as any trap does; the origin is consumed either way."""
        origin_id = self._native.take_trap_origin()
        origin = self.by_id.get(origin_id) if origin_id is not None else None
        if origin is not None and origin.name != name and not origin.torn_down:
            origin.native.teardown()
            origin.torn_down = f"trapped in {name}'s {where}"

    def close(self) -> None:
        """The broker is closing: every store goes (the C state goes after)."""
        for loaded in self.modules.values():
            loaded.store.close()
        self.modules.clear()
        self.by_id.clear()
