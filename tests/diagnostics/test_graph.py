"""The ownership graph (broker/graph.py, `wasi-map graph`): nodes, edges, labels, cycles.

tests/apps/atlas is three modules and twenty live maps (a named map with a
tree under it, a live cycle, a self-reference, own / share / borrow:r
passes, an own result); tests/apps/leaky has the known leaks of
tests/diagnostics/test_leaks.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dot_graph import RED, Dot
from held_back_apps import ATLAS, LEAKY, h

from broker import Broker, ConfigError
from broker.cli import main

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is missing")


@pytest.fixture
def atlas() -> Iterator[Broker]:  # collected too: in place of diagnostics/conftest.py's
    """The atlas app after loader.main and a collection, as `wasi-map graph` runs it."""
    with Broker.from_manifest(ATLAS, trace=True) as b:
        assert b.call("loader.main") == 0
        assert b.collect() == 2
        yield b


@pytest.fixture
def atlas_dot(atlas: Broker) -> Dot:
    return Dot(atlas.graph().source)


class TestAtlas:
    """Three modules and twenty maps."""

    def test_module_nodes(self, atlas_dot: Dot) -> None:
        """The host and every module are boxes in the modules cluster."""
        assert "subgraph cluster_modules" in atlas_dot.source
        modules = {n: a for n, a in atlas_dot.nodes.items() if n.startswith("module ")}
        assert sorted(modules) == ["module host", "module index", "module loader", "module sink"]
        assert all(a["shape"] == "box" for a in modules.values())
        assert modules["module loader"]["label"] == "loader"

    def test_map_nodes(self, atlas_dot: Dot) -> None:
        """Twenty live maps; the garbage cycle (21, 22) is gone."""
        assert atlas_dot.maps() == list(range(1, 21))

    def test_map_labels(self, atlas_dot: Dot) -> None:
        """A map's label is its id, entries and count; the named map adds its name."""
        assert atlas_dot.nodes["map 1"]["label"] == r"catalog\nmap 1\n4 entries, count 1"
        assert atlas_dot.nodes["map 1"]["shape"] == "folder"
        assert atlas_dot.nodes["map 4"]["label"] == r"map 4\n5 entries, count 1"
        # map 15: loader's and sink's handles, and map 18's reference
        assert atlas_dot.nodes["map 15"]["label"] == r"map 15\n2 entries, count 3"
        assert all(
            a["shape"] == "ellipse"
            for n, a in atlas_dot.nodes.items()
            if n.startswith("map ") and n != "map 1"
        )

    def test_handle_edges(self, atlas_dot: Dot) -> None:
        """Each handle is an edge from its module, labelled number, kind and rights."""
        handles = {(s, d): a["label"] for s, d, a in atlas_dot.edges if s.startswith("module ")}
        assert handles == {
            ("module index", "map 12"): f"h{h(0)} own rw",
            ("module index", "map 13"): f"h{h(1)} own rw",
            ("module index", "map 14"): f"h{h(2)} own rw",
            ("module sink", "map 15"): f"h{h(0)} own rw",
            ("module sink", "map 16"): f"h{h(1)} own rw",
            ("module sink", "map 17"): f"h{h(3)} own r",
            ("module sink", "map 18"): f"h{h(2, 2)} own rw",
            ("module loader", "map 2"): f"h{h(5, 2)} own r",
            ("module loader", "map 9"): f"h{h(0, 2)} own rw",
            ("module loader", "map 15"): f"h{h(3, 10)} own rw",
            ("module loader", "map 16"): f"h{h(2, 3)} own rw",
            ("module loader", "map 17"): f"h{h(4)} own rw",
            ("module loader", "map 19"): f"h{h(1, 2)} own rw",
        }
        assert all(a["style"] == "solid" for s, _, a in atlas_dot.edges if s.startswith("module "))

    def test_map_reference_edges(self, atlas_dot: Dot) -> None:
        """Each map-to-map reference is an edge labelled with its key."""
        refs = {(s, d): a["label"] for s, d, a in atlas_dot.edges if s.startswith("map ")}
        assert refs == {
            ("map 1", "map 2"): "users",
            ("map 1", "map 3"): "orders",
            ("map 1", "map 4"): "items",
            ("map 1", "map 5"): "tags",
            ("map 3", "map 6"): "o1",
            ("map 3", "map 7"): "o2",
            ("map 3", "map 8"): "o3",
            ("map 9", "map 10"): "next",
            ("map 10", "map 11"): "next",
            ("map 11", "map 9"): "next",
            ("map 12", "map 12"): "self",
            ("map 18", "map 15"): "peer",
            ("map 19", "map 20"): "peer",
        }

    def test_cycles_are_red(self, atlas_dot: Dot) -> None:
        """Maps on a cycle (9-11, and 12 on itself) and the references between them are red."""
        red_maps = sorted(
            int(n.split()[1]) for n, a in atlas_dot.nodes.items() if a.get("color") == RED
        )
        assert red_maps == [9, 10, 11, 12]
        for n in ("map 9", "map 12"):
            assert atlas_dot.nodes[n]["fontcolor"] == RED
            assert atlas_dot.nodes[n]["penwidth"] == "2"
        red_edges = sorted((s, d) for s, d, a in atlas_dot.edges if a.get("color") == RED)
        assert red_edges == [
            ("map 10", "map 11"),
            ("map 11", "map 9"),
            ("map 12", "map 12"),
            ("map 9", "map 10"),
        ]
        assert atlas_dot.edge("map 1", "map 2")["color"] == "grey45"
        # the handle that keeps the cycle alive is an ordinary edge
        assert atlas_dot.edge("module loader", "map 9")["color"] != RED

    def test_snapshot_cycles(self, atlas: Broker) -> None:
        """Snapshot.cycles(): the strongly connected groups, self-loops included."""
        assert sorted(atlas.snapshot().cycles()) == [[9, 10, 11], [12]]

    def test_graph_is_the_dot_file(self, atlas: Broker, tmp_path: Path) -> None:
        """Broker.graph(path.dot) writes the same source it returns."""
        path = tmp_path / "atlas.dot"
        g = atlas.graph(path)
        assert path.read_text() == g.source


