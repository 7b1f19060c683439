"""Checks a Wasm module against the guest ABI: its `wasi_map` imports and memory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import wasmtime

from . import abi
from .module_spec import ExportDecl
from .ownership import Kind

MAX_HANDLE_ARGS = abi.MAX_HANDLE_ARGS  # handles in one call's parameters and results


@dataclass(frozen=True)
class ImportReport:
    """One `wasi_map` import of a module and what is wrong with it, if anything."""

    name: str
    signature: str
    problem: str | None


def signature(ty: wasmtime.FuncType) -> str:
    params = ", ".join(str(p) for p in ty.params)
    results = ", ".join(str(r) for r in ty.results)
    return f"({params}) -> ({results})"


def _expected(fn: abi.AbiFunction) -> str:
    return f"({', '.join(fn.param_types)}) -> ({', '.join(fn.result_types)})"


def wasi_map_imports(module: wasmtime.Module) -> list[ImportReport]:
    """Every import from `wasi_map`, each checked against the ABI table."""
    reports = []
    for imp in module.imports:
        if imp.module != abi.IMPORT_MODULE:
            continue
        name = imp.name or ""
        ty = imp.type
        if not isinstance(ty, wasmtime.FuncType):
            reports.append(ImportReport(name, type(ty).__name__, "not a function"))
            continue
        sig = signature(ty)
        fn = abi.BY_NAME.get(name)
        problem = None
        if fn is None:
            problem = "not in the WASI-Map v1 ABI"
        elif sig != _expected(fn):
            problem = f"signature {sig} does not match the ABI's {_expected(fn)}"
        reports.append(ImportReport(name, sig, problem))
    return reports


def memory_problem(module: wasmtime.Module) -> str | None:
    """Why the module's memory cannot serve the ABI, or None."""
    for exp in module.exports:
        if exp.name == "memory":
            if isinstance(exp.type, wasmtime.MemoryType):
                if exp.type.is_shared:
                    return "exports a shared memory as `memory` (not supported)"
                return None
            return "exports `memory`, but it is not a memory"
    return "imports wasi_map but does not export its linear memory as `memory`"


def drop_handler_problem(module: wasmtime.Module) -> str | None:
    """Why the module's wasi_map_on_drop export cannot take notices, or None."""
    for exp in module.exports:
        if exp.name == abi.DROP_EXPORT:
            ty = exp.type
            if not isinstance(ty, wasmtime.FuncType) or signature(ty) != "(i64) -> ()":
                found = signature(ty) if isinstance(ty, wasmtime.FuncType) else "not a function"
                return f"exports {abi.DROP_EXPORT} as {found}, not (i64) -> ()"
    return None


def module_problems(module: wasmtime.Module) -> list[str]:
    """Every problem, one line each: bad imports, a missing memory, a bad drop handler."""
    reports = wasi_map_imports(module)
    problems = [f"import wasi_map.{r.name}: {r.problem}" for r in reports if r.problem]
    if reports:
        mem = memory_problem(module)
        if mem:
            problems.append(mem)
    drop = drop_handler_problem(module)
    if drop:
        problems.append(drop)
    return problems


def declaration_problems(
    types: Mapping[str, wasmtime.FuncType | None], decls: Mapping[str, ExportDecl]
) -> list[tuple[str, str]]:
    """(export, problem) for every declaration its function cannot serve.

    `types` maps each declared export to its function type (None: no
    exported function of that name): every declared kind must fit its
    slot (a plain kind is the type itself, a handle an i32), and a call
    may pass at most MAX_HANDLE_ARGS handles."""
    problems = []
    for name, decl in decls.items():
        ty = types.get(name)
        if ty is None:
            problems.append((name, "declared in exports, but not an exported function"))
            continue
        for part, passes, slots in (
            ("params", decl.param_passes, ty.params),
            ("results", decl.result_passes, ty.results),
        ):
            if len(passes) > len(slots):
                problems.append(
                    (name, f"declares {len(passes)} {part}, the function has {len(slots)}")
                )
                continue
            for i, (p, t) in enumerate(zip(passes, slots, strict=False)):
                if p.kind is Kind.PLAIN and p.text != str(t):
                    problems.append((name, f"{part}[{i}] is declared {p.text}, but is {t}"))
                if p.is_handle and str(t) != "i32":
                    problems.append(
                        (
                            name,
                            f"{part}[{i}] is declared {p.text}, but a handle is an i32, not {t}",
                        )
                    )
        if sum(p.is_handle for p in decl.param_passes + decl.result_passes) > MAX_HANDLE_ARGS:
            problems.append((name, f"at most {MAX_HANDLE_ARGS} handle parameters"))
    return problems
