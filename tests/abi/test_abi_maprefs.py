"""ABI conformance: set_map and get_map, map references, rights through them, reclaim."""

from __future__ import annotations

from pathlib import Path

import pytest
from guest_driver import (
    ACCES,
    BADF,
    NOENT,
    OK,
    RW,
    STALE,
    TYPE,
    Driver,
    R,
    W,
    driver_fixture,
)

from broker import Broker

d = driver_fixture()


def map_id(broker: Broker, module: str, h: int) -> int:
    return broker.native_module(module).map_id(h)


class TestSetMapGetMap:
    def test_get_map_reaches_the_stored_map(self, d: Driver, broker: Broker) -> None:
        """get_map gives a new handle to the very map set_map stored."""
        parent, child = d.new(), d.new()
        assert d.set(child, b"inner", b"value") == OK
        assert d.set_map(parent, b"m", child) == OK
        err, again = d.get_map(parent, b"m")
        assert err == OK and again not in (None, child)
        assert map_id(broker, "a", again) == map_id(broker, "a", child)
        assert d.value(again, b"inner") == b"value"

    def test_get_map_handle_is_owning(self, d: Driver, broker: Broker) -> None:
        """The handle from get_map keeps the child alive after the parent entry goes."""
        parent, child = d.new(), d.new()
        d.set(child, b"k", b"v")
        d.set_map(parent, b"m", child)
        d.close(child)
        _, got = d.get_map(parent, b"m")
        d.delete(parent, b"m")
        assert broker.stats()["maps"] == 2
        assert d.value(got, b"k") == b"v"
        d.close(got)
        assert broker.stats()["maps"] == 1

    def test_parent_keeps_child_alive(self, d: Driver, broker: Broker) -> None:
        """After set_map the child's own handle can close: the parent keeps it."""
        parent, child = d.new(), d.new()
        d.set(child, b"k", b"v")
        d.set_map(parent, b"m", child)
        assert d.close(child) == OK
        assert broker.stats()["maps"] == 2
        _, got = d.get_map(parent, b"m")
        assert d.value(got, b"k") == b"v"

    def test_get_map_absent_is_noent(self, d: Driver) -> None:
        """get_map of an absent key is NOENT."""
        assert d.get_map(d.new(), b"m") == (NOENT, None)

    def test_get_map_on_bytes_is_type(self, d: Driver) -> None:
        """get_map of a key holding bytes is TYPE."""
        h = d.new()
        d.set(h, b"k", b"v")
        assert d.get_map(h, b"k") == (TYPE, None)

    def test_set_map_over_bytes_replaces(self, d: Driver) -> None:
        """set_map over a bytes value replaces it with the reference."""
        h, child = d.new(), d.new()
        d.set(h, b"k", b"bytes")
        assert d.set_map(h, b"k", child) == OK
        assert d.get(h, b"k") == (TYPE, None)
        assert d.get_map(h, b"k")[0] == OK
        assert d.len(h) == (OK, 1)

    def test_same_child_under_two_keys(self, d: Driver, broker: Broker) -> None:
        """One child stored twice is reclaimed only when both references go."""
        h, child = d.new(), d.new()
        d.set_map(h, b"x", child)
        d.set_map(h, b"y", child)
        d.close(child)
        d.delete(h, b"x")
        assert broker.stats()["maps"] == 2
        d.delete(h, b"y")
        assert broker.stats()["maps"] == 1

    def test_replace_reference_with_same_map(self, d: Driver, broker: Broker) -> None:
        """Storing the same child again over its own reference never reclaims it."""
        h, child = d.new(), d.new()
        d.set(child, b"k", b"v")
        d.set_map(h, b"m", child)
        _, again = d.get_map(h, b"m")
        d.close(child)
        assert d.set_map(h, b"m", again) == OK
        d.close(again)
        assert broker.stats()["maps"] == 2
        _, got = d.get_map(h, b"m")
        assert d.value(got, b"k") == b"v"

    def test_replace_reference_releases_old_child(self, d: Driver, broker: Broker) -> None:
        """set_map over a reference to another map releases the old child."""
        h, c1, c2 = d.new(), d.new(), d.new()
        d.set_map(h, b"m", c1)
        d.close(c1)
        assert d.set_map(h, b"m", c2) == OK
        assert broker.stats()["maps"] == 2

    def test_self_reference(self, d: Driver, broker: Broker) -> None:
        """A map may hold a reference to itself."""
        h = d.new()
        assert d.set_map(h, b"me", h) == OK
        err, me = d.get_map(h, b"me")
        assert err == OK
        assert map_id(broker, "a", me) == map_id(broker, "a", h)


