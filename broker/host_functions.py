"""Host functions: imports an app defines in Python (docs/host-functions.md).

`Broker.define("env", "log", fn, params=[...], results=[...])` declares one;
a module loaded afterwards that imports `env.log` gets a C link served by
`fn` (native/hostfn.c, broker/_native/hostfn_door.py).  Each call gives `fn`
a `Caller` (the module's name, its memory through bounds checks) and the
arguments: ints for plain parameters, a `MapRef` for each declared handle
(`borrow`: valid during the call only; `own`: the host's now; `share`: a
reference of the host's own).  Its results go back as ints, or as MapRefs
for declared `own`/`share` results (`own` moves the MapRef to the guest).
An exception raised in `fn` traps the guest and is the `GuestTrap`'s cause.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import wasmtime

from . import _native, abi
from ._native import ServedLink
from .check import signature
from .errors import ConfigError, ModuleError
from .host_calls import HostImport
from .hostside import HostSide
from .module_spec import ExportDecl, SpecError, check_export
from .names import listed
from .ownership import Pass

RESERVED = (abi.IMPORT_MODULE, "wasi_snapshot_preview1")  # import modules with other owners


@dataclass(frozen=True)
class HostFunction:
    """One defined host function: where guests import it, and how its values pass."""

    module: str
    name: str
    fn: Callable[..., Any]
    decl: ExportDecl

    @property
    def label(self) -> str:
        return f"{self.module}.{self.name}"

    @property
    def passes(self) -> tuple[Pass, ...]:
        return self.decl.param_passes + self.decl.result_passes

    def functype(self) -> wasmtime.FuncType:
        """Its Wasm type: each handle an i32."""

        def valtype(p: Pass) -> wasmtime.ValType:
            return wasmtime.ValType.i64() if p.text == "i64" else wasmtime.ValType.i32()

        return wasmtime.FuncType(
            [valtype(p) for p in self.decl.param_passes],
            [valtype(p) for p in self.decl.result_passes],
        )


def host_function(
    module: object, name: object, fn: object, params: object, results: object
) -> HostFunction:
    """A checked definition; ConfigError naming the function and the problem."""
    for what, value in (("module", module), ("name", name)):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"host function {what} must be a non-empty string, not {value!r}")
    assert isinstance(module, str) and isinstance(name, str)
    label = f"host function {module}.{name}"
    if module in RESERVED:
        raise ConfigError(f"{label}: the import module {module!r} is the broker's own")
    if not callable(fn):
        raise ConfigError(f"{label}: fn must be callable, not {type(fn).__name__}")
    try:
        decl = check_export(label, {"params": params or [], "results": results or []})
    except SpecError as exc:
        raise ConfigError(f"{label} {exc.where[-1]}: {exc.problem}") from None
    for kind in decl.params + decl.results:
        if kind in ("f32", "f64"):
            raise ConfigError(f"{label}: {kind} is not supported (i32, i64 or a handle kind)")
    return HostFunction(module, name, fn, decl)


class HostFunctions:
    """Every defined host function, and the links that serve modules' imports of them."""

    def __init__(self) -> None:
        self._defs: dict[tuple[str, str], HostFunction] = {}
        self._served: dict[int, list[ServedLink]] = {}  # importer's id -> its served links
        self.side: HostSide | None = None  # the host's side, set by the Broker

    def namespaces(self) -> set[str]:
        """The import modules host functions are defined in."""
        return {module for module, _ in self._defs}

    def define(self, definition: HostFunction) -> None:
        key = (definition.module, definition.name)
        if key in self._defs:
            raise ConfigError(f"host function {definition.label} is already defined")
        self._defs[key] = definition

    def link(
        self,
        importer: str,
        native: _native.NativeModule,
        linker: wasmtime.Linker,
        imp: wasmtime.ImportType,
        label: str,
    ) -> None:
        """Serve `importer`'s import `imp` by its host function; ModuleError when
        none is defined under that name or its type differs."""
        name = imp.name or ""
        definition = self._defs.get((imp.module, name))
        if definition is None:
            names = sorted(n for m, n in self._defs if m == imp.module)
            raise ModuleError(
                f"{label}: imports {imp.module}.{name}, but no host function of that name "
                f"is defined ({listed(f'defined in {imp.module!r}', names)})"
            )
        ty = imp.type
        want = signature(definition.functype())
        if not isinstance(ty, wasmtime.FuncType) or signature(ty) != want:
            got = signature(ty) if isinstance(ty, wasmtime.FuncType) else "not a function"
            raise ModuleError(
                f"{label}: imports {definition.label} as {got}, but it is defined as {want}"
            )
        assert self.side is not None
        link = _native.NativeLink(
            native,
            f"{importer} -> {definition.label}",
            len(ty.params),
            len(ty.results),
            definition.label,
        )
        d = definition
        run = HostImport(d.label, d.fn, d.decl, importer, self.side)
        served = ServedLink(link, run.run, run.codes)
        served.define(linker, imp.module, name, ty)
        self._served.setdefault(native.id, []).append(served)

    def forget(self, importer_id: int) -> None:
        """The instance `importer_id` is going: its links go with it in the C core."""
        for served in self._served.pop(importer_id, []):
            served.link.retire()
