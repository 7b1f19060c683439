"""`LoadedModule`: one instantiated module, as the rest of the broker sees it.

A leaf record (it imports no other part of the broker at run time), so that
the runtime that makes it, the links that point into it and the host calls
that enter it need not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import wasmtime

if TYPE_CHECKING:
    from ._native import NativeModule
    from .module_spec import ExportDecl


@dataclass
class LoadedModule:
    """One instantiated module, its own store, and its side of the C core."""

    name: str
    source: str  # its label in messages: the file, or "module 'NAME'"
    native: NativeModule
    store: wasmtime.Store
    instance: wasmtime.Instance
    decls: dict[str, ExportDecl] = field(default_factory=dict)
    torn_down: str | None = None  # why, once torn down

    def export_func(self, export: str) -> wasmtime.Func | None:
        """Its exported function `export`, or None."""
        item = self.instance.exports(self.store).get(export)
        return item if isinstance(item, wasmtime.Func) else None

    def functions(self) -> list[str]:
        """The names of its exported functions."""
        exports = self.instance.exports(self.store)
        return [n for n, v in exports.items() if isinstance(v, wasmtime.Func)]
