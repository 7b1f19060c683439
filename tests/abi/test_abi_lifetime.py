"""ABI conformance: named maps shared through grants, trap teardown and unload."""

from __future__ import annotations

from pathlib import Path

import pytest
from guest_driver import ACCES, BADF, INVAL, OK, OUT, RW, Driver, R, W

from broker import Broker
from broker.errors import ConfigError, GuestTrap, ModuleError


class TestOpen:
    def test_open_granted_name(self, broker: Broker) -> None:
        """A granted name opens with the granted rights and creates the named map."""
        d = Driver(broker, grants={"cfg": "rw"})
        err, h = d.open(b"cfg", RW)
        assert err == OK and h is not None
        assert d.set(h, b"k", b"v") == OK
        assert broker.stats() == {"maps": 0, "named": 1, "handles": {"a": 1}}

    def test_name_not_granted(self, broker: Broker) -> None:
        """A name not granted is ACCES and creates nothing."""
        d = Driver(broker, grants={"cfg": "rw"})
        assert d.open(b"other", R) == (ACCES, None)
        assert d.open(b"CFG", R) == (ACCES, None)
        assert d.open(b"cfg\x00", R) == (ACCES, None)
        assert broker.stats()["named"] == 0

    @pytest.mark.parametrize("rights", [RW, W])
    def test_more_rights_than_the_grant(self, broker: Broker, rights: int) -> None:
        """Asking for a right the grant lacks is ACCES."""
        d = Driver(broker, grants={"cfg": "r"})
        assert d.open(b"cfg", rights) == (ACCES, None)

    @pytest.mark.parametrize("grant, rights", [("rw", R), ("rw", W), ("rw", 0), ("r", 0)])
    def test_subset_of_the_grant(self, broker: Broker, grant: str, rights: int) -> None:
        """Any subset of the grant opens, rights 0 included."""
        d = Driver(broker, grants={"cfg": grant})
        assert d.open(b"cfg", rights)[0] == OK

    def test_read_only_open_cannot_write(self, broker: Broker) -> None:
        """A handle opened with READ refuses writes."""
        d = Driver(broker, grants={"cfg": "r"})
        _, h = d.open(b"cfg", R)
        assert d.set(h, b"k", b"v") == ACCES
        assert d.len(h) == (OK, 0)
        assert d.clone(h, RW) == (ACCES, None)

    def test_two_opens_two_handles_one_map(self, broker: Broker) -> None:
        """Opening a name twice gives two handles to one map."""
        d = Driver(broker, grants={"cfg": "rw"})
        _, h1 = d.open(b"cfg", RW)
        _, h2 = d.open(b"cfg", R)
        assert h1 != h2
        d.set(h1, b"k", b"v")
        assert d.value(h2, b"k") == b"v"
        assert broker.stats()["named"] == 1

    def test_named_map_outlives_its_handles(self, broker: Broker) -> None:
        """Closing every handle to a named map keeps it and its data."""
        d = Driver(broker, grants={"cfg": "rw"})
        _, h = d.open(b"cfg", RW)
        d.set(h, b"k", b"v")
        assert d.close(h) == OK
        assert broker.stats()["named"] == 1
        _, again = d.open(b"cfg", R)
        assert d.value(again, b"k") == b"v"

    def test_non_ascii_names(self, broker: Broker) -> None:
        """UTF-8 names with non-ASCII characters open by their exact bytes."""
        d = Driver(broker, grants={"café": "rw", "地図": "r"})
        assert d.open("café".encode(), RW)[0] == OK
        assert d.open("地図".encode(), R)[0] == OK
        assert d.open("cafe\u0301".encode(), R) == (ACCES, None)  # another spelling

    def test_empty_name_never_opens(self, broker: Broker) -> None:
        """Map names are 1..1024 bytes: the empty name never opens, even if 'granted'."""
        try:
            d = Driver(broker, grants={"": "rw"})
        except ConfigError:
            return  # refusing such a grant at load satisfies the rule too
        err, _ = d.open(b"", R)
        assert err in (INVAL, ACCES)  # docs/abi.md does not say which of the two
        assert broker.stats()["named"] == 0


