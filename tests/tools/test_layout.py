"""The Python side's layout (docs/architecture.md): no import cycles, the façade on top.

Read from the installed package's source, type-only imports included: a
cycle through `if TYPE_CHECKING:` imports still means no module of it can
be read, tested or changed without the others.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from import_graph import cycles, graph
from paths import ROOT as CHECKOUT

import broker

ROOT = Path(broker.__file__).resolve().parent
ARCHITECTURE = CHECKOUT / "docs" / "architecture.md"
# What may import broker.host (the façade): the package's lazy export, the
# command line and tools built on the whole broker.
ABOVE_THE_FACADE = {
    "broker",
    "broker.cli",
    "broker.check_app",
    "broker.http_app",
    "broker.serve",
    "broker.pytest_plugin",
    "broker.testing",
}


@pytest.fixture(scope="module")
def edges() -> dict[str, set[str]]:
    return graph(ROOT, "broker")


class TestImportGraph:
    def test_no_cycles(self, edges: dict[str, set[str]]) -> None:
        """No modules of broker/ import each other round (before: 9 did, through
        host, mapref, calls, runtime, linking, check, manifest, ownership, leaks)."""
        assert cycles(edges) == []

    def test_the_facade_is_on_top(self, edges: dict[str, set[str]]) -> None:
        """Only the command line and tools import broker.host; its parts never do."""
        importers = {m for m, targets in edges.items() if "broker.host" in targets}
        assert importers <= ABOVE_THE_FACADE

    @pytest.mark.parametrize("module", ["broker.mapref", "broker.calls", "broker.leaks"])
    def test_maprefs_host_calls_and_leaks_see_a_narrow_side(
        self, edges: dict[str, set[str]], module: str
    ) -> None:
        """MapRef, HostCall and the leak report know nothing of the broker's parts:
        what they need comes through broker/hostside.py or as a callable."""
        parts = {"broker.host", "broker.registry", "broker.dispatch", "broker.inspection"}
        assert edges[module] & parts == set()

    def test_the_module_spec_is_below_its_readers(self, edges: dict[str, set[str]]) -> None:
        """The manifest and the host both build specs through broker/module_spec.py."""
        assert "broker.module_spec" in edges["broker.manifest"]
        assert "broker.module_spec" in edges["broker.host"]
        assert edges["broker.module_spec"] & {"broker.manifest", "broker.host"} == set()


def documented_rows() -> list[list[str]]:
    """The rows of docs/architecture.md's table of broker/, each a list of
    module names ("broker.abi", "broker.stores" for `stores/`)."""
    text = ARCHITECTURE.read_text().split("## The Python side\n", 1)[1]
    rows = []
    for line in text.splitlines():
        cells = line.split("|")
        if len(cells) > 3 and cells[1].strip().isdigit():
            names = re.findall(r"`([^`]+)`", cells[2])
            rows.append([_module(n) for n in names])
    return rows


def _module(name: str) -> str:
    stem = name.removesuffix("/").removesuffix(".py")
    return "broker" if stem == "__init__" else f"broker.{stem}"


def row_of(module: str, rows: list[list[str]]) -> int | None:
    """The row naming `module`, or the package holding it."""
    for i, row in enumerate(rows):
        if any(module == m or module.startswith(m + ".") for m in row):
            return i
    return None


class TestDocumentedLayers:
    def test_every_module_has_its_row(self, edges: dict[str, set[str]]) -> None:
        """Every module of broker/ is in docs/architecture.md's table; every name
        there is a module."""
        rows = documented_rows()
        assert [m for m in sorted(edges) if row_of(m, rows) is None] == []
        named = [m for row in rows for m in row]
        assert [m for m in named if not any(e == m or e.startswith(m + ".") for e in edges)] == []

    def test_no_module_imports_a_later_row(self, edges: dict[str, set[str]]) -> None:
        """A module imports only its own row and the rows before it."""
        rows = documented_rows()
        upward = [
            f"{m} (row {row_of(m, rows)}) imports {t} (row {row_of(t, rows)})"
            for m, targets in sorted(edges.items())
            for t in sorted(targets)
            if (row_of(t, rows) or 0) > (row_of(m, rows) or 0)
        ]
        assert upward == []


class TestTheChecker:
    def test_a_type_only_cycle_is_found(self, tmp_path: Path) -> None:
        """A cycle closed only by an `if TYPE_CHECKING:` import is a cycle."""
        pkg = tmp_path / "pkg"
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        (pkg / "a.py").write_text("from .b import thing\n")
        (pkg / "b.py").write_text(
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import c\n"
        )
        (pkg / "c.py").write_text("def f():\n    from pkg.a import x\n")
        (pkg / "d.py").write_text("from . import a\n")
        assert cycles(graph(pkg, "pkg")) == [["pkg.a", "pkg.b", "pkg.c"]]

    def test_from_package_import_module_names_the_module(self, tmp_path: Path) -> None:
        """`from . import a` in a module the package's __init__ imports is no cycle."""
        pkg = tmp_path / "pkg"
        pkg.mkdir()
        (pkg / "__init__.py").write_text("from .b import f\n")
        (pkg / "a.py").write_text("")
        (pkg / "b.py").write_text("from . import a\n")
        edges = graph(pkg, "pkg")
        assert edges["pkg.b"] == {"pkg.a"} and cycles(edges) == []
