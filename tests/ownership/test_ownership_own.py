"""Passing a handle as `own` from one guest to another (docs/ownership.md)."""

from __future__ import annotations

import pytest
from xmod import R, caller_map, decl, load_pair, neg

from broker import Borrow, Broker, Errno, GuestTrap, Share, testing

# go(): a new map passed to its own export `take` through the import "s" "take";
# -> (errno of len on the old number, of len on the new one, of closing the new one)
SELF_OWN = b"""
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "len" (func $len (param i32 i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "s" "take" (func $take (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "take") (param $h i32) (result i32) (local.get $h))
  (func (export "go") (result i32 i32 i32)
    (local $h i32) (local $h2 i32)
    (drop (call $new (i32.const 0)))
    (local.set $h (i32.load (i32.const 0)))
    (local.set $h2 (call $take (local.get $h)))
    (call $len (local.get $h) (i32.const 8))
    (call $len (local.get $h2) (i32.const 8))
    (call $close (local.get $h2))))
"""


@pytest.fixture
def own(broker: Broker) -> Broker:
    """caller and callee, with callee.keep/take/pair taking own handles."""
    load_pair(
        broker,
        {
            "keep": decl("own"),
            "take": decl("own"),
            "pair": decl("own", "own"),
            "call_back": decl("borrow"),
        },
    )
    return broker


class TestOwn:
    def test_callers_handle_becomes_stale(self, own: Broker) -> None:
        """After an own pass, every use of the caller's number is STALE."""
        h = caller_map(own)
        own.call("caller.via_keep", h)
        assert own.call("caller.count", h) == neg(Errno.STALE)
        assert own.call("caller.read", h, 1) == neg(Errno.STALE)
        assert own.call("caller.write", h, 1, 3) == Errno.STALE
        assert own.call("caller.close", h) == Errno.STALE

    def test_callee_owns_the_map(self, own: Broker) -> None:
        """The callee's handle reaches the same map, and its close reclaims it."""
        h = caller_map(own, 1, 2)
        map_id = own.native_module("caller").map_id(h)
        hk = own.call("caller.via_keep", h)
        assert own.native_module("callee").map_id(hk) == map_id
        assert own.call("callee.read", hk, 1) == 2
        assert own.call("callee.close", hk) == 0
        assert own.stats()["maps"] == 0

    def test_count_unchanged(self, own: Broker) -> None:
        """A move changes who holds the reference, not how many there are."""
        h = caller_map(own)
        assert own.stats() == {"maps": 1, "named": 0, "handles": {"callee": 0, "caller": 1}}
        own.call("caller.via_keep", h)
        assert own.stats() == {"maps": 1, "named": 0, "handles": {"callee": 1, "caller": 0}}

    def test_rights_are_kept(self, own: Broker) -> None:
        """A read-only handle moves read-only; a read-write one stays writable."""
        h = caller_map(own, 1, 2)
        hr = own.call("caller.clone", h, R)
        kept_rw = own.call("caller.via_keep", h)
        kept_r = own.call("caller.via_take", hr)
        assert own.call("callee.write", kept_rw, 4, 4) == 0
        assert own.call("callee.write", kept_r, 4, 5) == Errno.ACCES
        assert own.call("callee.read", kept_r, 4) == 4

    def test_caller_stays_usable(self, own: Broker) -> None:
        """The caller's other handles are untouched by a move."""
        h, other = caller_map(own), caller_map(own, 1, 9)
        own.call("caller.via_keep", h)
        assert own.call("caller.read", other, 1) == 9


class TestOwnToItself:
    def test_self_import_moves_within_the_module(self, broker: Broker) -> None:
        """Own through a module's import of its own export: a new number, the old STALE."""
        broker.load("s", SELF_OWN, exports={"take": decl("own")})
        old_len, new_len, close = broker.call("s.go")
        assert (old_len, new_len, close) == (Errno.STALE, Errno.OK, Errno.OK)
        assert broker.stats() == {"maps": 0, "named": 0, "handles": {"s": 0}}


