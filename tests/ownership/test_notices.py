"""Drop notices: watch_drop and wasi_map_on_drop (docs/abi.md "Drop notices")."""

from __future__ import annotations

import gc

import pytest
from replaced import replaced
from xmod import WATCHER, decl, load_pair

from broker import Broker, Errno, GuestTrap, ModuleError, Share

ADOPT = {"adopt": decl("share")}


def load_watcher(b: Broker, name: str = "w", **load: object) -> None:
    """Load xmod_watcher.wat as `name`, its adopt export taking shared handles."""
    b.load(name, WATCHER, exports=ADOPT, **load)  # type: ignore[arg-type]


def log(b: Broker, name: str = "w") -> list[int]:
    """The cookies `name` has received through wasi_map_on_drop, in order."""
    return [b.call(f"{name}.log_at", i) for i in range(b.call(f"{name}.log_len"))]


class TestDelivery:
    def test_notice_after_close(self, broker: Broker) -> None:
        """A watched map closed by its module brings wasi_map_on_drop(cookie)."""
        load_watcher(broker)
        h = broker.call("w.new")
        assert broker.call("w.watch", h, 42) == 0
        assert log(broker) == []
        assert broker.call("w.close", h) == 0
        assert log(broker) == [42]

    def test_not_during_the_call(self, broker: Broker) -> None:
        """The notice waits for the top-level call to return: inside it the log is empty."""
        load_watcher(broker)
        assert broker.call("w.watch_close", 7) == 0
        assert log(broker) == [7]

    def test_cookie_is_the_full_i64(self, broker: Broker) -> None:
        """The cookie comes back unchanged, all 64 bits."""
        load_watcher(broker)
        broker.call("w.watch_close", 2**62 + 12345)
        assert log(broker) == [2**62 + 12345]

    def test_no_notice_while_the_map_lives(self, broker: Broker) -> None:
        """Closing one of two handles reclaims nothing and brings no notice."""
        load_watcher(broker)
        m = broker.new_map()
        h = broker.call("w.adopt", Share(m))
        assert broker.call("w.watch", h, 1) == 0
        assert broker.call("w.close", h) == 0
        assert log(broker) == []
        m.close()
        assert log(broker) == [1]

    def test_watch_needs_a_live_handle(self, broker: Broker) -> None:
        """watch_drop on a closed handle is STALE, on a never-issued one BADF."""
        load_watcher(broker)
        h = broker.call("w.new")
        assert broker.call("w.close", h) == 0
        assert broker.call("w.watch", h, 1) == Errno.STALE
        assert broker.call("w.watch", 0x7FFF, 1) == Errno.BADF
        assert broker.call("w.watch", 0, 1) == Errno.BADF

    def test_reclaim_by_a_teardown_is_notified(self, broker: Broker) -> None:
        """A map reclaimed because its last holder trapped is notified after that call."""
        load_watcher(broker)
        load_pair(broker, {"keep": decl("share"), "trap": decl("i32", results=())})
        m = broker.new_map()
        h = broker.call("w.adopt", Share(m))
        assert broker.call("w.watch", h, 77) == 0
        broker.call("callee.keep", Share(m))
        broker.call("w.close", h)
        m.close()
        assert log(broker) == []  # the callee still holds it
        with pytest.raises(GuestTrap):
            broker.call("callee.trap", 0)
        assert log(broker) == [77]

    def test_twice_registered_twice_notified(self, broker: Broker) -> None:
        """Registering twice on one map gets two notices."""
        load_watcher(broker)
        h = broker.call("w.new")
        assert broker.call("w.watch", h, 5) == 0
        assert broker.call("w.watch", h, 5) == 0
        broker.call("w.close", h)
        assert log(broker) == [5, 5]


class TestOrder:
    def test_registration_order_for_one_map(self, broker: Broker) -> None:
        """Notices for one map come in the order they were registered."""
        load_watcher(broker)
        h = broker.call("w.new")
        for cookie in (3, 1, 2):
            assert broker.call("w.watch", h, cookie) == 0
        broker.call("w.close", h)
        assert log(broker) == [3, 1, 2]

    def test_reclaim_order_across_maps(self, broker: Broker) -> None:
        """Notices for several maps come in the order the maps were reclaimed."""
        load_watcher(broker)
        a, b = broker.call("w.new"), broker.call("w.new")
        assert broker.call("w.watch", a, 10) == 0
        assert broker.call("w.watch", b, 20) == 0
        assert broker.call("w.watch", a, 11) == 0
        m = broker.new_map()
        hm = broker.call("w.adopt", Share(m))
        assert broker.call("w.watch", hm, 30) == 0
        broker.call("w.close", hm)
        broker.call("w.close", b)
        broker.call("w.close", a)
        m.close()
        assert log(broker) == [20, 10, 11, 30]

    def test_cascade_parent_before_child(self, broker: Broker) -> None:
        """A reclaim that cascades through set_map notifies the parent, then the child."""
        load_watcher(broker)
        parent, child = broker.call("w.new"), broker.call("w.new")
        assert broker.call("w.link", parent, child) == 0
        assert broker.call("w.watch", child, 2) == 0
        assert broker.call("w.watch", parent, 1) == 0
        assert broker.call("w.close", child) == 0
        assert log(broker) == []  # the parent keeps the child alive
        assert broker.call("w.close", parent) == 0
        assert log(broker) == [1, 2]


