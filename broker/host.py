"""The host API: `Broker`, the object orchestration code and tests drive.

A façade: it checks arguments into a module spec (broker/module_spec.py)
and hands the work to collaborators with one job each -- the loaded
modules (broker/registry.py), calls and drop notices (broker/dispatch.py),
stats, leaks and the graph (broker/inspection.py) -- sharing one lock and
lifetime (broker/guard.py).  docs/architecture.md draws how they depend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from . import _native, aio, stores
from . import gc as cycle_gc
from .abi import parse_rights
from .dispatch import Dispatcher
from .errors import ConfigError, ModuleError, StoreFailure
from .guard import Guard
from .host_functions import host_function
from .inspection import Inspection, Stats
from .leaks import LeakReport
from .limits import DEFAULT_LIMITS, Limits
from .manifest import Manifest, load_manifest, module_file_problem
from .mapref import MapRef, check_mine
from .module_spec import ExportDecl, ModuleSpec, SpecError, module_spec
from .names import map_name_problem, shown_name
from .refs import Snapshot
from .registry import Registry
from .runtime import Runtime
from .stores.base import Store
from .tracer import Bounds, Tracer

__all__ = ["Broker", "CallResult", "CallValue", "Stats"]

#: What `Broker.call` returns: None (no results), the one result, or a tuple
#: of them; each an int, or a MapRef for a result declared own or share.
CallValue = int | MapRef
CallResult = CallValue | tuple[CallValue, ...] | None


class Broker:
    """Owns every map, loads modules (a wasmtime store each), and calls them.

    Thread-safe: the C core has its own lock, and calls into wasmtime (whose
    stores are single-threaded) are serialised by a broker lock.
    """

    def __init__(
        self,
        store: str | Store = "memory:",
        *,
        limits: Limits = DEFAULT_LIMITS,
        strict_borrows: bool = False,
        gc_threshold: int = cycle_gc.DEFAULT_THRESHOLD,
        trace: bool | str | Path | IO[str] = False,
        trace_bounds: Bounds | None = None,
        workers: int | None = None,
    ) -> None:
        self.limits = limits
        self._workers = aio.Workers(aio.worker_count(workers))  # call_async's threads
        self._native = _native.NativeBroker(limits)
        self._guard = Guard(self._native)
        self.strict_borrows = strict_borrows
        try:
            self.gc = cycle_gc.Collector(self._native, gc_threshold)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self._runtime = Runtime(self._native)
        self._registry = Registry(self._native, self._runtime, self._guard)
        self._modules = self._registry.modules  # for tests: name -> LoadedModule
        self._name_of = self._registry.name_of
        self._dispatch = Dispatcher(
            self._native, self._registry, self._guard, self._drain, self._tracing
        )
        self._registry.on_drop = self._dispatch.forget_instance
        self._inspection = Inspection(
            self._native, self._registry, self._guard, self._dispatch.side
        )
        self._link_label = self._inspection.link_label
        self._runtime.host_functions.side = self._dispatch.side
        self.tracer = (
            Tracer.open(self._native, trace, self._name_of, self._link_label, trace_bounds)
            if trace
            else None
        )
        # Last, so that nothing above can fail with a store connection open.
        # A URL, or a Store of the app's own (broker/stores/base.py says what
        # it must keep); None: named maps stay in the C data plane.
        try:
            self.store = store if isinstance(store, Store) else stores.open_store(store)
        except BaseException:
            if self.tracer is not None:
                self.tracer.close()
            raise
        # What other code prints: the URL with any password hidden.
        self.store_url = stores.redact_url(store.url if isinstance(store, Store) else store)
        if self.store is not None:
            self._store_door = _native.attach_store(self._native, self.store, self._name_of)

    @property
    def strict_borrows(self) -> bool:
        """Strict borrows: an export that returns with a borrow still open traps.

        Takes effect when set, for every call from then on (docs/abi.md)."""
        return self._strict_borrows

    @strict_borrows.setter
    def strict_borrows(self, strict: bool) -> None:
        if type(strict) is not bool:
            raise ConfigError(f"strict_borrows must be True or False, not {shown_name(strict)}")
        self._native.set_strict_borrows(strict)
        self._strict_borrows = strict

    @property
    def closed(self) -> bool:
        """Closed: the broker cannot be used any more."""
        return self._guard.closed

    @classmethod
    def from_manifest(
        cls,
        path: str | Path,
        *,
        trace: bool | str | Path | IO[str] = False,
        store: str | Store | None = None,
    ) -> Broker:
        """A broker with every module of an app manifest loaded, in file order.

        `store` (a URL or a Store) replaces the manifest's `[store]`."""
        manifest = load_manifest(path)
        broker = cls(
            manifest.store_url if store is None else store,
            limits=manifest.limits,
            strict_borrows=manifest.strict_borrows,
            gc_threshold=manifest.gc_threshold,
            trace=trace,
        )
        try:
            broker._load_manifest(manifest)
        except BaseException:
            broker.close()
            raise
        return broker

    def _load_manifest(self, manifest: Manifest) -> None:
        """Every module of a manifest, its specs checked already by the reader."""
        for spec in manifest.modules.values():
            missing = module_file_problem(manifest, spec)
            if missing:
                raise ModuleError(missing)
            self._load(spec)
        for peer in self._runtime.links.unresolved():
            raise ModuleError(
                f"{manifest.path}: module {peer.importer!r} imports "
                f"{peer.module}.{peer.name}, but the app has no module "
                f"{peer.module!r}"
            )

    # --- modules -----------------------------------------------------------

    def load(
        self,
        name: str,
        module: str | Path | bytes,
        *,
        grants: Mapping[str, str | int] | None = None,
        limits: Limits | Mapping[str, Any] | None = None,
        exports: Mapping[str, ExportDecl | Mapping[str, Any]] | None = None,
        instances: int = 1,
        on_trap: str = "replace",
    ) -> None:
        """Load a module (.wat/.wasm path, or Wasm/WAT bytes) under `name`.

        `exports` declares how handle parameters and results of its exports
        pass (own, borrow, share; see broker/ownership.py).  Imports of
        other modules' exports are linked as soon as those are loaded.
        `instances` runs that many copies of it, so that calls from several
        threads run at once; `on_trap` says whether an instance a trap tore
        down is replaced ("replace") or stays down until the module is
        loaded again ("stop"), see docs/instances.md.
        """
        self._guard.check_open()
        try:
            spec = module_spec(
                name,
                module,
                grants=grants,
                limits=limits,
                exports=exports,
                instances=instances,
                on_trap=on_trap,
                base_limits=self.limits,
            )
        except SpecError as exc:
            if exc.where == ("name",):
                raise ConfigError(f"module name {shown_name(name)}: {exc.problem}") from None
            raise ConfigError(f"module {name!r} {exc.place()}: {exc.problem}") from None
        self._load(spec)

    def _load(self, spec: ModuleSpec) -> None:
        with self._guard.changing(f"load {spec.name!r}"):
            if spec.name in self._runtime.host_functions.namespaces():
                raise ConfigError(
                    f"module {spec.name!r}: host functions are defined under that name "
                    "(imports from it are the host's): load the module under another name"
                )
            try:
                loaded = self._registry.add(spec)
                try:
                    for instance in loaded.instances:
                        self._dispatch.initialize(loaded, instance)
                except BaseException:
                    self._remove(spec.name)
                    raise
            finally:
                self._dispatch.replace_torn()  # a peer its start function made trap
                self._drain()

    def unload(self, name: str) -> None:
        """Remove a module; every handle it holds is closed as if by `close`.

        Maps still referenced elsewhere keep all their data; imports of its
        exports wait for a module of that name to be loaded again.
        """
        self._guard.check_open()
        with self._guard.changing(f"unload {name!r}"):
            self._registry.get(name, allow_torn_down=True)
            self._remove(name)
            trap = self._dispatch.deliver_notices()
            self._drain()
        if trap is not None:
            raise trap

    def _remove(self, name: str) -> None:
        self._dispatch.forget(name)  # the host's links into it first
        self._registry.remove(name)

    # --- host functions ------------------------------------------------------

    def define(
        self,
        module: str,
        name: str,
        fn: Callable[..., Any],
        *,
        params: Sequence[str] = (),
        results: Sequence[str] = (),
    ) -> None:
        """Define the host function `module.name`, which guests import as any
        function: `fn(caller, *args)` gets a Caller (the module's name, its
        memory) and ints, or MapRefs for params declared own/borrow/share;
        it returns None, an int or MapRef, or a tuple of them
        (docs/host-functions.md).  Modules loaded from now on may import it."""
        self._guard.check_open()
        definition = host_function(module, name, fn, params, results)
        with self._guard.lock:
            if module in self._registry.modules:
                raise ConfigError(
                    f"host function {definition.label}: a module named {module!r} is "
                    "loaded (its exports are what imports from it reach)"
                )
            self._runtime.host_functions.define(definition)

    def host_function(
        self, module: str, name: str, *, params: Sequence[str] = (), results: Sequence[str] = ()
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """`define` as a decorator: `@broker.host_function("env", "log", params=[...])`."""

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.define(module, name, fn, params=params, results=results)
            return fn

        return decorate

    def modules(self) -> list[str]:
        return list(self._registry.modules)

    def native_module(self, name: str) -> _native.NativeModule:
        """The C side of a loaded module (for tests and tools)."""
        return self._registry.get(name, allow_torn_down=True).native

    # --- calls -------------------------------------------------------------

    def call(self, target: str, *args: Any) -> CallResult:
        """Call `module.export` with ints, and Own/Borrow/Share(MapRef) where declared.

        Returns None, one value, or a tuple (ints; MapRefs for declared
        own/share results).  A trap tears down the module it began in (all
        its handles closed) and raises `GuestTrap`.  Drop notices queued by
        the call are delivered before it returns.
        """
        values = self._dispatch.call(target, args)
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    async def call_async(self, target: str, *args: Any) -> CallResult:
        """`call` on one of the broker's worker threads, awaited without blocking
        the event loop: the same results and exceptions (broker/aio.py)."""
        return await self._workers.run(self.call, target, *args)

    def signature(self, target: str) -> ExportDecl:
        """How `module.export`'s parameters and results pass from the host.

        Each is its declared kind ("own", "borrow:r", ...) or, where nothing
        is declared, its Wasm type ("i32", "i64", ...)."""
        return self._dispatch.signature(target)

    @property
    def last_store_failure(self) -> StoreFailure | None:
        """The last operation the store could not answer, from any module or
        thread (None: none yet, or no store): docs/stores.md."""
        return self._store_door.last_failure if self.store is not None else None

    def deliver_notices(self) -> None:
        """Deliver queued drop notices now (calls deliver them on their own)."""
        self._dispatch.deliver_now()

    def collect(self) -> int:
        """Run the cycle collector now; the number of maps reclaimed.

        Their drop notices are delivered before it returns."""
        self._guard.check_open()
        with self._guard.gate.shared():
            self._guard.check_open()
            with self._guard.lock:
                freed = self.gc.collect()
            trap = self._dispatch.deliver_notices()
            with self._guard.lock:
                self._drain()
        if trap is not None:
            raise trap
        return freed

    # --- host-owned maps -----------------------------------------------------

    def new_map(self) -> MapRef:
        """A new anonymous map, owned by the host."""
        side = self._dispatch.side
        ref = MapRef(side, side.module.op_new())
        side.after_op()
        return ref

    def open(self, name: str, rights: str | int = "rw") -> MapRef:
        """A host handle to the named map `name` (created on first open)."""
        mask = parse_rights(rights) if isinstance(rights, str) else rights
        problem = map_name_problem(name)
        if problem:
            raise ConfigError(f"map name {shown_name(name)}: {problem}")
        side = self._dispatch.side
        ref = MapRef(side, side.module.op_open(name.encode(), int(mask)))
        side.after_op()
        return ref

    def check_mine(self, ref: MapRef, where: str) -> None:
        """Refuse a MapRef of another broker: its handle number means nothing here."""
        check_mine(ref, self._dispatch.side, where)

    @property
    def host(self) -> _native.NativeModule:
        """The host's own side of the core (its handles count like a module's)."""
        return self._dispatch.side.module

    # --- inspection --------------------------------------------------------

    def stats(self) -> Stats:
        """{"maps": live anonymous maps, "named": n, "handles": {module: n}}."""
        return self._inspection.stats()

    def leaks(self) -> LeakReport:
        """The leak report of `wasi-map leaks --json` (see broker/leaks.py).

        Every live map that is not a named map, with its holders (and, for
        the host, the Python objects keeping the MapRef alive) and, when
        tracing, its history; every borrow the broker had to end itself.
        """
        return self._inspection.leaks(self.tracer, self._drain)

    def graph(self, path: str | Path | None = None, title: str = "") -> Any:
        """The ownership graph (a graphviz.Digraph); written to `path` if given."""
        return self._inspection.graph(path, title)

    def snapshot(self) -> Snapshot:
        """Who holds which map, right now (broker/refs.py)."""
        return self._inspection.snapshot()

    def _tracing(self) -> bool:
        return self.tracer is not None

    def _drain(self) -> None:
        """After an operation: take the tracer's events, drop links the core retired."""
        if self.tracer is not None and not self.closed:
            self.tracer.drain()
        self._native.drop_retired_links()

    # --- lifetime ----------------------------------------------------------

    def close(self) -> None:
        """Drop every module and map; the broker cannot be used afterwards."""
        if self.closed:
            return
        if self._guard.forked:  # a forked copy: the parent owns the state
            self._guard.closed = True
            return
        self._guard.refuse_inside_a_call("close")  # before waiting for the workers
        self._workers.shutdown()  # calls from asyncio: queued ones refused, running ones finish
        with self._guard.changing("close"):
            if self.tracer is not None:
                self.tracer.close()
            self._guard.closed = True
            self._native.door.close()  # MapRefs' hot path: closed from this moment too
            self._dispatch.close()
            self._registry.close()
            self._runtime.close()  # no guest can run any more: the C state can go
            self._native.close()
            if self.store is not None:
                self.store.close()

    def __enter__(self) -> Broker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
