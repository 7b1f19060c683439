"""ABI conformance: incr, version and set_if on one map: counters, versions, conditional writes."""

from __future__ import annotations

import pytest
from guest_driver import (
    ACCES,
    CONFLICT,
    KEY,
    OK,
    OUT,
    RW,
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

    def test_one_clock_per_map(self, broker: Broker) -> None:
        """Writes to one map, by any module, take strictly increasing versions;
        another map's writes do not move its clock (so that guests writing
        different maps in parallel share nothing)."""
        a = Driver(broker, "a", grants={"shared": "rw"})
        b = Driver(broker, "b", grants={"shared": "rw"})
        _, ha = a.open(b"shared", RW)
        _, hb = b.open(b"shared", RW)
        assert ha is not None and hb is not None
        versions = []
        for i in range(4):
            drv, h = (a, ha) if i % 2 == 0 else (b, hb)
            assert drv.set(h, b"k%d" % i, b"v") == OK
            versions.append(drv.version(h, b"k%d" % i)[1])
        assert versions == sorted(versions) and len(set(versions)) == 4
        other = a.new()
        for _ in range(3):
            assert a.set(other, b"x", b"v") == OK
        assert b.set(hb, b"k9", b"v") == OK
        assert b.version(hb, b"k9") == (OK, versions[-1] + 1)

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
