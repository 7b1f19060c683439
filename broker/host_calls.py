"""One call of a host function: what `fn` receives, and how its results go back.

`HostImport` is the Python side of one module's import of a host function
(broker/host_functions.py links it; broker/_native/hostfn_door.py calls
it with the C call).  For each signature it makes its call once, as source
(the way `dataclasses` makes `__init__`): the arguments are read straight
from the slots, handle parameters become MapRefs (a `borrow` ends when the
call returns), and a single int result is stored without a loop.  A call
through it costs about what the `extern "Python"` door itself costs
(benchmarks/bench_hostfn.py).  Other results go through `results`, which
checks each one and passes handle results to the guest, all or none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import _native
from .errors import ConfigError
from .hostside import HostSide
from .mapref import MapRef, check_mine
from .module_spec import ExportDecl
from .ownership import Kind, Pass

SPANS = {"i32": 1 << 32, "i64": 1 << 64}  # how many values each plain type holds


class Memory:
    """The calling guest's linear memory, for the duration of the call."""

    __slots__ = ("_caller",)

    def __init__(self, caller: Caller) -> None:
        self._caller = caller

    def _live(self) -> Any:
        call = self._caller._call
        if call is None:
            raise ConfigError("the caller's memory can be used only during the host call")
        return call

    def read(self, ptr: int, length: int) -> bytes:
        """`length` bytes at `ptr`; FaultError when they are not all in memory."""
        return _native.hostcall_read(self._live(), ptr, length)

    def write(self, ptr: int, data: bytes) -> None:
        """Write `data` at `ptr`; FaultError when it does not all fit in memory."""
        _native.hostcall_write(self._live(), ptr, bytes(data))

    def __len__(self) -> int:
        return _native.hostcall_memory_size(self._live())


class Caller:
    """Who called a host function: the module's name and its memory."""

    __slots__ = ("module", "_call")

    def __init__(self, module: str, call: Any) -> None:
        self.module = module
        self._call = call  # None once the call has returned

    @property
    def memory(self) -> Memory:
        return Memory(self)


def call_source(params: Sequence[Pass], results: Sequence[Pass]) -> str:
    """The source of `run(call)` for one signature.  Names it uses: Caller,
    MapRef, side, importer, fn, results (the general result path) and lapse
    (why a borrowed MapRef ended)."""
    args, made, borrowed = [], [], []
    for i, p in enumerate(params):
        slot = f"w[{2 * i}]"
        if p.is_handle:
            made.append(f"    a{i} = MapRef(side, {slot} & 0xFFFFFFFF)")
            args.append(f"a{i}")
            if p.kind is Kind.BORROW:
                borrowed.append(f"        a{i}._lapsed(lapse)")
        elif p.text == "i32":
            args.append(f"(({slot} & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000")
        else:
            args.append(slot)
    lines = ["def run(call):", "    w = call.words", *made]
    lines += ["    caller = Caller(importer, call)", "    try:"]
    lines.append(f"        out = fn({', '.join(['caller', *args])})")
    if len(results) == 1 and not results[0].is_handle:  # the common case, stored inline
        span = SPANS[results[0].text]
        lines += [
            f"        if type(out) is int and {-(span >> 1)} <= out < {span}:",
            f"            w[0] = out - {span} if out >= {span >> 1} else out",
            "        else:",
            "            results(call, out)",
        ]
    else:
        lines.append("        results(call, out)")
    lines += ["    finally:", "        caller._call = None", *borrowed]
    return "\n".join(lines)


class HostImport:
    """One module's import of a host function: the Python side of its link."""

    def __init__(
        self, label: str, fn: Callable[..., Any], decl: ExportDecl, importer: str, side: HostSide
    ) -> None:
        self.label = label  # the host function's "module.name"
        self.importer = importer
        self._side = side
        self._nparams = len(decl.params)
        self._passes = decl.param_passes + decl.result_passes
        self.codes = [p.code for p in self._passes]
        self._has_handle_results = any(p.is_handle for p in decl.result_passes)
        scope: dict[str, Any] = {
            "Caller": Caller,
            "MapRef": MapRef,
            "side": side,
            "importer": importer,
            "fn": fn,
            "results": self.results,
            "lapse": f"it was borrowed for one call of {label}",
        }
        exec(call_source(decl.param_passes, decl.result_passes), scope)
        self.run: Callable[[Any], None] = scope["run"]

    def results(self, call: Any, out: Any) -> None:
        """Check `fn`'s results and store them in the slots; pass handle results
        to the guest, all or none.  TypeError (the guest traps) when they do
        not match the declaration."""
        label, nparams = self.label, self._nparams
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
                call.words[2 * i] = value.handle
                if p.kind is Kind.OWN:
                    moved.append(value)
                continue
            span = SPANS[p.text]
            if type(value) is not int or not -(span >> 1) <= value < span:
                raise TypeError(f"{label}: result {i} must be an {p.text}, got {value!r}")
            call.words[2 * i] = value - span if value >= (span >> 1) else value
        if self._has_handle_results:
            _native.hostcall_results(call, self.codes, nparams)
        for ref in moved:
            ref._moved(f"{self.importer} (returned by {label})")
