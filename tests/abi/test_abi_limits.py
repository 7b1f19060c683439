"""ABI conformance: module quotas (QUOTA, or a trap) on handles, bytes and entries."""

from __future__ import annotations

import pytest
from guest_driver import (
    ACCES,
    CONFLICT,
    INVAL,
    NOENT,
    OK,
    OUT,
    QUOTA,
    RW,
    TOOBIG,
    Driver,
    R,
)

from broker import Broker
from broker._native import ENTRY_COST as E
from broker._native import MAP_COST as M
from broker.errors import GuestTrap


def usage(broker: Broker, module: str) -> tuple[int, int]:
    return broker.native_module(module).usage()


class TestHandleQuota:
    def test_new_beyond_the_limit(self, broker: Broker) -> None:
        """With handles=3, the fourth new is QUOTA, creates no map and writes no handle."""
        d = Driver(broker, limits={"handles": 3})
        for _ in range(3):
            d.new()
        assert d.new_err() == (QUOTA, None)
        assert broker.stats()["maps"] == 3
        assert broker.stats()["handles"] == {"a": 3}

    def test_closing_frees_room(self, broker: Broker) -> None:
        """After a close, new succeeds again under the handle limit."""
        d = Driver(broker, limits={"handles": 2})
        h = d.new()
        d.new()
        assert d.new_err()[0] == QUOTA
        assert d.close(h) == OK
        assert d.new_err()[0] == OK

    def test_clone_open_and_get_map_count(self, broker: Broker) -> None:
        """clone, open and get_map also issue handles and hit the same limit."""
        d = Driver(broker, limits={"handles": 3}, grants={"cfg": "rw"})
        parent, child = d.new(), d.new()
        assert d.set_map(parent, b"m", child) == OK
        assert d.clone(parent, RW)[0] == OK
        assert d.clone(parent, R) == (QUOTA, None)
        assert d.open(b"cfg", R) == (QUOTA, None)
        assert d.get_map(parent, b"m") == (QUOTA, None)
        assert broker.stats()["named"] == 0
        assert broker.stats()["handles"] == {"a": 3}

    def test_limit_is_per_module(self, broker: Broker) -> None:
        """One module's handle limit does not restrict another module."""
        a = Driver(broker, "a", limits={"handles": 1})
        b = Driver(broker, "b")
        a.new()
        assert a.new_err()[0] == QUOTA
        assert [b.new_err()[0] for _ in range(3)] == [OK, OK, OK]

    def test_zero_handles(self, broker: Broker) -> None:
        """handles=0 refuses the very first new."""
        d = Driver(broker, limits={"handles": 0})
        assert d.new_err() == (QUOTA, None)
        assert broker.stats()["maps"] == 0

    def test_inval_before_quota(self, broker: Broker) -> None:
        """open with unknown rights bits is INVAL even when no handle could be issued."""
        d = Driver(broker, limits={"handles": 0}, grants={"cfg": "rw"})
        assert d.open(b"cfg", 4) == (INVAL, None)


