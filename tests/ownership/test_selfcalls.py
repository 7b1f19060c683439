"""A module passing handles to its own exports, and calls between two modules,
with the handle tables at every size where they grow.

When a module calls itself, the giver's and the receiver's handle tables are
one table: making room for the received handle may move it.  Each case fills
the table to exactly n live handles, for n around 64, 128 and 256 (where the
table grows), so that the pass is the one that grows it.  The whole suite
also runs against an ASan build of the core in CI (tests/native/run_sanitized.sh).
"""

from __future__ import annotations

import pytest
from paths import GUESTS
from xmod import neg

from broker import Borrow, Broker, Errno, Own, Share, testing

SELF_PASS = GUESTS / "self_pass.wat"
SIZES = [1, 62, 63, 64, 65, 126, 127, 128, 129, 254, 255, 256, 257]
EXPORTS = {
    "inner_own": {"params": ["own"], "results": ["i32"]},
    "inner_borrow": {"params": ["borrow"], "results": ["i32"]},
    "inner_share": {"params": ["share"], "results": ["i32"]},
    "give_own": {"results": ["own"]},
    "give_share": {"results": ["share"]},
}


def self_pass(broker: Broker) -> None:
    broker.load("selfpass", SELF_PASS, exports=EXPORTS)


def filled(broker: Broker, n: int) -> int:
    """Fill selfpass's table to n live handles; one more handle, returned."""
    assert broker.call("selfpass.fill", n) == 0
    h = broker.call("selfpass.new")
    assert h > 0
    assert broker.stats()["handles"]["selfpass"] == n + 1
    return int(h)


def consistent(broker: Broker) -> None:
    testing.check_refcounts(broker)


@pytest.mark.parametrize("n", SIZES)
class TestSelfCall:
    def test_borrow_keeps_the_lender_busy(self, broker: Broker, n: int) -> None:
        """Lent to itself, the lender's handle cannot be closed inside the call (BUSY)."""
        self_pass(broker)
        h = filled(broker, n)
        assert broker.call("selfpass.outer_borrow", h) == Errno.BUSY * 100
        assert broker.call("selfpass.len", h) == 1  # the callee's write, through the borrow
        assert broker.call("selfpass.len", broker.call("selfpass.got")) == neg(Errno.STALE)
        assert broker.call("selfpass.close", h) == 0  # the borrow is over
        assert broker.stats()["handles"]["selfpass"] == n
        consistent(broker)

    def test_own_moves_within_the_module(self, broker: Broker, n: int) -> None:
        """Moved to itself, the old number is STALE at once and the new one owns the map."""
        self_pass(broker)
        h = filled(broker, n)
        assert broker.call("selfpass.outer_own", h) == Errno.STALE * 100
        got = broker.call("selfpass.got")
        assert got != h
        assert broker.call("selfpass.len", h) == neg(Errno.STALE)
        assert broker.call("selfpass.close", h) == neg(Errno.STALE)
        assert broker.call("selfpass.len", got) == 1
        assert broker.stats()["handles"]["selfpass"] == n + 1
        consistent(broker)

    def test_share_gives_a_second_handle(self, broker: Broker, n: int) -> None:
        """Shared with itself, both numbers own the map."""
        self_pass(broker)
        h = filled(broker, n)
        assert broker.call("selfpass.outer_share", h) == 0
        got = broker.call("selfpass.got")
        assert broker.call("selfpass.len", h) == broker.call("selfpass.len", got) == 1
        assert broker.stats()["handles"]["selfpass"] == n + 2
        assert broker.call("selfpass.close", h) == 0
        assert broker.call("selfpass.len", got) == 1
        consistent(broker)

    def test_own_result_into_the_same_table(self, broker: Broker, n: int) -> None:
        """An own result from itself: the old number STALE, the new one lives."""
        self_pass(broker)
        h = filled(broker, n)
        back = broker.call("selfpass.outer_give_own", h)
        assert back > 0 and back != h
        assert broker.call("selfpass.len", h) == neg(Errno.STALE)
        assert broker.call("selfpass.len", back) == 0
        assert broker.stats()["handles"]["selfpass"] == n + 1
        consistent(broker)

    def test_share_result_into_the_same_table(self, broker: Broker, n: int) -> None:
        """A share result from itself: both numbers live."""
        self_pass(broker)
        h = filled(broker, n)
        back = broker.call("selfpass.outer_give_share", h)
        assert back > 0 and back != h
        assert broker.call("selfpass.len", h) == broker.call("selfpass.len", back) == 0
        assert broker.stats()["handles"]["selfpass"] == n + 2
        consistent(broker)

    def test_host_at_its_boundary(self, broker: Broker, n: int) -> None:
        """The host's own table, exactly full, grows to take results; its lends,
        moves and shares pass as at any size."""
        self_pass(broker)
        held = [broker.new_map() for _ in range(n)]
        for kind in ("own", "share"):
            h = broker.call("selfpass.new")
            broker.call("selfpass.remember", h)
            ref = broker.call(f"selfpass.give_{kind}")
            assert len(ref) == 0 and ref.handle not in {r.handle for r in held}
            held.append(ref)
        lent = broker.new_map()
        assert broker.call("selfpass.inner_borrow", Borrow(lent)) % 100 == 0
        assert lent[b"seen"] == b"seen"
        lent.close()  # the borrow is over
        assert broker.call("selfpass.inner_own", Own(broker.new_map())) % 100 == 0
        shared = broker.new_map()
        assert broker.call("selfpass.inner_share", Share(shared)) % 100 == 0
        assert shared[b"seen"] == b"seen"
        assert broker.host.handle_count() == n + 3
        consistent(broker)


