"""When the collector runs by itself: the threshold, a release inside a reclaim
cascade, collections from several threads.
"""

from __future__ import annotations

import threading

import pytest
from gc_shapes import MakeBroker, counters, live, load_churn, pair, ring, self_cycle, walk_ring

from broker import Broker, testing
from broker.gc import DEFAULT_THRESHOLD, CollectorStats


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
        s = testing.core_counters(b)
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
        testing.check_refcounts(b)