class TestBytesQuota:
    """`bytes` charges key + value + E per live entry (E = ENTRY_COST) to its last
    writer, and M = MAP_COST per live anonymous map to the module that made it."""

    def test_bytes_limit(self, broker: Broker) -> None:
        """Up to the limit is fine; one byte more is QUOTA."""
        d = Driver(broker, limits={"bytes": M + E + 16})
        h = d.new()
        assert usage(broker, "a") == (M, 0)
        assert d.set(h, b"a", b"x" * 15) == OK
        assert usage(broker, "a") == (M + E + 16, 1)
        assert d.set(h, b"b", b"") == QUOTA
        assert d.exists(h, b"b") == (OK, 0)

    def test_a_new_map_is_charged(self, broker: Broker) -> None:
        """new over the limit is QUOTA, makes no map and issues no handle."""
        d = Driver(broker, limits={"bytes": 2 * M})
        d.new()
        h = d.new()
        assert d.new_err() == (QUOTA, None)
        assert broker.stats()["maps"] == 2
        assert d.close(h) == OK  # reclaimed: its charge comes back
        assert usage(broker, "a") == (M, 0)
        d.new()

    def test_overwrite_gives_back_old_bytes(self, broker: Broker) -> None:
        """Overwriting an entry counts only its new size."""
        d = Driver(broker, limits={"bytes": M + E + 16})
        h = d.new()
        assert d.set(h, b"a", b"x" * 15) == OK
        assert d.set(h, b"a", b"y" * 15) == OK
        assert d.set(h, b"a", b"z" * 16) == QUOTA
        assert d.value(h, b"a") == b"y" * 15

    def test_delete_gives_back_bytes(self, broker: Broker) -> None:
        """Deleting an entry makes its bytes available again."""
        d = Driver(broker, limits={"bytes": M + E + 10})
        h = d.new()
        assert d.set(h, b"a", b"123456789") == OK
        assert d.set(h, b"b", b"1") == QUOTA
        assert d.delete(h, b"a") == OK
        assert usage(broker, "a") == (M, 0)
        assert d.set(h, b"b", b"1") == OK

    def test_reclaimed_map_gives_back_bytes(self, broker: Broker) -> None:
        """A reclaimed map and its entries no longer count."""
        d = Driver(broker, limits={"bytes": M + E + 10})
        h = d.new()
        assert d.set(h, b"a", b"123456789") == OK
        assert d.close(h) == OK
        assert usage(broker, "a") == (0, 0)
        assert d.set(d.new(), b"b", b"123456789") == OK

    def test_map_reference_counts_key_plus_eight(self, broker: Broker) -> None:
        """A map reference is charged key length + 8 (+ E)."""
        d = Driver(broker, limits={"bytes": 3 * M + E + 9})
        h = d.new()
        assert d.set_map(h, b"m", d.new()) == OK
        assert usage(broker, "a") == (2 * M + E + 9, 1)
        assert d.set_map(h, b"n", d.new()) == QUOTA
        assert d.exists(h, b"n") == (OK, 0)

    def test_incr_and_set_if(self, broker: Broker) -> None:
        """incr and set_if are writes and are refused over the limit."""
        d = Driver(broker, limits={"bytes": M + E + 9})
        h = d.new()
        assert d.incr(h, b"n", 1) == (OK, 1)
        assert d.incr(h, b"n", 1) == (OK, 2)  # in place: same size
        assert d.incr(h, b"m", 1) == (QUOTA, None)
        assert d.set_if(h, b"x", b"", 0) == QUOTA
        assert d.len(h) == (OK, 1)

    def test_set_many_all_or_nothing(self, broker: Broker) -> None:
        """A batch that would pass the limit is refused whole."""
        d = Driver(broker, limits={"bytes": M + 2 * E + 10})
        h = d.new()
        assert d.set_many(h, [(b"a", b"1234"), (b"b", b"12345")]) == QUOTA
        assert d.len(h) == (OK, 0)
        assert d.set_many(h, [(b"a", b"1234"), (b"b", b"123")]) == OK

    def test_charged_to_last_writer(self, broker: Broker) -> None:
        """An entry counts for the module that wrote it last, not for the map's owner."""
        a = Driver(broker, "a", limits={"bytes": E + 10}, grants={"cfg": "rw"})
        b = Driver(broker, "b", grants={"cfg": "rw"})
        _, ha = a.open(b"cfg", RW)
        _, hb = b.open(b"cfg", RW)
        assert a.set(ha, b"k", b"123456789") == OK
        assert usage(broker, "a") == (E + 10, 1)
        assert b.set(hb, b"k", b"overwritten by b") == OK
        assert usage(broker, "a") == (0, 0)
        assert usage(broker, "b") == (E + 17, 1)
        assert a.set(ha, b"j", b"123456789") == OK

    def test_writing_into_a_given_map_spends_own_quota(self, broker: Broker) -> None:
        """Writing into another module's map counts against the writer's quota."""
        a = Driver(broker, "a", grants={"cfg": "rw"})
        b = Driver(broker, "b", limits={"bytes": E + 4}, grants={"cfg": "rw"})
        _, ha = a.open(b"cfg", RW)
        _, hb = b.open(b"cfg", RW)
        assert a.set(ha, b"big", b"x" * 1000) == OK
        assert b.set(hb, b"k", b"1234") == QUOTA
        assert b.set(hb, b"k", b"123") == OK


