"""The cycle collector (native/gc.c, broker/gc.py; docs/abi.md "The cycle collector").

Most tests run with automatic collection off (`gc_threshold=0`), so every
collection is one the test asked for and the counts are exact; the tests of
the threshold, of teardown and of borrows turn it on.  Guests:
gc_churn.wat ("churn": rings, garbage pairs, drop-notice log, a borrowing
export that makes the collector run) and gc_relay.wat ("relay": a lender).
Every broker is recounted (`_native.check() == 0`) when its test ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from paths import GUESTS
from xmod import WATCHER, decl

from broker import Borrow, Broker, GuestTrap, MapRef, Share
from broker._native import ENTRY_COST, MAP_COST
from broker.gc import DEFAULT_THRESHOLD, CollectorStats

CHURN = GUESTS / "gc_churn.wat"
RELAY = GUESTS / "gc_relay.wat"
CHURN_EXPORTS = {
    "churn": decl("borrow", "i32"),
    "boom_back": decl("borrow"),
    "adopt": decl("share"),
}
#: What churn(h, n) returns when h = {1: 11, 2: -> c} and c = {1: 22, ...}.
PAIR_READ = 11 | 22 << 8

MakeBroker = Callable[..., Broker]


@pytest.fixture
def make_broker() -> Iterator[MakeBroker]:
    """Brokers made with any options; each recounted (check() == 0) and closed at the end."""
    made: list[Broker] = []

    def make(**options: Any) -> Broker:
        b = Broker(**options)
        made.append(b)
        return b

    yield make
    try:
        for b in made:
            if not b.closed:
                assert b._native.check() == 0
    finally:
        for b in made:
            b.close()


@pytest.fixture
def b(make_broker: MakeBroker) -> Broker:
    """A broker whose collector runs only when the test calls collect()."""
    return make_broker(gc_threshold=0)


# --- helpers -------------------------------------------------------------------


def live(b: Broker) -> set[int]:
    """The ids of the live anonymous maps."""
    return {m.id for m in b.snapshot().anonymous()}


def counters(b: Broker) -> tuple[int, int]:
    """(collections, cycles_reclaimed) so far."""
    s = b._native.stats()
    return s["collections"], s["cycles_reclaimed"]


def self_cycle(b: Broker) -> int:
    """A garbage map that references itself (one release of a referenced map); its id."""
    m = b.new_map()
    m.set_map(b"self", m)
    mid = m.map_id
    m.close()
    return mid


def ring(b: Broker, n: int) -> list[MapRef]:
    """n host maps, map i = {b"v": i, b"next": -> map i+1}, the last -> the first."""
    refs = [b.new_map() for _ in range(n)]
    for i, m in enumerate(refs):
        m[b"v"] = str(i).encode()
        m.set_map(b"next", refs[(i + 1) % n])
    return refs


def garbage_ring(b: Broker, n: int) -> set[int]:
    """A ring of n maps that nothing reaches; their ids."""
    refs = ring(b, n)
    ids = {m.map_id for m in refs}
    for m in refs:
        m.close()
    return ids


def pair(b: Broker) -> tuple[MapRef, int]:
    """a = {1: 11, 2: -> c}, c = {1: 22, 2: -> a}; the host keeps only a. (a, c's id)."""
    a, c = b.new_map(), b.new_map()
    a[b"\x01"], c[b"\x01"] = b"\x0b", b"\x16"
    a.set_map(b"\x02", c)
    c.set_map(b"\x02", a)
    cid = c.map_id
    c.close()
    return a, cid


def load_churn(b: Broker, *, relay: bool = False, relay_exports: Any = None) -> None:
    """Load gc_churn.wat as "churn" (and gc_relay.wat as "relay")."""
    b.load("churn", CHURN, exports=CHURN_EXPORTS)
    if relay:
        b.load("relay", RELAY, exports=relay_exports or {})


def churn_log(b: Broker) -> list[int]:
    """The cookies "churn" received through wasi_map_on_drop, in order."""
    return [b.call("churn.log_at", i) for i in range(b.call("churn.log_len"))]


def walk_ring(start: MapRef, n: int) -> list[bytes]:
    """The b"v" values of n maps along b"next" from `start` (closing what it opens)."""
    values, here, opened = [], start, []
    for _ in range(n):
        values.append(here[b"v"])
        here = here.get_map(b"next")
        opened.append(here)
    for m in opened:
        m.close()
    return values


# --- the tests -------------------------------------------------------------------


class TestCycleShapes:
    def test_self_reference(self, b: Broker) -> None:
        """A map that references itself is reclaimed by collect(), and only by it."""
        mid = self_cycle(b)
        assert live(b) == {mid}
        assert b.snapshot().cycles() == [[mid]]
        assert b.collect() == 1
        assert live(b) == set()
        assert counters(b) == (1, 1)
        assert b._native.check() == 0

    def test_self_reference_under_two_keys(self, b: Broker) -> None:
        """A map holding itself under two keys (count 2 from itself) is still garbage."""
        m = b.new_map()
        m.set_map(b"x", m)
        m.set_map(b"y", m)
        m.close()
        assert b.stats()["maps"] == 1
        assert b.collect() == 1
        assert b.stats()["maps"] == 0
        assert b._native.check() == 0

    def test_two_cycle(self, b: Broker) -> None:
        """Two maps referencing each other are reclaimed together: collect() == 2."""
        a, cid = pair(b)
        aid = a.map_id
        a.close()
        assert live(b) == {aid, cid}
        assert b.snapshot().cycles() == [sorted([aid, cid])]
        assert b.collect() == 2
        assert live(b) == set()
        assert counters(b) == (1, 2)
        assert b._native.check() == 0

    def test_two_maps_with_parallel_references(self, b: Broker) -> None:
        """References under several keys between the same two maps are all subtracted."""
        x, y = b.new_map(), b.new_map()
        for k in (b"1", b"2", b"3"):
            x.set_map(k, y)
        y.set_map(b"back", x)
        y.set_map(b"back2", x)
        x.close()
        y.close()
        assert b.collect() == 2
        assert b.stats()["maps"] == 0
        assert b._native.check() == 0

    def test_ring_of_ten_thousand(self, b: Broker) -> None:
        """A ring of 10,000 host maps is one cycle, reclaimed by one collect() (no recursion)."""
        ids = garbage_ring(b, 10_000)
        assert live(b) == ids
        assert [len(g) for g in b.snapshot().cycles()] == [10_000]
        assert b.collect() == 10_000
        assert b.stats()["maps"] == 0
        assert counters(b) == (1, 10_000)
        assert b._native.check() == 0

    def test_figure_eight(self, b: Broker) -> None:
        """Two cycles sharing one map are one group of garbage."""
        hub, left, right = b.new_map(), b.new_map(), b.new_map()
        hub.set_map(b"l", left)
        left.set_map(b"hub", hub)
        hub.set_map(b"r", right)
        right.set_map(b"hub", hub)
        for m in (hub, left, right):
            m.close()
        assert b.collect() == 3
        assert b.stats()["maps"] == 0

    def test_many_separate_cycles(self, b: Broker) -> None:
        """Five hundred separate garbage cycles of lengths 1 to 7 go in one collect()."""
        total = sum(len(garbage_ring(b, 1 + i % 7)) for i in range(500))
        assert b.stats()["maps"] == total
        assert b.collect() == total
        assert counters(b) == (1, total)
        assert b._native.check() == 0

    def test_second_collect_finds_nothing(self, b: Broker) -> None:
        """A collection right after one reclaims nothing but still counts as a collection."""
        garbage_ring(b, 3)
        assert b.collect() == 3
        assert b.collect() == 0
        assert counters(b) == (2, 3)

    def test_collect_on_an_empty_broker(self, b: Broker) -> None:
        """collect() with no maps at all returns 0."""
        assert b.collect() == 0
        assert counters(b) == (1, 0)
        assert b._native.check() == 0

    def test_plain_garbage_is_not_the_collectors(self, b: Broker) -> None:
        """An acyclic chain goes by counting when its root goes; collect() finds nothing."""
        root = b.new_map()
        prev = root
        for _ in range(10):
            nxt = b.new_map()
            prev.set_map(b"n", nxt)
            if prev is not root:
                prev.close()
            prev = nxt
        prev.close()
        root.close()
        assert b.stats()["maps"] == 0
        assert b.collect() == 0
        s = b._native.stats()
        assert (s["reclaimed"], s["cycles_reclaimed"]) == (11, 0)


class TestTails:
    def test_chains_off_a_cycle_are_reclaimed(self, b: Broker) -> None:
        """A cycle with chains hanging off it: cycle and chains all go in one collect()."""
        a, cid = pair(b)
        prev = a
        for _ in range(4):  # a -> t1 -> t2 -> t3 -> t4
            t = b.new_map()
            prev.set_map(b"tail", t)
            if prev is not a:
                prev.close()
            prev = t
        prev.close()
        with a.get_map(b"\x02") as c:
            u = b.new_map()
            c.set_map(b"tail", u)
            u.close()
        a.close()
        assert b.stats()["maps"] == 2 + 4 + 1
        assert b.collect() == 7
        assert b.stats()["maps"] == 0
        assert counters(b) == (1, 7)
        assert b._native.check() == 0

    def test_tail_that_is_itself_a_cycle(self, b: Broker) -> None:
        """A garbage cycle that references another cycle: both are reclaimed."""
        first, second = ring(b, 3), ring(b, 4)
        first[0].set_map(b"other", second[2])
        for m in first + second:
            m.close()
        assert b.collect() == 7
        assert b.stats()["maps"] == 0

    def test_tail_held_elsewhere_survives_with_its_data(self, b: Broker) -> None:
        """A map a garbage cycle references and the host holds keeps its data; its count drops."""
        a, _ = pair(b)
        t = b.new_map()
        t[b"keep"] = b"me"
        a.set_map(b"tail", t)
        a.close()
        assert b.snapshot().maps[t.map_id].refcount == 2
        assert b.collect() == 2
        assert live(b) == {t.map_id}
        assert dict(t) == {b"keep": b"me"}
        assert b.snapshot().maps[t.map_id].refcount == 1
        assert b._native.check() == 0
        t.close()
        assert b.stats()["maps"] == 0

    def test_garbage_referencing_into_a_reachable_cycle(self, b: Broker) -> None:
        """A garbage cycle pointing into a held cycle takes nothing of the held one with it."""
        held = ring(b, 5)
        for m in held[1:]:
            m.close()
        junk = ring(b, 3)
        junk[0].set_map(b"into", held[0])
        with held[0].get_map(b"next") as second:
            junk[1].set_map(b"into", second)
        for m in junk:
            m.close()
        assert b.collect() == 3
        assert walk_ring(held[0], 5) == [b"0", b"1", b"2", b"3", b"4"]
        assert b.snapshot().maps[held[0].map_id].refcount == 2  # host + the ring
        assert b._native.check() == 0


class TestReachableCycles:
    def test_held_by_a_host_mapref(self, b: Broker) -> None:
        """A cycle one host MapRef reaches is never reclaimed."""
        a, cid = pair(b)
        assert b.collect() == 0
        assert live(b) == {a.map_id, cid}
        a.close()
        assert b.collect() == 2

    def test_held_by_a_clone_only(self, b: Broker) -> None:
        """A clone of a closed MapRef keeps the cycle alive alone."""
        a, cid = pair(b)
        keep = a.clone()
        a.close()
        assert b.collect() == 0
        assert keep[b"\x01"] == b"\x0b"
        keep.close()
        assert b.collect() == 2

    def test_held_by_a_read_only_clone(self, b: Broker) -> None:
        """Rights do not matter: a read-only handle keeps a cycle as well as a read-write one."""
        a, cid = pair(b)
        keep = a.clone("r")
        a.close()
        assert b.collect() == 0
        with keep.get_map(b"\x02") as c:
            assert c.map_id == cid
            assert c[b"\x01"] == b"\x16"
        keep.close()
        assert b.collect() == 2

    def test_held_by_a_guest_handle(self, b: Broker) -> None:
        """A cycle only a guest's handle reaches is not reclaimed until the guest closes it."""
        load_churn(b)
        a, cid = pair(b)
        h = b.call("churn.adopt", Share(a))
        aid = a.map_id
        a.close()
        assert b.collect() == 0
        assert live(b) == {aid, cid}
        assert b.call("churn.read", h, 1) == 11
        assert b.call("churn.close", h) == 0
        assert b.collect() == 2

    def test_held_by_a_guest_handle_inside_the_cycle(self, b: Broker) -> None:
        """A guest handle from get_map to the far side of the cycle keeps the whole cycle."""
        load_churn(b)
        h = b.call("churn.ring", 4, 1)
        far = b.call("churn.follow", h, 1)
        assert far > 0
        assert b.call("churn.close", h) == 0
        assert b.collect() == 0
        assert b.stats()["maps"] == 4
        assert b.call("churn.read", far, 2) == 1
        assert b.call("churn.close", far) == 0
        assert b.collect() == 4

    def test_held_by_a_named_map(self, b: Broker) -> None:
        """A cycle a named map references survives with no handle to anything."""
        hub = b.open("hub")
        a, cid = pair(b)
        aid = a.map_id
        hub.set_map(b"pair", a)
        a.close()
        hub.close()
        assert b.collect() == 0
        assert live(b) == {aid, cid}
        with b.open("hub", "r") as again, again.get_map(b"pair") as back:
            assert back.map_id == aid
            assert back[b"\x01"] == b"\x0b"

    def test_cycle_through_a_named_map(self, b: Broker) -> None:
        """A cycle that passes through a named map is never garbage, with every handle closed."""
        hub = b.open("hub")
        hub[b"name"] = b"hub"
        a = b.new_map()
        a[b"v"] = b"a"
        hub.set_map(b"a", a)
        a.set_map(b"hub", hub)
        aid = a.map_id
        a.close()
        hub.close()
        cycles = b.snapshot().cycles()
        assert len(cycles) == 1 and aid in cycles[0]
        for _ in range(3):
            assert b.collect() == 0
        assert live(b) == {aid}
        assert b.stats()["named"] == 1
        with b.open("hub") as again, again.get_map(b"a") as back:
            assert back[b"v"] == b"a"
            with back.get_map(b"hub") as hub_again:
                assert hub_again[b"name"] == b"hub"

    def test_long_ring_through_a_named_map(self, b: Broker) -> None:
        """A ring of 1,000 anonymous maps closed by a named map is kept whole."""
        refs = ring(b, 1000)
        hub = b.open("ring")
        refs[-1].set_map(b"next", hub)  # ... -> 999 -> ring -> 0 -> 1 -> ...
        hub.set_map(b"next", refs[0])
        ids = {m.map_id for m in refs}
        for m in [*refs, hub]:
            m.close()
        assert b.collect() == 0
        assert live(b) == ids
        assert b._native.check() == 0

    def test_named_map_referencing_itself(self, b: Broker) -> None:
        """A named map that references itself stays (its name counts)."""
        with b.open("me") as me:
            me.set_map(b"me", me)
        assert b.collect() == 0
        assert b.stats()["named"] == 1

    def test_held_by_a_map_that_is_held(self, b: Broker) -> None:
        """A cycle below a held map is kept; once that map goes by counting, it is garbage."""
        holder = b.new_map()
        a, cid = pair(b)
        aid = a.map_id
        holder.set_map(b"pair", a)
        a.close()
        assert b.collect() == 0
        assert live(b) == {holder.map_id, aid, cid}
        holder.close()
        assert live(b) == {aid, cid}
        assert b._native.stats()["reclaimed"] == 1
        assert b.collect() == 2
        assert counters(b) == (2, 2)

    def test_held_deep_down_a_chain(self, b: Broker) -> None:
        """A ring at the end of a 200-map chain from one held root is kept."""
        root = b.new_map()
        prev = root
        for _ in range(200):
            nxt = b.new_map()
            prev.set_map(b"down", nxt)
            if prev is not root:
                prev.close()
            prev = nxt
        r = ring(b, 50)
        prev.set_map(b"ring", r[0])
        prev.close()
        for m in r:
            m.close()
        assert b.collect() == 0
        assert b.stats()["maps"] == 1 + 200 + 50
        root.close()
        assert b.stats()["maps"] == 50  # the chain by counting, the ring waits
        assert b.collect() == 50

    def test_reachable_and_garbage_interleaved(self, b: Broker) -> None:
        """Among interleaved held and garbage cycles, collect() reclaims exactly the garbage."""
        keep: list[MapRef] = []
        kept_ids: set[int] = set()
        garbage: set[int] = set()
        for i in range(60):
            r = ring(b, 1 + i % 5)
            if i % 3 == 0:
                keep.append(r[0])
                kept_ids |= {m.map_id for m in r}
                for m in r[1:]:
                    m.close()
            else:
                garbage |= {m.map_id for m in r}
                for m in r:
                    m.close()
        assert b.collect() == len(garbage)
        assert live(b) == kept_ids
        for i, m in enumerate(keep):
            n = 1 + (3 * i) % 5
            assert walk_ring(m, n) == [str(j).encode() for j in range(n)]
        assert b._native.check() == 0


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
        assert b._native.check() == 0
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
        assert b._native.check() == 0
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
        assert b._native.check() == 0

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
        assert b._native.check() == 0

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
        assert b._native.check() == 0
        if threshold == 0:
            assert b.stats()["maps"] == 2
            assert b.collect() == 2
        assert b.stats()["maps"] == 0
        assert b.stats()["handles"] == {"churn": 0, "relay": 0}


class TestAutomaticCollection:
    def test_default_threshold(self, make_broker: MakeBroker) -> None:
        """A broker collects by itself after 10,000 releases by default."""
        b = make_broker()
        assert DEFAULT_THRESHOLD == 10_000
        assert b.gc.threshold == 10_000
        assert b.gc.stats() == CollectorStats(0, 0, 10_000)

    def test_default_threshold_triggers_at_ten_thousand(self, make_broker: MakeBroker) -> None:
        """9,999 releases of referenced maps collect nothing; the 10,000th collects all."""
        b = make_broker()
        load_churn(b)
        assert b.call("churn.garbage", 4999) == 0  # two releases a pair
        self_cycle(b)
        assert counters(b) == (0, 0)
        assert b.stats()["maps"] == 9999
        self_cycle(b)
        assert counters(b) == (1, 10_000)
        assert b.stats()["maps"] == 0

    def test_triggers_after_the_threshold_not_before(self, make_broker: MakeBroker) -> None:
        """With gc_threshold=3 the third release runs the collector, the first two do not."""
        b = make_broker(gc_threshold=3)
        self_cycle(b)
        self_cycle(b)
        assert counters(b) == (0, 0)
        assert b.stats()["maps"] == 2
        self_cycle(b)
        assert counters(b) == (1, 3)
        assert b.stats()["maps"] == 0
        for _ in range(5):
            self_cycle(b)
        assert counters(b) == (2, 6)
        assert b.stats()["maps"] == 2

    def test_threshold_one_collects_at_every_release(self, make_broker: MakeBroker) -> None:
        """With gc_threshold=1 each garbage self-reference is gone as soon as it is made."""
        b = make_broker(gc_threshold=1)
        for i in range(1, 21):
            self_cycle(b)
            assert counters(b) == (i, i)
            assert b.stats()["maps"] == 0

    def test_zero_disables(self, b: Broker) -> None:
        """gc_threshold=0: 40,000 releases of referenced maps run no collection."""
        load_churn(b)
        assert b.call("churn.garbage", 20_000) == 0
        assert counters(b) == (0, 0)
        assert b.stats()["maps"] == 40_000
        assert b.collect() == 40_000

    def test_disable_and_set_at_run_time(self, make_broker: MakeBroker) -> None:
        """gc.disable() stops automatic collection; setting a threshold later starts it again."""
        b = make_broker(gc_threshold=2)
        b.gc.disable()
        assert b.gc.threshold == 0
        for _ in range(10):
            self_cycle(b)
        assert counters(b) == (0, 0)
        b.collect()  # the pending count starts again from 0
        b.gc.threshold = 4
        for _ in range(3):
            self_cycle(b)
        assert counters(b) == (1, 10)
        self_cycle(b)
        assert counters(b) == (2, 14)
        assert b.gc.stats() == CollectorStats(2, 14, 4)

    @pytest.mark.parametrize("bad", [-1, 1.5, "10", None, True])
    def test_threshold_must_be_a_non_negative_int(self, b: Broker, bad: object) -> None:
        """A negative or non-int threshold is refused, and the old one stays."""
        with pytest.raises(ValueError):
            b.gc.threshold = bad  # type: ignore[assignment]
        assert b.gc.threshold == 0

    def test_manual_collect_resets_the_count(self, make_broker: MakeBroker) -> None:
        """collect() starts the release count again: the threshold counts from it."""
        b = make_broker(gc_threshold=3)
        self_cycle(b)
        self_cycle(b)
        assert b.collect() == 2
        self_cycle(b)
        self_cycle(b)
        assert counters(b) == (1, 2)
        self_cycle(b)
        assert counters(b) == (2, 5)

    def test_only_releases_of_referenced_maps_count(self, make_broker: MakeBroker) -> None:
        """Closing maps nothing references, however many, never runs the collector."""
        b = make_broker(gc_threshold=2)
        holder = b.new_map()
        for _ in range(50):
            m = b.new_map()
            m[b"k"] = b"v"
            m.close()  # nothing referenced it
            c = b.new_map()
            holder.set_map(b"c", c)
            del holder[b"c"]  # c is no longer referenced by a map
            c.close()  # ... and reaches zero
        assert counters(b) == (0, 0)
        assert live(b) == {holder.map_id}
        holder.close()

    def test_overwrite_and_delete_of_a_reference_count(self, make_broker: MakeBroker) -> None:
        """Overwriting or deleting one of two references to a map is a release that counts."""
        b = make_broker(gc_threshold=2)
        parent, child = b.new_map(), b.new_map()
        parent.set_map(b"x", child)
        parent.set_map(b"y", child)
        parent.set_map(b"z", child)
        assert counters(b) == (0, 0)
        parent[b"x"] = b"bytes now"  # child still referenced under y, z: counts
        assert counters(b) == (0, 0)
        del parent[b"y"]  # the second: a collection
        assert counters(b) == (1, 0)
        assert live(b) == {parent.map_id, child.map_id}
        parent.close()
        child.close()

    def test_collection_in_the_middle_of_set_many(self, make_broker: MakeBroker) -> None:
        """set_many over the reference to a cycle collects it between items; the rest lands."""
        b = make_broker(gc_threshold=1)
        parent = b.new_map()
        a, cid = pair(b)
        aid = a.map_id
        parent.set_map(b"k1", a)
        a.close()
        before = counters(b)
        parent.set_many([(b"k0", b"zero"), (b"k1", b"one"), (b"k2", b"two")])
        assert counters(b) == (before[0] + 1, before[1] + 2)
        assert not {aid, cid} & live(b)
        assert dict(parent) == {b"k0": b"zero", b"k1": b"one", b"k2": b"two"}
        parent.close()

    def test_collections_inside_a_guest_call(self, make_broker: MakeBroker) -> None:
        """A guest making 10 garbage pairs at gc_threshold=2 causes 10 collections of 2 maps."""
        b = make_broker(gc_threshold=2)
        load_churn(b)
        assert b.call("churn.garbage", 10) == 0
        assert counters(b) == (10, 20)
        assert b.stats()["maps"] == 0

    def test_automatic_collection_spares_reachable_cycles(self, make_broker: MakeBroker) -> None:
        """Hundreds of collections at gc_threshold=1 never touch a held ring."""
        b = make_broker(gc_threshold=1)
        held = ring(b, 20)
        ids = {m.map_id for m in held}
        for m in held[1:]:
            m.close()
        load_churn(b)
        assert b.call("churn.garbage", 200) == 0
        assert counters(b)[0] >= 400
        assert live(b) == ids
        assert walk_ring(held[0], 20) == [str(i).encode() for i in range(20)]

    def test_gc_stats_match_the_core(self, make_broker: MakeBroker) -> None:
        """broker.gc.stats() has the core's collections and cycles_reclaimed, and the threshold."""
        b = make_broker(gc_threshold=5)
        for _ in range(12):
            self_cycle(b)
        b.collect()
        s = b._native.stats()
        assert b.gc.stats() == CollectorStats(s["collections"], s["cycles_reclaimed"], 5)
        assert b.gc.stats() == CollectorStats(3, 12, 5)
        assert s["reclaimed"] == 12


class TestCascadeTrigger:
    """A release inside a reclaim cascade is a release too (docs/abi.md: "after
    gc_threshold releases that left a map referenced by other maps alive")."""

    def test_cycle_cut_loose_by_reclaiming_its_holder(self, make_broker: MakeBroker) -> None:
        """gc_threshold=1: closing the map that held a cycle collects the cycle at once."""
        b = make_broker(gc_threshold=1)
        holder = b.new_map()
        a, _ = pair(b)
        holder.set_map(b"pair", a)
        a.close()
        holder.close()
        assert b.stats()["maps"] == 0

    def test_unload_of_a_holder_of_a_cycle(self, make_broker: MakeBroker) -> None:
        """gc_threshold=1: unloading the module holding a map above a cycle collects the cycle."""
        b = make_broker(gc_threshold=1)
        load_churn(b)
        top = b.call("churn.new")
        r = b.call("churn.ring", 5, 1)
        assert b.call("churn.link", top, 1, r) == 0
        assert b.call("churn.close", r) == 0
        b.unload("churn")
        assert b.stats()["maps"] == 0


class TestDropNotices:
    def test_notices_for_a_collected_cycle(self, b: Broker) -> None:
        """Both maps of a collected cycle are notified, by the time collect() returns."""
        load_churn(b)
        x, y = b.call("churn.new"), b.call("churn.new")
        assert b.call("churn.link", x, 1, y) == 0
        assert b.call("churn.link", y, 1, x) == 0
        assert b.call("churn.watch", x, 101) == 0
        assert b.call("churn.watch", y, 102) == 0
        assert b.call("churn.close", x) == 0
        assert b.call("churn.close", y) == 0
        assert churn_log(b) == []
        assert b.collect() == 2
        assert sorted(churn_log(b)) == [101, 102]

    def test_no_notice_while_reachable(self, b: Broker) -> None:
        """A watched cycle still held gets no notice from collect(); once unreachable, it does."""
        load_churn(b)
        a, _ = pair(b)
        h = b.call("churn.adopt", Share(a))
        assert b.call("churn.watch", h, 9) == 0
        assert b.call("churn.close", h) == 0
        assert b.collect() == 0
        assert churn_log(b) == []
        a.close()
        assert churn_log(b) == []  # garbage, but not collected yet
        assert b.collect() == 2
        assert churn_log(b) == [9]

    def test_notices_of_a_tail(self, b: Broker) -> None:
        """A map reclaimed only because a garbage cycle held it is notified too."""
        load_churn(b)
        a, _ = pair(b)
        t = b.new_map()
        a.set_map(b"tail", t)
        h = b.call("churn.adopt", Share(t))
        assert b.call("churn.watch", h, 55) == 0
        assert b.call("churn.close", h) == 0
        t.close()
        a.close()
        assert b.collect() == 3
        assert churn_log(b) == [55]

    def test_automatic_collection_notifies_after_the_call(self, make_broker: MakeBroker) -> None:
        """Maps collected automatically in a call are notified after it, in reclaim order."""
        b = make_broker(gc_threshold=1)
        load_churn(b)
        assert b.call("churn.garbage_watched", 10, 500) == 0  # the log was empty inside the call
        assert counters(b) == (10, 10)
        assert churn_log(b) == list(range(500, 510))

    def test_host_close_that_triggers_a_collection_delivers(self, make_broker: MakeBroker) -> None:
        """A host close that runs the collector delivers the notices before it returns."""
        b = make_broker(gc_threshold=1)
        load_churn(b)
        m = b.new_map()
        m.set_map(b"self", m)
        h = b.call("churn.adopt", Share(m))
        assert b.call("churn.watch", h, 7) == 0
        assert b.call("churn.close", h) == 0
        assert churn_log(b) == []
        m.close()
        assert b.stats()["maps"] == 0
        assert churn_log(b) == [7]

    def test_notices_to_another_module(self, b: Broker) -> None:
        """A watcher holding nothing is notified when another module's cycle is collected."""
        load_churn(b)
        b.load("w", WATCHER, exports={"adopt": decl("share")})
        a, _ = pair(b)
        h = b.call("w.adopt", Share(a))
        assert b.call("w.watch", h, 31) == 0
        assert b.call("w.close", h) == 0
        assert b.call("churn.adopt", Share(a)) > 0
        a.close()
        b.unload("churn")
        assert b.collect() == 2
        assert [b.call("w.log_at", i) for i in range(b.call("w.log_len"))] == [31]

    def test_notice_for_an_unloaded_watcher_is_dropped(self, b: Broker) -> None:
        """A cycle watched by a module since unloaded is collected without error or notice."""
        load_churn(b)
        x = b.call("churn.new")
        assert b.call("churn.link", x, 1, x) == 0
        assert b.call("churn.watch", x, 3) == 0
        b.unload("churn")
        assert b.collect() == 1
        assert b._native.take_notices() == []


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
        assert b._native.check() == 0

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
        assert b._native.stats()["entries"] == 1 + 10 * 3
        assert b.collect() == 10
        assert b._native.stats()["entries"] == 1
        assert dict(keep) == {b"a": b"1"}


class TestStorageReleased:
    def test_writer_quota_comes_back(self, b: Broker) -> None:
        """What a guest wrote into a garbage ring is credited back to it when collected."""
        load_churn(b)
        assert b.call("churn.ring", 100, 0) == 0
        # per map: key 2 -> 1 byte (1 + 1 bytes), key 1 -> a reference (1 + 8 bytes),
        # each entry + ENTRY_COST, each map MAP_COST (churn made them)
        assert b.native_module("churn").usage() == (100 * (11 + 2 * ENTRY_COST + MAP_COST), 200)
        assert b.collect() == 100
        assert b.native_module("churn").usage() == (0, 0)

    def test_watch_registrations_are_freed(self, b: Broker) -> None:
        """Registrations on collected maps stop counting against the watches limit."""
        b.load("churn", CHURN, exports=CHURN_EXPORTS, limits={"watches": 5})
        assert b.call("churn.garbage_watched", 5, 0) == 0
        assert b.call("churn.garbage_watched", 1, 0) == -1  # QUOTA: five pending
        assert b.collect() == 5  # (the map whose watch was refused is still held)
        assert sorted(churn_log(b)) == [0, 1, 2, 3, 4]  # one collection: any order
        assert b.call("churn.garbage_watched", 5, 10) == 5
        assert b.collect() == 5
        assert sorted(churn_log(b)[5:]) == [10, 11, 12, 13, 14]


class TestThreads:
    def test_collections_in_one_thread_spare_rings_held_in_others(
        self, make_broker: MakeBroker
    ) -> None:
        """Threads making garbage at gc_threshold=1 never take a ring other threads walk."""
        b = make_broker(gc_threshold=1)
        stop = threading.Event()
        errors: list[BaseException] = []

        def make_garbage() -> None:
            while not stop.is_set():
                self_cycle(b)
                pair(b)[0].close()

        def hold_and_walk(k: int) -> None:
            try:
                for _ in range(100):
                    refs = ring(b, 10)
                    for m in refs[1:]:
                        m.close()
                    assert walk_ring(refs[0], 11) == [str(i % 10).encode() for i in range(11)]
                    refs[0].close()
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        churners = [threading.Thread(target=make_garbage) for _ in range(2)]
        holders = [threading.Thread(target=hold_and_walk, args=(k,)) for k in range(3)]
        for t in churners + holders:
            t.start()
        for t in holders:
            t.join()
        stop.set()
        for t in churners:
            t.join()
        assert errors == []
        assert counters(b)[0] > 0
        b.collect()
        assert b.stats()["maps"] == 0
        assert b._native.check() == 0


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
        assert b._native.check() == 0

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
