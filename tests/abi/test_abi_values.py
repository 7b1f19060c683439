"""ABI conformance: get, set, delete, exists and len on one map."""

from __future__ import annotations

import pytest
from guest_driver import (
    ACCES,
    BUF,
    KEY,
    NOENT,
    OK,
    OUT,
    RANGE,
    TYPE,
    Driver,
    R,
    W,
    driver_fixture,
)
from stores_fixtures import every_store

from broker import Broker

d = driver_fixture()


class TestSetGet:
    @every_store
    @pytest.mark.parametrize(
        "key, value",
        [
            (b"k", b"v"),
            (b"", b"empty key"),
            (b"empty value", b""),
            (b"", b""),
            (b"\x00\xff\x00", bytes(range(256))),
            (b"big", bytes(i % 251 for i in range(20000))),
        ],
    )
    def test_round_trip(self, d: Driver, key: bytes, value: bytes) -> None:
        """Any key and value bytes, the empty ones included, come back unchanged."""
        h = d.map()
        assert d.set(h, key, value) == OK
        assert d.value(h, key) == value

    @every_store
    def test_set_replaces(self, d: Driver) -> None:
        """A second set of the same key replaces the value; the entry count stays 1."""
        h = d.map()
        assert d.set(h, b"k", b"first") == OK
        assert d.set(h, b"k", b"2nd") == OK
        assert d.value(h, b"k") == b"2nd"
        assert d.len(h) == (OK, 1)

    @every_store
    def test_keys_are_compared_by_bytes(self, d: Driver) -> None:
        """Keys differing in case, length or a trailing NUL are different keys."""
        h = d.map()
        for k in (b"k", b"K", b"k\x00", b"kk"):
            assert d.set(h, k, k + b"!") == OK
        assert d.len(h) == (OK, 4)
        assert d.value(h, b"k\x00") == b"k\x00!"

    @every_store
    def test_get_absent_is_noent(self, d: Driver) -> None:
        """get of an absent key is NOENT and writes neither buffer nor out_len."""
        assert d.get(d.map(), b"nope") == (NOENT, None)

    @every_store
    def test_get_writes_exactly_the_value(self, d: Driver) -> None:
        """get writes out_len and value bytes only: the rest of the buffer is untouched."""
        h = d.map()
        assert d.set(h, b"k", b"abc") == OK
        d.poison(BUF, 16)
        d.poison(OUT, 8)
        d.put(KEY, b"k")
        assert d.call("get", h, KEY, 1, BUF, 16, OUT) == OK
        assert d.read(BUF, 16) == b"abc" + b"\xaa" * 13
        assert d.read(OUT, 8) == (3).to_bytes(4, "little") + b"\xaa" * 4

    @every_store
    def test_buffer_of_exact_size_is_ok(self, d: Driver) -> None:
        """buf_cap equal to the value's length is enough."""
        h = d.map()
        assert d.set(h, b"k", b"12345") == OK
        assert d.get(h, b"k", cap=5) == (OK, b"12345")

    @every_store
    def test_empty_value_with_zero_capacity(self, d: Driver) -> None:
        """An empty value fits a zero-capacity buffer: OK, out_len 0."""
        h = d.map()
        assert d.set(h, b"k", b"") == OK
        assert d.get(h, b"k", cap=0) == (OK, b"")

    @every_store
    @pytest.mark.parametrize("cap", [0, 1, 4])
    def test_small_buffer_is_range_with_needed_size(self, d: Driver, cap: int) -> None:
        """A buffer too small gives RANGE, the needed size in out_len, the buffer untouched."""
        h = d.map()
        assert d.set(h, b"k", b"12345") == OK
        assert d.get(h, b"k", cap=cap) == (RANGE, 5)

    @every_store
    def test_range_then_retry_with_needed_size(self, d: Driver) -> None:
        """The size RANGE reports is exactly enough for a second get."""
        h = d.map()
        assert d.set(h, b"k", b"x" * 300) == OK
        err, need = d.get(h, b"k", cap=10)
        assert (err, need) == (RANGE, 300)
        assert d.get(h, b"k", cap=300) == (OK, b"x" * 300)

    def test_get_on_map_reference_is_type(self, d: Driver) -> None:
        """get of a key holding a map reference is TYPE."""
        h, child = d.new(), d.new()
        assert d.set_map(h, b"m", child) == OK
        assert d.get(h, b"m") == (TYPE, None)

    @every_store
    def test_get_needs_read(self, d: Driver) -> None:
        """get through a WRITE-only handle is ACCES."""
        h = d.map()
        assert d.set(h, b"k", b"v") == OK
        _, wo = d.clone(h, W)
        assert d.get(wo, b"k") == (ACCES, None)

    @every_store
    def test_set_needs_write(self, d: Driver) -> None:
        """set through a READ-only handle is ACCES and changes nothing."""
        h = d.map()
        _, ro = d.clone(h, R)
        assert d.set(ro, b"k", b"v") == ACCES
        assert d.len(h) == (OK, 0)

    def test_set_over_map_reference_releases_child(self, d: Driver, broker: Broker) -> None:
        """Replacing a map reference by bytes releases the child (reclaimed if unreferenced)."""
        h, child = d.new(), d.new()
        assert d.set_map(h, b"m", child) == OK
        assert d.close(child) == OK
        assert broker.stats()["maps"] == 2
        assert d.set(h, b"m", b"bytes") == OK
        assert broker.stats()["maps"] == 1
        assert d.value(h, b"m") == b"bytes"


