"""What a broker holds, for people and tests: stats, snapshots, leaks, the graph.

Each reads the C core under the broker's lock (a module unloaded meanwhile
would be freed under it) and turns it into data: `stats()` counts,
`snapshot()` says who holds which map (broker/refs.py), `leaks()` builds
the leak report (broker/leaks.py) and `graph()` draws it (broker/graph.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from . import leaks
from .mapref import live_handle
from .refs import Snapshot

if TYPE_CHECKING:
    from ._native import NativeBroker
    from .guard import Guard
    from .hostside import HostSide
    from .leaks import LeakReport
    from .registry import Registry
    from .tracer import Tracer


class Stats(TypedDict):
    """What `Broker.stats()` returns."""

    maps: int  # live anonymous maps
    named: int  # named maps the broker has open
    handles: dict[str, int]  # open handles of each loaded module


class Inspection:
    """Looks at one broker's C core and its loaded modules."""

    def __init__(
        self, native: NativeBroker, registry: Registry, guard: Guard, side: HostSide
    ) -> None:
        self._native = native
        self._registry = registry
        self._guard = guard
        self._side = side

    def link_label(self, link_id: int) -> str:
        """What the tracer calls a link: "a -> b.f" (or its id once it is gone)."""
        return self._native.link_labels.get(link_id, f"link#{link_id}")

    def stats(self) -> Stats:
        self._guard.check_open()
        with self._guard.lock:  # a module unloaded meanwhile would be freed under us
            self._guard.check_open()
            counts = self._native.stats()
            return Stats(
                maps=counts["maps"],
                named=counts["named"],
                handles={
                    i.label: i.native.handle_count()
                    for m in self._registry.modules.values()
                    for i in m.instances
                },
            )

    def snapshot(self) -> Snapshot:
        self._guard.check_open()
        return Snapshot.take(self._native, self._registry.name_of)

    def leaks(self, tracer: Tracer | None, drain: Callable[[], None]) -> LeakReport:
        """The leak report; `drain()` first takes the tracer's last events."""
        self._guard.check_open()
        with self._guard.lock:
            self._guard.check_open()
            drain()
            snapshot = self.snapshot()
            host = {h.handle for h in snapshot.handles if h.module == "host"}
            side = self._side
            owners = leaks.mapref_owners(host, lambda obj: live_handle(obj, side)) if host else {}
            return leaks.report(snapshot, tracer, self._native.stats(), owners)

    def graph(self, path: str | Path | None, title: str) -> Any:
        from . import graph  # graphviz: only when drawn

        self._guard.check_open()
        with self._guard.lock:
            self._guard.check_open()
            g = graph.build(self.snapshot(), self._registry.labels(), title)
        if path is not None:
            graph.write(g, path)
        return g