class TestSetMapRights:
    def test_parent_needs_write(self, d: Driver) -> None:
        """set_map through a READ-only parent is ACCES."""
        h = d.new()
        _, ro = d.clone(h, R)
        assert d.set_map(ro, b"m", d.new()) == ACCES
        assert d.len(h) == (OK, 0)

    @pytest.mark.parametrize("rights", [R, W, 0])
    def test_child_needs_read_and_write(self, d: Driver, rights: int) -> None:
        """A child handle lacking READ or WRITE cannot be stored (it would be upgraded)."""
        h, child = d.new(), d.new()
        _, lesser = d.clone(child, rights)
        assert d.set_map(h, b"m", lesser) == ACCES
        assert d.exists(h, b"m") == (OK, 0)

    def test_child_bad_handles(self, d: Driver) -> None:
        """A child handle never issued is BADF, a closed one STALE."""
        h, child = d.new(), d.new()
        d.close(child)
        assert d.set_map(h, b"m", 0) == BADF
        assert d.set_map(h, b"m", 0x7FFFFFFF) == BADF
        assert d.set_map(h, b"m", child) == STALE
        assert d.len(h) == (OK, 0)


class TestGetMapRights:
    def test_read_write_parent_gives_read_write_child(self, d: Driver) -> None:
        """get_map through a READ|WRITE handle gives a READ|WRITE child handle."""
        h = d.new()
        d.set_map(h, b"m", d.new())
        _, c = d.get_map(h, b"m")
        assert d.set(c, b"k", b"v") == OK
        assert d.clone(c, RW)[0] == OK

    def test_read_only_view_stays_read_only_all_the_way_down(self, d: Driver) -> None:
        """Through a READ-only parent, children and grandchildren are READ-only too."""
        root, mid, leaf = d.new(), d.new(), d.new()
        d.set(leaf, b"k", b"v")
        d.set_map(mid, b"leaf", leaf)
        d.set_map(root, b"mid", mid)
        _, ro = d.clone(root, R)
        err, ro_mid = d.get_map(ro, b"mid")
        assert err == OK
        assert d.set(ro_mid, b"x", b"y") == ACCES
        assert d.clone(ro_mid, RW) == (ACCES, None)
        err, ro_leaf = d.get_map(ro_mid, b"leaf")
        assert err == OK
        assert d.value(ro_leaf, b"k") == b"v"
        assert d.set(ro_leaf, b"k", b"changed") == ACCES
        assert d.delete(ro_leaf, b"k") == ACCES
        assert d.incr(ro_leaf, b"n", 1) == (ACCES, None)
        assert d.clone(ro_leaf, W) == (ACCES, None)
        assert d.set_map(ro_leaf, b"m", d.new()) == ACCES

    def test_read_only_child_cannot_be_re_stored_writable(self, d: Driver) -> None:
        """A READ-only child from get_map cannot be stored elsewhere to regain WRITE."""
        root = d.new()
        d.set_map(root, b"m", d.new())
        _, ro = d.clone(root, R)
        _, ro_child = d.get_map(ro, b"m")
        other = d.new()
        assert d.set_map(other, b"stolen", ro_child) == ACCES

    @pytest.mark.parametrize("rights", [W, 0])
    def test_get_map_needs_read(self, d: Driver, rights: int) -> None:
        """get_map through a handle without READ is ACCES."""
        h = d.new()
        d.set_map(h, b"m", d.new())
        _, lesser = d.clone(h, rights)
        assert d.get_map(lesser, b"m") == (ACCES, None)


class TestReclaim:
    def test_cascade_through_set_map(self, d: Driver, broker: Broker) -> None:
        """Closing the last handle to a root reclaims the maps it alone kept alive."""
        a, b, c = d.new(), d.new(), d.new()
        d.set_map(a, b"b", b)
        d.set_map(b, b"c", c)
        d.close(b)
        d.close(c)
        assert broker.stats()["maps"] == 3
        assert d.close(a) == OK
        assert broker.stats() == {"maps": 0, "named": 0, "handles": {"a": 0}}

    def test_cascade_stops_at_maps_held_elsewhere(self, d: Driver, broker: Broker) -> None:
        """A child with its own handle survives its parent's reclaim, data intact."""
        a, b = d.new(), d.new()
        d.set(b, b"k", b"v")
        d.set_map(a, b"b", b)
        d.close(a)
        assert broker.stats()["maps"] == 1
        assert d.value(b, b"k") == b"v"

    def test_fan_out(self, d: Driver, broker: Broker) -> None:
        """A parent holding many children reclaims all of them."""
        root = d.new()
        for i in range(20):
            c = d.new()
            d.set_map(root, b"c%d" % i, c)
            d.close(c)
        assert broker.stats()["maps"] == 21
        d.close(root)
        assert broker.stats()["maps"] == 0

    def test_long_chain_is_reclaimed(self, broker: Broker, guests: Path) -> None:
        """A chain of 20,000 maps kept by one handle is reclaimed entirely on close."""
        broker.load("chain", guests / "chain.wat")
        root = broker.call("chain.build", 20000)
        assert isinstance(root, int) and root > 0
        assert broker.stats()["maps"] == 20000
        assert broker.stats()["handles"] == {"chain": 1}
        assert broker.call("chain.close", root) == OK
        assert broker.stats()["maps"] == 0
