"""Checks a whole app (`wasi-map check APP.toml`): every problem, one line each.

First without running anything: every module file is there and compiles,
its `wasi_map` imports, memory and drop handler suit the ABI
(broker/check.py), every export declaration fits its function, and every
import of another module's export finds a function of the same type.  The
manifest reader has already checked grants, limits and names (the first
problem there is a ManifestError).  Only when all of that is right is the
app loaded for real, into a broker with the memory store, so that what
only instantiating shows (a memory or table over its limit, a start
function that traps) is found too, without touching the app's own store.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import wasmtime

from . import abi
from .check import declaration_problems, module_problems, signature
from .errors import ConfigError, MapError
from .host import Broker
from .manifest import Manifest, module_file_problem, module_key, shown_key
from .module_spec import ModuleSpec
from .runtime import WASI_MODULE, compile_module


@dataclass
class AppReport:
    """What `check_app` found: its problems, and what it counted."""

    problems: list[str] = field(default_factory=list)
    modules: int = 0
    links: int = 0  # imports of another module's export
    declarations: int = 0  # declared exports
    grants: int = 0

    def summary(self, manifest: Manifest) -> str:
        """The one line printed when there is no problem."""
        return (
            f"{manifest.path}: ok: {self.modules} module(s), {self.links} link(s), "
            f"{self.declarations} export declaration(s), {self.grants} grant(s)"
        )


def _compiled(
    manifest: Manifest, spec: ModuleSpec, engine: wasmtime.Engine, report: AppReport
) -> wasmtime.Module | None:
    """The module of `spec`, compiled; None (and a problem noted) when it is not."""
    missing = module_file_problem(manifest, spec)
    if missing:
        report.problems.append(missing)
        return None
    try:
        module, _ = compile_module(spec.path, engine=engine, name=spec.name)
    except ConfigError as exc:
        report.problems.append(f"{manifest.path}: {module_key(spec.name)}: {exc}")
        return None
    return module


def _own_problems(manifest: Manifest, spec: ModuleSpec, module: wasmtime.Module) -> list[str]:
    """A module's problems on its own: its ABI imports, memory, drop handler, declarations."""
    where = f"{manifest.path}: {module_key(spec.name)}"
    problems = [f"{where}: {p}" for p in module_problems(module)]
    functions = {e.name: e.type for e in module.exports if isinstance(e.type, wasmtime.FuncType)}
    types = {name: functions.get(name) for name in spec.exports}
    for name, problem in declaration_problems(types, spec.exports):
        problems.append(f"{where}.exports.{shown_key(name)}: {problem}")
    return problems


def _link_problems(
    manifest: Manifest, modules: dict[str, wasmtime.Module]
) -> tuple[int, list[str]]:
    """(imports of peers, their problems): each must name a module of the app
    and a function it exports, of the same type."""
    links, problems = 0, []
    for name, module in modules.items():
        where = f"{manifest.path}: {module_key(name)}"
        for imp in module.imports:
            if imp.module in (abi.IMPORT_MODULE, WASI_MODULE):
                continue
            links += 1
            what = f"imports {imp.module}.{imp.name}"
            if not isinstance(imp.type, wasmtime.FuncType):
                problems.append(f"{where}: {what}, which is not a function")
            elif imp.module not in manifest.modules:
                problems.append(f"{where}: {what}, but the app has no module {imp.module!r}")
            elif imp.module in modules:  # else: its own problem is reported already
                exported = {e.name: e.type for e in modules[imp.module].exports}
                ty = exported.get(imp.name or "")
                if not isinstance(ty, wasmtime.FuncType):
                    problems.append(
                        f"{where}: {what}, but {imp.module!r} exports no function {imp.name!r}"
                    )
                elif signature(ty) != signature(imp.type):
                    problems.append(
                        f"{where}: {what} as {signature(imp.type)}, "
                        f"but {imp.module!r} exports it as {signature(ty)}"
                    )
    return links, problems


def check_app(manifest: Manifest) -> AppReport:
    """Every problem of the app, each one line naming the manifest and key."""
    report = AppReport(modules=len(manifest.modules))
    engine = wasmtime.Engine()
    compiled: dict[str, wasmtime.Module] = {}
    for spec in manifest.modules.values():
        report.declarations += len(spec.exports)
        report.grants += len(spec.grants)
        module = _compiled(manifest, spec, engine, report)
        if module is not None:
            compiled[spec.name] = module
            report.problems += _own_problems(manifest, spec, module)
    report.links, link_problems = _link_problems(manifest, compiled)
    report.problems += link_problems
    if not report.problems:
        try:
            Broker.from_manifest(manifest.path, store="memory:").close()
        except MapError as exc:
            report.problems.append(f"{manifest.path}: loading the app: {exc}")
    return report
