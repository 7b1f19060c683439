"""A backing store answers as memory does: the keys cursor while the map changes,
and random sequences of operations run side by side on a store and on memory.
"""

from __future__ import annotations

from typing import Any

from guest_driver import (
    RW,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stores_fixtures import backing_stores, every_store, unique_name

from broker import Broker
from broker.errors import ErrnoError


def le64(v: int) -> bytes:
    return (v & (2**64 - 1)).to_bytes(8, "little")


#: What happens between two pages: (what, which key, fresh bytes), a few times.
changes = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "overwrite"]),
        st.integers(0, 63),
        st.binary(max_size=5),
    ),
    max_size=4,
)


class TestKeysCursor:
    """The keys cursor while the map changes between pages."""

    @every_store
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        stable=st.lists(st.binary(max_size=6), unique=True, max_size=12),
        volatile=st.lists(st.binary(min_size=7, max_size=8), unique=True, max_size=8),
        cap=st.integers(12, 40),
        between=st.lists(changes, max_size=30),
    )
    def test_key_present_throughout_appears_once(
        self,
        broker: Broker,
        stable: list[bytes],
        volatile: list[bytes],
        cap: int,
        between: list[list[tuple[str, int, bytes]]],
    ) -> None:
        """Keys never deleted appear exactly once while others come and go between pages."""
        host = broker.host
        h = host.op_new() if broker.store is None else host.op_open(unique_name().encode(), RW)
        # stable and volatile keys interleaved, so deletes land before and after the cursor
        for key in sorted(stable + volatile):
            host.op_set(h, key, b"v")
        deletable = list(volatile)
        ever = set(stable) | set(volatile)
        listed: list[bytes] = []
        cursor, pages = 0, 0
        while True:
            page, cursor = host.op_keys_page(h, cursor, cap)  # keys of <= 8 bytes always fit
            listed += page
            if cursor == 0:
                break
            for what, which, fresh in between[pages] if pages < len(between) else []:
                if what == "insert":
                    key = b"new" + fresh
                    host.op_set(h, key, b"inserted")
                    if key not in stable:
                        deletable.append(key)
                    ever.add(key)
                elif what == "delete" and deletable:
                    host.op_delete(h, deletable[which % len(deletable)])
                elif what == "overwrite" and stable + deletable:
                    pool = stable + deletable  # a deleted key comes back as a new insertion
                    host.op_set(h, pool[which % len(pool)], b"overwritten")
            pages += 1
            assert pages < 1000, "the listing does not end"
        for key in stable:
            assert listed.count(key) == 1, f"{key!r} listed {listed.count(key)} times"
        assert set(listed) <= ever
        host.op_close(h)


I64_MIN, I64_MAX = -(2**63), 2**63 - 1
KEYS = [b"", b"a", b"b", b"\x00", b"key " * 8]
some_keys = st.sampled_from(KEYS)
some_values = st.one_of(
    st.binary(max_size=12), st.integers(I64_MIN, I64_MAX).map(le64), st.just(le64(I64_MAX))
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("set"), some_keys, some_values),
        st.tuples(st.just("delete"), some_keys),
        st.tuples(st.just("get"), some_keys),
        st.tuples(st.just("exists"), some_keys),
        st.tuples(st.just("len")),
        st.tuples(st.just("incr"), some_keys, st.sampled_from([0, 1, -1, I64_MAX, I64_MIN])),
        st.tuples(st.just("version"), some_keys),
        st.tuples(
            st.just("set_if"),
            some_keys,
            some_values,
            st.sampled_from(["absent", "current", "earlier", "never"]),
        ),
        st.tuples(st.just("get_many"), st.lists(some_keys, max_size=5)),
        st.tuples(st.just("set_many"), st.lists(st.tuples(some_keys, some_values), max_size=4)),
        st.tuples(st.just("page"), st.integers(0, 40)),
    ),
    max_size=40,
)


class Side:
    """One map under test, and what the comparison needs to remember about it."""

    def __init__(self, broker: Broker) -> None:
        self.host = broker.host
        self.h = self.host.op_open(unique_name().encode(), RW)
        self.cursor = 0  # of the listing in progress
        self.seen: dict[bytes, list[int]] = {}  # versions read, per key
        self.order: dict[int, int] = {0: 0}  # version -> the order it was first seen in

    def version(self, key: bytes) -> int:
        v = self.host.op_version(self.h, key)
        self.seen.setdefault(key, []).append(v)
        return self.order.setdefault(v, len(self.order))

    def expected(self, key: bytes, which: str) -> int:
        if which == "current":
            self.version(key)
            return self.seen[key][-1]
        if which == "earlier" and self.seen.get(key):
            return self.seen[key][0]
        return 0 if which == "absent" else I64_MAX

    def state(self) -> list[tuple[bytes | None, int]]:
        """Per key of KEYS: its value (None: absent) and version (in the order first seen)."""
        values = self.host.op_get_many(self.h, KEYS)
        return [(value, self.version(k)) for k, value in zip(KEYS, values, strict=True)]

    def do(self, op: tuple[Any, ...]) -> Any:
        """The outcome of `op`: its result, or the errno it raised."""
        host, h = self.host, self.h
        what, *args = op
        try:
            if what == "page":
                page, self.cursor = host.op_keys_page(h, self.cursor, args[0])
                return page, self.cursor == 0
            if what == "version":
                return self.version(args[0])
            if what == "set_if":
                key, value, which = args
                return host.op_set_if(h, key, value, self.expected(key, which))
            return getattr(host, f"op_{what}")(h, *args)
        except ErrnoError as exc:
            return exc.errno


class TestSameAnswersAsMemory:
    """A backing store against memory, operation by operation."""

    @backing_stores
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(ops=operations)
    def test_random_operations(self, broker: Broker, ops: list[tuple[Any, ...]]) -> None:
        """Any sequence of operations answers on a store exactly as on memory.

        After each one every key's value and version are compared too.
        Versions may differ in value (a store's clock outlives brokers), so
        they are compared by the order in which they were first seen."""
        with Broker() as memory:
            mine, theirs = Side(memory), Side(broker)
            for i, op in enumerate(ops):
                assert theirs.do(op) == mine.do(op), f"operation {i}: {op}"
                assert theirs.state() == mine.state(), f"after operation {i}: {op}"
            everything = ("get_many", mine.host.op_keys(mine.h))
            assert theirs.do(everything) == mine.do(everything)
            assert theirs.do(("len",)) == mine.do(("len",))
