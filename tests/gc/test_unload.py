"""Unload gives back everything, and a failed load leaves the broker as it was.

Each module has its own wasmtime store: unloading it frees its linear
memory, and the core frees its links, watches, handle table, name and id.
A load that fails (a trap in the start function or `_initialize`, a bad
declaration) leaves nothing behind; a trap it caused in a peer tears that
peer down, as any trap does, and never poisons the next trap's blame.
"""

from __future__ import annotations

import pytest
import wasmtime
from sanitizer import SANITIZED, rss
from xmod import CALLEE, CALLER, WATCHER

from broker import Borrow, Broker, GuestTrap, ModuleError, testing

TINY = wasmtime.wat2wasm('(module (func (export "f") (result i32) (i32.const 1)))')

# Fills 4 MiB (64 pages) with ones at start.
TOUCH_4MIB = b"""
(module
  (memory (export "memory") 64)
  (func $fill (memory.fill (i32.const 0) (i32.const 1) (i32.const 0x400000)))
  (start $fill))
"""

# Its start function makes 100 maps, keeps them open, then traps.
MAKES_MAPS_THEN_TRAPS = b"""
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (memory (export "memory") 1)
  (func $start (local $i i32)
    (loop $l
      (drop (call $new (i32.mul (local.get $i) (i32.const 4))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 100))))
    unreachable)
  (start $start))
"""

BOOM = (
    b'(module (func (export "boom") unreachable) (func (export "ok") (result i32) (i32.const 1)))'  # noqa: E501
)

# Its start function calls "bad.boom", which traps there.
STARTS_IN_A_PEER = b"""
(module
  (import "bad" "boom" (func $boom))
  (func $start (call $boom))
  (start $start))
"""

INIT_IN_A_PEER = b"""
(module
  (import "bad" "boom" (func $boom))
  (func (export "_initialize") (call $boom)))
"""

TRAPS_ITSELF = b'(module (func (export "fail") unreachable))'


class TestUnloadGivesBack:
    def test_linear_memory(self, broker: Broker) -> None:
        """100 load/unload cycles of a module touching 4 MiB: memory comes back
        (before: +400 MiB, every instance lived in one store)."""
        for _ in range(10):
            broker.load("m", TOUCH_4MIB)
            broker.unload("m")
        before = rss()
        for _ in range(100):
            broker.load("m", TOUCH_4MIB)
            broker.unload("m")
        assert SANITIZED or rss() - before < 64 << 20

    def test_loads_are_not_capped(self, broker: Broker) -> None:
        """10,050 loads in one broker (before: every load failed after 10,000)."""
        for _ in range(10_050):
            broker.load("m", TINY)
            broker.unload("m")
        broker.load("m", TINY)
        assert broker.call("m.f") == 1

    def test_links_names_and_ids(self, broker: Broker) -> None:
        """The links a module made and the host's ways into it are freed; its id is reused."""
        broker.load("callee", CALLEE)
        broker.load("caller", CALLER)
        broker.call("caller.new")
        first = testing.core_counters(broker)
        caller_id = broker.native_module("caller").id
        for _ in range(200):
            broker.unload("caller")
            broker.load("caller", CALLER)
            broker.call("caller.new")
            broker.call("caller.count", broker.call("caller.new"))
        assert broker.native_module("caller").id == caller_id
        after = testing.core_counters(broker)
        assert after["links"] == first["links"] + 1  # the one new host way in (count)
        assert after["modules"] == 2

    def test_watches_do_not_reach_the_next_module_with_its_id(self, broker: Broker) -> None:
        """A watch of an unloaded module is forgotten: a module loaded later with the
        same id gets no notice for it."""
        m = broker.new_map()
        broker.load("watcher", WATCHER, exports={"watch": {"params": ["borrow", "i64"]}})
        watcher_id = broker.native_module("watcher").id
        assert broker.call("watcher.watch", Borrow(m), 7) == 0
        broker.unload("watcher")
        broker.load("watcher", WATCHER, exports={"watch": {"params": ["borrow", "i64"]}})
        assert broker.native_module("watcher").id == watcher_id
        m.close()
        assert broker.call("watcher.log_len") == 0

    def test_entries_it_wrote_are_charged_to_the_host(self, broker: Broker) -> None:
        """Data outlives its writer: the host is charged for it, the next module is not."""
        m = broker.new_map()
        broker.load("callee", CALLEE, exports={"poke": {"params": ["borrow"]}})
        assert broker.call("callee.poke", Borrow(m)) >= 0
        callee = broker.native_module("callee")
        assert callee.usage()[1] >= 1
        written = callee.usage()
        host_before = broker.host.usage()
        broker.unload("callee")
        broker.load("callee", CALLEE)
        assert broker.native_module("callee").usage() == (0, 0)
        assert broker.host.usage() == (
            host_before[0] + written[0],
            host_before[1] + written[1],
        )
        testing.check_refcounts(broker)


