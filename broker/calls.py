"""The host's way into an export: a C link from the host module.

Arguments are ints for plain parameters and `Own`/`Borrow`/`Share` of a
`MapRef` for declared handle parameters; declared own/share results come
back as `MapRef`s.  The call itself costs about 1 µs from Python, not the
~35 µs of `Func.__call__`.
"""

from __future__ import annotations

from typing import Any

import wasmtime

from . import _native
from .errors import error_for
from .hostside import HostSide
from .linking import pass_codes
from .loaded import Instance, LoadedModule
from .mapref import MapRef, check_mine
from .ownership import Kind, Pass, _Passing

_RANGES = {"i32": 1 << 32, "i64": 1 << 64}


class HostCall:
    """One export, callable from the host, from any number of threads at once:
    in whichever instance of the module is free, or in `instance` only."""

    def __init__(
        self, side: HostSide, target: LoadedModule, name: str, instance: Instance | None = None
    ) -> None:
        ty = target.types[name]
        self.label = f"{target.name}.{name}"
        self.params = tuple(str(p) for p in ty.params)
        self.results = tuple(str(r) for r in ty.results)
        unsupported = [t for t in self.params + self.results if t not in _RANGES]
        if unsupported:
            raise TypeError(
                f"{self.label}: only i32/i64 parameters and results can be passed "
                f"from the host, not {unsupported[0]}"
            )
        codes = pass_codes(ty, target.decls.get(name))
        self._passes = [Pass("", Kind(c & 3), bool(c & 4)) for c in codes]
        self._side = side
        self._link = _native.NativeLink(
            side.module,
            f"host -> {self.label}",
            len(self.params),
            len(self.results),
            self.label,
        )
        if instance is None:
            self._link.resolve(target.pool, target.funcs[name], codes)
        else:
            if instance.solo is None:
                instance.solo = _native.NativePool(instance.native.broker, 1)
                instance.solo.set(0, instance.native)
            func = instance.instance.exports(instance.store).get(name)  # not running yet
            assert isinstance(func, wasmtime.Func)
            self._link.resolve(instance.solo, [func], codes)

    def repoint(self, index: int, func: wasmtime.Func) -> None:
        """Instance `index` of the module was replaced: `func` is the export in it."""
        self._link.set_func(index, func)

    def retire(self) -> None:
        """Its module is going: the link's label goes too (the C side frees it)."""
        self._link.retire()

    def invoke(self, args: tuple[Any, ...]) -> tuple[_native.Trapped | None, tuple[Any, ...]]:
        """(how it trapped or None, results); errno errors are raised."""
        if len(args) != len(self.params):
            raise TypeError(
                f"{self.label} takes {len(self.params)} argument(s) "
                f"({', '.join(self.params)}), {len(args)} given"
            )
        buffer = _native.new_args(self._link.nslots)  # one per call: threads share the link
        slots = _native.int64_view(buffer)  # slot i is word 2*i
        masks, moved = None, []  # moved: (MapRef, parameter)
        for i, value in enumerate(args):
            p = self._passes[i]
            if p.is_handle:
                if not isinstance(value, _Passing) or value.kind is not p.kind:
                    wrapper = p.kind.name.title()
                    raise TypeError(
                        f"{self.label}: parameter {i} is declared "
                        f"{p.kind.name.lower()}: pass {wrapper}(mapref)"
                    )
                check_mine(value.ref, self._side, f"{self.label}: parameter {i}")
                slots[2 * i] = value.ref.handle
                if value.mask != 3:
                    masks = masks or bytearray(b"\x03" * len(args))
                    masks[i] = value.mask
                if p.kind is Kind.OWN:
                    moved.append((value.ref, i))
                continue
            if isinstance(value, _Passing):
                raise TypeError(
                    f"{self.label}: parameter {i} is not declared as a handle "
                    f"(declare it in the module's exports)"
                )
            span = _RANGES[self.params[i]]
            if type(value) is not int or not -(span >> 1) <= value < span:
                raise TypeError(
                    f"{self.label}: argument {i} must be an {self.params[i]}, got {value!r}"
                )
            slots[2 * i] = value - span if value >= (span >> 1) else value
        err, trap, bad = self._link.call(buffer, bytes(masks) if masks is not None else None)
        if err:
            raise error_for(err, self._refused(args, slots, bad, err))
        for ref, i in moved:
            ref._moved(f"{self.label} (parameter {i})")  # the callee owns it now
        if trap is not None:
            return trap, ()
        return None, tuple(self._result(slots, i) for i in range(len(self.results)))

    def _refused(self, args: tuple[Any, ...], slots: Any, bad: int, err: int) -> str:
        """Why parameter `bad` could not pass, and what to do."""
        p, ref = self._passes[bad], args[bad].ref
        twice = sum(isinstance(a, _Passing) and a.ref is ref for a in args) > 1
        why = _native.pass_problem(err, p.code, slots[2 * bad] & 0xFFFFFFFF, twice=twice)
        return f"{self.label}: parameter {bad} ({p.kind.name.lower()}): {why}"

    def _result(self, slots: Any, i: int) -> Any:
        raw = slots[2 * i]
        if self._passes[len(self.params) + i].is_handle:
            return MapRef(self._side, raw & 0xFFFFFFFF)
        if self.results[i] == "i32":
            return ((raw & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000
        return raw
