"""The guest every store benchmark runs, and how contenders take turns (bench_store.py).

`guest_broker(url)` loads benchmarks/guests/store_loop.wat into a broker on
that store and stores the get_many keys; `guest_loop(broker, op)` is a run
of n guest operations in one export call.  `side_by_side` times contenders
round by round, so a burst of load elsewhere lands on one round of all of
them; `paired` is the median of per-round ratios.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _harness import repeat

from broker import Broker
from broker.stores import Store

GUEST = Path(__file__).parent / "guests" / "store_loop.wat"
MAP = "bench"  # the named map the guest opens
OK = 0
KEY = b"bench-key-single"  # the guest's key for get and set (16 bytes)
VALUE = b"0123456789abcdef" * 6 + b"WXYZ"  # the guest's value for set (100 bytes)
MANY = 1_000  # keys per get_many
MANY_KEYS = [f"bench-key-{i:06d}".encode() for i in range(MANY)]  # as the guest builds them
MANY_VALUES = [(f"{i:06d}" * 17)[:100].encode() for i in range(MANY)]

Run = Callable[[int], None]


@dataclass
class Contender:
    """One column of a row: `run(n)` performs n operations."""

    label: str
    run: Run
    n: int


def guest_broker(url: str | Store) -> Broker:
    """A broker on store `url`, the guest loaded and set up, the get_many keys stored."""
    broker = Broker(store=url)
    broker.load("bench", GUEST, grants={MAP: "rw"})
    if broker.call("bench.setup") != OK:
        raise RuntimeError(f"{url}: guest setup (open {MAP!r}) failed")
    with broker.open(MAP) as ref:
        ref.set_many(list(zip(MANY_KEYS, MANY_VALUES, strict=True)))
    return broker


def guest_loop(broker: Broker, op: str) -> Run:
    """run(n): n guest calls of `op` in one export call, checked to have all returned OK."""
    export, extra = {
        "get": ("bench.get_loop", ()),
        "set": ("bench.set_loop", ()),
        "get_many": ("bench.get_many_loop", (MANY,)),
    }[op]

    def run(n: int) -> None:
        bad = broker.call(export, n, *extra)
        if bad:
            raise RuntimeError(f"{broker.store_url}: {bad} of {n} guest {op} calls were not OK")

    return run


def check_guest(broker: Broker) -> None:
    """One set, get and get_many: the guest sees the bytes that were stored."""
    url = broker.store_url
    guest_loop(broker, "set")(1)
    guest_loop(broker, "get")(1)
    if broker.call("bench.value_ok") != 1:
        raise RuntimeError(f"{url}: get did not return the value that was set")
    guest_loop(broker, "get_many")(1)
    used = broker.call("bench.out_len")
    if used != MANY * (4 + len(VALUE)):
        raise RuntimeError(f"{url}: get_many used {used} bytes")
    last = (MANY - 1) * (4 + len(VALUE)) + 4  # the last value's first byte
    if broker.call("bench.many_byte", last) != MANY_VALUES[-1][0]:
        raise RuntimeError(f"{url}: get_many returned the wrong bytes")


def calls(fn: Callable[..., object], *args: object) -> Run:
    """run(n): n calls of fn(*args) from Python."""

    def run(n: int) -> None:
        for _ in range(n):
            fn(*args)

    return run


def side_by_side(contenders: list[Contender], rounds: int) -> list[list[float]]:
    """One warm-up each, then `rounds` rounds taking turns; ns per op, per contender per round.

    Every column of a round runs within a few hundred ms of the others, so
    a burst of load elsewhere on the machine lands on one round of all of
    them rather than on every run of one column.
    """
    for c in contenders:
        c.run(c.n)
    times: list[list[float]] = [[] for _ in contenders]
    for _ in range(rounds):
        for c, t in zip(contenders, times, strict=True):
            t += repeat(c.run, c.n, 1, warmup=0)
    return times


def paired(a: list[float], b: list[float]) -> float:
    """The median over rounds of a's figure / b's figure in the same round."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))
