"""Passing a handle as `borrow` from one guest to another (docs/ownership.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from replaced import replaced
from xmod import CALLEE, CALLER, RW, R, caller_map, decl, load_pair, neg

from broker import Broker, Errno, GuestTrap, testing

LENDING = {
    "keep": decl("borrow"),
    "take": decl("own"),
    "pair": decl("borrow", "borrow"),
    "poke": decl("borrow"),
    "end_borrow": decl("borrow"),
    "keep_clone": decl("borrow"),
    "share_on": decl("borrow"),
    "call_back": decl("borrow"),
}


@pytest.fixture
def lend(broker: Broker) -> Broker:
    """caller and callee, with the callee's exports borrowing; caller.adopt shares."""
    load_pair(broker, LENDING, {"adopt": decl("share")})
    return broker


class TestBorrowRights:
    def test_callee_gets_the_callers_rights(self, lend: Broker) -> None:
        """A read-write lender lets the callee write; the write is in the lender's map."""
        h = caller_map(lend)
        assert lend.call("caller.via_poke", h) == 0
        assert lend.call("caller.read", h, 9) == 9

    def test_read_only_lender_lends_read_only(self, lend: Broker) -> None:
        """A read-only lender's callee cannot write (ACCES) nor clone writable."""
        h = caller_map(lend)
        hr = lend.call("caller.clone", h, R)
        assert lend.call("caller.via_poke", hr) == Errno.ACCES
        assert lend.call("caller.via_keep_clone", hr, RW) == neg(Errno.ACCES)
        assert lend.call("caller.read", h, 9) == neg(Errno.NOENT)


class TestLenderDuringTheCall:
    def test_close_is_busy_in_a_reentrant_call(self, lend: Broker) -> None:
        """While lent, the lender's close is BUSY even when the callee calls back into it."""
        h = caller_map(lend)
        assert lend.call("caller.via_call_back", h, 0) == 0
        assert lend.call("caller.load32", 0x100) == Errno.BUSY

    def test_reads_and_writes_still_work(self, lend: Broker) -> None:
        """While lent, the lender can still write and read through its handle."""
        h = caller_map(lend)
        assert lend.call("caller.via_call_back", h, 0) == 0
        assert lend.call("caller.load32", 0x104) == Errno.OK
        assert lend.call("caller.load32", 0x108) == 6
        assert lend.call("caller.read", h, 5) == 6

    def test_own_pass_is_busy_in_a_reentrant_call(self, lend: Broker) -> None:
        """While lent, moving the handle (own) from a re-entrant call traps with BUSY."""
        h = caller_map(lend)
        with pytest.raises(GuestTrap) as info:
            lend.call("caller.via_call_back", h, 1)
        assert info.value.reason.startswith(
            "wasi_map: caller -> callee.take: parameter 0 (own): BUSY: "
        )
        assert info.value.origin == "caller"

    def test_lent_handle_may_be_lent_again(self, lend: Broker) -> None:
        """A lent handle can be lent once more from a re-entrant call, and ends not busy."""
        h = caller_map(lend)
        lent_again = lend.call("caller.via_call_back", h, 2)  # reenter -> callee.keep(borrow)
        assert lent_again > 0
        assert lend.call("callee.count", lent_again) == neg(Errno.STALE)
        assert lend.call("caller.close", h) == 0
        assert lend.stats()["maps"] == 0

    def test_same_handle_lent_twice_in_one_call(self, lend: Broker) -> None:
        """One handle may be lent twice in one call; both borrows end at return."""
        h = caller_map(lend)
        before = testing.core_counters(lend)["unreleased_borrows"]
        assert lend.call("caller.via_pair", h, h) == 0
        assert testing.core_counters(lend)["unreleased_borrows"] == before + 2
        assert lend.call("caller.close", h) == 0

    def test_close_works_after_return(self, lend: Broker) -> None:
        """Once the call returns, the lender's handle is no longer busy."""
        h = caller_map(lend)
        assert lend.call("caller.via_call_back", h, 0) == 0
        assert lend.call("caller.close", h) == 0
        assert lend.stats()["maps"] == 0


