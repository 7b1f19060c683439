"""The loaded modules of one broker: loading a checked spec, finding, replacing, removing.

A module comes in as a `ModuleSpec` (broker/module_spec.py), checked
already; here it is compiled once, and each of its instances is given its
side of the C core and its grants, instantiated in its own store
(broker/runtime.py) and linked to its peers; then the instances go into
one pool (native/pool.c) and links into the module are resolved.  Loading
it whole or not at all, replacing an instance a trap tore down, and
removing it whole (its handles closed, its links, tables, ids and stores
given back) is this module's job.  Every change runs with the broker's
gate passed exclusive (broker/guard.py): no call is in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import wasmtime

from ._native import NativePool
from .errors import ConfigError, ModuleError
from .loaded import Instance, LoadedModule, instance_label
from .module_spec import ModuleSpec
from .names import listed

RETIRE_WAIT_MS = 100  # how long a replacement waits for a call still in the old instance

if TYPE_CHECKING:
    from ._native import NativeBroker
    from .guard import Guard
    from .runtime import Runtime


class Registry:
    """Every loaded module by name, and each instance by its id in the C core."""

    def __init__(self, native: NativeBroker, runtime: Runtime, guard: Guard) -> None:
        self._native = native
        self._runtime = runtime
        self._guard = guard
        self.modules: dict[str, LoadedModule] = {}
        self.by_id: dict[int, tuple[LoadedModule, Instance]] = {}
        self._names: dict[int, str] = {native.host.id: "host"}  # every instance ever loaded
        self._specs: dict[str, tuple[ModuleSpec, wasmtime.Module]] = {}  # to replace instances
        self.torn: list[tuple[str, int]] = []  # (module, instance index) waiting for a new one
        # called before an instance goes: the host's calls pinned to it go first
        self.on_drop: Callable[[str, Instance], None] = lambda name, inst: None

    def name_of(self, module_id: int) -> str:
        """The label of an instance id, loaded now or before ("host" for the host)."""
        return self._names.get(module_id, f"module#{module_id}")

    def labels(self) -> list[str]:
        """Every loaded instance's label ("counter", or "counter#1", "counter#2"...)."""
        return [i.label for m in self.modules.values() for i in m.instances]

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
        """Compile, instantiate and link `spec`'s module, every instance of it.

        On failure nothing of it stays: what its start function made is
        closed, and a trap that began in a peer tears that peer down."""
        name = spec.name
        if name in self.modules:
            raise ConfigError(f"module {name!r} is already loaded")
        compiled, label = self._runtime.compile(name, spec.source)
        pool = NativePool(self._native, spec.instances)
        made: list[Instance] = []
        try:
            for i in range(spec.instances):
                made.append(self._instance(spec, compiled, label, i))
        except BaseException:
            for inst in made:
                self._drop_instance(inst, name)
            pool.free()
            raise
        loaded = LoadedModule(name, label, made, pool, dict(spec.exports))
        loaded.read_exports()
        for i, inst in enumerate(made):
            pool.set(i, inst.native)
            self.by_id[inst.native.id] = (loaded, inst)
        self.modules[name] = loaded
        self._specs[name] = (spec, compiled)
        try:
            self._runtime.links.resolve_into(loaded)
        except BaseException:
            self.remove(name)
            raise
        return loaded

    def _instance(
        self, spec: ModuleSpec, compiled: wasmtime.Module, label: str, index: int
    ) -> Instance:
        """Instance `index` of `spec`'s module, started, not yet in its pool."""
        name = spec.name
        ilabel = instance_label(name, index, spec.instances)
        native = self._native.new_module(spec.limits, ilabel)
        self._names[native.id] = ilabel
        try:
            for gname, rights in spec.grants.items():
                native.grant(gname, int(rights))
            with self._guard.guest():
                return self._runtime.instantiate(
                    name, ilabel, compiled, label, native, spec.limits, spec.exports, self.modules
                )
        except BaseException:
            self.blame_peer(name, "start")
            native.unload()
            raise

    def _drop_instance(self, inst: Instance, name: str) -> None:
        self.on_drop(name, inst)
        self.by_id.pop(inst.native.id, None)
        self._runtime.forget(inst.native.id)
        inst.native.unload()  # frees the host's links into it: then its solo pool can go
        if inst.solo is not None:
            inst.solo.free()
        inst.store.close()

    def replace(
        self,
        name: str,
        index: int,
        repoint: Callable[[LoadedModule, int], None],
        initialize: Callable[[LoadedModule, Instance], None],
    ) -> bool:
        """A new instance in place of instance `index` of `name`, which a trap
        tore down, while calls go on in the others: the old one is taken for
        good once no thread runs in it, the new one starts, the links into
        the module (and, through `repoint`, the host's) are pointed at its
        functions, and it takes the old one's place.  False when the old one
        is still busy (on this very thread, say): try again later.  A new
        one that fails to start (or whose `_initialize`, run by `initialize`
        before any call can reach it, traps) leaves the place torn down, its
        reason said."""
        loaded = self.modules.get(name)
        if loaded is None or not loaded.instances[index].replacing:
            return True
        old = loaded.instances[index]
        if not old.native.retire(RETIRE_WAIT_MS):
            return False
        spec, compiled = self._specs[name]
        new = None
        try:
            new = self._instance(spec, compiled, loaded.source, index)
            initialize(loaded, new)
        except (ModuleError, wasmtime.WasmtimeError) as exc:
            if new is not None:
                self._drop_instance(new, name)
            old.torn_down = f"{old.torn_down}; a new instance failed to start: {exc}"
            old.replacing = False
            loaded.pool.replacing(-1)
            return True
        for export, funcs in loaded.funcs.items():
            func = new.instance.exports(new.store).get(export)
            assert isinstance(func, wasmtime.Func)
            funcs[index] = func
        self._runtime.links.repoint(name, index, loaded.funcs)
        repoint(loaded, index)
        loaded.instances[index] = new
        self.by_id[new.native.id] = (loaded, new)
        loaded.pool.set(index, new.native)  # calls may take it from here on
        loaded.pool.replacing(-1)
        self._drop_instance(old, name)
        return True

    def remove(self, name: str) -> LoadedModule:
        """Unload `name` whole: its handles closed, its links, watches, tables,
        ids and wasmtime stores (their linear memories) given back.  Host
        calls into it are the caller's to retire first (broker/dispatch.py)."""
        loaded = self.modules.pop(name)
        self._specs.pop(name, None)
        self.torn = [(m, i) for m, i in self.torn if m != name]
        self._runtime.links.unresolve_into(name)
        for inst in loaded.instances:
            if not inst.native.unloaded:
                self._drop_instance(inst, name)
        loaded.pool.free()
        return loaded

    def tear_down(self, module_id: int, why: str) -> Instance | None:
        """Tear down the instance `module_id` (every handle closed, calls skip
        it); it waits in `torn` for a new one.  The instance, or None.  For a
        caller no other thread can be waiting on (loading: the gate is held
        whole); a trap's teardown goes in the three steps below."""
        inst, fresh = self.mark_torn(module_id, why)
        if inst is not None and fresh:
            inst.native.teardown()
            self.queue_replacement(inst)
        return inst

    def mark_torn(self, module_id: int, why: str) -> tuple[Instance | None, bool]:
        """Step 1 (under the broker's lock): mark the instance `module_id` torn
        down -- no new call takes it, and calls that find no live instance
        wait for its replacement rather than fail.  The instance (or None),
        and whether this call marked it (then it is the caller's to tear
        down, step 2, and queue, step 3)."""
        found = self.by_id.get(module_id)
        if found is None:
            return None, False
        loaded, inst = found
        if inst.torn_down is not None:
            return inst, False
        inst.torn_down = why
        if self._specs[loaded.name][0].on_trap == "replace":
            inst.replacing = True
            loaded.pool.replacing(+1)  # before it is dead: no caller sees the pool empty
        inst.native.mark_dead()
        return inst, True

    # Step 2, without the broker's lock: inst.native.teardown() waits for the
    # calls other threads still run in it, which may need that lock.

    def queue_replacement(self, inst: Instance) -> None:
        """Step 3 (under the broker's lock): a torn-down instance waits in
        `torn` for a new one, if its module replaces instances."""
        if inst.replacing:
            loaded = self.by_id[inst.native.id][0]
            self.torn.append((loaded.name, loaded.instances.index(inst)))

    def blame_peer(self, name: str, where: str) -> None:
        """Loading `name` failed: a trap that began in another module tears
        that one down, as any trap does; the origin is consumed either way."""
        origin_id = self._native.take_trap_origin()
        found = self.by_id.get(origin_id) if origin_id is not None else None
        if found is not None and found[0].name != name:
            self.tear_down(origin_id, f"trapped in {name}'s {where}")  # type: ignore[arg-type]

    def close(self) -> None:
        """The broker is closing: every store goes (the C state goes after)."""
        for loaded in self.modules.values():
            for inst in loaded.instances:
                inst.store.close()
                if inst.solo is not None:
                    inst.solo.free()
            loaded.pool.free()
        self.modules.clear()
        self.by_id.clear()
