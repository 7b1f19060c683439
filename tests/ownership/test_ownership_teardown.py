"""Teardown after a trap, and unload, across modules (docs/abi.md "Lifetime")."""

from __future__ import annotations

import pytest
from replaced import replaced
from xmod import decl, load_pair

from broker import Borrow, Broker, GuestTrap, MapRef, Share


@pytest.fixture
def pair(broker: Broker) -> Broker:
    """caller and callee; callee.keep and callee.build take shared handles."""
    load_pair(
        broker, {"keep": decl("share"), "build": decl("share"), "trap": decl("borrow", results=())}
    )
    return broker


def built(b: Broker) -> MapRef:
    """A host map s shared to callee.build: s[3] = 4 and s[100] -> d = {1: 2}, plus
    a chain a -> b -> c only the callee reaches; s."""
    s = b.new_map()
    assert b.call("callee.build", Share(s)) == 0
    assert b.stats()["maps"] == 5  # s, a, b, c, d
    return s


class TestTrapInACallee:
    def test_only_the_callee_is_torn_down(self, pair: Broker) -> None:
        """A trap that began in the callee tears down the callee; the caller stays usable."""
        h = pair.call("caller.new")
        pair.call("caller.via_keep", h)
        with pytest.raises(GuestTrap) as info:
            pair.call("caller.via_trap", h)
        assert (info.value.module, info.value.export, info.value.origin) == (
            "caller",
            "via_trap",
            "callee",
        )
        assert pair.stats()["handles"] == {"callee": 0, "caller": 1}
        replaced(pair, "callee.new")
        assert pair.call("caller.write", h, 1, 1) == 0
        assert pair.call("caller.count", pair.call("caller.new")) == 0

    def test_message_names_the_host_call_and_the_origin(self, pair: Broker) -> None:
        """The GuestTrap message names the module and export the host called, then the origin."""
        h = pair.call("caller.new")
        with pytest.raises(GuestTrap) as info:
            pair.call("caller.via_trap", h)
        assert str(info.value).startswith("caller.via_trap: guest trapped in module callee: ")
        assert "unreachable" in info.value.reason

    def test_lent_handle_is_free_after_the_callee_trapped(self, pair: Broker) -> None:
        """A borrow ends when the callee traps: the lender can close its handle."""
        h = pair.call("caller.new")
        assert pair.call("caller.write", h, 1, 2) == 0
        with pytest.raises(GuestTrap):
            pair.call("caller.via_trap", h)
        assert pair.call("caller.read", h, 1) == 2
        assert pair.call("caller.close", h) == 0
        assert pair.stats()["maps"] == 0

    def test_host_borrow_is_free_after_the_callee_trapped(self, pair: Broker) -> None:
        """A MapRef lent to a callee that traps is usable and closable afterwards."""
        m = pair.new_map()
        with pytest.raises(GuestTrap) as info:
            pair.call("callee.trap", Borrow(m))
        assert info.value.origin == "callee"
        m[b"k"] = b"v"
        m.close()
        assert pair.stats()["maps"] == 0

    def test_trap_in_the_top_module(self, pair: Broker) -> None:
        """A trap in the module the host called tears that module down; the others stay."""
        h = pair.call("caller.new")
        with pytest.raises(GuestTrap) as info:
            pair.call("callee.trap", Borrow(pair.new_map()))
        assert (info.value.module, info.value.origin) == ("callee", "callee")
        assert str(info.value).startswith("callee.trap: guest trapped: ")
        assert pair.call("caller.count", h) == 0

    def test_maps_referenced_elsewhere_keep_their_data(self, pair: Broker) -> None:
        """Teardown reclaims the maps only the callee reached, through set_map chains;
        maps referenced elsewhere keep all their data."""
        s = built(pair)
        with pytest.raises(GuestTrap):
            pair.call("caller.via_trap", pair.call("caller.new"))
        assert pair.stats()["maps"] == 3  # s, d and the caller's new map; a, b, c gone
        assert s[b"\x03"] == b"\x04"
        with s.get_map(b"\x64") as d:
            assert dict(d) == {b"\x01": b"\x02"}

    def test_shared_map_survives_with_the_callees_writes(self, pair: Broker) -> None:
        """A map the callee shared keeps the values the torn-down callee wrote."""
        h = pair.call("caller.new")
        hk = pair.call("caller.via_keep", h)
        assert pair.call("callee.write", hk, 7, 8) == 0
        with pytest.raises(GuestTrap):
            pair.call("callee.trap", Borrow(pair.new_map()))
        assert pair.call("caller.read", h, 7) == 8


class TestUnload:
    def test_unload_reclaims_like_teardown(self, pair: Broker) -> None:
        """Unload closes every handle: only-the-callee maps go, the rest keep their data."""
        s = built(pair)
        pair.unload("callee")
        assert pair.stats() == {"maps": 2, "named": 0, "handles": {"caller": 0}}
        assert s[b"\x03"] == b"\x04"
        with s.get_map(b"\x64") as d:
            assert dict(d) == {b"\x01": b"\x02"}
        s.close()
        assert pair.stats()["maps"] == 0

    def test_unload_of_a_torn_down_module(self, pair: Broker) -> None:
        """A torn-down module can still be unloaded, freeing its name."""
        with pytest.raises(GuestTrap):
            pair.call("callee.trap", Borrow(pair.new_map()))
        pair.unload("callee")
        assert pair.modules() == ["caller"]

    def test_unload_keeps_the_other_modules_handles(self, pair: Broker) -> None:
        """Unloading the callee leaves the caller's handle to a shared map working."""
        h = pair.call("caller.new")
        hk = pair.call("caller.via_keep", h)
        assert pair.call("callee.write", hk, 1, 5) == 0
        pair.unload("callee")
        assert pair.call("caller.read", h, 1) == 5
