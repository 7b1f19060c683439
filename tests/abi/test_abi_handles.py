"""ABI conformance: new, close, clone and the handle rules (encoding, BADF, STALE, rights)."""

from __future__ import annotations

import pytest
from guest_driver import (
    ACCES,
    BADF,
    INVAL,
    NOENT,
    OK,
    OUT,
    RW,
    STALE,
    Driver,
    R,
    W,
    driver_fixture,
)

from broker import Broker

d = driver_fixture()

INDEX_BITS = 21


def handle(gen: int, index: int) -> int:
    """The handle number docs/abi.md defines: generation above a 21-bit slot index."""
    return (gen << INDEX_BITS) | index


class TestNew:
    def test_first_handles_are_slot_indexes_with_generation_one(self, d: Driver) -> None:
        """The first handles issued are slot 0, 1, 2 with generation 1 (never 0)."""
        assert [d.new() for _ in range(3)] == [handle(1, 0), handle(1, 1), handle(1, 2)]

    def test_new_map_is_empty_and_writable(self, d: Driver) -> None:
        """A new map has no entries and its handle carries READ|WRITE."""
        h = d.new()
        assert d.len(h) == (OK, 0)
        assert d.set(h, b"k", b"v") == OK
        assert d.value(h, b"k") == b"v"

    def test_each_new_is_a_distinct_map(self, d: Driver, broker: Broker) -> None:
        """Two calls to new give two different maps."""
        a, b = d.new(), d.new()
        assert d.set(a, b"k", b"a") == OK
        assert d.get(b, b"k") == (NOENT, None)
        assert broker.stats()["maps"] == 2

    def test_new_writes_a_little_endian_u32(self, d: Driver) -> None:
        """The handle is written as 4 little-endian bytes at out_h and nothing more."""
        d.poison(OUT, 8)
        assert d.call("new", OUT + 1) == OK
        raw = d.read(OUT, 8)
        assert raw[0] == 0xAA and raw[5:] == b"\xaa\xaa\xaa"
        assert int.from_bytes(raw[1:5], "little") == handle(1, 0)

    def test_out_pointer_needs_no_alignment(self, d: Driver) -> None:
        """An odd out-pointer works: multi-byte outputs need no alignment."""
        assert d.call("new", OUT + 3) == OK
        assert d.u32(OUT + 3) == handle(1, 0)


class TestClose:
    def test_close_reclaims_an_unshared_map(self, d: Driver, broker: Broker) -> None:
        """Closing the only handle to an anonymous map reclaims it at once."""
        h = d.new()
        assert broker.stats()["maps"] == 1
        assert d.close(h) == OK
        assert broker.stats() == {"maps": 0, "named": 0, "handles": {"a": 0}}

    def test_close_twice_is_stale(self, d: Driver) -> None:
        """A closed handle gives STALE on a second close."""
        h = d.new()
        assert d.close(h) == OK
        assert d.close(h) == STALE

    def test_close_never_issued_is_badf(self, d: Driver) -> None:
        """Closing a number never issued is BADF."""
        assert d.close(handle(1, 0)) == BADF
        assert d.close(0) == BADF

    def test_closed_handle_is_stale_for_every_use(self, d: Driver) -> None:
        """After close the number gives STALE, not the map it used to reach."""
        h = d.new()
        assert d.set(h, b"k", b"v") == OK
        assert d.close(h) == OK
        assert d.get(h, b"k") == (STALE, None)
        assert d.set(h, b"k", b"w") == STALE


