"""The ownership graph: modules, maps, handles and map references, drawn.

Modules (and the host) are boxes on the left; maps are ellipses (named maps
are folders) labelled with id, entries and count; a module's handle is an
arrow to its map labelled with the handle, its kind and rights (borrows
dashed); a map reference is a grey arrow labelled with its key.  Maps on a
cycle, and the references between them, are red.  Written with graphviz:
`.dot` as source, `.svg` and `.png` rendered by Debian's `dot`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import graphviz

from .errors import ConfigError
from .refs import Snapshot

FORMATS = (".dot", ".svg", ".png")
CYCLE = "#c0392b"
# One colour per module for its handle edges and their labels, so a label
# can be told from its neighbour's where several edges fan out.
MODULE_COLOURS = ("#1f4e79", "#2e7d32", "#6a1b9a", "#b45309", "#00695c", "#37474f", "#ad1457")
LEGEND = (
    "solid arrow: owning handle (number, rights) · dashed: borrowed · "
    "grey arrow: map reference (key) · red: on a cycle · folder: named map"
)


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
        node_attr={"fontname": "Helvetica", "fontsize": "10"},
        edge_attr={"fontname": "Helvetica", "fontsize": "9"},
    )
    on_cycle = {m for group in snapshot.cycles() for m in group}
    names = list(dict.fromkeys(["host", *modules, *(h.module for h in snapshot.handles)]))
    with g.subgraph(
        name="cluster_modules",
        graph_attr={"label": "modules", "style": "dashed", "color": "grey60"},
    ) as c:
        for name in names:
            c.node(
                f"module {name}",
                name,
                shape="box",
                style="rounded,filled",
                fillcolor="#dfe9f5" if name != "host" else "#eeeeee",
            )
    for row in snapshot.maps.values():
        entries = f"{row.entries} {'entry' if row.entries == 1 else 'entries'}"
        label = f"map {row.id}\\n{entries}, count {row.refcount}"
        attrs = {"shape": "ellipse"}
        if row.name is not None:
            label = f"{row.name}\\n{label}"
            attrs = {"shape": "folder", "style": "filled", "fillcolor": "#fdf2d0"}
        if row.id in on_cycle:
            attrs.update(color=CYCLE, fontcolor=CYCLE, penwidth="2")
        g.node(f"map {row.id}", label, **attrs)
    colour = {name: MODULE_COLOURS[i % len(MODULE_COLOURS)] for i, name in enumerate(names)}
    for h in snapshot.handles:
        g.edge(
            f"module {h.module}",
            f"map {h.map}",
            f"h{h.handle} {h.kind} {h.rights_text}",
            style="dashed" if h.kind == "borrow" else "solid",
            color=colour[h.module],
            fontcolor=colour[h.module],
        )
    for e in snapshot.edges:
        red = e.parent in on_cycle and e.child in on_cycle
        g.edge(
            f"map {e.parent}",
            f"map {e.child}",
            e.key_text,
            color=CYCLE if red else "grey45",
            fontcolor=CYCLE if red else "grey30",
        )
    return g


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