class TestWatchers:
    def test_watchers_in_different_modules(self, broker: Broker) -> None:
        """Every module that watched a map gets its own notice."""
        load_watcher(broker, "w1")
        load_watcher(broker, "w2")
        m = broker.new_map()
        h1 = broker.call("w1.adopt", Share(m))
        h2 = broker.call("w2.adopt", Share(m))
        assert broker.call("w1.watch", h1, 100) == 0
        assert broker.call("w2.watch", h2, 200) == 0
        broker.call("w1.close", h1)
        broker.call("w2.close", h2)
        assert (log(broker, "w1"), log(broker, "w2")) == ([], [])
        m.close()
        assert (log(broker, "w1"), log(broker, "w2")) == ([100], [200])

    def test_unloaded_watcher_notice_is_dropped(self, broker: Broker) -> None:
        """A notice for an unloaded module is dropped; the others are delivered."""
        load_watcher(broker, "w1")
        load_watcher(broker, "w2")
        m = broker.new_map()
        assert broker.call("w1.watch", broker.call("w1.adopt", Share(m)), 1) == 0
        assert broker.call("w2.watch", broker.call("w2.adopt", Share(m)), 2) == 0
        broker.unload("w1")
        broker.unload("w2")
        load_watcher(broker, "w1")  # a new module under the old name gets nothing
        load_watcher(broker, "w3")
        h3 = broker.call("w3.adopt", Share(m))
        assert broker.call("w3.watch", h3, 3) == 0
        assert broker.call("w3.close", h3) == 0
        m.close()
        assert (log(broker, "w1"), log(broker, "w3")) == ([], [3])

    def test_torn_down_watcher_notice_is_dropped(self, broker: Broker) -> None:
        """A notice for a torn-down module is dropped, with no further trap."""
        load_watcher(broker)
        m = broker.new_map()
        h = broker.call("w.adopt", Share(m))
        assert broker.call("w.watch", h, 1) == 0
        broker.call("w.close", h)
        with pytest.raises(GuestTrap):
            broker.call("w.wasi_map_on_drop", -1)  # a trap tears w down
        m.close()  # reclaims the map: its notice goes nowhere
        broker.deliver_notices()

    def test_module_without_the_export_is_ignored(self, broker: Broker) -> None:
        """A module that watches but does not export wasi_map_on_drop gets nothing, no error."""
        load_pair(broker)
        h = broker.call("caller.new")
        assert broker.call("caller.watch", h, 1) == 0
        assert broker.call("caller.close", h) == 0
        assert broker.stats()["maps"] == 0

    def test_wrong_on_drop_signature_is_refused_at_load(self, broker: Broker) -> None:
        """An export named wasi_map_on_drop with another type is a ModuleError at load."""
        wat = b'(module (func (export "wasi_map_on_drop") (param i32)))'
        with pytest.raises(ModuleError, match=r"exports wasi_map_on_drop as \(i32\) -> \(\), not"):
            broker.load("bad", wat)
        assert broker.modules() == []


class TestTrapInOnDrop:
    def test_trap_tears_down_that_module_after_all_notices(self, broker: Broker) -> None:
        """A trap in on_drop tears that module down; the other notices still arrive,
        then GuestTrap is raised."""
        load_watcher(broker, "bad")
        load_watcher(broker, "good")
        m = broker.new_map()
        hb = broker.call("bad.adopt", Share(m))
        hg = broker.call("good.adopt", Share(m))
        assert broker.call("bad.watch", hb, -1) == 0  # a negative cookie makes on_drop trap
        assert broker.call("good.watch", hg, 1) == 0
        assert broker.call("good.watch", hg, 2) == 0
        broker.call("bad.close", hb)
        broker.call("good.close", hg)
        with pytest.raises(GuestTrap) as info:
            m.close()
        assert (info.value.module, info.value.export) == ("bad", "wasi_map_on_drop")
        assert log(broker, "good") == [1, 2]
        replaced(broker, "bad.log_len")

    def test_trap_raised_from_the_call_that_reclaimed(self, broker: Broker) -> None:
        """When a guest call caused the reclaim, that call raises the on_drop trap."""
        load_watcher(broker)
        h = broker.call("w.new")
        assert broker.call("w.watch", h, -5) == 0
        with pytest.raises(GuestTrap) as info:
            broker.call("w.close", h)
        assert (info.value.module, info.value.export) == ("w", "wasi_map_on_drop")
        replaced(broker, "w.new")