class TestLeaky:
    """The graph of the leaky app: what leaked, and who holds it."""

    def test_after_collection(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        """After the run: b holds maps 1 and 7, the registry references map 6; no cycle left."""
        out = tmp_path / "leaky.dot"
        assert main(["graph", str(LEAKY), "--call", "a.main", "-o", str(out)]) == 0
        assert capsys.readouterr().out == f"wrote {out}\n"
        dot = Dot(out.read_text())
        assert dot.maps() == [1, 5, 6, 7]
        assert dot.nodes["map 5"]["label"] == r"registry\nmap 5\n1 entry, count 1"
        assert [(s, d, a["label"]) for s, d, a in dot.edges] == [
            ("module b", "map 1", f"h{h(0)} own rw"),
            ("module b", "map 7", f"h{h(2)} own r"),
            ("map 5", "map 6", "child"),
        ]
        assert not any(a.get("color") == RED for a in dot.nodes.values())
        # a module that holds nothing is still drawn
        assert "module a" in dot.nodes

    def test_before_collection(self) -> None:
        """Before a collection the garbage cycle is drawn, red, with no handle into it."""
        with Broker.from_manifest(LEAKY, trace=True) as b:
            b.call("a.main")
            dot = Dot(b.graph().source)
        assert dot.maps() == [1, 3, 4, 5, 6, 7]
        assert dot.nodes["map 3"]["color"] == dot.nodes["map 4"]["color"] == RED
        assert dot.edge("map 3", "map 4") == {
            "label": "next",
            "color": RED,
            "fontcolor": RED,
        }
        into_cycle = [s for s, d, _ in dot.edges if d in ("map 3", "map 4")]
        assert sorted(into_cycle) == ["map 3", "map 4"]


class TestFiles:
    """.dot is source; .svg and .png are rendered by dot; anything else is refused."""

    @needs_dot
    def test_svg_process(self, tmp_path: Path) -> None:
        """As a process: an .svg with every map's label, exit 0."""
        out = tmp_path / "atlas.svg"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "broker.cli",
                "graph",
                str(ATLAS),
                "--call",
                "loader.main",
                "-o",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (done.returncode, done.stdout, done.stderr) == (0, f"wrote {out}\n", "")
        svg = out.read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        assert svg.count('class="node"') == 4 + 20
        assert ">catalog</text>" in svg and ">map 20</text>" in svg
        assert f'stroke="{RED}"' in svg

    @needs_dot
    def test_png(self, atlas: Broker, tmp_path: Path) -> None:
        """A .png is a PNG image of a size a person can read."""
        out = tmp_path / "atlas.png"
        atlas.graph(out)
        data = out.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width = int.from_bytes(data[16:20], "big")
        height = int.from_bytes(data[20:24], "big")
        assert 400 <= width <= 4000 and 400 <= height <= 4000

    @needs_dot
    def test_png_command(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """-o may follow the call's integers."""
        out = tmp_path / "leaky.png"
        assert main(["graph", str(LEAKY), "--call", "a.main", "-o", str(out)]) == 0
        assert out.read_bytes()[:4] == b"\x89PNG"

    def test_other_suffix_refused(self, atlas: Broker, tmp_path: Path) -> None:
        """A .pdf is not one of the formats: ConfigError, and exit 2 on the command line."""
        with pytest.raises(ConfigError, match=r"\.dot, \.svg, \.png"):
            atlas.graph(tmp_path / "x.pdf")

    def test_cli_bad_input(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """No -o, or an unknown suffix: exit 2 with a message, nothing written."""
        assert main(["graph", str(ATLAS), "--call", "loader.main"]) == 2
        assert "-o FILE" in capsys.readouterr().err
        assert (
            main(["graph", str(ATLAS), "--call", "loader.main", "-o", str(tmp_path / "x.pdf")]) == 2
        )
        assert "x.pdf" in capsys.readouterr().err
        assert list(tmp_path.iterdir()) == []

    def test_trap_still_draws(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A trap exits 1, names module and export, and the graph is still written."""
        (tmp_path / "t.wat").write_text(
            '(module (import "wasi_map" "new" (func $new (param i32) (result i32)))'
            ' (memory (export "memory") 1)'
            ' (func (export "main") (drop (call $new (i32.const 0))) unreachable))'
        )
        (tmp_path / "app.toml").write_text('[modules.t]\npath = "t.wat"\n')
        out = tmp_path / "t.dot"
        assert main(["graph", str(tmp_path / "app.toml"), "--call", "t.main", "-o", str(out)]) == 1
        assert "t.main" in capsys.readouterr().err
        dot = Dot(out.read_text())
        assert dot.maps() == [] and "module t" in dot.nodes
