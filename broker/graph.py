"""The ownership graph: modules, maps, handles and map references, drawn.

Modules (and the host) are boxes on the left; maps are ellipses (named maps
are folders) labelled with id, entries and count; a module's handle is an
arrow to its map labelled with the handle, its kind and rights (borrows
dashed); a map reference is a grey arrow labelled with its key.  Maps on a
cycle, and the references between them, are red.  Written with graphviz:
`.dot` as source, `.svg` and `.png` rendered by Debian's `dot`.

`build` draws one snapshot (`wasi-map graph`, `Broker.graph`); `frames`
draws a few snapshots of one run side by side, small, for before / during /
after pictures of a call (docs/pictures/make.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import graphviz

from .errors import ConfigError
from .refs import Edge, HandleRef, MapRow, Snapshot

FORMATS = (".dot", ".svg", ".png")
CYCLE = "#c0392b"
# One colour per module for its handle edges and their labels, so a label
# can be told from its neighbour's where several edges fan out.
MODULE_COLOURS = ("#1f4e79", "#2e7d32", "#6a1b9a", "#b45309", "#00695c", "#37474f", "#ad1457")
LEGEND = (
    "solid arrow: owning handle (number, rights) · dashed: borrowed · "
    "grey arrow: map reference (key) · red: on a cycle · folder: named map"
)
HOST = "host"
FONTS = {
    "node_attr": {"fontname": "Helvetica", "fontsize": "10"},
    "edge_attr": {"fontname": "Helvetica", "fontsize": "9"},
}


def build(snapshot: Snapshot, modules: list[str], title: str = "") -> graphviz.Digraph:
    """The graph of one snapshot; `modules` lists every module to show (even with no handle)."""
    g = graphviz.Digraph(
        "ownership",
        graph_attr={
            "rankdir": "LR",
            "fontname": "Helvetica",
            "fontsize": "12",
            "nodesep": "0.25",
            "ranksep": "1.1",
            "label": f"{title}\n{LEGEND}" if title else LEGEND,
            "labelloc": "b",
        },
        **FONTS,
    )
    on_cycle = {m for group in snapshot.cycles() for m in group}
    names = list(dict.fromkeys([HOST, *modules, *(h.module for h in snapshot.handles)]))
    with g.subgraph(
        name="cluster_modules",
        graph_attr={"label": "modules", "style": "dashed", "color": "grey60"},
    ) as c:
        for name in names:
            c.node(f"module {name}", name, **_module_attrs(name))
    for row in snapshot.maps.values():
        label, attrs = _map_node(row, on_cycle)
        g.node(f"map {row.id}", label, **attrs)
    colour = _colours(names)
    for h in snapshot.handles:
        label, attrs = _handle_edge(h, colour[h.module])
        g.edge(f"module {h.module}", f"map {h.map}", label, **attrs)
    for e in snapshot.edges:
        label, attrs = _reference_edge(e, on_cycle)
        g.edge(f"map {e.parent}", f"map {e.child}", label, **attrs)
    return g


@dataclass(frozen=True)
class Frame:
    """One moment of a run for `frames`: its snapshot, a caption, notes on modules."""

    caption: str
    snapshot: Snapshot
    notes: Mapping[str, str] = field(default_factory=dict)  # module name -> a line under it


def frames(moments: Sequence[Frame], modules: Sequence[str], title: str = "") -> graphviz.Digraph:
    """A few snapshots of one run side by side, each a small top-down picture.

    Every frame shows `modules` in a row (and any other holder of a handle,
    the host among them) above the maps; an owning handle lent to a call in
    progress is labelled "lent".  Node names start with the frame's number
    (`f0 map 1`), so one map in two frames is two nodes; a module keeps its
    colour in every frame.
    """
    g = graphviz.Digraph(
        "ownership",
        graph_attr={
            "rankdir": "TB",
            "fontname": "Helvetica",
            "fontsize": "11",
            "nodesep": "0.3",
            "ranksep": "0.6",
            "label": title,
            "labelloc": "b",
        },
        **FONTS,
    )
    holders = (h.module for moment in moments for h in moment.snapshot.handles)
    every = list(dict.fromkeys([*modules, *holders]))
    colour = _colours(every)
    for i, moment in enumerate(moments):
        shot = moment.snapshot
        names = [n for n in every if n in modules or any(h.module == n for h in shot.handles)]
        on_cycle = {m for group in shot.cycles() for m in group}
        with g.subgraph(
            name=f"cluster_f{i}",
            graph_attr={"label": moment.caption, "style": "rounded", "color": "grey70"},
        ) as c:
            with c.subgraph(name=f"f{i} modules", graph_attr={"rank": "same"}) as row:
                for name in names:
                    note = moment.notes.get(name)
                    label = f"{name}\\n({note})" if note else name
                    row.node(f"f{i} module {name}", label, **_module_attrs(name))
                for left, right in zip(names, names[1:], strict=False):  # keep the modules in order
                    row.edge(f"f{i} module {left}", f"f{i} module {right}", style="invis")
            for r in shot.maps.values():
                label, attrs = _map_node(r, on_cycle)
                c.node(f"f{i} map {r.id}", label, **attrs)
            for h in shot.handles:
                label, attrs = _handle_edge(h, colour[h.module], lent=h.busy > 0)
                c.edge(f"f{i} module {h.module}", f"f{i} map {h.map}", label, **attrs)
            for e in shot.edges:
                label, attrs = _reference_edge(e, on_cycle)
                c.edge(f"f{i} map {e.parent}", f"f{i} map {e.child}", label, **attrs)
            held = {h.map for h in shot.handles}
            for r in shot.maps.values():  # a map nobody holds still sits below the modules
                if r.id not in held and names:
                    c.edge(f"f{i} module {names[0]}", f"f{i} map {r.id}", style="invis")
    return g


def _colours(names: Sequence[str]) -> dict[str, str]:
    return {name: MODULE_COLOURS[i % len(MODULE_COLOURS)] for i, name in enumerate(names)}


def _module_attrs(name: str) -> dict[str, str]:
    return {
        "shape": "box",
        "style": "rounded,filled",
        "fillcolor": "#dfe9f5" if name != HOST else "#eeeeee",
    }


def _map_node(row: MapRow, on_cycle: set[int]) -> tuple[str, dict[str, str]]:
    """A map's label (id, entries, count; a named map's name) and attributes."""
    entries = f"{row.entries} {'entry' if row.entries == 1 else 'entries'}"
    label = f"map {row.id}\\n{entries}, count {row.refcount}"
    attrs = {"shape": "ellipse"}
    if row.name is not None:
        label = f"{row.name}\\n{label}"
        attrs = {"shape": "folder", "style": "filled", "fillcolor": "#fdf2d0"}
    if row.id in on_cycle:
        attrs.update(color=CYCLE, fontcolor=CYCLE, penwidth="2")
    return label, attrs


def _handle_edge(h: HandleRef, colour: str, *, lent: bool = False) -> tuple[str, dict[str, str]]:
    """A handle's label (number, kind, rights; ", lent" if asked) and attributes."""
    label = f"h{h.handle} {h.kind} {h.rights_text}" + (", lent" if lent else "")
    style = "dashed" if h.kind == "borrow" else "solid"
    return label, {"style": style, "color": colour, "fontcolor": colour}


def _reference_edge(e: Edge, on_cycle: set[int]) -> tuple[str, dict[str, str]]:
    """A map reference's label (its key) and attributes (red between maps on a cycle)."""
    red = e.parent in on_cycle and e.child in on_cycle
    return e.key_text, {
        "color": CYCLE if red else "grey45",
        "fontcolor": CYCLE if red else "grey30",
    }


def write(graph: graphviz.Digraph, path: str | Path) -> Path:
    """Write `graph` as .dot source or render it to .svg / .png."""
    path = Path(path)
    if path.suffix not in FORMATS:
        raise ConfigError(f"{path}: the graph is written as {', '.join(FORMATS)}")
    if path.suffix == ".dot":
        path.write_text(graph.source)
        return path
    if shutil.which("dot") is None:
        raise ConfigError(
            f"{path}: rendering {path.suffix} needs graphviz's `dot` "
            "(apt-get install graphviz); .dot needs nothing"
        )
    path.write_bytes(graph.pipe(format=path.suffix[1:]))
    return path
