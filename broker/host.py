"""The host API: `Broker`, the object orchestration code and tests drive."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from . import _native
from .abi import Rights
from .errors import ConfigError, GuestTrap, ModuleError
from .limits import DEFAULT_LIMITS, Limits
from .manifest import ExportDecl, Manifest, load_manifest, map_name_problem, parse_rights
from .runtime import LoadedModule, Runtime

CallResult = int | tuple[int, ...] | None


class Broker:
    """Owns every map, loads modules into one wasmtime store, and calls them.

    Thread-safe: the C core has its own lock, and calls into wasmtime (whose
    store is single-threaded) are serialised by a broker lock.
    """

    def __init__(self, store: str = "memory:", *, limits: Limits = DEFAULT_LIMITS) -> None:
        if store != "memory:":
            raise ConfigError(f"store {store!r}: only 'memory:' is available in this release")
        self.store_url = store
        self.limits = limits
        self._native = _native.NativeBroker(limits)
        self._runtime = Runtime(self._native)
        self._modules: dict[str, LoadedModule] = {}
        self._lock = threading.RLock()
        self._closed = False

    @classmethod
    def from_manifest(cls, path: str | Path) -> Broker:
        """A broker with every module of an app manifest loaded, in file order."""
        manifest = load_manifest(path)
        broker = cls(manifest.store_url, limits=manifest.limits)
        try:
            broker._load_manifest(manifest)
        except BaseException:
            broker.close()
            raise
        return broker

    def _load_manifest(self, manifest: Manifest) -> None:
        for spec in manifest.modules.values():
            self.load(
                spec.name,
                spec.path,
                grants=dict(spec.grants),
                limits=spec.limits,
                exports=spec.exports,
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
        """Load a module (.wat/.wasm path, or Wasm/WAT bytes) under `name`."""
        self._check_open()
        if not name or "." in name:
            raise ConfigError(f"module name {name!r}: must be non-empty and contain no '.'")
        with self._lock:
            if name in self._modules:
                raise ConfigError(f"module {name!r} is already loaded")
            module_limits = self._limits(limits)
            declared = self._exports(name, exports or {})
            if any(d.passes_handles for d in declared.values()):
                raise ConfigError(
                    f"module {name!r}: handle-passing exports (own/borrow/share) "
                    "are not supported by this release"
                )
            granted = {g: self._grant_rights(name, g, r) for g, r in (grants or {}).items()}
            compiled, label = self._runtime.compile(name, module)
            native = self._native.new_module(module_limits)
            for gname, rights in granted.items():
                native.grant(gname, int(rights))
            self._modules[name] = self._runtime.instantiate(name, compiled, label, native)

    @staticmethod
    def _grant_rights(module: str, name: str, rights: str | int) -> Rights:
        problem = map_name_problem(name)
        try:
            if problem:
                raise ValueError(problem)
            if isinstance(rights, str):
                return parse_rights(rights)
            if rights & ~3 or rights < 0:
                raise ValueError(f"rights must be a combination of READ and WRITE, not {rights}")
            return Rights(rights)
        except ValueError as exc:
            raise ConfigError(f"module {module!r} grant {name!r}: {exc}") from None

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
        from .manifest import parse_kind

        out = {}
        for ename, decl in exports.items():
            if isinstance(decl, ExportDecl):
                out[ename] = decl
                continue
            try:
                params = tuple(parse_kind(k, result=False) for k in decl.get("params", []))
                results = tuple(parse_kind(k, result=True) for k in decl.get("results", []))
            except ValueError as exc:
                raise ConfigError(f"module {name!r} export {ename!r}: {exc}") from None
            out[ename] = ExportDecl(params, results)
        return out

    def unload(self, name: str) -> None:
        """Remove a module; every handle it holds is closed as if by `close`."""
        with self._lock:
            loaded = self._module(name, allow_torn_down=True)
            loaded.native.close_all()
            del self._modules[name]

    def modules(self) -> list[str]:
        return list(self._modules)

    def _module(self, name: str, *, allow_torn_down: bool = False) -> LoadedModule:
        self._check_open()
        loaded = self._modules.get(name)
        if loaded is None:
            raise ConfigError(f"no module named {name!r} is loaded")
        if loaded.torn_down and not allow_torn_down:
            raise ModuleError(f"module {name!r} was torn down ({loaded.torn_down}); load it again")
        return loaded

    # --- calls -------------------------------------------------------------

    def call(self, target: str, *args: int) -> CallResult:
        """Call `module.export` with integer arguments.

        Returns None, one int, or a tuple of ints.  A trap tears the module
        down (all its handles closed) and raises `GuestTrap`.
        """
        module, sep, export = target.partition(".")
        if not sep or not export:
            raise ConfigError(f"call target {target!r}: expected MODULE.EXPORT")
        with self._lock:
            loaded = self._module(module)
            fn = self._runtime.export(loaded, export)
            outcome = fn.invoke(args)
            if isinstance(outcome, str):
                loaded.native.close_all()
                loaded.torn_down = f"trapped in {export}"
                raise GuestTrap(module, export, outcome)
        if not outcome:
            return None
        return outcome[0] if len(outcome) == 1 else outcome

    # --- inspection --------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """{"maps": live anonymous maps, "named": n, "handles": {module: n}}."""
        self._check_open()
        counts = self._native.stats()
        return {
            "maps": counts["maps"],
            "named": counts["named"],
            "handles": {name: m.native.handle_count() for name, m in self._modules.items()},
        }

    def native_module(self, name: str) -> _native.NativeModule:
        """The C side of a loaded module (for tests and tools)."""
        return self._module(name, allow_torn_down=True).native

    @property
    def host(self) -> _native.NativeModule:
        """The host's own side of the core (its handles count like a module's)."""
        self._check_open()
        return self._native.host

    # --- lifetime ----------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError("the broker is closed")

    def close(self) -> None:
        """Drop every module and map; the broker cannot be used afterwards."""
        if self._closed:
            return
        with self._lock:
            self._closed = True
            self._modules.clear()
            self._runtime.close()  # no guest can run any more: the C state can go
            self._native.close()

    def __enter__(self) -> Broker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