class TestBorrowEnds:
    def test_callees_handle_is_stale_after_return(self, lend: Broker) -> None:
        """The borrowed handle the callee kept is STALE once the call returned."""
        h = caller_map(lend)
        hk = lend.call("caller.via_keep", h)
        assert lend.call("callee.count", hk) == neg(Errno.STALE)
        assert lend.call("callee.read", hk, 1) == neg(Errno.STALE)
        assert lend.call("caller.read", h, 1) == 2

    def test_borrow_does_not_move(self, lend: Broker) -> None:
        """The lender keeps its handle and the handle counts stay as they were."""
        h = caller_map(lend)
        lend.call("caller.via_keep", h)
        assert lend.stats() == {"maps": 1, "named": 0, "handles": {"callee": 0, "caller": 1}}

    def test_borrowed_handle_is_not_counted(self, lend: Broker) -> None:
        """A borrow leaves no reference behind: the lender's close reclaims the map."""
        h = caller_map(lend)
        lend.call("caller.via_keep", h)
        assert lend.call("caller.close", h) == 0
        assert lend.stats()["maps"] == 0

    def test_callee_may_end_the_borrow_early(self, lend: Broker) -> None:
        """Closing a borrowed handle ends the borrow, leaving the lender's map alive."""
        h = caller_map(lend)
        before = testing.core_counters(lend)["unreleased_borrows"]
        assert lend.call("caller.via_end_borrow", h) == 0
        assert testing.core_counters(lend)["unreleased_borrows"] == before
        assert lend.call("caller.read", h, 1) == 2
        assert lend.stats()["maps"] == 1

    def test_borrow_left_open_is_counted(self, lend: Broker) -> None:
        """Each borrow the callee left open is closed by the broker and counted."""
        h = caller_map(lend)
        before = testing.core_counters(lend)["unreleased_borrows"]
        lend.call("caller.via_keep", h)
        lend.call("caller.via_keep", h)
        assert testing.core_counters(lend)["unreleased_borrows"] == before + 2


class TestKeepingABorrowedMap:
    def test_callee_keeps_it_with_clone(self, lend: Broker) -> None:
        """A clone of a borrowed handle owns the map past the call and the lender's close."""
        h = caller_map(lend)
        copy = lend.call("caller.via_keep_clone", h, RW)
        assert copy > 0
        assert lend.call("caller.close", h) == 0
        assert lend.stats()["maps"] == 1
        assert lend.call("callee.read", copy, 1) == 2
        assert lend.call("callee.write", copy, 1, 3) == 0
        assert lend.call("callee.close", copy) == 0
        assert lend.stats()["maps"] == 0

    def test_callee_passes_it_on_as_share(self, lend: Broker) -> None:
        """Sharing a borrowed handle onward gives the receiver an owning handle."""
        h = caller_map(lend)
        shared = lend.call("caller.via_share_on", h)  # callee -> caller.adopt(share)
        assert shared != h
        assert lend.call("caller.close", h) == 0
        assert lend.stats()["maps"] == 1
        assert lend.call("caller.read", shared, 1) == 2
        assert lend.call("caller.close", shared) == 0
        assert lend.stats()["maps"] == 0


class TestStrictBorrows:
    @pytest.fixture
    def strict(self) -> Iterator[Broker]:
        """A strict-borrows broker with the lending pair loaded."""
        b = Broker(strict_borrows=True)
        load_pair(b, LENDING, {"adopt": decl("share")})
        yield b
        b.close()

    def test_borrow_left_open_traps_the_callee(self, strict: Broker) -> None:
        """In strict mode a callee that returns with a borrow open traps and is torn down."""
        h = caller_map(strict)
        with pytest.raises(GuestTrap) as info:
            strict.call("caller.via_keep", h)
        assert info.value.reason.startswith(
            "wasi_map: caller -> callee.keep: returned with 1 borrow(s) still open (strict borrows)"
        )
        assert (info.value.module, info.value.export, info.value.origin) == (
            "caller",
            "via_keep",
            "callee",
        )
        assert strict.stats()["handles"]["callee"] == 0
        replaced(strict, "callee.new")

    def test_lenders_handle_usable_afterwards(self, strict: Broker) -> None:
        """After the strict-mode trap the lender reads, writes and closes its handle."""
        h = caller_map(strict)
        with pytest.raises(GuestTrap):
            strict.call("caller.via_keep", h)
        assert strict.call("caller.write", h, 1, 5) == 0
        assert strict.call("caller.read", h, 1) == 5
        assert strict.call("caller.close", h) == 0
        assert strict.stats()["maps"] == 0

    def test_closed_borrow_is_fine(self, strict: Broker) -> None:
        """A callee that closes its borrow does not trap in strict mode."""
        h = caller_map(strict)
        assert strict.call("caller.via_end_borrow", h) == 0
        assert strict.call("callee.count", strict.call("callee.new")) == 0  # still loaded
        assert strict.call("caller.read", h, 1) == 2

    def test_strict_from_the_manifest(self, tmp_path: Path) -> None:
        """`[broker] strict_borrows = true` in the manifest turns strict mode on."""
        app = tmp_path / "app.toml"
        app.write_text(
            "[broker]\nstrict_borrows = true\n\n"
            f'[modules.callee]\npath = "{CALLEE}"\n'
            'exports.keep = { params = ["borrow"], results = ["i32"] }\n\n'
            f'[modules.caller]\npath = "{CALLER}"\n'
        )
        with Broker.from_manifest(app) as b:
            assert b.strict_borrows is True
            h = b.call("caller.new")
            with pytest.raises(GuestTrap, match="still open"):
                b.call("caller.via_keep", h)
