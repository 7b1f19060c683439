"""The refcount table, as Python sees it: who holds which map, right now.

`Snapshot` copies the core's live handles, maps and map-to-map references
(native/snapshot.c) with module names filled in, and answers the questions
the leak report and the ownership graph ask: who holds a map, which maps
reference it, and which maps sit on a cycle.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from ._native import NativeBroker
from .abi import HandleState, Rights


@dataclass(frozen=True)
class HandleRef:
    """A live handle: a module's (or the host's) way to a map."""

    module: str
    handle: int
    map: int
    kind: str  # "own" or "borrow"
    rights: Rights
    busy: int  # lends in progress

    @property
    def rights_text(self) -> str:
        return ("r" if self.rights & Rights.READ else "") + (
            "w" if self.rights & Rights.WRITE else ""
        )


@dataclass(frozen=True)
class MapRow:
    """One live map: its id, its count and what it holds."""

    id: int
    refcount: int
    entries: int
    bytes: int
    name: str | None  # a named map's name


@dataclass(frozen=True)
class Edge:
    """Map `parent` holds a reference to map `child` under `key`."""

    parent: int
    child: int
    key: bytes  # at most the first 48 bytes
    key_len: int

    @property
    def key_text(self) -> str:
        text = self.key.decode("utf-8", "backslashreplace")
        return text + ("…" if self.key_len > len(self.key) else "")


@dataclass
class Snapshot:
    """Every live handle, map and map reference of one broker."""

    handles: list[HandleRef]
    maps: dict[int, MapRow]
    edges: list[Edge]
    _holders: dict[int, list[HandleRef]] = field(default_factory=lambda: defaultdict(list))
    _referrers: dict[int, list[Edge]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        for h in self.handles:
            self._holders[h.map].append(h)
        for e in self.edges:
            self._referrers[e.child].append(e)

    @classmethod
    def take(cls, native: NativeBroker, module_name: Callable[[int], str]) -> Snapshot:
        raw_handles, raw_maps, raw_edges = native.snapshot()
        handles = [
            HandleRef(
                module_name(h["module"]),
                h["handle"],
                h["map"],
                "own" if h["state"] == HandleState.OWN else "borrow",
                Rights(h["rights"]),
                h["busy"],
            )
            for h in raw_handles
        ]
        maps = {
            m["id"]: MapRow(
                m["id"],
                m["refcount"],
                m["entries"],
                m["bytes"],
                m["name"].decode() if m["name"] is not None else None,
            )
            for m in raw_maps
        }
        edges = [Edge(e["parent"], e["child"], e["key"], e["key_len"]) for e in raw_edges]
        return cls(handles, maps, edges)

    def holders(self, map_id: int) -> list[HandleRef]:
        return list(self._holders.get(map_id, ()))

    def referrers(self, map_id: int) -> list[Edge]:
        return list(self._referrers.get(map_id, ()))

    def anonymous(self) -> list[MapRow]:
        """Live maps that are not named maps, by id."""
        return [m for _, m in sorted(self.maps.items()) if m.name is None]

    def cycles(self) -> list[list[int]]:
        """Strongly connected groups of maps that reference each other (self-loops too)."""
        children: dict[int, list[int]] = defaultdict(list)
        for e in self.edges:
            children[e.parent].append(e.child)
        index: dict[int, int] = {}
        low: dict[int, int] = {}
        on_stack: set[int] = set()
        stack: list[int] = []
        groups: list[list[int]] = []
        counter = 0
        for root in sorted(self.maps):
            if root in index:
                continue
            # Tarjan's algorithm, iteratively (map graphs can be deep).
            work = [(root, iter(children[root]))]
            index[root] = low[root] = counter
            counter += 1
            stack.append(root)
            on_stack.add(root)
            while work:
                node, it = work[-1]
                advanced = False
                for child in it:
                    if child not in index:
                        index[child] = low[child] = counter
                        counter += 1
                        stack.append(child)
                        on_stack.add(child)
                        work.append((child, iter(children[child])))
                        advanced = True
                        break
                    if child in on_stack:
                        low[node] = min(low[node], index[child])
                if advanced:
                    continue
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1 or node in children[node]:
                        groups.append(sorted(group))
        return groups
