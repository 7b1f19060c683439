"""The collector while guests hold, borrow and lend maps: borrows during a
collection, teardown, cycles made by guests, the data left after a collection.
"""

from __future__ import annotations

import pytest
from gc_shapes import MakeBroker, counters, garbage_ring, live, load_churn, pair, ring
from xmod import decl

from broker import Borrow, Broker, GuestTrap, Share, testing

#: What churn(h, n) returns when h = {1: 11, 2: -> c} and c = {1: 22, ...}.
PAIR_READ = 11 | 22 << 8


class TestBorrowDuringCollection:
    def test_host_lends_a_cycle_while_the_callee_collects(self, make_broker: MakeBroker) -> None:
        """A cycle the host lends survives 50 collections run inside the borrowing call."""
        b = make_broker(gc_threshold=0)
        load_churn(b)
        a, cid = pair(b)
        ids = {a.map_id, cid}
        assert b.collect() == 0  # nothing is garbage; the release count starts at 0
        b.gc.threshold = 2
        before = counters(b)
        assert b.call("churn.churn", Borrow(a), 50) == PAIR_READ
        assert counters(b) == (before[0] + 50, before[1] + 100)
        assert live(b) == ids
        assert a[b"\x01"] == b"\x0b"
        with a.get_map(b"\x02") as c:
            assert c.map_id == cid
            assert c[b"\x01"] == b"\x16"
            with c.get_map(b"\x02") as back:
                assert back.map_id == a.map_id
        testing.check_refcounts(b)
        b.gc.threshold = 0
        a.close()
        assert b.collect() == 2

    def test_guest_lends_its_only_handle(self, make_broker: MakeBroker) -> None:
        """A cycle only the lender's (busy) handle reaches survives collections in the callee."""
        b = make_broker(gc_threshold=0)
        load_churn(b, relay=True)
        h = b.call("relay.make_pair")
        assert h > 0
        assert b.collect() == 0
        ids = live(b)
        assert len(ids) == 2
        b.gc.threshold = 2
        before = counters(b)
        assert b.call("relay.lend", h, 50) == PAIR_READ
        assert counters(b) == (before[0] + 50, before[1] + 100)
        assert live(b) == ids
        assert b.call("relay.read", h, 1) == 11
        c = b.call("relay.follow", h, 2)
        assert b.call("relay.read", c, 1) == 22
        assert b.call("relay.close", c) == 0
        testing.check_refcounts(b)
        b.gc.threshold = 0
        assert b.call("relay.close", h) == 0
        assert b.collect() == 2

    def test_borrow_of_a_borrow(self, make_broker: MakeBroker) -> None:
        """Host lends to relay, relay lends on to churn: the host's MapRef keeps the cycle."""
        b = make_broker(gc_threshold=0)
        load_churn(b, relay=True, relay_exports={"lend": decl("borrow", "i32")})
        a, cid = pair(b)
        assert b.collect() == 0
        b.gc.threshold = 2
        before = counters(b)
        assert b.call("relay.lend", Borrow(a), 40) == PAIR_READ
        assert counters(b) == (before[0] + 40, before[1] + 80)
        assert live(b) == {a.map_id, cid}
        assert a[b"\x01"] == b"\x0b"
        b.gc.threshold = 0
        a.close()
        assert b.collect() == 2

    def test_earlier_garbage_goes_during_the_call(self, make_broker: MakeBroker) -> None:
        """Garbage made before the call goes in a collection inside it; the lent cycle stays."""
        b = make_broker(gc_threshold=0)
        load_churn(b)
        a, cid = pair(b)
        old = garbage_ring(b, 100)
        b.gc.threshold = 3
        before = counters(b)
        assert b.call("churn.churn", Borrow(a), 30) == PAIR_READ
        assert counters(b)[0] > before[0]
        assert not old & live(b)
        assert {a.map_id, cid} <= live(b)
        b.gc.threshold = 0
        b.collect()  # whatever churn left since its last collection
        assert live(b) == {a.map_id, cid}
        assert counters(b)[1] == before[1] + 100 + 2 * 30
        testing.check_refcounts(b)

    def test_lent_self_reference(self, make_broker: MakeBroker) -> None:
        """A lent map that references itself under key 2 survives the callee's collections."""
        b = make_broker(gc_threshold=0)
        load_churn(b)
        m = b.new_map()
        m[b"\x01"] = b"\x05"
        m.set_map(b"\x02", m)
        b.gc.threshold = 1
        assert b.call("churn.churn", Borrow(m), 20) == 5 | 5 << 8
        assert live(b) == {m.map_id}
        b.gc.threshold = 0
        m.close()
        assert b.collect() == 1