class TestOwnRefused:
    def test_own_of_a_borrowed_handle_traps_with_acces(self, broker: Broker) -> None:
        """A module cannot give away a handle it only borrowed: ACCES, the caller traps."""
        load_pair(broker, {"take": decl("own")}, {"via_take": decl("borrow")})
        m = broker.new_map()
        m[b"k"] = b"v"
        with pytest.raises(GuestTrap) as info:
            broker.call("caller.via_take", Borrow(m))
        assert info.value.reason.startswith(
            "wasi_map: caller -> callee.take: parameter 0 (own): ACCES: "
        )
        assert (info.value.module, info.value.origin) == ("caller", "caller")
        assert broker.stats()["handles"]["callee"] == 0
        assert dict(m) == {b"k": b"v"}
        m.close()  # the borrow ended with the trap: not BUSY
        assert broker.stats()["maps"] == 0

    def test_own_of_a_lent_handle_traps_with_busy(self, own: Broker) -> None:
        """A handle lent to a call in progress cannot move, even from a re-entrant call."""
        h = caller_map(own)
        with pytest.raises(GuestTrap) as info:
            own.call("caller.via_call_back", h, 1)
        assert info.value.reason.startswith(
            "wasi_map: caller -> callee.take: parameter 0 (own): BUSY: "
        )
        assert info.value.origin == "caller"
        assert own.stats()["handles"]["callee"] == 0

    def test_same_handle_twice_traps_with_busy(self, own: Broker) -> None:
        """A handle passed as own may not appear twice in one call."""
        h = caller_map(own)
        with pytest.raises(GuestTrap) as info:
            own.call("caller.via_pair", h, h)
        assert info.value.reason.startswith(
            "wasi_map: caller -> callee.pair: parameter 1 (own): BUSY: "
        )
        assert own.stats()["handles"]["callee"] == 0

    def test_own_and_borrow_of_one_handle_traps_with_busy(self, broker: Broker) -> None:
        """One handle cannot be moved and lent in the same call."""
        load_pair(broker, {"pair": decl("borrow", "own")})
        h = broker.call("caller.new")
        with pytest.raises(GuestTrap) as info:
            broker.call("caller.via_pair", h, h)
        assert info.value.reason.startswith(
            "wasi_map: caller -> callee.pair: parameter 1 (own): BUSY: "
        )

    @pytest.mark.parametrize("first", ["own", "share", "borrow"])
    @pytest.mark.parametrize(("second", "errno"), [("stale", "STALE"), ("never issued", "BADF")])
    def test_all_or_none_when_the_second_fails(
        self, broker: Broker, first: str, second: str, errno: str
    ) -> None:
        """When the 2nd handle cannot pass, the 1st does not pass either."""
        load_pair(broker, {"pair": decl(first, "own")}, {"adopt": decl("share")})
        m = broker.new_map()
        m[b"k"] = b"v"
        h = broker.call("caller.adopt", Share(m))
        if second == "stale":
            bad = broker.call("caller.new")
            assert broker.call("caller.close", bad) == 0
        else:
            bad = 0x7FFF
        before = testing.core_counters(broker)["unreleased_borrows"]
        with pytest.raises(GuestTrap) as info:
            broker.call("caller.via_pair", h, bad)
        assert info.value.reason.startswith(
            f"wasi_map: caller -> callee.pair: parameter 1 (own): {errno}: "
        )
        assert broker.stats()["handles"]["callee"] == 0  # nothing reached the callee
        assert testing.core_counters(broker)["unreleased_borrows"] == before
        assert broker.stats()["maps"] == 1
        assert dict(m) == {b"k": b"v"}
        m.close()
        assert broker.stats()["maps"] == 0  # no reference was left behind

    def test_all_or_none_when_the_callee_has_no_room(self, broker: Broker) -> None:
        """No room for both handles in the callee: QUOTA, neither moves, the callee goes."""
        load_pair(broker, {"pair": decl("own", "own")}, limits={"handles": 2})
        broker.call("callee.new")  # one of its two slots in use
        a, b = broker.call("caller.new"), broker.call("caller.new")
        with pytest.raises(GuestTrap) as info:
            broker.call("caller.via_pair", a, b)
        assert info.value.reason.startswith(
            "wasi_map: caller -> callee.pair: parameter 0 (own): QUOTA: "
        )
        # The receiver's table is full: the receiver is torn down, the caller
        # keeps both handles (neither moved).
        assert info.value.origin == "callee"
        assert broker.stats()["handles"] == {"callee": 0, "caller": 2}

    def test_one_handle_fits(self, broker: Broker) -> None:
        """With room for exactly one more handle, a single own pass succeeds."""
        load_pair(broker, {"keep": decl("own")}, limits={"handles": 2})
        broker.call("callee.new")
        h = broker.call("caller.new")
        hk = broker.call("caller.via_keep", h)
        assert broker.call("callee.count", hk) == 0
        assert broker.stats()["handles"] == {"callee": 2, "caller": 0}