class TestDelete:
    @every_store
    def test_delete_removes(self, d: Driver) -> None:
        """After delete the key is absent and len drops by one."""
        h = d.map()
        d.set(h, b"a", b"1")
        d.set(h, b"b", b"2")
        assert d.delete(h, b"a") == OK
        assert d.get(h, b"a") == (NOENT, None)
        assert d.exists(h, b"a") == (OK, 0)
        assert d.len(h) == (OK, 1)
        assert d.value(h, b"b") == b"2"

    @every_store
    def test_delete_absent_is_ok(self, d: Driver) -> None:
        """delete of an absent key is OK."""
        h = d.map()
        assert d.delete(h, b"never") == OK
        assert d.len(h) == (OK, 0)

    @every_store
    def test_delete_then_set_again(self, d: Driver) -> None:
        """A deleted key can be set again."""
        h = d.map()
        d.set(h, b"k", b"1")
        d.delete(h, b"k")
        assert d.set(h, b"k", b"2") == OK
        assert d.value(h, b"k") == b"2"

    @every_store
    def test_delete_needs_write(self, d: Driver) -> None:
        """delete through a READ-only handle is ACCES; the key stays."""
        h = d.map()
        d.set(h, b"k", b"v")
        _, ro = d.clone(h, R)
        assert d.delete(ro, b"k") == ACCES
        assert d.value(h, b"k") == b"v"

    def test_delete_map_reference_releases_child(self, d: Driver, broker: Broker) -> None:
        """Deleting a map reference releases the child map."""
        h, child = d.new(), d.new()
        d.set_map(h, b"m", child)
        d.close(child)
        assert broker.stats()["maps"] == 2
        assert d.delete(h, b"m") == OK
        assert broker.stats()["maps"] == 1


class TestExistsLen:
    @every_store
    def test_exists_is_one_or_zero(self, d: Driver) -> None:
        """exists writes 1 for a present key (even with an empty value) and 0 for absent."""
        h = d.map()
        d.set(h, b"k", b"")
        assert d.exists(h, b"k") == (OK, 1)
        assert d.exists(h, b"x") == (OK, 0)

    def test_exists_on_map_reference(self, d: Driver) -> None:
        """A map reference exists like any value."""
        h = d.new()
        d.set_map(h, b"m", d.new())
        assert d.exists(h, b"m") == (OK, 1)

    def test_len_counts_entries_and_references(self, d: Driver) -> None:
        """len counts every entry, map references included, and follows deletes."""
        h = d.new()
        for i in range(5):
            d.set(h, b"k%d" % i, b"v")
        d.set_map(h, b"m", d.new())
        assert d.len(h) == (OK, 6)
        d.delete(h, b"k0")
        assert d.len(h) == (OK, 5)

    @every_store
    @pytest.mark.parametrize("op", ["exists", "len"])
    def test_needs_read(self, d: Driver, op: str) -> None:
        """exists and len through a WRITE-only handle are ACCES."""
        _, wo = d.clone(d.map(), W)
        err, _ = d.exists(wo, b"k") if op == "exists" else d.len(wo)
        assert err == ACCES
