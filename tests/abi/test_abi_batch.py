"""ABI conformance: get_many and set_many, the batch calls."""

from __future__ import annotations

import pytest
from guest_driver import (
    ACCES,
    BADF,
    BUF,
    INVAL,
    OK,
    OUT,
    RANGE,
    STALE,
    TYPE,
    VAL,
    Driver,
    R,
    W,
    driver_fixture,
    pack_items,
    pack_keys,
)
from stores_fixtures import every_store

from broker import Broker

d = driver_fixture()

ABSENT = (0xFFFFFFFF).to_bytes(4, "little")


def record(data: bytes) -> bytes:
    return len(data).to_bytes(4, "little") + data


class TestGetMany:
    @every_store
    def test_values_in_key_order(self, d: Driver) -> None:
        """Values come back in the order of the keys, absent ones as None."""
        h = d.map()
        d.set(h, b"a", b"1")
        d.set(h, b"b", b"")
        d.set(h, b"c", b"333")
        assert d.get_many(h, [b"c", b"x", b"a", b"b", b"a"]) == (
            OK,
            [b"333", None, b"1", b"", b"1"],
        )

    @every_store
    def test_exact_output_layout(self, d: Driver) -> None:
        """u32 length + bytes per value, 0xFFFFFFFF with no bytes for absent; out_used exact."""
        h = d.map()
        d.set(h, b"a", b"xy")
        keys = pack_keys([b"a", b"missing", b"a"])
        d.put(VAL, keys)
        d.poison(BUF, 32)
        d.poison(OUT, 8)
        assert d.call("get_many", h, VAL, len(keys), BUF, 32, OUT) == OK
        expected = record(b"xy") + ABSENT + record(b"xy")
        assert d.u32(OUT) == len(expected) == 16
        assert d.untouched(OUT + 4, 4)
        assert d.read(BUF, 17) == expected + b"\xaa"

    @every_store
    def test_empty_key_list(self, d: Driver) -> None:
        """An empty key list is OK with out_used 0."""
        assert d.get_many(d.map(), [], cap=0) == (OK, [])

    @every_store
    def test_empty_key_is_a_key(self, d: Driver) -> None:
        """A zero-length record is the empty key."""
        h = d.map()
        d.set(h, b"", b"empty")
        assert d.get_many(h, [b""]) == (OK, [b"empty"])

    @every_store
    def test_small_buffer_is_range_with_total(self, d: Driver) -> None:
        """A buffer too small gives RANGE with the total size needed; the buffer is untouched."""
        h = d.map()
        d.set(h, b"a", b"12345")
        need = 4 + 5 + 4 + 4 + 5
        assert d.get_many(h, [b"a", b"nope", b"a"], cap=need - 1) == (RANGE, need)
        assert d.get_many(h, [b"a", b"nope", b"a"], cap=need)[0] == OK

    @every_store
    def test_all_absent_needs_four_bytes_each(self, d: Driver) -> None:
        """Absent keys take 4 bytes each: 3 of them need 12."""
        h = d.map()
        assert d.get_many(h, [b"x", b"y", b"z"], cap=11) == (RANGE, 12)
        assert d.get_many(h, [b"x", b"y", b"z"], cap=12) == (OK, [None, None, None])

    def test_map_reference_is_type_for_the_whole_call(self, d: Driver) -> None:
        """A map reference under any key makes the call TYPE and writes nothing."""
        h = d.new()
        d.set(h, b"a", b"1")
        d.set_map(h, b"m", d.new())
        assert d.get_many(h, [b"a", b"m"]) == (TYPE, None)

    def test_type_before_range(self, d: Driver) -> None:
        """A map reference is TYPE even when the buffer is also too small."""
        h = d.new()
        d.set(h, b"a", b"x" * 100)
        d.set_map(h, b"m", d.new())
        assert d.get_many(h, [b"a", b"m"], cap=8) == (TYPE, None)

    @every_store
    def test_needs_read(self, d: Driver) -> None:
        """get_many through a WRITE-only handle is ACCES."""
        _, wo = d.clone(d.map(), W)
        assert d.get_many(wo, [b"a"]) == (ACCES, None)

    @every_store
    @pytest.mark.parametrize(
        "raw",
        [
            b"\x01\x00\x00",  # a length prefix cut short
            b"\x05\x00\x00\x00ab",  # fewer bytes than the length says
            pack_keys([b"ok"]) + b"\x00",  # a trailing stray byte
            pack_keys([b"ok"]) + b"\xff\xff\xff\xff",  # a length running past the end
        ],
    )
    def test_malformed_key_list_is_inval(self, d: Driver, raw: bytes) -> None:
        """A truncated record in the key list is INVAL and writes nothing."""
        h = d.map()
        d.set(h, b"ok", b"v")
        d.put(VAL, raw)
        d.poison(BUF, 64)
        d.poison(OUT, 4)
        assert d.call("get_many", h, VAL, len(raw), BUF, 64, OUT) == INVAL
        assert d.untouched(BUF, 64) and d.untouched(OUT, 4)

    @every_store
    def test_malformed_checked_before_handle(self, d: Driver) -> None:
        """INVAL (malformed list) comes before BADF (handle 0)."""
        d.put(VAL, b"\x09\x00\x00\x00")
        assert d.call("get_many", 0, VAL, 4, BUF, 64, OUT) == INVAL

    @every_store
    @pytest.mark.parametrize(
        "buf_off, cap",
        [(0, 64), (-4, 8), (8, 64), (-60, 64 + 4)],
    )
    def test_output_overlapping_keys_is_inval(self, d: Driver, buf_off: int, cap: int) -> None:
        """An output buffer overlapping the key list is INVAL."""
        h = d.map()
        d.set(h, b"ab", b"v")
        keys = pack_keys([b"ab", b"ab"])  # 12 bytes at VAL
        d.put(VAL, keys)
        d.poison(OUT, 4)
        assert d.call("get_many", h, VAL, len(keys), VAL + buf_off, cap, OUT) == INVAL
        assert d.read(VAL, len(keys)) == keys
        assert d.untouched(OUT, 4)

    @every_store
    def test_adjacent_buffer_is_fine(self, d: Driver) -> None:
        """A buffer that ends where the key list starts, or starts where it ends, is OK."""
        h = d.map()
        d.set(h, b"ab", b"v")
        keys = pack_keys([b"ab"])
        d.put(VAL, keys)
        assert d.call("get_many", h, VAL, len(keys), VAL + len(keys), 16, OUT) == OK
        assert d.call("get_many", h, VAL, len(keys), VAL - 16, 16, OUT) == OK
        assert d.read(VAL - 16, 5) == record(b"v")

    @every_store
    def test_overlap_checked_before_handle(self, d: Driver) -> None:
        """INVAL (overlap) comes before BADF (handle 0)."""
        keys = pack_keys([b"a"])
        d.put(VAL, keys)
        assert d.call("get_many", 0, VAL, len(keys), VAL, 64, OUT) == INVAL

    @every_store
    def test_stale_handle(self, d: Driver) -> None:
        """get_many on a closed handle is STALE."""
        h = d.map()
        d.close(h)
        assert d.get_many(h, [b"a"]) == (STALE, None)


