"""Passing a handle as `share`, and the read-only `:r` kinds (docs/ownership.md)."""

from __future__ import annotations

import pytest
from xmod import RW, R, caller_map, decl, load_pair, neg

from broker import Broker, Errno


@pytest.fixture
def share(broker: Broker) -> Broker:
    """caller and callee, with callee.keep/take/pair taking shared handles."""
    load_pair(
        broker,
        {"keep": decl("share"), "take": decl("share"), "pair": decl("share", "share")},
    )
    return broker


class TestShare:
    def test_both_own_a_handle(self, share: Broker) -> None:
        """After a share both modules hold a working owning handle to one map."""
        h = caller_map(share)
        hk = share.call("caller.via_keep", h)
        assert share.call("caller.read", h, 1) == 2
        assert share.call("callee.read", hk, 1) == 2
        assert share.call("callee.write", hk, 3, 4) == 0
        assert share.call("caller.read", h, 3) == 4
        ids = share.native_module("caller").map_id(h), share.native_module("callee").map_id(hk)
        assert ids[0] == ids[1] != 0
        assert share.stats() == {"maps": 1, "named": 0, "handles": {"callee": 1, "caller": 1}}

    def test_map_survives_the_caller_closing(self, share: Broker) -> None:
        """The share counted one more: the callee's handle outlives the caller's."""
        h = caller_map(share)
        hk = share.call("caller.via_keep", h)
        assert share.call("caller.close", h) == 0
        assert share.stats()["maps"] == 1
        assert share.call("callee.read", hk, 1) == 2
        assert share.call("callee.close", hk) == 0
        assert share.stats()["maps"] == 0

    def test_map_survives_the_callee_closing(self, share: Broker) -> None:
        """The caller's handle outlives the callee's."""
        h = caller_map(share)
        hk = share.call("caller.via_keep", h)
        assert share.call("callee.close", hk) == 0
        assert share.stats()["maps"] == 1
        assert share.call("caller.read", h, 1) == 2
        assert share.call("caller.close", h) == 0
        assert share.stats()["maps"] == 0

    def test_rights_are_the_callers(self, share: Broker) -> None:
        """A read-only handle is shared read-only."""
        h = caller_map(share)
        hr = share.call("caller.clone", h, R)
        hk = share.call("caller.via_keep", hr)
        assert share.call("callee.write", hk, 1, 3) == Errno.ACCES
        assert share.call("callee.read", hk, 1) == 2

    def test_same_handle_twice(self, share: Broker) -> None:
        """One handle may be shared twice in one call: two references more."""
        h = caller_map(share)
        assert share.call("caller.via_pair", h, h) == 0
        assert share.stats()["handles"] == {"callee": 2, "caller": 1}
        assert share.call("caller.close", h) == 0
        assert share.stats()["maps"] == 1

    def test_share_of_a_lent_handle(self, broker: Broker) -> None:
        """A lent handle may still be shared from a re-entrant call."""
        load_pair(broker, {"keep": decl("share"), "call_back": decl("borrow")})
        h = caller_map(broker)
        hk = broker.call("caller.via_call_back", h, 2)  # reenter -> callee.keep(share)
        assert broker.call("callee.read", hk, 1) == 2
        assert broker.call("caller.close", h) == 0
        assert broker.call("callee.read", hk, 1) == 2


class TestReadOnlyKinds:
    @pytest.mark.parametrize("kind", ["own:r", "share:r"])
    def test_callee_cannot_write(self, broker: Broker, kind: str) -> None:
        """own:r and share:r give the callee a handle that reads but cannot write."""
        load_pair(broker, {"keep": decl(kind)})
        h = caller_map(broker)
        hk = broker.call("caller.via_keep", h)
        assert broker.call("callee.write", hk, 1, 3) == Errno.ACCES
        assert broker.call("callee.read", hk, 1) == 2
        assert broker.call("callee.count", hk) == 1

    @pytest.mark.parametrize("kind", ["own:r", "share:r"])
    def test_callee_cannot_clone_writable(self, broker: Broker, kind: str) -> None:
        """A read-only handle cannot be upgraded by clone (ACCES); a read clone works."""
        load_pair(broker, {"keep": decl(kind)})
        hk = broker.call("caller.via_keep", caller_map(broker))
        assert broker.call("callee.keep_clone", hk, RW) == neg(Errno.ACCES)
        copy = broker.call("callee.keep_clone", hk, R)
        assert broker.call("callee.read", copy, 1) == 2

    def test_share_r_leaves_the_caller_writable(self, broker: Broker) -> None:
        """share:r narrows only the callee's handle: the caller still writes."""
        load_pair(broker, {"keep": decl("share:r")})
        h = caller_map(broker)
        hk = broker.call("caller.via_keep", h)
        assert broker.call("caller.write", h, 1, 8) == 0
        assert broker.call("callee.read", hk, 1) == 8

    def test_borrow_r_cannot_write(self, broker: Broker) -> None:
        """borrow:r lends read-only: the callee's write during the call is ACCES."""
        load_pair(broker, {"poke": decl("borrow:r"), "keep_clone": decl("borrow:r")})
        h = caller_map(broker)
        assert broker.call("caller.via_poke", h) == Errno.ACCES
        assert broker.call("caller.via_keep_clone", h, RW) == neg(Errno.ACCES)
        copy = broker.call("caller.via_keep_clone", h, R)
        assert broker.call("callee.read", copy, 1) == 2
        assert broker.call("callee.write", copy, 1, 3) == Errno.ACCES
        assert broker.call("caller.read", h, 9) == neg(Errno.NOENT)
