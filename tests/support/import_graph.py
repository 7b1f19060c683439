"""The import graph of a package, read from its source: every `import` and
`from ... import` counts, those under `if TYPE_CHECKING:` and inside
functions included (a type-only import is still a dependency to read).

`graph(package_dir, "broker")` maps each module ("broker.host") to the
modules of the package it imports; `cycles(graph)` lists every group of
modules that import each other, round and round (strongly connected
components of more than one module).
"""

from __future__ import annotations

import ast
from pathlib import Path


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Module name -> its file, for every .py file under `root`."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join((package, *parts))] = path
    return names


def _imported(
    node: ast.Import | ast.ImportFrom, here: str, is_package: bool, known: set[str]
) -> list[str]:
    """The package's modules one import statement imports."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in known]
    if node.level:
        base = here.split(".") if is_package else here.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join([*base, node.module] if node.module else base)
    else:
        target = node.module or ""
    # `from . import a, b` imports the modules a and b (and, for anything
    # else it names, the package); `from .m import f` imports m.
    subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
    whole = [target] if len(subs) < len(node.names) and target in known else []
    return whole + subs


def graph(root: Path, package: str) -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports."""
    modules = module_names(root, package)
    known = set(modules)
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imported = _imported(node, name, is_package, known)
                edges[name].update(t for t in imported if t != name)
    return edges


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    """Every module `start` imports, directly or through others."""
    seen: set[str] = set()
    todo = list(edges[start])
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(edges[module])
    return seen


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that import each other, round and round, sorted."""
    reach = {module: reachable(edges, module) for module in edges}
    groups = {
        frozenset(other for other in reach[module] if module in reach[other])
        for module in edges
        if module in reach[module]
    }
    return sorted(sorted(group) for group in groups)