class TestTheAttack:
    def test_lent_handle_cannot_be_closed_and_reused(self, broker: Broker) -> None:
        """The exploit: close the lent handle inside a self-borrow with a full
        table, let another module's private map take the slot, and reach it
        through the stale borrow.  Close is BUSY, so nothing is reached."""
        self_pass(broker)
        victim = SELF_PASS.read_bytes().replace(b'"selfpass"', b'"victim"')
        broker.load("victim", victim, exports=EXPORTS)
        h = filled(broker, 63)  # 64 live: the borrow needs the 65th slot
        assert broker.call("selfpass.outer_borrow", h) == Errno.BUSY * 100
        private = broker.call("victim.new")
        assert broker.call("victim.len", private) == 0  # nobody wrote into it
        assert broker.call("selfpass.len", broker.call("selfpass.got")) == neg(Errno.STALE)
        consistent(broker)


@pytest.mark.parametrize("n", SIZES)
class TestMutualCalls:
    def load_pair(self, broker: Broker) -> None:
        """self_pass.wat twice: "a" imports b's inner_* exports, "b" imports a's."""
        source = SELF_PASS.read_bytes()
        broker.load("a", source.replace(b'"selfpass"', b'"b"'), exports=EXPORTS)
        broker.load("b", source.replace(b'"selfpass"', b'"a"'), exports=EXPORTS)

    def test_own_and_share_with_both_tables_at_the_boundary(self, broker: Broker, n: int) -> None:
        """a passes to b with both tables holding exactly n handles: the map moves or
        is shared, and the counts stay right."""
        self.load_pair(broker)
        assert broker.call("a.fill", n) == 0 and broker.call("b.fill", n) == 0
        h = broker.call("a.new")
        assert broker.call("a.outer_own", h) % 100 == 0  # b wrote "seen" through it
        got = broker.call("b.got")
        assert broker.call("a.len", h) == neg(Errno.STALE)
        assert broker.call("b.len", got) == 1
        shared = broker.call("a.new")
        assert broker.call("a.outer_share", shared) % 100 == 0
        assert broker.call("a.len", shared) == broker.call("b.len", broker.call("b.got")) == 1
        assert broker.stats()["handles"] == {"a": n + 1, "b": n + 2}
        consistent(broker)

    def test_borrow_there_and_results_back(self, broker: Broker, n: int) -> None:
        """a lends to b, and takes own/share results from b, at the boundary."""
        self.load_pair(broker)
        assert broker.call("a.fill", n) == 0 and broker.call("b.fill", n) == 0
        h = broker.call("a.new")
        broker.call("a.outer_borrow", h)
        assert broker.call("a.len", h) == 1  # b's write, through the borrow
        assert broker.call("a.close", h) == 0  # the borrow is over
        mine = broker.call("b.new")
        broker.call("b.remember", mine)
        back = broker.call("a.outer_give_own", 0)
        assert back > 0 and broker.call("a.len", back) == 0
        assert broker.call("b.len", mine) == neg(Errno.STALE)
        consistent(broker)
