"""Bad buffers through tests/guests/raw_caller.wat: arbitrary bytes as get_many and
set_many batches (malformed is INVAL), and pointer/length pairs whose sum wraps
around 2^32, never taken for valid memory.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from raw_caller import OUT_AREA, SIGNATURES, SLOW_AND_FRESH, batch, flatten, make_world
from stores_fixtures import every_store

from broker import Broker
from broker.abi import Errno


@every_store
class TestBatchBuffers:
    """Arbitrary bytes as batch buffers: malformed is INVAL, well-formed does what it says."""

    @staticmethod
    def parse(data: bytes, fields: int) -> list[list[bytes]] | None:
        """Items of `fields` (u32 length + bytes) records, or None when malformed."""
        items, at = [], 0
        while at < len(data):
            item = []
            for _ in range(fields):
                if len(data) - at < 4:
                    return None
                n = int.from_bytes(data[at : at + 4], "little")
                at += 4
                if len(data) - at < n:
                    return None
                item.append(data[at : at + n])
                at += n
            items.append(item)
        return items

    records = st.lists(st.tuples(st.binary(max_size=6), st.binary(max_size=6)), max_size=4).map(
        lambda items: b"".join(batch(k, v) for k, v in items)
    )
    buffers = st.one_of(
        st.binary(max_size=48),
        records,
        st.tuples(records, st.integers(0, 40)).map(lambda t: t[0][: t[1]]),
        st.tuples(records, st.binary(min_size=1, max_size=6)).map(lambda t: t[0] + t[1]),
    )

    @settings(max_examples=150, deadline=None, suppress_health_check=SLOW_AND_FRESH)
    @given(data=buffers)
    def test_set_many_is_all_or_nothing(self, fresh_store: Callable[[], str], data: bytes) -> None:
        """set_many of arbitrary bytes is INVAL (nothing changes) or OK with exactly its items."""
        with Broker(fresh_store()) as broker:
            w = make_world(broker)
            at = OUT_AREA + 0x100
            w.poke(at, data)
            scratch = w.handles["scratch"]
            errno = w.call("set_many", scratch, at, len(data))
            items = self.parse(data, 2)
            host = broker.host
            view = host.op_open(b"scratch", 1)
            if items is None:
                assert errno == Errno.INVAL
                assert host.op_keys(view) == []
            else:
                assert errno == Errno.OK
                expected: dict[bytes, bytes] = {}
                for key, value in items:
                    expected[key] = value  # a repeated key: the later item wins
                assert {k: host.op_get(view, k) for k in host.op_keys(view)} == expected

    @settings(max_examples=150, deadline=None, suppress_health_check=SLOW_AND_FRESH)
    @given(data=buffers)
    def test_get_many_parses_exactly(self, fresh_store: Callable[[], str], data: bytes) -> None:
        """get_many of arbitrary bytes is INVAL when malformed, else one value per key, in order."""
        with Broker(fresh_store()) as broker:
            w = make_world(broker)
            at, out = OUT_AREA + 0x100, OUT_AREA + 0x400
            w.poke(at, data)
            errno = w.call("get_many", w.handles["scratch"], at, len(data), out, 0x800, OUT_AREA)
            items = self.parse(data, 1)
            if items is None:
                assert errno == Errno.INVAL
                return
            assert errno == Errno.OK
            assert w.peek(OUT_AREA, 4) == 4 * len(items)  # scratch is empty: every key absent
            for i in range(len(items)):
                assert w.peek(out + 4 * i, 4) == 0xFFFFFFFF


@every_store
class TestWrapAround:
    """A pointer/length pair whose sum wraps around 2^32 is never taken for valid memory."""

    @pytest.mark.parametrize("name", sorted(SIGNATURES))
    def test_wrap_around_is_fault(self, broker: Broker, name: str) -> None:
        """A pair that wraps into low memory is FAULT, for every function with a pointer."""
        w = make_world(broker)
        wrap = (0xFFFFFFF0, 0x20)  # ends at 0x10: inside memory only if the sum wraps
        args = []
        for kind in SIGNATURES[name]:
            args.append(
                {
                    "h": "rw",
                    "span": wrap,
                    "out4": 0xFFFFFFFE,
                    "out8": 0xFFFFFFFC,
                    "rights": 3,
                    "i64": 0,
                }[kind]
            )
        raw, pairs, _ = flatten(w, name, tuple(args))
        expected = Errno.FAULT if pairs else Errno.OK
        assert w.call(name, *raw) == expected
