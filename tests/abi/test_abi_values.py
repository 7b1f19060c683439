"""ABI conformance: get, set, delete, exists, len, incr, version and set_if on one map."""

from __future__ import annotations

import pytest
from guest_driver import (
    ACCES,
    BUF,
    CONFLICT,
    KEY,
    NOENT,
    OK,
    OUT,
    RANGE,
    TYPE,
    VAL,
    Driver,
    R,
    W,
    driver_fixture,
)
from stores_fixtures import every_store

from broker import Broker

d = driver_fixture()

I64_MAX, I64_MIN = 2**63 - 1, -(2**63)


def le64(v: int) -> bytes:
    return (v & (2**64 - 1)).to_bytes(8, "little")


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


class TestIncr:
    @every_store
    def test_absent_key_starts_at_zero(self, d: Driver) -> None:
        """incr of an absent key stores and returns delta."""
        h = d.map()
        assert d.incr(h, b"n", 5) == (OK, 5)
        assert d.value(h, b"n") == le64(5)

    @every_store
    def test_adds_to_existing(self, d: Driver) -> None:
        """incr adds to the stored little-endian i64, negative deltas included."""
        h = d.map()
        d.set(h, b"n", le64(40))
        assert d.incr(h, b"n", 2) == (OK, 42)
        assert d.incr(h, b"n", -50) == (OK, -8)
        assert d.value(h, b"n") == le64(-8)

    @every_store
    def test_wraps_like_i64_add(self, d: Driver) -> None:
        """Overflow wraps around like i64.add."""
        h = d.map()
        d.set(h, b"n", le64(I64_MAX))
        assert d.incr(h, b"n", 1) == (OK, I64_MIN)
        assert d.incr(h, b"n", -1) == (OK, I64_MAX)

    @every_store
    def test_delta_zero_reads(self, d: Driver) -> None:
        """incr by 0 returns the current value."""
        h = d.map()
        d.set(h, b"n", le64(-7))
        assert d.incr(h, b"n", 0) == (OK, -7)

    @every_store
    def test_unsigned_delta_is_the_same_i64(self, d: Driver) -> None:
        """The i64 delta 0xFFFF...FF is -1."""
        h = d.map()
        d.set(h, b"n", le64(10))
        assert d.incr(h, b"n", 2**64 - 1) == (OK, 9)

    @every_store
    @pytest.mark.parametrize("value", [b"", b"1234567", b"123456789", b"12"])
    def test_non_eight_byte_value_is_type(self, d: Driver, value: bytes) -> None:
        """A stored value of any length but 8 is TYPE, and it stays as it was."""
        h = d.map()
        d.set(h, b"n", value)
        _, before = d.version(h, b"n")
        assert d.incr(h, b"n", 1) == (TYPE, None)
        assert d.value(h, b"n") == value
        assert d.version(h, b"n") == (OK, before)

    def test_map_reference_is_type(self, d: Driver) -> None:
        """incr on a map reference is TYPE."""
        h = d.new()
        d.set_map(h, b"m", d.new())
        assert d.incr(h, b"m", 1) == (TYPE, None)

    @every_store
    @pytest.mark.parametrize("rights", [R, W])
    def test_needs_read_and_write(self, d: Driver, rights: int) -> None:
        """incr needs READ and WRITE: either one alone is ACCES."""
        h = d.map()
        _, lesser = d.clone(h, rights)
        assert d.incr(lesser, b"n", 1) == (ACCES, None)
        assert d.exists(h, b"n") == (OK, 0)

    @every_store
    def test_out_is_little_endian_i64(self, d: Driver) -> None:
        """The result is written as 8 little-endian bytes at out_i64."""
        h = d.map()
        d.put(KEY, b"n")
        d.poison(OUT, 12)
        assert d.call("incr", h, KEY, 1, -2, OUT + 1) == OK
        assert d.read(OUT, 12) == b"\xaa" + le64(-2) + b"\xaa" * 3


