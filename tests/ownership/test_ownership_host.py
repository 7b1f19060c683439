"""Own, Borrow and Share from the host (docs/abi.md "The host's maps")."""

from __future__ import annotations

import threading

import pytest
from xmod import decl, load_pair, neg

from broker import Borrow, Broker, Errno, GuestTrap, MapRef, Own, Share, StaleHandleError, testing
from broker.errors import BusyError, QuotaError

HOST_DECLS = {
    "keep": decl("own"),
    "take": decl("share"),
    "poke": decl("borrow"),
    "end_borrow": decl("borrow"),
    "wait": decl("borrow"),
    "pair": decl("own", "own"),
    "give_back": decl("borrow"),
}


@pytest.fixture
def host(broker: Broker) -> Broker:
    """caller and callee; callee.keep owns, take shares, poke/wait/give_back borrow."""
    load_pair(broker, HOST_DECLS)
    return broker


def filled(b: Broker) -> MapRef:
    """A new host map holding {1: 2}."""
    m = b.new_map()
    m[b"\x01"] = b"\x02"
    return m


class TestOwnFromTheHost:
    def test_callee_owns_it(self, host: Broker) -> None:
        """Own(ref) moves the map: the callee's handle reaches it, the count is unchanged."""
        m = filled(host)
        hk = host.call("callee.keep", Own(m))
        assert host.call("callee.read", hk, 1) == 2
        assert host.stats() == {"maps": 1, "named": 0, "handles": {"callee": 1, "caller": 0}}
        assert host.call("callee.close", hk) == 0
        assert host.stats()["maps"] == 0

    def test_moved_mapref_is_stale(self, host: Broker) -> None:
        """After Own(ref) every use of the MapRef raises StaleHandleError."""
        m = filled(host)
        host.call("callee.keep", Own(m))
        for use in (
            lambda: m[b"\x01"],
            lambda: m.__setitem__(b"k", b"v"),
            lambda: len(m),
            lambda: list(m),
            lambda: b"\x01" in m,
            lambda: m.version(b"\x01"),
            lambda: m.clone("r"),
            lambda: host.call("callee.keep", Own(m)),
            lambda: host.call("callee.poke", Borrow(m)),
        ):
            with pytest.raises(StaleHandleError):
                use()
        m.close()  # idempotent: nothing of the host's is left
        assert host.stats()["maps"] == 1

    def test_own_read_only(self, host: Broker) -> None:
        """Own(ref, rights="r") gives the callee a read-only handle."""
        hk = host.call("callee.keep", Own(filled(host), rights="r"))
        assert host.call("callee.write", hk, 1, 3) == Errno.ACCES
        assert host.call("callee.read", hk, 1) == 2

    def test_all_or_none_on_quota(self, broker: Broker) -> None:
        """When not every handle fits in the callee, no MapRef moves (QuotaError)."""
        load_pair(broker, HOST_DECLS, limits={"handles": 1})
        a, b = filled(broker), filled(broker)
        with pytest.raises(QuotaError, match=r"callee.pair: parameter 0 \(own\)"):
            broker.call("callee.pair", Own(a), Own(b))
        assert a[b"\x01"] == b[b"\x01"] == b"\x02"
        assert broker.stats()["handles"]["callee"] == 0

    def test_same_mapref_twice_is_busy(self, host: Broker) -> None:
        """One MapRef cannot be moved twice in one call (BusyError); it stays usable."""
        m = filled(host)
        with pytest.raises(BusyError, match=r"callee.pair: parameter 1 \(own\)"):
            host.call("callee.pair", Own(m), Own(m))
        assert m[b"\x01"] == b"\x02"