class TestAFailedLoad:
    def test_a_trapping_start_leaves_no_maps(self, broker: Broker) -> None:
        """50 failed loads whose start made 100 maps each leave no map (before: 5,000)."""
        before = testing.core_counters(broker)
        for _ in range(50):
            with pytest.raises(ModuleError, match="trapped while starting"):
                broker.load("maker", MAKES_MAPS_THEN_TRAPS)
        after = testing.core_counters(broker)
        assert after["maps"] == before["maps"] == 0
        assert after["modules"] == 0 and after["links"] == before["links"]
        assert broker.modules() == []
        broker.load("maker", TINY)  # the name is free

    def test_a_trap_in_a_peer_tears_the_peer_down_and_is_consumed(self, broker: Broker) -> None:
        """The start function's trap began in a peer: the peer is torn down, and the
        next unrelated trap blames its own module (before: the stale origin)."""
        broker.load("bad", BOOM, on_trap="stop")  # stays torn down, to be seen
        broker.load("innocent", TRAPS_ITSELF)
        with pytest.raises(ModuleError, match="trapped while starting"):
            broker.load("starter", STARTS_IN_A_PEER)
        with pytest.raises(ModuleError, match="torn down"):
            broker.call("bad.ok")
        with pytest.raises(GuestTrap) as info:
            broker.call("innocent.fail")
        assert info.value.origin == "innocent"
        assert broker.modules() == ["bad", "innocent"]

    def test_a_trap_in_initialize_is_consumed_too(self, broker: Broker) -> None:
        """The same through `_initialize`."""
        broker.load("bad", BOOM)
        broker.load("innocent", TRAPS_ITSELF)
        with pytest.raises(ModuleError, match="trapped in _initialize"):
            broker.load("init", INIT_IN_A_PEER)
        assert broker._native.take_trap_origin() is None
        with pytest.raises(GuestTrap) as info:
            broker.call("innocent.fail")
        assert info.value.origin == "innocent"
        assert broker.modules() == ["bad", "innocent"]

    def test_a_failed_load_leaves_the_stats_as_they_were(self, broker: Broker) -> None:
        """A declaration that does not match fails the load after instantiation: nothing stays."""
        broker.load("callee", CALLEE)
        before = testing.core_counters(broker)
        with pytest.raises(ModuleError):
            broker.load("caller", CALLER, exports={"nope": {"params": ["own"]}})
        assert testing.core_counters(broker) == before
        assert broker.modules() == ["callee"]


# "p" imports st.cb; "st"'s start function calls p.g, which calls back into
# st.cb before st has finished loading (the link is not resolved yet).
CALLS_BACK_P = b"""(module (import "st" "cb" (func $cb (result i32)))
 (func (export "g") (result i32) (call $cb)) (func (export "ok") (result i32) (i32.const 1)))"""
CALLS_BACK_ST = b"""(module (import "p" "g" (func $g (result i32)))
 (func (export "cb") (result i32) (i32.const 5))
 (func $s (drop (call $g))) (start $s))"""


class TestAStartThatCallsBack:
    def test_the_loading_module_is_at_fault_not_its_peer(self, broker: Broker) -> None:
        """A start function whose call comes back into its own module (not loaded
        yet) fails the load; the peer in between is not torn down (before: it was)."""
        broker.load("p", CALLS_BACK_P)
        with pytest.raises(ModuleError, match="still loading"):
            broker.load("st", CALLS_BACK_ST)
        assert broker.call("p.ok") == 1
        with pytest.raises(GuestTrap, match="not loaded"):  # afterwards: p's own call
            broker.call("p.g")


class TestNothingGrowsWithReloads:
    def test_link_labels(self, broker: Broker) -> None:
        """The Python side forgets the labels of freed links too (before: one entry per
        link ever made)."""
        broker.load("callee", CALLEE)
        broker.load("caller", CALLER)
        broker.call("caller.new")
        before = len(broker._native.link_labels)
        for _ in range(50):
            broker.unload("caller")
            broker.load("caller", CALLER)
            broker.call("caller.new")
        assert len(broker._native.link_labels) == before

    def test_link_labels_after_failed_loads(self, broker: Broker) -> None:
        """...also those of loads that failed."""
        broker.load("callee", CALLEE)
        before = len(broker._native.link_labels)
        for _ in range(20):
            with pytest.raises(ModuleError):
                broker.load("caller", CALLER, exports={"nope": {"params": ["own"]}})
        assert len(broker._native.link_labels) == before
