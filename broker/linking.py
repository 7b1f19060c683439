"""Linking modules to each other by name: guest imports of peer exports.

A module's import `(import "peer" "take" (func ...))` becomes a C trampoline
(a `NativeLink`) in its linker; the link is *resolved* -- pointed at the
export, with the exporter's declared kinds -- as soon as both modules are
loaded, in whichever order they come.  So mutual imports work, and an
unloaded peer leaves its importers' links waiting for it to come back.
"""

from __future__ import annotations

from dataclasses import dataclass

import wasmtime

from ._native import NativeLink, NativeModule
from .check import declaration_problems, signature
from .errors import ModuleError
from .loaded import LoadedModule
from .module_spec import ExportDecl
from .ownership import Kind, Pass


@dataclass
class PeerImport:
    """One import of a peer module's function, and its link."""

    importer: str  # the importing instance's label
    importer_id: int  # ... and its id in the C core (labels may repeat: "a#2")
    module: str
    name: str
    signature: str
    link: NativeLink
    resolved: bool = False

    @property
    def label(self) -> str:
        return f"{self.importer} -> {self.module}.{self.name}"


def pass_codes(ty: wasmtime.FuncType, decl: ExportDecl | None) -> list[int]:
    """The WM_PASS_* code of every parameter, then every result."""
    params = list(decl.param_passes) if decl else []
    results = list(decl.result_passes) if decl else []
    plain = Pass("plain", Kind.PLAIN)
    params += [plain] * (len(ty.params) - len(params))
    results += [plain] * (len(ty.results) - len(results))
    return [p.code for p in params + results]


def check_declarations(
    module: str, instance_exports: object, store: wasmtime.Store, decls: dict[str, ExportDecl]
) -> None:
    """Every declared export exists, and its handle kinds sit on i32 slots."""
    exports = instance_exports  # InstanceExports
    types: dict[str, wasmtime.FuncType | None] = {}
    for name in decls:
        func = exports.get(name)  # type: ignore[attr-defined]
        types[name] = func.type(store) if isinstance(func, wasmtime.Func) else None
    for name, problem in declaration_problems(types, decls):
        raise ModuleError(f"module {module!r} export {name!r}: {problem}")


class Links:
    """Every peer import of every loaded module, resolved as peers come and go."""

    def __init__(self) -> None:
        self._imports: list[PeerImport] = []

    def define(
        self,
        importer: str,
        native: NativeModule,
        linker: wasmtime.Linker,
        imp: wasmtime.ImportType,
        label: str,
    ) -> PeerImport:
        """Define one peer import of `importer` in its linker, unresolved."""
        ty = imp.type
        if not isinstance(ty, wasmtime.FuncType):
            raise ModuleError(
                f"{label}: imports {imp.module}.{imp.name}, which is not a function "
                "(only functions can be imported from other modules)"
            )
        name = imp.name or ""
        peer = PeerImport(
            importer,
            native.id,
            imp.module,
            name,
            signature(ty),
            NativeLink(
                native,
                f"{importer} -> {imp.module}.{name}",
                len(ty.params),
                len(ty.results),
                f"{imp.module}.{name}",
            ),
        )
        peer.link.define(linker, imp.module, name, ty)
        self._imports.append(peer)
        return peer

    def resolve(self, peer: PeerImport, target: LoadedModule) -> None:
        """Point `peer` at its export in `target`'s instances; ModuleError when it cannot be."""
        ty = target.types.get(peer.name)
        if ty is None:
            raise ModuleError(
                f"{peer.label}: module {target.name!r} has no exported function {peer.name!r}"
            )
        if signature(ty) != peer.signature:
            raise ModuleError(
                f"{peer.label}: imported as {peer.signature}, but exported as {signature(ty)}"
            )
        codes = pass_codes(ty, target.decls.get(peer.name))
        peer.link.resolve(target.pool, target.funcs[peer.name], codes)
        peer.resolved = True

    def resolve_into(self, target: LoadedModule) -> None:
        """Resolve every import, from any module, of `target`'s exports."""
        for peer in self._imports:
            if peer.module == target.name and not peer.resolved:
                self.resolve(peer, target)

    def loading(self, name: str, native: NativeModule | None) -> None:
        """`name` is instantiating as `native` (None: done): a call into it
        through a waiting link is its own start function's doing."""
        for peer in self._imports:
            if peer.module == name and not peer.resolved:
                peer.link.set_loading(native)

    def unresolve_into(self, name: str) -> None:
        """Module `name` is going (or an instance of it is replaced): links
        into it wait for it again."""
        for peer in self._imports:
            if peer.module == name and peer.resolved:
                peer.link.unresolve()
                peer.resolved = False

    def repoint(self, name: str, index: int, funcs: dict[str, list[wasmtime.Func]]) -> None:
        """Instance `index` of module `name` was replaced: `funcs` has its exports."""
        for peer in self._imports:
            if peer.module == name and peer.resolved:
                peer.link.set_func(index, funcs[peer.name][index])

    def forget(self, importer_id: int) -> None:
        """The instance `importer_id` is going: its own imports are dropped."""
        kept = []
        for peer in self._imports:
            if peer.importer_id != importer_id:
                kept.append(peer)
            else:
                peer.link.retire()
        self._imports = kept

    def unresolved(self) -> list[PeerImport]:
        return [p for p in self._imports if not p.resolved]
