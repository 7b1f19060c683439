"""The cycle collector (native/gc.c, broker/gc.py; docs/abi.md "The cycle collector"):
which shapes of garbage it reclaims, and which reachable cycles and tails it keeps.
"""

from __future__ import annotations

from gc_shapes import counters, garbage_ring, live, load_churn, pair, ring, self_cycle, walk_ring

from broker import Broker, MapRef, Share, testing


class TestCycleShapes:
    def test_self_reference(self, b: Broker) -> None:
        """A map that references itself is reclaimed by collect(), and only by it."""
        mid = self_cycle(b)
        assert live(b) == {mid}
        assert b.snapshot().cycles() == [[mid]]
        assert b.collect() == 1
        assert live(b) == set()
        assert counters(b) == (1, 1)
        testing.check_refcounts(b)

    def test_self_reference_under_two_keys(self, b: Broker) -> None:
        """A map holding itself under two keys (count 2 from itself) is still garbage."""
        m = b.new_map()
        m.set_map(b"x", m)
        m.set_map(b"y", m)
        m.close()
        assert b.stats()["maps"] == 1
        assert b.collect() == 1
        assert b.stats()["maps"] == 0
        testing.check_refcounts(b)

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
        testing.check_refcounts(b)

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
        testing.check_refcounts(b)

    def test_ring_of_ten_thousand(self, b: Broker) -> None:
        """A ring of 10,000 host maps is one cycle, reclaimed by one collect() (no recursion)."""
        ids = garbage_ring(b, 10_000)
        assert live(b) == ids
        assert [len(g) for g in b.snapshot().cycles()] == [10_000]
        assert b.collect() == 10_000
        assert b.stats()["maps"] == 0
        assert counters(b) == (1, 10_000)
        testing.check_refcounts(b)

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
        testing.check_refcounts(b)

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
        testing.check_refcounts(b)

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
        s = testing.core_counters(b)
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
        testing.check_refcounts(b)

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
        testing.check_refcounts(b)
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
        testing.check_refcounts(b)


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
        testing.check_refcounts(b)

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
        assert testing.core_counters(b)["reclaimed"] == 1
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
        testing.check_refcounts(b)


class TestKeptWorkArrays:
    """The collector keeps its work arrays between collections (native/gc.c, "Memory")."""

    SMALLEST = 1024 * 16  # bytes: room for 1024 candidates, 16 bytes each

    def test_exact_across_collections_as_the_table_grows_and_shrinks(self, b: Broker) -> None:
        """Collections of many and few candidates in turn, over reused rows, reclaim exactly
        the garbage and keep a held ring whole; the arrays fit each and at most 4x over."""
        held = ring(b, 5)
        held_ids = {m.map_id for m in held}
        for garbage in (1019, 1020, 3, 2500, 0, 6000, 40, 1030, 2):
            made = 0
            while made < garbage:  # rings of 1 to 7 maps, self-references included
                made += len(garbage_ring(b, min(1 + made % 7, garbage - made)))
            assert b.collect() == garbage
            assert live(b) == held_ids
            need = garbage + len(held)  # candidates: the garbage and the held ring
            work = testing.core_counters(b)["gc_work_bytes"]
            assert need * 16 <= work <= max(4 * need * 16, self.SMALLEST)
            testing.check_refcounts(b)
        assert walk_ring(held[0], 5) == [str(i).encode() for i in range(5)]

    def test_given_back_when_the_referenced_maps_are_gone(self, b: Broker) -> None:
        """After collecting 5,000 maps the arrays hold room for them; the next collection,
        with nothing referenced, gives them back down to the smallest."""
        assert b.collect() == 0
        assert testing.core_counters(b)["gc_work_bytes"] <= self.SMALLEST
        garbage_ring(b, 5_000)
        assert b.collect() == 5_000
        assert testing.core_counters(b)["gc_work_bytes"] >= 5_000 * 16
        assert b.collect() == 0
        assert testing.core_counters(b)["gc_work_bytes"] == self.SMALLEST
