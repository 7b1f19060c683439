"""What a collection gives back: drop notices to the guests, and the storage of the maps."""

from __future__ import annotations

from gc_shapes import CHURN, CHURN_EXPORTS, MakeBroker, counters, load_churn, pair
from xmod import WATCHER, decl

from broker import Broker, Share
from broker._native import ENTRY_COST, MAP_COST


def churn_log(b: Broker) -> list[int]:
    """The cookies "churn" received through wasi_map_on_drop, in order."""
    return [b.call("churn.log_at", i) for i in range(b.call("churn.log_len"))]


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