class TestSharedNamedMaps:
    def test_two_modules_share_a_named_map(self, broker: Broker) -> None:
        """What one module writes to a named map, another granted it reads."""
        a = Driver(broker, "a", grants={"cfg": "rw"})
        b = Driver(broker, "b", grants={"cfg": "r"})
        _, ha = a.open(b"cfg", RW)
        _, hb = b.open(b"cfg", R)
        assert a.set(ha, b"mode", b"fast") == OK
        assert b.value(hb, b"mode") == b"fast"
        assert b.set(hb, b"mode", b"slow") == ACCES
        assert a.incr(ha, b"n", 2) == (OK, 2)
        assert b.get(hb, b"n") == (OK, (2).to_bytes(8, "little"))
        assert b.version(hb, b"n") == a.version(ha, b"n")

    def test_grants_are_per_module(self, broker: Broker) -> None:
        """A grant to module a does not let module b open the name."""
        a = Driver(broker, "a", grants={"cfg": "rw"})
        b = Driver(broker, "b", grants={"other": "rw"})
        assert a.open(b"cfg", RW)[0] == OK
        assert b.open(b"cfg", R) == (ACCES, None)

    def test_maps_shared_through_a_named_map(self, broker: Broker) -> None:
        """A map stored in a named map reaches another module with that module's rights."""
        a = Driver(broker, "a", grants={"cfg": "rw"})
        b = Driver(broker, "b", grants={"cfg": "r"})
        _, ha = a.open(b"cfg", RW)
        child = a.new()
        a.set(child, b"k", b"from a")
        assert a.set_map(ha, b"child", child) == OK
        _, hb = b.open(b"cfg", R)
        err, bc = b.get_map(hb, b"child")
        assert err == OK
        assert b.value(bc, b"k") == b"from a"
        assert b.set(bc, b"k", b"from b") == ACCES

    def test_host_sees_guest_writes(self, broker: Broker) -> None:
        """The host opening the same name reads what the guest wrote."""
        d = Driver(broker, grants={"cfg": "rw"})
        _, h = d.open(b"cfg", RW)
        d.set(h, b"k", b"v")
        host = broker.host.op_open(b"cfg", R)
        assert broker.host.op_get(host, b"k") == b"v"


def load_teardown(broker: Broker, guests: Path, on_trap: str = "replace") -> None:
    broker.load("t", guests / "trap_teardown.wat", grants={"cfg": "rw"}, on_trap=on_trap)


class TestTrapTeardown:
    def test_without_trap_everything_lives(self, broker: Broker, guests: Path) -> None:
        """The guest's maps are alive while it holds them (the baseline)."""
        load_teardown(broker, guests)
        assert broker.call("t.run", 0) == 0
        assert broker.stats() == {"maps": 3, "named": 1, "handles": {"t": 4}}

    def test_trap_raises_guest_trap(self, broker: Broker, guests: Path) -> None:
        """A trap raises GuestTrap naming module and export."""
        load_teardown(broker, guests)
        with pytest.raises(GuestTrap) as info:
            broker.call("t.run", 1)
        assert (info.value.module, info.value.export) == ("t", "run")
        assert "t.run" in str(info.value)

    def test_trap_closes_handles_and_reclaims(self, broker: Broker, guests: Path) -> None:
        """After the trap every handle is closed; maps only the module held are reclaimed."""
        load_teardown(broker, guests)
        with pytest.raises(GuestTrap):
            broker.call("t.run", 1)
        assert broker.stats() == {"maps": 1, "named": 1, "handles": {"t": 0}}

    def test_maps_referenced_elsewhere_keep_their_data(self, broker: Broker, guests: Path) -> None:
        """The map stored in the named map survives the trap with its data."""
        load_teardown(broker, guests)
        with pytest.raises(GuestTrap):
            broker.call("t.run", 1)
        cfg = broker.host.op_open(b"cfg", R)
        kept = broker.host.op_get_map(cfg, b"kept")
        assert broker.host.op_get(kept, b"data") == b"kept"

    def test_a_trapped_module_is_replaced(self, broker: Broker, guests: Path) -> None:
        """The instance a trap tore down is replaced: the next call runs afresh."""
        load_teardown(broker, guests)
        with pytest.raises(GuestTrap):
            broker.call("t.run", 1)
        assert broker.call("t.run", 0) == 0
        assert broker.stats()["handles"]["t"] > 0  # the new instance's own

    def test_with_on_trap_stop_it_cannot_be_called(self, broker: Broker, guests: Path) -> None:
        """on_trap="stop": a module torn down by a trap stays down (ModuleError)."""
        load_teardown(broker, guests, on_trap="stop")
        with pytest.raises(GuestTrap):
            broker.call("t.run", 1)
        with pytest.raises(ModuleError, match="was torn down"):
            broker.call("t.run", 0)

    def test_trap_after_driver_calls(self, broker: Broker) -> None:
        """Handles made by earlier calls are closed too when a later call traps."""
        d = Driver(broker, grants={"cfg": "rw"})
        parent, child = d.new(), d.new()
        d.set_map(parent, b"c", child)
        _, cfg = d.open(b"cfg", RW)
        d.set(cfg, b"k", b"v")
        other = Driver(broker, "b")
        keep = other.new()
        with pytest.raises(GuestTrap) as info:
            d.call("trap")
        assert info.value.export == "trap"
        assert broker.stats() == {"maps": 1, "named": 1, "handles": {"a": 0, "b": 1}}
        assert other.len(keep) == (OK, 0)

    def test_other_modules_unaffected(self, broker: Broker, guests: Path) -> None:
        """Another module's handles to shared maps keep working after the trap."""
        load_teardown(broker, guests)
        b = Driver(broker, "b", grants={"cfg": "r"})
        _, hb = b.open(b"cfg", R)
        with pytest.raises(GuestTrap):
            broker.call("t.run", 1)
        err, kept = b.get_map(hb, b"kept")
        assert err == OK
        assert b.value(kept, b"data") == b"kept"