class TestVersion:
    @every_store
    def test_absent_is_zero(self, d: Driver) -> None:
        """The version of an absent key is 0."""
        assert d.version(d.map(), b"k") == (OK, 0)

    @every_store
    def test_every_write_increases_it(self, d: Driver) -> None:
        """set, a same-value set, set_if, incr (also by 0), set_many (also one naming
        the key twice) and set_map each give a larger version."""
        h = d.map()
        seen = [0]

        def step(err: int) -> None:
            assert err == OK
            _, v = d.version(h, b"k")
            assert v is not None and v > seen[-1]
            seen.append(v)

        step(d.set(h, b"k", le64(1)))
        step(d.set(h, b"k", le64(1)))
        step(d.set_if(h, b"k", le64(2), seen[-1]))
        step(d.incr(h, b"k", 1)[0])
        step(d.incr(h, b"k", 0)[0])
        step(d.set_many(h, [(b"k", le64(3))]))
        step(d.set_many(h, [(b"k", b"a"), (b"other", b"x"), (b"k", b"b")]))
        if d.broker.store is None:  # a store-backed map holds no map references
            step(d.set_map(h, b"k", d.new()))
        step(d.set(h, b"k", b"bytes again"))

    @every_store
    def test_reads_do_not_change_it(self, d: Driver) -> None:
        """get, exists, keys, len and version itself leave the version alone."""
        h = d.map()
        d.set(h, b"k", b"v")
        _, v = d.version(h, b"k")
        d.get(h, b"k")
        d.exists(h, b"k")
        d.len(h)
        d.list_keys(h)
        d.get_many(h, [b"k"])
        assert d.version(h, b"k") == (OK, v)

    @every_store
    def test_failed_writes_do_not_change_it(self, d: Driver) -> None:
        """A write refused (CONFLICT, TYPE, ACCES) leaves the version as it was."""
        h = d.map()
        d.set(h, b"k", b"not 8 bytes")
        _, v = d.version(h, b"k")
        _, ro = d.clone(h, R)
        assert d.set_if(h, b"k", b"x", v + 1000) == CONFLICT
        assert d.incr(h, b"k", 1)[0] == TYPE
        assert d.set(ro, b"k", b"x") == ACCES
        assert d.version(h, b"k") == (OK, v)

    @every_store
    def test_delete_then_recreate_never_reuses(self, d: Driver) -> None:
        """A deleted key reads 0; re-created it gets a version above every earlier one."""
        h = d.map()
        d.set(h, b"k", b"1")
        _, v1 = d.version(h, b"k")
        d.delete(h, b"k")
        assert d.version(h, b"k") == (OK, 0)
        d.set(h, b"k", b"1")
        _, v2 = d.version(h, b"k")
        assert v2 is not None and v1 is not None and v2 > v1

    def test_one_counter_for_the_whole_broker(self, broker: Broker) -> None:
        """Writes in different maps and modules take strictly increasing versions."""
        a, b = Driver(broker, "a"), Driver(broker, "b")
        ha, hb = a.new(), b.new()
        versions = []
        for i in range(4):
            drv, h = (a, ha) if i % 2 == 0 else (b, hb)
            assert drv.set(h, b"k%d" % i, b"v") == OK
            versions.append(drv.version(h, b"k%d" % i)[1])
        assert versions == sorted(versions) and len(set(versions)) == 4

    def test_version_of_map_reference(self, d: Driver) -> None:
        """A map reference has a version like any value."""
        h = d.new()
        d.set_map(h, b"m", d.new())
        err, v = d.version(h, b"m")
        assert err == OK and v is not None and v > 0

    @every_store
    def test_needs_read(self, d: Driver) -> None:
        """version through a WRITE-only handle is ACCES."""
        _, wo = d.clone(d.map(), W)
        assert d.version(wo, b"k") == (ACCES, None)

    @every_store
    def test_out_is_little_endian_u64(self, d: Driver) -> None:
        """The version is written as 8 little-endian bytes at out_u64."""
        h = d.map()
        d.set(h, b"k", b"v")
        _, v = d.version(h, b"k")
        d.poison(OUT, 10)
        assert d.call("version", h, KEY, 1, OUT + 1) == OK
        assert d.read(OUT, 10) == b"\xaa" + le64(v or 0) + b"\xaa"