class TestTeardown:
    def test_unload_leaves_cycles_for_collect(self, b: Broker) -> None:
        """Unloading the only holder of three rings leaves them garbage; collect() reclaims all."""
        load_churn(b)
        for n in (100, 1, 7):
            assert b.call("churn.ring", n, 1) > 0
        b.unload("churn")
        assert b.stats()["maps"] == 108
        assert b.collect() == 108
        assert b.stats()["maps"] == 0
        testing.check_refcounts(b)

    def test_unload_collects_automatically(self, make_broker: MakeBroker) -> None:
        """With gc_threshold=1 the teardown's own release runs the collector: nothing is left."""
        b = make_broker(gc_threshold=1)
        load_churn(b)
        assert b.call("churn.ring", 100, 1) > 0
        assert b.stats()["maps"] == 100
        before = counters(b)
        b.unload("churn")
        assert b.stats()["maps"] == 0
        assert counters(b) == (before[0] + 1, before[1] + 100)

    def test_trap_leaves_cycles_for_collect(self, b: Broker) -> None:
        """A module that traps holding the only handles into cycles: collect() reclaims them."""
        load_churn(b)
        assert b.call("churn.ring", 100, 1) > 0
        assert b.call("churn.ring", 2, 1) > 0
        with pytest.raises(GuestTrap):
            b.call("churn.trap")
        assert b.stats()["handles"]["churn"] == 0
        assert b.stats()["maps"] == 102
        assert b.collect() == 102

    def test_trap_collects_automatically(self, make_broker: MakeBroker) -> None:
        """With gc_threshold=1 the cycles of a trapped module are reclaimed during its teardown."""
        b = make_broker(gc_threshold=1)
        load_churn(b)
        assert b.call("churn.ring", 50, 1) > 0
        before = counters(b)
        with pytest.raises(GuestTrap):
            b.call("churn.trap")
        assert b.stats()["maps"] == 0
        assert counters(b) == (before[0] + 1, before[1] + 50)

    def test_teardown_keeps_cycles_held_elsewhere(self, b: Broker) -> None:
        """Of two cycles the unloaded module held, the one the host also holds keeps its data."""
        load_churn(b)
        assert b.call("churn.ring", 10, 1) > 0
        a, cid = pair(b)
        assert b.call("churn.adopt", Share(a)) > 0
        b.unload("churn")
        assert b.collect() == 10
        assert live(b) == {a.map_id, cid}
        with a.get_map(b"\x02") as c:
            assert c[b"\x01"] == b"\x16"

    @pytest.mark.parametrize("threshold", [0, 1])
    def test_lender_traps_while_its_cycle_is_lent(
        self, make_broker: MakeBroker, threshold: int
    ) -> None:
        """A lender trapping (re-entered) while its only handle is lent: its cycle is reclaimed."""
        b = make_broker(gc_threshold=threshold)
        load_churn(b, relay=True)
        h = b.call("relay.make_pair")
        assert h > 0
        with pytest.raises(GuestTrap) as trap:
            b.call("relay.lend_boom", h)
        assert trap.value.origin == "relay"  # it began in relay, re-entered by churn
        testing.check_refcounts(b)
        if threshold == 0:
            assert b.stats()["maps"] == 2
            assert b.collect() == 2
        assert b.stats()["maps"] == 0
        assert b.stats()["handles"] == {"churn": 0, "relay": 0}