class TestHostCausedReclaim:
    def test_delivered_right_after_mapref_close(self, broker: Broker) -> None:
        """A reclaim caused by MapRef.close is delivered before close returns."""
        load_watcher(broker)
        m = broker.new_map()
        h = broker.call("w.adopt", Share(m))
        assert broker.call("w.watch", h, 9) == 0
        broker.call("w.close", h)
        m.close()
        assert broker.call("w.log_len") == 1  # already there when this call began

    def test_delivered_right_after_a_host_write(self, broker: Broker) -> None:
        """Overwriting a map reference from the host reclaims the child and delivers at once."""
        load_watcher(broker)
        parent = broker.new_map()
        child = broker.new_map()
        parent.set_map(b"c", child)
        h = broker.call("w.adopt", Share(child))
        child.close()
        assert broker.call("w.watch", h, 4) == 0
        broker.call("w.close", h)
        parent[b"c"] = b"bytes now"
        assert broker.call("w.log_len") == 1

    def test_garbage_collected_mapref_waits_for_the_next_operation(self, broker: Broker) -> None:
        """A MapRef released by the garbage collector queues its notice for the next operation."""
        load_watcher(broker)
        m = broker.new_map()
        h = broker.call("w.adopt", Share(m))
        assert broker.call("w.watch", h, 6) == 0
        broker.call("w.close", h)
        del m
        gc.collect()
        assert broker.call("w.log_len") == 0  # not from the finalizer; this call delivers it
        assert log(broker) == [6]

    def test_garbage_collected_mapref_and_deliver_notices(self, broker: Broker) -> None:
        """Broker.deliver_notices() delivers what a collected MapRef queued, at once."""
        load_watcher(broker)
        m = broker.new_map()
        h = broker.call("w.adopt", Share(m))
        assert broker.call("w.watch", h, 8) == 0
        broker.call("w.close", h)
        del m
        gc.collect()
        broker.deliver_notices()
        assert broker.call("w.log_len") == 1

    def test_delivered_after_unload(self, broker: Broker) -> None:
        """A reclaim caused by unloading a module is delivered by unload."""
        load_watcher(broker, "w")
        load_watcher(broker, "holder")
        m = broker.new_map()
        h = broker.call("w.adopt", Share(m))
        assert broker.call("w.watch", h, 12) == 0
        broker.call("holder.adopt", Share(m))
        broker.call("w.close", h)
        m.close()
        assert broker.call("w.log_len") == 0  # the holder keeps it alive
        broker.unload("holder")
        assert broker.call("w.log_len") == 1

    def test_garbage_collected_mapref_then_a_host_write(self, broker: Broker) -> None:
        """A host MapRef write is a broker operation: it delivers what a collected MapRef queued."""
        load_watcher(broker)
        other = broker.new_map()
        m = broker.new_map()
        h = broker.call("w.adopt", Share(m))
        assert broker.call("w.watch", h, 3) == 0
        broker.call("w.close", h)
        del m
        gc.collect()
        other[b"k"] = b"v"
        assert broker.call("w.log_len") == 1


class TestWatchQuota:
    def test_watches_quota(self, broker: Broker) -> None:
        """More pending registrations than limits['watches'] is QUOTA."""
        load_watcher(broker, limits={"watches": 2})
        h = broker.call("w.new")
        assert broker.call("w.watch", h, 1) == 0
        assert broker.call("w.watch", h, 2) == 0
        assert broker.call("w.watch", h, 3) == Errno.QUOTA
        broker.call("w.close", h)
        assert log(broker) == [1, 2]

    def test_delivered_notices_free_the_quota(self, broker: Broker) -> None:
        """Once its notices are delivered, a module may register again."""
        load_watcher(broker, limits={"watches": 2})
        h = broker.call("w.new")
        assert broker.call("w.watch", h, 1) == 0
        assert broker.call("w.watch", h, 2) == 0
        broker.call("w.close", h)
        h2 = broker.call("w.new")
        assert broker.call("w.watch", h2, 3) == 0
        assert broker.call("w.watch", h2, 4) == 0
        assert broker.call("w.watch", h2, 5) == Errno.QUOTA

    def test_quota_is_per_module(self, broker: Broker) -> None:
        """One module's watches do not use another's quota."""
        load_watcher(broker, "w1", limits={"watches": 1})
        load_watcher(broker, "w2", limits={"watches": 1})
        m = broker.new_map()
        assert broker.call("w1.watch", broker.call("w1.adopt", Share(m)), 1) == 0
        assert broker.call("w2.watch", broker.call("w2.adopt", Share(m)), 2) == 0