class TestHandleEncoding:
    def test_reused_slot_gets_next_generation(self, d: Driver) -> None:
        """A slot freed by close is reused with its generation bumped."""
        h1 = d.new()
        assert d.close(h1) == OK
        h2 = d.new()
        assert h2 == handle(2, 0)

    def test_stale_handle_never_reaches_the_slots_new_map(self, d: Driver) -> None:
        """The old number of a reused slot is STALE and cannot touch the new map."""
        old = d.new()
        assert d.close(old) == OK
        new = d.new()
        assert d.set(new, b"k", b"new") == OK
        assert d.set(old, b"k", b"old") == STALE
        assert d.get(old, b"k") == (STALE, None)
        assert d.value(new, b"k") == b"new"

    def test_generation_never_issued_is_badf(self, d: Driver) -> None:
        """A generation the slot has not reached yet is BADF, not STALE."""
        d.new()
        assert d.len(handle(2, 0)) == (BADF, None)
        assert d.len(handle(1023, 0)) == (BADF, None)

    def test_index_never_used_is_badf(self, d: Driver) -> None:
        """A slot index never used by this module is BADF."""
        d.new()
        assert d.len(handle(1, 1)) == (BADF, None)
        assert d.len(handle(1, (1 << INDEX_BITS) - 1)) == (BADF, None)

    @pytest.mark.parametrize("number", [0, 1, 0x80000000 | handle(1, 0), 0xFFFFFFFF, -1])
    def test_zero_generation_and_top_bit_are_badf(self, d: Driver, number: int) -> None:
        """Handle 0, generation 0 and numbers with the top bit set are never valid."""
        d.new()
        d.new()
        assert d.len(number) == (BADF, None)

    def test_slot_retired_after_generation_1023(self, d: Driver) -> None:
        """A slot is reused 1023 times, then retired: its last number stays STALE."""
        for gen in range(1, 1024):
            h = d.new()
            assert h == handle(gen, 0)
            assert d.close(h) == OK
        assert d.new() == handle(1, 1)  # slot 0 is spent: the next slot is used
        assert d.len(handle(1023, 0)) == (STALE, None)
        assert d.new() == handle(1, 2)


class TestHandlesPerModule:
    def test_same_number_in_two_modules_reaches_different_maps(self, broker: Broker) -> None:
        """Handle numbers are per module: each module's first handle is its own map."""
        a, b = Driver(broker, "a"), Driver(broker, "b")
        ha, hb = a.new(), b.new()
        assert ha == hb
        assert a.set(ha, b"k", b"from a") == OK
        assert b.get(hb, b"k") == (NOENT, None)
        assert a.value(ha, b"k") == b"from a"

    def test_other_modules_handle_is_badf(self, broker: Broker) -> None:
        """A number issued only to module b is BADF in module a."""
        a, b = Driver(broker, "a"), Driver(broker, "b")
        hb = b.new()
        assert a.set(hb, b"k", b"v") == BADF
        assert a.close(hb) == BADF
        assert b.len(hb) == (OK, 0)

    def test_closing_in_one_module_does_not_stale_the_other(self, broker: Broker) -> None:
        """Module a closing its handle 1 leaves module b's handle 1 alive."""
        a, b = Driver(broker, "a"), Driver(broker, "b")
        ha, hb = a.new(), b.new()
        assert a.close(ha) == OK
        assert b.len(hb) == (OK, 0)


