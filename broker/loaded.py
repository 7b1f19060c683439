"""`LoadedModule`: one loaded module and its instances, as the rest of the broker sees it.

A leaf record (it imports no other part of the broker at run time), so that
the runtime that makes it, the links that point into it and the host calls
that enter it need not import each other.

A module runs as one or more instances (`instances = N`): each its own
wasmtime store, linear memory and side of the C core (handles, quotas),
all in one `NativePool`, which picks the instance a call runs in.  What
Python needs of the exports -- their types, and each instance's function
-- is read once at load, so no call reaches into a store another thread
may be running in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import wasmtime

if TYPE_CHECKING:
    from ._native import NativeModule, NativePool
    from .module_spec import ExportDecl


def instance_label(name: str, index: int, count: int) -> str:
    """How messages, the leak report, the graph and the tracer name an
    instance: the module's name when it has one, else `name#1`, `name#2`, ..."""
    return name if count == 1 else f"{name}#{index + 1}"


@dataclass
class Instance:
    """One instance of a module: its own store and its side of the C core."""

    label: str  # instance_label()
    native: NativeModule
    store: wasmtime.Store
    instance: wasmtime.Instance
    torn_down: str | None = None  # why, once torn down
    replacing: bool = False  # torn down, and a new one is coming (on_trap = "replace")
    solo: NativePool | None = None  # a pool of just this one, for calls it must get


@dataclass
class LoadedModule:
    """One loaded module: its instances, its export types and declarations."""

    name: str
    source: str  # its label in messages: the file, or "module 'NAME'"
    instances: list[Instance]
    pool: NativePool
    decls: dict[str, ExportDecl] = field(default_factory=dict)
    types: dict[str, wasmtime.FuncType] = field(default_factory=dict)  # exported functions
    funcs: dict[str, list[wasmtime.Func]] = field(default_factory=dict)  # ... per instance

    @property
    def native(self) -> NativeModule:
        """The first instance's side of the core (the only one, usually)."""
        return self.instances[0].native

    @property
    def torn_down(self) -> str | None:
        """Why, when every instance is torn down for good (calls into it trap);
        else None (a call waits for an instance being replaced)."""
        if all(i.torn_down and not i.replacing for i in self.instances):
            return self.instances[0].torn_down
        return None

    def functions(self) -> list[str]:
        """The names of its exported functions."""
        return list(self.types)

    def read_exports(self) -> None:
        """Take each exported function's type and, per instance, the function
        (at load: nothing runs in its stores yet)."""
        first = self.instances[0]
        for name, item in first.instance.exports(first.store).items():
            if isinstance(item, wasmtime.Func):
                self.types[name] = item.type(first.store)
        for name in self.types:
            funcs = []
            for inst in self.instances:
                func = inst.instance.exports(inst.store).get(name)
                assert isinstance(func, wasmtime.Func)
                funcs.append(func)
            self.funcs[name] = funcs
