"""Declared own/share results, from a guest caller and from the host (docs/ownership.md)."""

from __future__ import annotations

import pytest
from replaced import replaced
from xmod import decl, load_pair, neg

from broker import Borrow, Broker, Errno, GuestTrap, MapRef, Share

FIRST_HANDLE = 1 << 21  # slot 0, generation 1: the first handle a module is issued


class TestGuestResults:
    def test_own_result_moves_to_the_caller(self, broker: Broker) -> None:
        """An own result gives the caller a working handle and takes the callee's away."""
        load_pair(broker, {"give": decl(results=("own",))})
        h = broker.call("caller.via_give")
        assert broker.call("caller.read", h, 1) == 7
        assert broker.call("callee.count", FIRST_HANDLE) == neg(Errno.STALE)
        assert broker.stats() == {"maps": 1, "named": 0, "handles": {"callee": 0, "caller": 1}}
        assert broker.call("caller.close", h) == 0
        assert broker.stats()["maps"] == 0

    def test_share_result_gives_both_a_handle(self, broker: Broker) -> None:
        """A share result gives the caller its own handle; the callee keeps its one."""
        load_pair(broker, {"give": decl(results=("share",))})
        h = broker.call("caller.via_give")
        assert broker.call("caller.read", h, 1) == 7
        assert broker.call("callee.read", FIRST_HANDLE, 1) == 7
        assert broker.stats()["handles"] == {"callee": 1, "caller": 1}
        assert broker.call("caller.close", h) == 0
        assert broker.stats()["maps"] == 1
        assert broker.call("callee.close", FIRST_HANDLE) == 0
        assert broker.stats()["maps"] == 0

    def test_undeclared_result_is_a_plain_number(self, broker: Broker) -> None:
        """An undeclared result passes unchanged: the number is meaningless to the caller."""
        load_pair(broker)
        h = broker.call("caller.via_give")
        assert h == FIRST_HANDLE
        assert broker.call("caller.count", h) == neg(Errno.BADF)
        assert broker.stats()["handles"] == {"callee": 1, "caller": 0}

    def test_bad_result_traps_and_tears_down_the_callee(self, broker: Broker) -> None:
        """A declared result that is not a handle traps; the callee, not the caller, goes."""
        load_pair(broker, {"give_bad": decl(results=("own",))})
        h = broker.call("caller.new")
        with pytest.raises(GuestTrap) as info:
            broker.call("caller.via_give_bad")
        assert info.value.reason.startswith(
            "wasi_map: caller -> callee.give_bad: result 0 (own): BADF: "
        )
        assert (info.value.module, info.value.export, info.value.origin) == (
            "caller",
            "via_give_bad",
            "callee",
        )
        replaced(broker, "callee.new")
        assert broker.call("caller.write", h, 1, 1) == 0

    def test_own_result_of_a_borrowed_handle_traps(self, broker: Broker) -> None:
        """A callee cannot give back a borrowed handle as own: ACCES, the callee goes."""
        load_pair(broker, {"give_back": decl("borrow", results=("own",))})
        h = broker.call("caller.new")
        with pytest.raises(GuestTrap) as info:
            broker.call("caller.via_give_back", h)
        assert info.value.origin == "callee"
        replaced(broker, "callee.new")
        assert broker.call("caller.close", h) == 0  # the lender's handle is free again

    def test_own_result_of_a_borrowed_handle_is_acces(self, broker: Broker) -> None:
        """Own-returning a borrowed handle breaks the own rule: the trap says ACCES."""
        load_pair(broker, {"give_back": decl("borrow", results=("own",))})
        h = broker.call("caller.new")
        with pytest.raises(GuestTrap) as info:
            broker.call("caller.via_give_back", h)
        assert info.value.reason.startswith(
            "wasi_map: caller -> callee.give_back: result 0 (own): ACCES: "
        )

    def test_share_result_of_a_borrowed_handle(self, broker: Broker) -> None:
        """A callee may give back a borrowed handle as share: the caller gets a second one."""
        load_pair(broker, {"give_back": decl("borrow", results=("share",))})
        h = broker.call("caller.new")
        assert broker.call("caller.write", h, 1, 2) == 0
        h2 = broker.call("caller.via_give_back", h)
        assert h2 != h
        assert broker.call("caller.close", h) == 0
        assert broker.call("caller.read", h2, 1) == 2
        assert broker.stats()["maps"] == 1

    def test_shared_in_owned_back(self, broker: Broker) -> None:
        """A handle shared in and returned as own ends as a second caller handle."""
        load_pair(broker, {"give_back": decl("share", results=("own",))})
        h = broker.call("caller.new")
        h2 = broker.call("caller.via_give_back", h)
        assert h2 != h
        assert broker.stats()["handles"] == {"callee": 0, "caller": 2}


class TestHostResults:
    def test_own_result_is_a_mapref(self, broker: Broker) -> None:
        """A declared own result comes back to the host as a working MapRef."""
        load_pair(broker, {"give": decl(results=("own",))})
        m = broker.call("callee.give")
        assert isinstance(m, MapRef)
        assert dict(m) == {b"\x01": b"\x07"}
        assert broker.stats()["handles"]["callee"] == 0
        m.close()
        assert broker.stats()["maps"] == 0

    def test_share_result_is_a_mapref(self, broker: Broker) -> None:
        """A declared share result is a MapRef; the callee keeps its own handle."""
        load_pair(broker, {"give": decl(results=("share",))})
        m = broker.call("callee.give")
        m[b"\x02"] = b"\x03"
        assert broker.call("callee.read", FIRST_HANDLE, 2) == 3
        m.close()
        assert broker.stats()["maps"] == 1

    def test_result_of_a_host_share(self, broker: Broker) -> None:
        """A map the host shared in can come back as a second MapRef."""
        load_pair(broker, {"give_back": decl("share", results=("own",))})
        m = broker.new_map()
        back = broker.call("callee.give_back", Share(m))
        assert isinstance(back, MapRef) and back.map_id == m.map_id
        back[b"k"] = b"v"
        m.close()
        assert back[b"k"] == b"v"

    def test_borrowed_host_map_back_as_own_traps(self, broker: Broker) -> None:
        """Own-returning a handle the host lent traps the callee; the MapRef is intact."""
        load_pair(broker, {"give_back": decl("borrow", results=("own",))})
        m = broker.new_map()
        m[b"k"] = b"v"
        with pytest.raises(GuestTrap) as info:
            broker.call("callee.give_back", Borrow(m))
        assert (info.value.module, info.value.origin) == ("callee", "callee")
        assert m[b"k"] == b"v"
        m.close()
        assert broker.stats()["maps"] == 0

    def test_bad_result_to_the_host_traps(self, broker: Broker) -> None:
        """A bad declared result of a host call raises GuestTrap and tears the callee down."""
        load_pair(broker, {"give_bad": decl(results=("share",))})
        with pytest.raises(GuestTrap, match=r"result 0 \(share\): BADF: "):
            broker.call("callee.give_bad")
        replaced(broker, "callee.new")
