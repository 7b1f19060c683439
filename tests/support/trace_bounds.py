"""Small tracer bounds for the tests of the tracer's memory, and what a tracer holds."""

from __future__ import annotations

from broker.tracer import Bounds, Tracer

SMALL = Bounds(core=1 << 14, head=4, tail=8, histories=2048, borrows=4, recent=256, depth=8)


def held(tracer: Tracer) -> int:
    """Events the tracer holds in memory, each counted once."""
    return sum(1 for _ in tracer.kept_events())