class TestSetIf:
    @every_store
    def test_expected_zero_creates_when_absent(self, d: Driver) -> None:
        """set_if with expected 0 succeeds only while the key is absent."""
        h = d.map()
        assert d.set_if(h, b"k", b"first", 0) == OK
        assert d.value(h, b"k") == b"first"
        assert d.set_if(h, b"k", b"second", 0) == CONFLICT
        assert d.value(h, b"k") == b"first"

    @every_store
    def test_current_version_succeeds(self, d: Driver) -> None:
        """set_if with the current version writes and gives a new, larger version."""
        h = d.map()
        d.set(h, b"k", b"1")
        _, v = d.version(h, b"k")
        assert d.set_if(h, b"k", b"2", v) == OK
        assert d.value(h, b"k") == b"2"
        _, v2 = d.version(h, b"k")
        assert v2 > v

    @every_store
    def test_stale_version_conflicts(self, d: Driver) -> None:
        """set_if with an older version is CONFLICT and leaves value and version alone."""
        h = d.map()
        d.set(h, b"k", b"1")
        _, v = d.version(h, b"k")
        d.set(h, b"k", b"2")
        _, v2 = d.version(h, b"k")
        assert d.set_if(h, b"k", b"3", v) == CONFLICT
        assert d.value(h, b"k") == b"2"
        assert d.version(h, b"k") == (OK, v2)

    @every_store
    def test_nonzero_expected_on_absent_conflicts(self, d: Driver) -> None:
        """set_if with a nonzero version on an absent key is CONFLICT."""
        h = d.map()
        assert d.set_if(h, b"k", b"v", 1) == CONFLICT
        assert d.exists(h, b"k") == (OK, 0)

    @every_store
    def test_version_of_deleted_key_conflicts(self, d: Driver) -> None:
        """The version a key had before delete does not match the recreated key."""
        h = d.map()
        d.set(h, b"k", b"1")
        _, v = d.version(h, b"k")
        d.delete(h, b"k")
        d.set(h, b"k", b"1")
        assert d.set_if(h, b"k", b"2", v) == CONFLICT

    @every_store
    @pytest.mark.parametrize("expected", [-1, 2**63, 2**64 - 1])
    def test_expected_is_compared_unsigned(self, d: Driver, expected: int) -> None:
        """Huge and negative expected values match no version (compared as u64)."""
        h = d.map()
        d.set(h, b"k", b"v")
        assert d.set_if(h, b"k", b"x", expected) == CONFLICT

    @every_store
    @pytest.mark.parametrize("rights", [R, W])
    def test_needs_read_and_write(self, d: Driver, rights: int) -> None:
        """set_if needs READ and WRITE: either one alone is ACCES."""
        h = d.map()
        _, lesser = d.clone(h, rights)
        assert d.set_if(lesser, b"k", b"v", 0) == ACCES
        assert d.exists(h, b"k") == (OK, 0)

    def test_set_if_over_map_reference(self, d: Driver, broker: Broker) -> None:
        """set_if with a map reference's version replaces it by bytes and releases the child."""
        h, child = d.new(), d.new()
        d.set_map(h, b"m", child)
        d.close(child)
        _, v = d.version(h, b"m")
        assert d.set_if(h, b"m", b"bytes", v) == OK
        assert d.value(h, b"m") == b"bytes"
        assert broker.stats()["maps"] == 1

    @every_store
    def test_reads_value_from_memory(self, d: Driver) -> None:
        """set_if takes the value at val_ptr/val_len exactly."""
        h = d.map()
        d.put(KEY, b"k")
        d.put(VAL, b"0123456789")
        assert d.call("set_if", h, KEY, 1, VAL + 2, 3, 0) == OK
        assert d.value(h, b"k") == b"234"