class TestDataAfterCollection:
    def test_reachable_data_is_intact(self, b: Broker) -> None:
        """After garbage around it is collected, a held structure reads back value for value."""
        root = b.new_map()
        members = ring(b, 50)
        root.set_map(b"ring", members[0])
        for i, m in enumerate(members):
            t = b.new_map()
            t[b"t"] = str(2 * i).encode()
            m.set_map(b"tail", t)
            t.close()
            junk = ring(b, 2)
            junk[0].set_map(b"into", m)  # garbage referencing the reachable ring
            for j in junk:
                j.close()
        for m in members:
            m.close()
        garbage = garbage_ring(b, 30)
        assert b.collect() == 50 * 2 + len(garbage)
        assert b.stats()["maps"] == 1 + 50 + 50
        with root.get_map(b"ring") as first:
            here, opened = first, []
            for i in range(50):
                assert here[b"v"] == str(i).encode()
                with here.get_map(b"tail") as t:
                    assert dict(t) == {b"t": str(2 * i).encode()}
                here = here.get_map(b"next")
                opened.append(here)
            assert here.map_id == first.map_id
            for m in opened:
                m.close()
        snap = b.snapshot()
        assert all(snap.maps[e.child] for e in snap.edges)
        testing.check_refcounts(b)

    def test_ids_are_never_reused(self, b: Broker) -> None:
        """Maps made after a collection get new ids and start empty."""
        old = garbage_ring(b, 20)
        assert b.collect() == 20
        fresh = [b.new_map() for _ in range(20)]
        assert not {m.map_id for m in fresh} & old
        assert min(m.map_id for m in fresh) > max(old)
        assert all(len(m) == 0 for m in fresh)
        for m in fresh:
            m.close()

    def test_entries_are_released(self, b: Broker) -> None:
        """A collected cycle's entries are freed: the core's entry count falls back."""
        keep = b.new_map()
        keep[b"a"] = b"1"
        refs = ring(b, 10)
        for m in refs:
            m[b"extra"] = b"x" * 100
            m.close()
        assert testing.core_counters(b)["entries"] == 1 + 10 * 3
        assert b.collect() == 10
        assert testing.core_counters(b)["entries"] == 1
        assert dict(keep) == {b"a": b"1"}


class TestGuestCycles:
    def test_guest_self_reference(self, b: Broker) -> None:
        """A map a guest links to itself with set_map and closes is collected."""
        load_churn(b)
        h = b.call("churn.new")
        assert b.call("churn.link", h, 1, h) == 0
        assert b.call("churn.close", h) == 0
        assert b.stats()["maps"] == 1
        assert b.collect() == 1

    def test_guest_ring_of_ten_thousand(self, b: Broker) -> None:
        """A ring of 10,000 maps built by a guest is one cycle, reclaimed by one collect()."""
        load_churn(b)
        assert b.call("churn.ring", 10_000, 0) == 0
        assert b.stats()["maps"] == 10_000
        assert [len(g) for g in b.snapshot().cycles()] == [10_000]
        assert b.collect() == 10_000
        assert counters(b) == (1, 10_000)
        testing.check_refcounts(b)

    def test_guest_ring_reads_back_before_collection(self, b: Broker) -> None:
        """A ring a guest keeps reads back around its whole length, collected or not."""
        load_churn(b)
        h = b.call("churn.ring", 300, 1)
        garbage_ring(b, 10)
        assert b.collect() == 10
        here = h
        for i in range(300):
            assert b.call("churn.read", here, 2) == i & 0xFF
            nxt = b.call("churn.follow", here, 1)
            if here != h:
                assert b.call("churn.close", here) == 0
            here = nxt
        assert b.call("churn.close", here) == 0  # the first again, through the ring
        assert b.call("churn.close", h) == 0
        assert b.collect() == 300

    def test_guest_unlink_breaks_the_cycle(self, b: Broker) -> None:
        """A guest deleting one link turns its ring into a chain, which counting reclaims."""
        load_churn(b)
        h = b.call("churn.ring", 5, 1)
        last = h
        for _ in range(4):
            nxt = b.call("churn.follow", last, 1)
            if last != h:
                assert b.call("churn.close", last) == 0
            last = nxt
        assert b.call("churn.unlink", last, 1) == 0
        assert b.call("churn.close", last) == 0
        assert b.snapshot().cycles() == []
        assert b.call("churn.close", h) == 0
        assert b.stats()["maps"] == 0
        assert b.collect() == 0

    def test_guest_cycle_through_a_host_map(self, b: Broker) -> None:
        """A cycle half built by the host and closed by a guest's set_map goes once both let go."""
        load_churn(b)
        m = b.new_map()
        h = b.call("churn.adopt", Share(m))
        g = b.call("churn.new")
        assert b.call("churn.link", g, 1, h) == 0  # guest map -> host's map
        assert b.call("churn.link", h, 1, g) == 0  # host's map -> guest map
        assert b.call("churn.close", g) == 0
        assert b.call("churn.close", h) == 0
        assert b.collect() == 0  # the host still holds m
        m.close()
        assert b.collect() == 2
