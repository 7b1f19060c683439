"""Shapes of maps for the collector's tests (tests/gc/): rings, pairs, self cycles, and
the guests gc_churn.wat ("churn": rings, garbage pairs, drop-notice log, a
borrowing export that makes the collector run) and gc_relay.wat ("relay": a lender).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paths import GUESTS
from xmod import decl

from broker import Broker, MapRef, testing

CHURN = GUESTS / "gc_churn.wat"
RELAY = GUESTS / "gc_relay.wat"
CHURN_EXPORTS = {
    "churn": decl("borrow", "i32"),
    "boom_back": decl("borrow"),
    "adopt": decl("share"),
}


MakeBroker = Callable[..., Broker]


def live(b: Broker) -> set[int]:
    """The ids of the live anonymous maps."""
    return {m.id for m in b.snapshot().anonymous()}


def counters(b: Broker) -> tuple[int, int]:
    """(collections, cycles_reclaimed) so far."""
    s = testing.core_counters(b)
    return s["collections"], s["cycles_reclaimed"]


def self_cycle(b: Broker) -> int:
    """A garbage map that references itself (one release of a referenced map); its id."""
    m = b.new_map()
    m.set_map(b"self", m)
    mid = m.map_id
    m.close()
    return mid


def ring(b: Broker, n: int) -> list[MapRef]:
    """n host maps, map i = {b"v": i, b"next": -> map i+1}, the last -> the first."""
    refs = [b.new_map() for _ in range(n)]
    for i, m in enumerate(refs):
        m[b"v"] = str(i).encode()
        m.set_map(b"next", refs[(i + 1) % n])
    return refs


def garbage_ring(b: Broker, n: int) -> set[int]:
    """A ring of n maps that nothing reaches; their ids."""
    refs = ring(b, n)
    ids = {m.map_id for m in refs}
    for m in refs:
        m.close()
    return ids


def pair(b: Broker) -> tuple[MapRef, int]:
    """a = {1: 11, 2: -> c}, c = {1: 22, 2: -> a}; the host keeps only a. (a, c's id)."""
    a, c = b.new_map(), b.new_map()
    a[b"\x01"], c[b"\x01"] = b"\x0b", b"\x16"
    a.set_map(b"\x02", c)
    c.set_map(b"\x02", a)
    cid = c.map_id
    c.close()
    return a, cid


def load_churn(b: Broker, *, relay: bool = False, relay_exports: Any = None) -> None:
    """Load gc_churn.wat as "churn" (and gc_relay.wat as "relay")."""
    b.load("churn", CHURN, exports=CHURN_EXPORTS)
    if relay:
        b.load("relay", RELAY, exports=relay_exports or {})


def walk_ring(start: MapRef, n: int) -> list[bytes]:
    """The b"v" values of n maps along b"next" from `start` (closing what it opens)."""
    values, here, opened = [], start, []
    for _ in range(n):
        values.append(here[b"v"])
        here = here.get_map(b"next")
        opened.append(here)
    for m in opened:
        m.close()
    return values