class TestSetMany:
    @every_store
    def test_sets_every_item(self, d: Driver) -> None:
        """Every item of the batch is written."""
        h = d.map()
        items = [(b"a", b"1"), (b"", b"empty key"), (b"c", b""), (b"d", b"x" * 1000)]
        assert d.set_many(h, items) == OK
        assert d.len(h) == (OK, 4)
        for k, v in items:
            assert d.value(h, k) == v

    @every_store
    def test_empty_batch(self, d: Driver) -> None:
        """An empty batch is OK and writes nothing."""
        h = d.map()
        assert d.set_many(h, []) == OK
        assert d.len(h) == (OK, 0)

    @every_store
    def test_replaces_existing(self, d: Driver) -> None:
        """Items over existing keys replace their values."""
        h = d.map()
        d.set(h, b"a", b"old")
        assert d.set_many(h, [(b"a", b"new"), (b"b", b"2")]) == OK
        assert d.value(h, b"a") == b"new"

    @every_store
    def test_repeated_key_later_wins(self, d: Driver) -> None:
        """A key repeated in the batch ends with the later value, as one entry."""
        h = d.map()
        assert d.set_many(h, [(b"k", b"first"), (b"x", b"1"), (b"k", b"second")]) == OK
        assert d.value(h, b"k") == b"second"
        assert d.len(h) == (OK, 2)

    @every_store
    def test_each_item_takes_a_version(self, d: Driver) -> None:
        """Items are written in order, each with a larger version."""
        h = d.map()
        assert d.set_many(h, [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]) == OK
        versions = [d.version(h, k)[1] for k in (b"a", b"b", b"c")]
        assert versions == sorted(versions) and len(set(versions)) == 3

    def test_over_map_reference_releases_child(self, d: Driver, broker: Broker) -> None:
        """An item over a map reference replaces it and releases the child."""
        h, child = d.new(), d.new()
        d.set_map(h, b"m", child)
        d.close(child)
        assert d.set_many(h, [(b"m", b"bytes")]) == OK
        assert broker.stats()["maps"] == 1
        assert d.value(h, b"m") == b"bytes"

    @every_store
    @pytest.mark.parametrize(
        "tail",
        [
            b"\x01\x00\x00\x00k",  # a key with no value length
            b"\x01\x00\x00\x00k\x05\x00\x00\x00ab",  # a value shorter than its length
            b"\x01\x00",  # a key length cut short
            b"\x09\x00\x00\x00k",  # a key shorter than its length
            b"\x01\x00\x00\x00k\x00\x00",  # a value length cut short
        ],
    )
    def test_malformed_batch_is_inval_and_writes_nothing(self, d: Driver, tail: bytes) -> None:
        """A malformed record anywhere refuses the whole batch with INVAL."""
        h = d.map()
        raw = pack_items([(b"a", b"1"), (b"b", b"2")]) + tail
        d.put(VAL, raw)
        assert d.call("set_many", h, VAL, len(raw)) == INVAL
        assert d.len(h) == (OK, 0)

    @every_store
    def test_malformed_checked_before_handle(self, d: Driver) -> None:
        """INVAL (malformed batch) comes before BADF (handle 0)."""
        d.put(VAL, b"\x01\x00\x00\x00k")
        assert d.call("set_many", 0, VAL, 5) == INVAL

    @every_store
    def test_needs_write(self, d: Driver) -> None:
        """set_many through a READ-only handle is ACCES and writes nothing."""
        h = d.map()
        _, ro = d.clone(h, R)
        assert d.set_many(ro, [(b"a", b"1")]) == ACCES
        assert d.len(h) == (OK, 0)

    @every_store
    def test_bad_handles(self, d: Driver) -> None:
        """set_many on handle 0 is BADF, on a closed handle STALE."""
        h = d.map()
        d.close(h)
        assert d.set_many(0, [(b"a", b"1")]) == BADF
        assert d.set_many(h, [(b"a", b"1")]) == STALE

    @every_store
    def test_reads_items_from_memory(self, d: Driver) -> None:
        """items_ptr/items_len select exactly the batch bytes given."""
        h = d.map()
        raw = pack_items([(b"a", b"1")])
        d.put(VAL, b"junk" + raw + b"junk")
        assert d.call("set_many", h, VAL + 4, len(raw)) == OK
        assert d.list_keys(h) == [b"a"]