class TestEntriesQuota:
    def test_entries_limit(self, broker: Broker) -> None:
        """With entries=2 a third new key is QUOTA; overwrites stay fine."""
        d = Driver(broker, limits={"entries": 2})
        h = d.new()
        assert d.set(h, b"a", b"1") == OK
        assert d.set(h, b"b", b"2") == OK
        assert d.set(h, b"c", b"3") == QUOTA
        assert d.set(h, b"a", b"again") == OK
        assert d.incr(h, b"n", 1) == (QUOTA, None)
        assert d.set_map(h, b"m", d.new()) == QUOTA
        assert d.set_if(h, b"c", b"3", 0) == QUOTA
        assert d.list_keys(h) == [b"a", b"b"]

    def test_entries_across_maps(self, broker: Broker) -> None:
        """The entry count is per module, over all the maps it writes."""
        d = Driver(broker, limits={"entries": 2})
        assert d.set(d.new(), b"a", b"1") == OK
        assert d.set(d.new(), b"a", b"1") == OK
        assert d.set(d.new(), b"a", b"1") == QUOTA

    def test_set_many_counts_every_item_as_new(self, broker: Broker) -> None:
        """A batch of overwrites near the limit is refused (documented: items count as new)."""
        d = Driver(broker, limits={"entries": 2})
        h = d.new()
        assert d.set_many(h, [(b"a", b"1"), (b"b", b"2")]) == OK
        assert d.set(h, b"a", b"one at a time") == OK
        assert d.set_many(h, [(b"a", b"x")]) == QUOTA
        assert d.value(h, b"a") == b"one at a time"

    def test_set_many_over_the_limit_writes_nothing(self, broker: Broker) -> None:
        """A batch with more items than the entry limit allows writes none of them."""
        d = Driver(broker, limits={"entries": 3})
        h = d.new()
        assert d.set_many(h, [(b"%d" % i, b"v") for i in range(4)]) == QUOTA
        assert d.len(h) == (OK, 0)


class TestQuotaTrap:
    def test_handle_quota_traps(self, broker: Broker) -> None:
        """With on_quota="trap", hitting the handle limit traps: GuestTrap, module torn down."""
        d = Driver(broker, limits={"handles": 2, "on_quota": "trap"})
        d.new()
        d.new()
        with pytest.raises(GuestTrap) as info:
            d.call("new", OUT)
        assert (info.value.module, info.value.export) == ("a", "new")
        assert broker.stats() == {"maps": 0, "named": 0, "handles": {"a": 0}}
        d.new()  # a new instance in its place, with the whole quota
        d.new()
        assert broker.stats()["handles"] == {"a": 2}

    def test_bytes_quota_traps(self, broker: Broker) -> None:
        """With on_quota="trap", a write over the byte limit traps and changes nothing."""
        b = Driver(broker, "b", grants={"cfg": "rw"})
        _, hb = b.open(b"cfg", RW)
        d = Driver(broker, "a", limits={"bytes": E + 4, "on_quota": "trap"}, grants={"cfg": "rw"})
        _, h = d.open(b"cfg", RW)
        assert d.set(h, b"k", b"123") == OK
        with pytest.raises(GuestTrap):
            d.set(h, b"j", b"1234")
        assert b.list_keys(hb) == [b"k"]  # the named map keeps the data written before
        assert broker.stats()["handles"] == {"b": 1, "a": 0}

    def test_entries_quota_traps_in_set_many(self, broker: Broker) -> None:
        """With on_quota="trap", set_many over the entry limit traps."""
        d = Driver(broker, limits={"entries": 1, "on_quota": "trap"})
        h = d.new()
        with pytest.raises(GuestTrap):
            d.set_many(h, [(b"a", b"1"), (b"b", b"2")])

    def test_other_errnos_do_not_trap(self, broker: Broker) -> None:
        """Only QUOTA traps: NOENT, ACCES, TOOBIG and CONFLICT are still returned."""
        d = Driver(broker, limits={"handles": 2, "key_size": 4, "on_quota": "trap"})
        h = d.new()
        _, ro = d.clone(h, R)
        assert d.get(h, b"nope") == (NOENT, None)
        assert d.set(ro, b"k", b"v") == ACCES
        assert d.set(h, b"long key", b"v") == TOOBIG
        assert d.set_if(h, b"k", b"v", 99) == CONFLICT
        assert d.call("len", h, OUT) == OK
