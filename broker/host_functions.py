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

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import wasmtime

from . import _native, abi
from ._native import GuestCall, ServedLink
from .check import signature
from .errors import ConfigError, ModuleError
from .hostside import HostSide
from .mapref import MapRef, check_mine
from .module_spec import ExportDecl, SpecError, check_export
from .names import listed
from .ownership import Kind, Pass

_RANGES = {"i32": 1 << 32, "i64": 1 << 64}
RESERVED = (abi.IMPORT_MODULE, "wasi_snapshot_preview1")  # import modules with other owners


class _Depth(threading.local):
    depth = 0  # host functions running on this thread


_running = _Depth()


def inside_host_function() -> bool:
    """Whether a host function is running on this thread (Broker.call is refused there)."""
    return _running.depth > 0


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


class Memory:
    """The calling guest's linear memory, for the duration of the call."""

    __slots__ = ("_call",)

    def __init__(self, call: GuestCall | None) -> None:
        self._call = call

    def _live(self) -> GuestCall:
        if self._call is None:
            raise ConfigError("the caller's memory can be used only during the host call")
        return self._call

    def read(self, ptr: int, length: int) -> bytes:
        """`length` bytes at `ptr`; FaultError when they are not all in memory."""
        return self._live().read(ptr, length)

    def write(self, ptr: int, data: bytes) -> None:
        """Write `data` at `ptr`; FaultError when it does not all fit in memory."""
        self._live().write(ptr, bytes(data))

    def __len__(self) -> int:
        return self._live().memory_size()


class Caller:
    """Who called a host function: the module's name and its memory."""

    __slots__ = ("module", "memory")

    def __init__(self, module: str, memory: Memory) -> None:
        self.module = module
        self.memory = memory


class HostImport:
    """One module's import of a host function: the Python side of its link."""

    def __init__(self, definition: HostFunction, importer: str, side: HostSide) -> None:
        self.definition = definition
        self.importer = importer
        self._side = side
        self._nparams = len(definition.decl.params)
        self._passes = definition.passes
        self._codes = [p.code for p in self._passes]
        self._has_handle_results = any(p.is_handle for p in definition.decl.result_passes)

    def __call__(self, call: GuestCall) -> None:
        slots, side, passes = call.slots, self._side, self._passes
        args: list[Any] = []
        borrowed: list[MapRef] = []
        for i in range(self._nparams):
            p, raw = passes[i], slots[2 * i]
            if p.is_handle:
                ref = MapRef(side, raw & 0xFFFFFFFF)
                args.append(ref)
                if p.kind is Kind.BORROW:
                    borrowed.append(ref)
            elif p.text == "i32":
                args.append(((raw & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000)
            else:
                args.append(raw)
        memory = Memory(call)
        _running.depth += 1
        try:
            out = self.definition.fn(Caller(self.importer, memory), *args)
            self._results(call, out)
        finally:
            _running.depth -= 1
            memory._call = None
            for ref in borrowed:
                ref._lapsed(f"it was borrowed for one call of {self.definition.label}")

    def _results(self, call: GuestCall, out: Any) -> None:
        label, nparams = self.definition.label, self._nparams
        values = () if out is None else out if isinstance(out, tuple) else (out,)
        nresults = len(self._passes) - nparams
        if len(values) != nresults:
            raise TypeError(f"{label} returned {len(values)} value(s), declared {nresults}")
        moved: list[MapRef] = []
        for i, value in enumerate(values):
            p = self._passes[nparams + i]
            if p.is_handle:
                if not isinstance(value, MapRef):
                    raise TypeError(f"{label}: result {i} is declared {p.text}: return a MapRef")
                check_mine(value, self._side, f"{label}: result {i}")
                call.slots[2 * i] = value.handle
                if p.kind is Kind.OWN:
                    moved.append(value)
                continue
            span = _RANGES[p.text]
            if type(value) is not int or not -(span >> 1) <= value < span:
                raise TypeError(f"{label}: result {i} must be an {p.text}, got {value!r}")
            call.slots[2 * i] = value - span if value >= (span >> 1) else value
        if self._has_handle_results:
            call.pass_results(self._codes, nparams)
        for ref in moved:
            ref._moved(f"{self.importer} (returned by {label})")


class HostFunctions:
    """Every defined host function, and the links that serve modules' imports of them."""

    def __init__(self) -> None:
        self._defs: dict[tuple[str, str], HostFunction] = {}
        self._served: dict[str, list[ServedLink]] = {}  # importer -> its served links
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
        run = HostImport(definition, importer, self.side)
        served = ServedLink(link, run, run._codes)
        served.define(linker, imp.module, name, ty)
        self._served.setdefault(importer, []).append(served)

    def forget(self, importer: str) -> None:
        """`importer` is going: its links go with its module in the C core."""
        for served in self._served.pop(importer, []):
            served.link.retire()
