"""The host API: `Broker`, the object orchestration code and tests drive."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypedDict

import wasmtime

from . import _native, stores
from . import gc as cycle_gc
from .abi import DROP_EXPORT, Rights, parse_rights
from .calls import HostCall
from .errors import ConfigError, GuestTrap, ModuleError, StoreFailure
from .leaks import LeakReport
from .limits import DEFAULT_LIMITS, Limits
from .manifest import (
    ExportDecl,
    Manifest,
    load_manifest,
    map_name_problem,
    module_file_problem,
    module_name_problem,
    shown_name,
)
from .mapref import MapRef
from .ownership import parse_kind
from .refs import Snapshot
from .runtime import LoadedModule, Runtime
from .stores.base import Store
from .tracer import Bounds, Tracer

#: What `Broker.call` returns: None (no results), the one result, or a tuple
#: of them; each an int, or a MapRef for a result declared own or share.
CallValue = int | MapRef
CallResult = CallValue | tuple[CallValue, ...] | None


class Stats(TypedDict):
    """What `Broker.stats()` returns."""

    maps: int  # live anonymous maps
    named: int  # named maps the broker has open
    handles: dict[str, int]  # open handles of each loaded module


SHOWN_NAMES = 20  # names an "unknown module/export" message lists at most


def _listed(what: str, names: Iterable[str]) -> str:
    """'what: a, b, c' for a message, cut after SHOWN_NAMES names."""
    names = list(names)
    if not names:
        return f"{what}: none"
    shown = ", ".join(shown_name(n) for n in names[:SHOWN_NAMES])
    more = f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else ""
    return f"{what}: {shown}{more}"


class Broker:
    """Owns every map, loads modules into one wasmtime store, and calls them.

    Thread-safe: the C core has its own lock, and calls into wasmtime (whose
    store is single-threaded) are serialised by a broker lock.
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
    ) -> None:
        self.limits = limits
        self._native = _native.NativeBroker(limits)
        self.strict_borrows = strict_borrows
        try:
            self.gc = cycle_gc.Collector(self._native, gc_threshold)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self._runtime = Runtime(self._native)
        self._modules: dict[str, LoadedModule] = {}
        self._by_id: dict[int, LoadedModule] = {}
        self._names: dict[int, str] = {self._native.host.id: "host"}  # every module ever loaded
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
        self._lock = threading.RLock()
        self._delivering = False
        # Guest code running under this broker's lock (on the thread that
        # holds it): a store or callback inside it must not unload, load or
        # close, nor deliver notices in the middle of the guest's call.
        self._running = 0
        self._pid = os.getpid()  # a forked child gets a copy it cannot use
        self.closed = False

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
        for spec in manifest.modules.values():
            missing = module_file_problem(manifest, spec)
            if missing:
                raise ModuleError(missing)
            self.load(
                spec.name,
                spec.path,
                grants=dict(spec.grants),
                limits=spec.limits,
                exports=spec.exports,
            )
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
    ) -> None:
        """Load a module (.wat/.wasm path, or Wasm/WAT bytes) under `name`.

        `exports` declares how handle parameters and results of its exports
        pass (own, borrow, share; see broker/ownership.py).  Imports of
        other modules' exports are linked as soon as those are loaded.
        """
        self._check_open()
        problem = module_name_problem(name)
        if problem:
            raise ConfigError(f"module name {shown_name(name)}: {problem}")
        with self._lock:
            self._refuse_inside_a_call(f"load {name!r}")
            if name in self._modules:
                raise ConfigError(f"module {name!r} is already loaded")
            module_limits = self._limits(limits)
            declared = self._exports(name, exports or {})
            granted = {g: self._grant_rights(name, g, r) for g, r in (grants or {}).items()}
            compiled, label = self._runtime.compile(name, module)
            native = self._native.new_module(module_limits, name)
            self._names[native.id] = name
            try:
                for gname, rights in granted.items():
                    native.grant(gname, int(rights))
                try:
                    with self._guest():
                        loaded = self._runtime.instantiate(
                            name, compiled, label, native, module_limits, declared, self._modules
                        )
                except BaseException:
                    # Nothing of it stays: what its start function made is
                    # closed, and a trap that began in a peer tears that down.
                    self._blame_peer(name, "start")
                    native.unload()
                    raise
                self._modules[name] = self._by_id[native.id] = loaded
                try:
                    self._runtime.links.resolve_into(loaded)
                    if isinstance(
                        loaded.instance.exports(loaded.store).get("_initialize"), wasmtime.Func
                    ):
                        with self._guest():
                            trap, _ = self._host_call(loaded, "_initialize").invoke(())
                        if trap is not None:
                            self._blame_peer(name, "_initialize")
                            raise ModuleError(
                                f"{label}: trapped in _initialize: "
                                f"{GuestTrap(name, '_initialize', trap.message).reason}"
                            )
                except BaseException:
                    self._remove(name)
                    raise
            finally:
                self._drain()

    @staticmethod
    def _grant_rights(module: str, name: str, rights: str | int) -> Rights:
        problem = map_name_problem(name)
        try:
            if problem:
                raise ValueError(problem)
            if isinstance(rights, str):
                return parse_rights(rights)
            if type(rights) is not int and not isinstance(rights, Rights) or rights & ~3:
                raise ValueError(
                    f"rights must be a combination of READ and WRITE, not {shown_name(rights)}"
                )
            return Rights(rights)
        except ValueError as exc:
            raise ConfigError(f"module {module!r} grant {shown_name(name)}: {exc}") from None

    def _limits(self, limits: Limits | Mapping[str, Any] | None) -> Limits:
        if limits is None:
            return self.limits
        if isinstance(limits, Limits):
            return limits
        try:
            return self.limits.merged(dict(limits))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"limits: {exc}") from None

    @staticmethod
    def _exports(name: str, exports: Mapping[str, Any]) -> dict[str, ExportDecl]:
        out = {}
        for ename, decl in exports.items():
            if isinstance(decl, ExportDecl):
                out[ename] = decl
                continue
            try:
                params = tuple(parse_kind(k, result=False) for k in decl.get("params", []))
                results = tuple(parse_kind(k, result=True) for k in decl.get("results", []))
            except (ValueError, AttributeError) as exc:
                raise ConfigError(f"module {name!r} export {ename!r}: {exc}") from None
            out[ename] = ExportDecl(params, results)
        return out

    def unload(self, name: str) -> None:
        """Remove a module; every handle it holds is closed as if by `close`.

        Maps still referenced elsewhere keep all their data; imports of its
        exports wait for a module of that name to be loaded again.
        """
        self._check_open()
        with self._lock:
            self._refuse_inside_a_call(f"unload {name!r}")
            self._module(name, allow_torn_down=True)
            self._remove(name)
            trap = self._deliver_notices()
            self._drain()
        if trap is not None:
            raise trap

    def _remove(self, name: str) -> None:
        """Unload `name` whole: its handles closed, its links, watches, table,
        id and wasmtime store (its linear memory) given back."""
        loaded = self._modules.pop(name)
        self._by_id.pop(loaded.native.id, None)
        self._runtime.links.forget(name)
        for host_call in loaded.calls.values():
            host_call.retire()
        loaded.calls.clear()
        loaded.native.unload()
        loaded.store.close()

    def _blame_peer(self, name: str, where: str) -> None:
        """Loading `name` failed: a trap that began in another module tears
        that one down, as any trap does; the origin is consumed either way."""
        origin_id = self._native.take_trap_origin()
        origin = self._by_id.get(origin_id) if origin_id is not None else None
        if origin is not None and origin.name != name and not origin.torn_down:
            origin.native.teardown()
            origin.torn_down = f"trapped in {name}'s {where}"

    def modules(self) -> list[str]:
        return list(self._modules)

    def _module(self, name: str, *, allow_torn_down: bool = False) -> LoadedModule:
        self._check_open()
        loaded = self._modules.get(name)
        if loaded is None:
            raise ConfigError(
                f"no module named {name!r} is loaded ({_listed('loaded', self._modules)})"
            )
        if loaded.torn_down and not allow_torn_down:
            raise ModuleError(f"module {name!r} was torn down ({loaded.torn_down}); load it again")
        return loaded

    # --- calls -------------------------------------------------------------

    def call(self, target: str, *args: Any) -> CallResult:
        """Call `module.export` with ints, and Own/Borrow/Share(MapRef) where declared.

        Returns None, one value, or a tuple (ints; MapRefs for declared
        own/share results).  A trap tears down the module it began in (all
        its handles closed) and raises `GuestTrap`.  Drop notices queued by
        the call are delivered before it returns.
        """
        module, sep, export = target.partition(".")
        if not sep or not export:
            raise ConfigError(f"call target {target!r}: expected MODULE.EXPORT")
        self._check_open()  # before the lock: a forked copy's lock may never come free
        with self._lock:
            loaded = self._module(module)
            try:
                with self._guest():
                    trap, values = self._host_call(loaded, export).invoke(args)
                error = self._trapped(module, export, trap) if trap is not None else None
                drop_trap = self._deliver_notices()
            finally:
                self._drain()
        if error or drop_trap:
            raise error or drop_trap  # type: ignore[misc]
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    def signature(self, target: str) -> ExportDecl:
        """How `module.export`'s parameters and results pass from the host.

        Each is its declared kind ("own", "borrow:r", ...) or, where nothing
        is declared, its Wasm type ("i32", "i64", ...)."""
        module, sep, export = target.partition(".")
        if not sep or not export:
            raise ConfigError(f"call target {target!r}: expected MODULE.EXPORT")
        self._check_open()
        with self._lock:
            loaded = self._module(module)
            ty = self._export_func(loaded, export).type(loaded.store)
            decl = loaded.decls.get(export) or ExportDecl((), ())
        params = decl.params + tuple(str(t) for t in ty.params[len(decl.params) :])
        results = decl.results + tuple(str(t) for t in ty.results[len(decl.results) :])
        return ExportDecl(params, results)

    def _host_call(self, loaded: LoadedModule, export: str) -> HostCall:
        fn = loaded.calls.get(export)
        if fn is None:
            fn = loaded.calls[export] = HostCall(
                self, loaded, export, self._export_func(loaded, export)
            )
        return fn

    @staticmethod
    def _export_func(loaded: LoadedModule, export: str) -> wasmtime.Func:
        """The exported function `export` of `loaded`; a ConfigError naming its
        functions when it has none of that name (as for an unknown module)."""
        exports = loaded.instance.exports(loaded.store)
        item = exports.get(export)
        if not isinstance(item, wasmtime.Func):
            funcs = [n for n, v in exports.items() if isinstance(v, wasmtime.Func)]
            raise ConfigError(
                f"module {loaded.name!r} has no exported function {export!r} "
                f"({_listed('its functions', funcs)})"
            )
        return item

    def _trapped(self, module: str, export: str, trap: _native.Trapped) -> GuestTrap:
        """Tear down the module the trap began in; the GuestTrap to raise."""
        origin_id = self._native.take_trap_origin()
        origin = self._by_id.get(origin_id) if origin_id is not None else self._modules[module]
        if origin is not None and not origin.torn_down:
            origin.native.teardown()
            origin.torn_down = f"trapped in {module}.{export}"
        where = origin.name if origin is not None and origin.name != module else None
        return GuestTrap(
            module, export, trap.message, origin=where, store_failure=trap.store_failure
        )

    @property
    def last_store_failure(self) -> StoreFailure | None:
        """The last operation the store could not answer, from any module or
        thread (None: none yet, or no store): docs/stores.md."""
        return self._store_door.last_failure if self.store is not None else None

    # --- drop notices --------------------------------------------------------

    def deliver_notices(self) -> None:
        """Deliver queued drop notices now (calls deliver them on their own)."""
        self._check_open()
        with self._lock:
            self._check_open()
            trap = self._deliver_notices()
        if trap is not None:
            raise trap

    def _deliver_notices(self) -> GuestTrap | None:
        """Call wasi_map_on_drop(cookie) for every notice queued so far whose
        module is loaded and exports it; the first trap, if any (lock held).

        Notices that the handlers themselves queue wait for the next
        delivery: a handler that feeds itself cannot keep the operation that
        delivers from returning (each handler call is bounded by its
        module's time limit, the batch by the watches quotas)."""
        if self._delivering or self.closed or self._running:
            return None  # the outermost operation delivers when it ends
        self._delivering = True
        first: GuestTrap | None = None
        queued: list[tuple[int, int]] = []
        while batch := self._native.take_notices(4096):
            queued += batch
        try:
            for module_id, cookie in queued:
                loaded = self._by_id.get(module_id)
                if loaded is None or loaded.torn_down:
                    continue
                exports = loaded.instance.exports(loaded.store)
                if not isinstance(exports.get(DROP_EXPORT), wasmtime.Func):
                    continue
                with self._guest():
                    trap, _ = self._host_call(loaded, DROP_EXPORT).invoke((cookie,))
                if trap is not None:
                    error = self._trapped(loaded.name, DROP_EXPORT, trap)
                    first = first or error
        finally:
            self._delivering = False
        return first

    def _after_host_op(self) -> None:
        """After a host operation: take its trace events and deliver the notices
        of maps it reclaimed, unless a call is running (it does both when it
        returns)."""
        wanted = self.tracer is not None or self._native.has_notices()
        if not wanted or not self._lock.acquire(blocking=False):
            return
        if self._running:  # this thread is inside a guest call: it does both later
            self._lock.release()
            return
        try:
            trap = self._deliver_notices()
            self._drain()
        finally:
            self._lock.release()
        if trap is not None:
            raise trap

    # --- the cycle collector --------------------------------------------------

    def collect(self) -> int:
        """Run the cycle collector now; the number of maps reclaimed.

        Their drop notices are delivered before it returns."""
        self._check_open()
        with self._lock:
            self._check_open()
            freed = self.gc.collect()
            trap = self._deliver_notices()
            self._drain()
        if trap is not None:
            raise trap
        return freed

    # --- host-owned maps -----------------------------------------------------

    def new_map(self) -> MapRef:
        """A new anonymous map, owned by the host."""
        ref = MapRef(self, self.host.op_new())
        self._after_host_op()
        return ref

    def open(self, name: str, rights: str | int = "rw") -> MapRef:
        """A host handle to the named map `name` (created on first open)."""
        mask = parse_rights(rights) if isinstance(rights, str) else rights
        problem = map_name_problem(name)
        if problem:
            raise ConfigError(f"map name {shown_name(name)}: {problem}")
        ref = MapRef(self, self.host.op_open(name.encode(), int(mask)))
        self._after_host_op()
        return ref

    # --- inspection --------------------------------------------------------

    def stats(self) -> Stats:
        """{"maps": live anonymous maps, "named": n, "handles": {module: n}}."""
        self._check_open()
        with self._lock:  # a module unloaded meanwhile would be freed under us
            self._check_open()
            counts = self._native.stats()
            return Stats(
                maps=counts["maps"],
                named=counts["named"],
                handles={name: m.native.handle_count() for name, m in self._modules.items()},
            )

    def check_mine(self, ref: MapRef, where: str) -> None:
        """Refuse a MapRef of another broker: its handle number means nothing here."""
        if ref._broker is not self:
            raise ConfigError(f"{where}: the MapRef belongs to another broker")

    def leaks(self) -> LeakReport:
        """The leak report of `wasi-map leaks --json` (see broker/leaks.py).

        Every live map that is not a named map, with its holders (and, for
        the host, the Python objects keeping the MapRef alive) and, when
        tracing, its history; every borrow the broker had to end itself.
        """
        from . import leaks

        self._check_open()
        with self._lock:
            self._check_open()
            self._drain()
            snapshot = self.snapshot()
            host = {h.handle for h in snapshot.handles if h.module == "host"}
            owners = leaks.mapref_owners(host, self) if host else {}
            return leaks.report(snapshot, self.tracer, self._native.stats(), owners)

    def graph(self, path: str | Path | None = None, title: str = "") -> Any:
        """The ownership graph (a graphviz.Digraph); written to `path` if given."""
        from . import graph

        self._check_open()
        with self._lock:
            self._check_open()
            g = graph.build(self.snapshot(), list(self._modules), title)
        if path is not None:
            graph.write(g, path)
        return g

    def snapshot(self) -> Snapshot:
        """Who holds which map, right now (broker/refs.py)."""
        self._check_open()
        return Snapshot.take(self._native, self._name_of)

    def _name_of(self, module_id: int) -> str:
        return self._names.get(module_id, f"module#{module_id}")

    def _link_label(self, link_id: int) -> str:
        return self._native.link_labels.get(link_id, f"link#{link_id}")

    def _drain(self) -> None:
        if self.tracer is not None and not self.closed:
            self.tracer.drain()
        self._native.drop_retired_links()

    def native_module(self, name: str) -> _native.NativeModule:
        """The C side of a loaded module (for tests and tools)."""
        return self._module(name, allow_torn_down=True).native

    @property
    def host(self) -> _native.NativeModule:
        """The host's own side of the core (its handles count like a module's)."""
        self._check_open()
        return self._native.host

    # --- lifetime ----------------------------------------------------------

    @contextmanager
    def _guest(self) -> Iterator[None]:
        """Around guest code this thread runs with the lock held."""
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1

    def _refuse_inside_a_call(self, what: str) -> None:
        """Lock held: refuse what would free a running guest's store or module."""
        if self._running:
            raise ConfigError(
                f"{what}: not while a guest call is running on this thread "
                "(from a store or callback inside it)"
            )

    def _check_open(self) -> None:
        if self.closed:
            raise ConfigError("the broker is closed")
        if os.getpid() != self._pid:
            # Its locks may be held by threads the child does not have, and
            # wasmtime's compiler threads are gone: refuse rather than hang.
            raise ConfigError(
                "this Broker was made before a fork, in another process: "
                "make a new Broker in this one"
            )
        if self._native.released:
            self._native.close_released()

    def close(self) -> None:
        """Drop every module and map; the broker cannot be used afterwards."""
        if self.closed:
            return
        if os.getpid() != self._pid:  # a forked copy: the parent owns the state
            self.closed = True
            return
        with self._lock:
            self._refuse_inside_a_call("close")
            if self.tracer is not None:
                self.tracer.close()
            self.closed = True
            for loaded in self._modules.values():
                loaded.calls.clear()
                loaded.store.close()
            self._modules.clear()
            self._by_id.clear()
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
