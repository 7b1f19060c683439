"""The cycle collector, from Python: when it runs, running it, what it did.

Reference counting frees a map the moment its count reaches zero; maps
that reference each other through `set_map` keep each other above zero
after the last handle is gone.  The collector (native/gc.c, where the
algorithm is explained next to the code) finds such maps by trial deletion
over the map-reference graph and reclaims them, with their drop notices.
It never reclaims a map that a handle, a `MapRef`, a name or a reachable
map references -- nor one lent to a call in progress.

It runs by itself after `threshold` releases that left a map referenced by
other maps alive (each may have cut a cycle loose), and on demand with
`Broker.collect()`.  Import this module as `broker.gc` (it shares its name
with the standard library's `gc`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .names import shown_name

if TYPE_CHECKING:  # the manifest reads MAX_THRESHOLD without loading the C core
    from ._native import NativeBroker

MAX_THRESHOLD = (1 << 64) - 1  # wm_broker_set_gc_threshold takes a uint64_t
DEFAULT_THRESHOLD = 10_000


def threshold_problem(value: object) -> str | None:
    """Why `value` cannot be the collector's threshold, or None (the manifest's
    `broker.gc_threshold` and `Broker(gc_threshold=...)` both come here)."""
    if type(value) is not int or not 0 <= value <= MAX_THRESHOLD:
        return f"must be an integer from 0 to {MAX_THRESHOLD}, not {shown_name(value)}"
    return None


@dataclass(frozen=True)
class CollectorStats:
    """What the collector has done so far."""

    collections: int
    cycles_reclaimed: int  # maps reclaimed by the collector (not by plain counting)
    threshold: int


class Collector:
    """The broker's cycle collector: `collect()`, and its automatic threshold."""

    def __init__(self, native: NativeBroker, threshold: int = DEFAULT_THRESHOLD) -> None:
        self._native = native
        self._threshold = 0
        self.threshold = threshold

    @property
    def threshold(self) -> int:
        """Releases before an automatic collection; 0 turns automatic collection off."""
        return self._threshold

    @threshold.setter
    def threshold(self, value: int) -> None:
        problem = threshold_problem(value)
        if problem:
            raise ValueError(f"the collector threshold {problem}")
        self._native.set_gc_threshold(value)
        self._threshold = value

    def disable(self) -> None:
        self.threshold = 0

    def collect(self) -> int:
        """Collect unreachable cycles now; the number of maps reclaimed."""
        return self._native.collect()

    def stats(self) -> CollectorStats:
        s = self._native.stats()
        return CollectorStats(s["collections"], s["cycles_reclaimed"], self._threshold)
