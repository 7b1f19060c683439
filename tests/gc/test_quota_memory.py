"""The `bytes` quota bounds a module's real memory (docs/abi.md, "Limits and quotas").

Every live entry is charged its key and value plus WM_ENTRY_COST, every live
anonymous map WM_MAP_COST to the module that made it: about what the data
plane allocates for them.  So a module that fills its quota with the
cheapest-looking data (empty keys, empty values, chains of maps) cannot
make the process allocate more than about twice its quota.  Before, 1M maps
chained under empty keys were charged 8 MiB and took 580 MiB.
"""

from __future__ import annotations

from sanitizer import SANITIZED, rss

from broker import Broker, Errno, testing
from broker._native import ENTRY_COST, MAP_COST

QUOTA = 16 << 20

GREEDY = b"""
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set_map" (func $set_map (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $errno (export "errno") (mut i32) (i32.const 0))
  ;; chain(): new maps, each holding the last under the empty key, until an
  ;; error (kept in $errno); how many were made
  (func (export "chain") (result i32)
    (local $prev i32) (local $h i32) (local $n i32) (local $e i32)
    (global.set $errno (call $new (i32.const 0)))
    (if (global.get $errno) (then (return (i32.const 0))))
    (local.set $prev (i32.load (i32.const 0)))
    (block $out
      (loop $more
        (local.set $e (call $new (i32.const 0)))
        (br_if $out (local.get $e))
        (local.set $h (i32.load (i32.const 0)))
        (local.set $e (call $set_map (local.get $h) (i32.const 16) (i32.const 0) (local.get $prev)))
        (br_if $out (local.get $e))
        (drop (call $close (local.get $prev)))
        (local.set $prev (local.get $h))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $more)))
    (global.set $errno (local.get $e))
    (local.get $n))
  ;; entries(): keys 0, 1, 2, ... (4 bytes each) with empty values in one
  ;; map, until an error; how many were written
  (func (export "entries") (result i32)
    (local $h i32) (local $n i32) (local $e i32)
    (drop (call $new (i32.const 0)))
    (local.set $h (i32.load (i32.const 0)))
    (block $out
      (loop $more
        (i32.store (i32.const 32) (local.get $n))
        (local.set $e
          (call $set (local.get $h) (i32.const 32) (i32.const 4) (i32.const 64) (i32.const 0)))
        (br_if $out (local.get $e))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $more)))
    (global.set $errno (local.get $e))
    (local.get $n)))
"""


# Ways to hold memory that the quota did not see (an attack found them):
#   setmap_over(r): r times, a 1 MiB value under a key, then a map reference
#     over it (the old bytes stayed allocated, uncharged);
#   dup(r, n): r new maps, each given one set_many of n copies of one key
#     (the table stayed sized for n);
#   tomb(r, n): r new maps, each given n distinct keys, then all deleted
#     (the table stayed full of deleted slots).
# Each returns 0, or the first errno.
LEAKY_SHAPES = b"""
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "delete" (func $delete (param i32 i32 i32) (result i32)))
  (import "wasi_map" "set_map" (func $set_map (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set_many" (func $set_many (param i32 i32 i32) (result i32)))
  (memory (export "memory") 40)
  (func $fresh (result i32)
    (drop (call $new (i32.const 0)))
    (i32.load (i32.const 0)))
  (func (export "setmap_over") (param $r i32) (result i32)
    (local $h i32) (local $e i32)
    (local.set $h (call $fresh))
    (block $out (loop $more
      (br_if $out (i32.eqz (local.get $r)))
      (i32.store (i32.const 32) (local.get $r))
      (local.set $e (call $set (local.get $h) (i32.const 32) (i32.const 4)
                               (i32.const 0x10000) (i32.const 0x100000)))
      (br_if $out (local.get $e))
      (local.set $e (call $set_map (local.get $h) (i32.const 32) (i32.const 4) (local.get $h)))
      (br_if $out (local.get $e))
      (local.set $r (i32.sub (local.get $r) (i32.const 1)))
      (br $more)))
    (local.get $e))
  ;; items at 0x200000: n records of (u32 1, "k" or the 4-byte i, u32 0)
  (func $items (param $n i32) (param $distinct i32) (result i32)
    (local $i i32) (local $at i32)
    (local.set $at (i32.const 0x200000))
    (block $done (loop $more
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (i32.store (local.get $at) (i32.const 4))
      (i32.store (i32.add (local.get $at) (i32.const 4))
                 (select (local.get $i) (i32.const 0x6b) (local.get $distinct)))
      (i32.store (i32.add (local.get $at) (i32.const 8)) (i32.const 0))
      (local.set $at (i32.add (local.get $at) (i32.const 12)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $more)))
    (i32.sub (local.get $at) (i32.const 0x200000)))
  (func (export "dup") (param $r i32) (param $n i32) (result i32)
    (local $len i32) (local $e i32)
    (local.set $len (call $items (local.get $n) (i32.const 0)))
    (block $out (loop $more
      (br_if $out (i32.eqz (local.get $r)))
      (local.set $e (call $set_many (call $fresh) (i32.const 0x200000) (local.get $len)))
      (br_if $out (local.get $e))
      (local.set $r (i32.sub (local.get $r) (i32.const 1)))
      (br $more)))
    (local.get $e))
  (func (export "tomb") (param $r i32) (param $n i32) (result i32)
    (local $len i32) (local $e i32) (local $h i32) (local $i i32)
    (local.set $len (call $items (local.get $n) (i32.const 1)))
    (block $out (loop $more
      (br_if $out (i32.eqz (local.get $r)))
      (local.set $h (call $fresh))
      (local.set $e (call $set_many (local.get $h) (i32.const 0x200000) (local.get $len)))
      (br_if $out (local.get $e))
      (local.set $i (i32.const 0))
      (block $gone (loop $del
        (br_if $gone (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store (i32.const 32) (local.get $i))
        (drop (call $delete (local.get $h) (i32.const 32) (i32.const 4)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $del)))
      (local.set $r (i32.sub (local.get $r) (i32.const 1)))
      (br $more)))
    (local.get $e)))
"""