class TestUnload:
    def test_unload_closes_handles(self, broker: Broker) -> None:
        """unload closes every handle: unshared maps are reclaimed, the module is gone."""
        d = Driver(broker, grants={"cfg": "rw"})
        parent, child = d.new(), d.new()
        d.set_map(parent, b"c", child)
        _, cfg = d.open(b"cfg", RW)
        d.set(cfg, b"k", b"v")
        broker.unload("a")
        assert broker.stats() == {"maps": 0, "named": 1, "handles": {}}
        host = broker.host.op_open(b"cfg", R)
        assert broker.host.op_get(host, b"k") == b"v"

    def test_unload_keeps_maps_held_elsewhere(self, broker: Broker) -> None:
        """A map the unloaded module shared stays alive for the other holder, data intact."""
        a = Driver(broker, "a", grants={"cfg": "rw"})
        b = Driver(broker, "b", grants={"cfg": "rw"})
        _, ha = a.open(b"cfg", RW)
        m = a.new()
        a.set(m, b"k", b"from a")
        a.set_map(ha, b"m", m)
        _, hb = b.open(b"cfg", RW)
        _, bm = b.get_map(hb, b"m")
        b.delete(hb, b"m")  # now only a's handle and b's handle hold it
        broker.unload("a")
        assert broker.stats()["maps"] == 1
        assert b.value(bm, b"k") == b"from a"
        assert b.close(bm) == OK
        assert broker.stats()["maps"] == 0

    def test_data_written_by_unloaded_module_stays(self, broker: Broker) -> None:
        """Entries written by an unloaded module stay in maps that live on."""
        a = Driver(broker, "a", grants={"cfg": "rw"})
        _, ha = a.open(b"cfg", RW)
        a.set_many(ha, [(b"x", b"1"), (b"y", b"2")])
        broker.unload("a")
        b = Driver(broker, "b", grants={"cfg": "rw"})
        _, hb = b.open(b"cfg", RW)
        assert b.get_many(hb, [b"x", b"y"]) == (OK, [b"1", b"2"])
        assert b.delete(hb, b"x") == OK

    def test_unloaded_module_cannot_be_called(self, broker: Broker) -> None:
        """A call to an unloaded module is refused."""
        d = Driver(broker)
        broker.unload("a")
        with pytest.raises(ConfigError):
            d.call("new", OUT)

    def test_reload_under_the_same_name_starts_fresh(self, broker: Broker) -> None:
        """A module loaded again after unload has a fresh handle table."""
        d = Driver(broker)
        h = d.new()
        d.new()
        broker.unload("a")
        d = Driver(broker)
        assert d.len(h) == (BADF, None)  # the new instance never issued it
        assert d.new() == h