class TestBorrowFromTheHost:
    def test_callee_writes_through_the_borrow(self, host: Broker) -> None:
        """Borrow(ref) lends the host's rights: the callee's write lands in the map."""
        m = filled(host)
        assert host.call("callee.poke", Borrow(m)) == 0
        assert m[b"\x09"] == b"\x09"

    def test_borrow_read_only(self, host: Broker) -> None:
        """Borrow(ref, rights="r") lends read-only: the callee's write is ACCES."""
        m = filled(host)
        assert host.call("callee.poke", Borrow(m, rights="r")) == Errno.ACCES
        assert b"\x09" not in m

    def test_borrow_ends_at_return(self, host: Broker) -> None:
        """The callee's borrowed handle is STALE after the call; the MapRef is intact."""
        m = filled(host)
        hk = host.call("callee.give_back", Borrow(m))
        assert host.call("callee.count", hk) == neg(Errno.STALE)
        m.close()
        assert host.stats()["maps"] == 0

    def test_borrowed_mapref_cannot_be_closed_during_the_call(self, host: Broker) -> None:
        """Closing a lent MapRef from another thread during the call is BusyError."""
        m = host.new_map()
        seen: list[object] = []

        def other_thread() -> None:
            for _ in range(10_000_000):  # wait until the guest is inside the call
                if b"\x01" in m:
                    break
            try:
                m.close()
                seen.append("closed")
            except BusyError as exc:
                seen.append(exc)
            seen.append(m.closed)
            m[b"\x02"] = b"go"  # reads and writes still work; releases the guest

        t = threading.Thread(target=other_thread)
        t.start()
        polls = host.call("callee.wait", Borrow(m))
        t.join()
        assert polls >= 0
        assert isinstance(seen[0], BusyError) and seen[1] is False
        m.close()
        assert host.stats()["maps"] == 0

    def test_strict_mode_borrow_left_open(self) -> None:
        """In strict mode a callee that keeps a host borrow traps; the MapRef stays usable."""
        with Broker(strict_borrows=True) as b:
            load_pair(b, HOST_DECLS)
            m = filled(b)
            with pytest.raises(GuestTrap, match=r"returned with 1 borrow\(s\) still open"):
                b.call("callee.give_back", Borrow(m))
            m[b"k"] = b"v"
            m.close()
            assert b.stats()["maps"] == 0

    def test_unreleased_borrows_counted(self, host: Broker) -> None:
        """Without strict mode a host borrow left open is counted, one closed is not."""
        m = filled(host)
        before = testing.core_counters(host)["unreleased_borrows"]
        host.call("callee.give_back", Borrow(m))
        assert testing.core_counters(host)["unreleased_borrows"] == before + 1
        assert host.call("callee.end_borrow", Borrow(m)) == 0
        assert testing.core_counters(host)["unreleased_borrows"] == before + 1


class TestShareFromTheHost:
    def test_both_own_one(self, host: Broker) -> None:
        """Share(ref) gives the callee its own reference; the MapRef stays usable."""
        m = filled(host)
        hk = host.call("callee.take", Share(m))
        m[b"\x03"] = b"\x04"
        assert host.call("callee.read", hk, 3) == 4
        m.close()
        assert host.stats()["maps"] == 1
        assert host.call("callee.read", hk, 1) == 2

    def test_share_read_only(self, host: Broker) -> None:
        """Share(ref, rights="r") narrows the callee's handle only."""
        m = filled(host)
        hk = host.call("callee.take", Share(m, rights="r"))
        assert host.call("callee.write", hk, 1, 5) == Errno.ACCES
        m[b"\x01"] = b"\x05"
        assert host.call("callee.read", hk, 1) == 5

    def test_share_of_a_read_only_mapref(self, host: Broker) -> None:
        """A read-only MapRef shares read-only, whatever rights the wrapper asks for."""
        m = filled(host)
        hk = host.call("callee.take", Share(m.clone("r")))
        assert host.call("callee.write", hk, 1, 5) == Errno.ACCES


class TestWrongArguments:
    @pytest.mark.parametrize(
        ("export", "wrapper"),
        [("keep", Borrow), ("keep", Share), ("poke", Own), ("take", Own)],
    )
    def test_wrong_wrapper_for_the_declared_kind(
        self, host: Broker, export: str, wrapper: type
    ) -> None:
        """A wrapper of another kind than the declaration is a TypeError; nothing moves."""
        m = filled(host)
        with pytest.raises(TypeError, match="is declared"):
            host.call(f"callee.{export}", wrapper(m))
        assert m[b"\x01"] == b"\x02"

    def test_plain_int_for_a_handle_parameter(self, host: Broker) -> None:
        """A plain int where a handle is declared is a TypeError."""
        m = filled(host)
        with pytest.raises(TypeError, match=r"pass Own\(mapref\)"):
            host.call("callee.keep", m.handle)

    def test_mapref_itself_for_a_handle_parameter(self, host: Broker) -> None:
        """A bare MapRef (no wrapper) for a declared handle is a TypeError."""
        with pytest.raises(TypeError):
            host.call("callee.keep", filled(host))

    def test_wrapper_for_a_plain_parameter(self, host: Broker) -> None:
        """A wrapper where no handle is declared is a TypeError."""
        with pytest.raises(TypeError, match="not declared as a handle"):
            host.call("callee.count", Share(filled(host)))

    def test_bad_rights_in_a_wrapper(self, host: Broker) -> None:
        """Rights outside READ|WRITE are refused before the call."""
        with pytest.raises(ValueError):
            host.call("callee.take", Share(filled(host), rights=4))

    def test_closed_mapref(self, host: Broker) -> None:
        """Passing a closed MapRef raises StaleHandleError."""
        m = filled(host)
        m.close()
        with pytest.raises(StaleHandleError):
            host.call("callee.take", Share(m))
