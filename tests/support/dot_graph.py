"""A `wasi-map graph` (Graphviz dot source) read back: nodes, edges and their attributes."""

from __future__ import annotations

import re

RED = "#c0392b"


NODE = re.compile(r'^\t"(?P<id>[^"]+)" \[(?P<attrs>.*)\]$')
EDGE = re.compile(r'^\t"(?P<src>[^"]+)" -> "(?P<dst>[^"]+)" \[(?P<attrs>.*)\]$')
ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^ ]+)')


def attrs(text: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in ATTR.findall(text)}


class Dot:
    """The nodes and edges of graphviz source, with their attributes."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes: dict[str, dict[str, str]] = {}
        self.edges: list[tuple[str, str, dict[str, str]]] = []
        for line in source.splitlines():
            line = "\t" + line.lstrip("\t")  # nodes inside clusters and subgraphs
            if m := EDGE.match(line):
                self.edges.append((m["src"], m["dst"], attrs(m["attrs"])))
            elif m := NODE.match(line):
                self.nodes[m["id"]] = attrs(m["attrs"])

    def edge(self, src: str, dst: str) -> dict[str, str]:
        (found,) = [a for s, d, a in self.edges if (s, d) == (src, dst)]
        return found

    def maps(self) -> list[int]:
        return sorted(int(n.split()[1]) for n in self.nodes if n.startswith("map "))