class TestTheQuotaBoundsRealMemory:
    def greedy(self, broker: Broker) -> None:
        broker.load("greedy", GREEDY, limits={"bytes": QUOTA, "entries": 1 << 40})

    def test_a_chain_of_maps(self, broker: Broker) -> None:
        """Maps chained under empty keys stop at the quota, with memory within 2x of it."""
        self.greedy(broker)
        before = rss()
        made = broker.call("greedy.chain")
        grown = rss() - before
        assert made > 0 and _errno(broker) == Errno.QUOTA
        used, entries = broker.native_module("greedy").usage()
        assert used <= QUOTA and used > QUOTA - MAP_COST - ENTRY_COST - 8 - 1
        assert made == entries  # one entry a map, each charged with its map
        assert SANITIZED or grown < 2 * QUOTA + (8 << 20)

    def test_entries_with_empty_values(self, broker: Broker) -> None:
        """Empty values under 4-byte keys stop at the quota, with memory within 2x of it."""
        self.greedy(broker)
        before = rss()
        written = broker.call("greedy.entries")
        grown = rss() - before
        assert _errno(broker) == Errno.QUOTA
        used, entries = broker.native_module("greedy").usage()
        assert entries == written and used == MAP_COST + written * (4 + ENTRY_COST)
        assert used > QUOTA - (4 + ENTRY_COST)
        assert SANITIZED or grown < 2 * QUOTA + (8 << 20)

    def test_the_quota_is_what_stops_them(self, broker: Broker) -> None:
        """The guest sees QUOTA, not a crash or a silent stop."""
        from broker import Limits

        broker.load("greedy", GREEDY, limits=Limits(bytes=MAP_COST * 3 + 2 * (ENTRY_COST + 8)))
        assert broker.call("greedy.chain") == 2
        assert _errno(broker) == Errno.QUOTA


def _errno(broker: Broker) -> int:
    inst = broker._modules["greedy"].instances[0]
    store = inst.store
    glob = inst.instance.exports(store)["errno"]
    return int(glob.value(store))  # type: ignore[union-attr]


class TestMemoryTheQuotaDidNotSee:
    """Each of these held about 2-3 GB for a 16 MiB quota before the fix."""

    def shapes(self, broker: Broker) -> None:
        broker.load("leaky", LEAKY_SHAPES, limits={"bytes": QUOTA, "entries": 1 << 40})

    def test_a_map_reference_over_a_big_value(self, broker: Broker) -> None:
        """set_map over a 1 MiB value gives the value's memory back."""
        self.shapes(broker)
        before = rss()
        assert broker.call("leaky.setmap_over", 100) == 0
        assert SANITIZED or rss() - before < 2 * QUOTA + (8 << 20)
        assert broker.native_module("leaky").usage()[0] <= QUOTA

    def test_one_batch_of_one_key_repeated(self, broker: Broker) -> None:
        """A set_many of 20,000 copies of one key leaves a table for one entry."""
        self.shapes(broker)
        before = rss()
        assert broker.call("leaky.dup", 300, 20_000) == 0
        assert SANITIZED or rss() - before < 2 * QUOTA + (8 << 20)

    def test_deleted_entries(self, broker: Broker) -> None:
        """A map whose entries were all deleted gives its tables back."""
        self.shapes(broker)
        before = rss()
        assert broker.call("leaky.tomb", 50, 20_000) == 0
        assert SANITIZED or rss() - before < 2 * QUOTA + (8 << 20)
        testing.check_refcounts(broker)