class TestClone:
    def test_clone_reaches_the_same_map(self, d: Driver, broker: Broker) -> None:
        """A clone is a second handle number to the same map."""
        h = d.new()
        err, c = d.clone(h, RW)
        assert err == OK and c not in (None, h)
        assert d.set(h, b"k", b"v") == OK
        assert d.value(c, b"k") == b"v"
        assert broker.native_module("a").map_id(c) == broker.native_module("a").map_id(h)

    def test_clone_owns_a_reference(self, d: Driver, broker: Broker) -> None:
        """The map lives until both the original and the clone are closed."""
        h = d.new()
        _, c = d.clone(h, RW)
        assert d.set(h, b"k", b"v") == OK
        assert d.close(h) == OK
        assert broker.stats()["maps"] == 1
        assert d.value(c, b"k") == b"v"
        assert d.close(c) == OK
        assert broker.stats()["maps"] == 0

    def test_read_only_clone_cannot_write(self, d: Driver) -> None:
        """A clone with READ reads the map but every write is ACCES."""
        h = d.new()
        assert d.set(h, b"k", b"v") == OK
        _, ro = d.clone(h, R)
        assert d.value(ro, b"k") == b"v"
        assert d.set(ro, b"k", b"x") == ACCES
        assert d.delete(ro, b"k") == ACCES
        assert d.set_many(ro, [(b"a", b"b")]) == ACCES
        assert d.incr(ro, b"n", 1) == (ACCES, None)
        assert d.value(h, b"k") == b"v"

    def test_write_only_clone_cannot_read(self, d: Driver) -> None:
        """A clone with WRITE writes the map but every read is ACCES."""
        h = d.new()
        _, wo = d.clone(h, W)
        assert d.set(wo, b"k", b"v") == OK
        assert d.get(wo, b"k") == (ACCES, None)
        assert d.len(wo) == (ACCES, None)
        assert d.exists(wo, b"k") == (ACCES, None)
        assert d.value(h, b"k") == b"v"

    @pytest.mark.parametrize("wider", [RW, W])
    def test_clone_cannot_add_rights(self, d: Driver, wider: int) -> None:
        """Cloning a READ handle with a right it lacks is ACCES (attenuation only)."""
        _, ro = d.clone(d.new(), R)
        assert d.clone(ro, wider) == (ACCES, None)

    def test_attenuation_is_transitive(self, d: Driver) -> None:
        """A clone of a read-only clone is read-only too and cannot be widened."""
        _, ro = d.clone(d.new(), R)
        err, ro2 = d.clone(ro, R)
        assert err == OK
        assert d.set(ro2, b"k", b"v") == ACCES
        assert d.clone(ro2, RW) == (ACCES, None)

    @pytest.mark.parametrize("rights", [4, 8, 7, 0x80000000, 0xFFFFFFFF])
    def test_unknown_rights_bits_are_inval(self, d: Driver, rights: int) -> None:
        """Any rights bit other than READ and WRITE is INVAL."""
        assert d.clone(d.new(), rights) == (INVAL, None)

    def test_unknown_rights_checked_before_the_handle(self, d: Driver) -> None:
        """INVAL (rights) comes before BADF (handle) in the order of checks."""
        assert d.clone(0, 4) == (INVAL, None)

    def test_clone_of_closed_handle_is_stale(self, d: Driver) -> None:
        """Cloning a closed handle is STALE."""
        h = d.new()
        d.close(h)
        assert d.clone(h, R) == (STALE, None)


class TestRightsZero:
    def test_rights_zero_handle_keeps_the_map_alive(self, d: Driver, broker: Broker) -> None:
        """A rights-0 clone can do nothing but it keeps its map alive."""
        h = d.new()
        assert d.set(h, b"k", b"v") == OK
        err, z = d.clone(h, 0)
        assert err == OK
        assert d.close(h) == OK
        assert broker.stats()["maps"] == 1
        assert d.close(z) == OK
        assert broker.stats()["maps"] == 0

    def test_rights_zero_handle_reads_and_writes_nothing(self, d: Driver) -> None:
        """Every read and write through a rights-0 handle is ACCES."""
        _, z = d.clone(d.new(), 0)
        assert d.get(z, b"k") == (ACCES, None)
        assert d.exists(z, b"k") == (ACCES, None)
        assert d.len(z) == (ACCES, None)
        assert d.version(z, b"k") == (ACCES, None)
        assert d.keys(z, 0, 64)[0] == ACCES
        assert d.set(z, b"k", b"v") == ACCES
        assert d.delete(z, b"k") == ACCES

    def test_rights_zero_handle_clones_only_with_rights_zero(self, d: Driver) -> None:
        """clone(h0, 0) is OK; clone(h0, READ) is ACCES."""
        _, z = d.clone(d.new(), 0)
        assert d.clone(z, 0)[0] == OK
        assert d.clone(z, R) == (ACCES, None)
