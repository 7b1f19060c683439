"""Worked examples of the ownership rules the model (tests/support/model.py) encodes,
run against the C core's tables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core_calls import core_call
from model import ALL_RIGHTS, READ, WRITE, well_formed_handle

from broker._native import NativeBroker
from broker.abi import Errno
from broker.limits import Limits


def errno_of(fn: Callable[..., Any], *args: Any) -> Errno:
    return core_call(fn, *args)[0]


class TestRulesByExample:
    """Worked examples of the rules the model encodes, run against the core."""

    def test_chain_is_reclaimed_in_one_cascade(self) -> None:
        """Closing the last handle to the head of a set_map chain reclaims the whole chain."""
        core = NativeBroker(Limits())
        host = core.host
        head = h = host.op_new()
        for _ in range(100):
            child = host.op_new()
            host.op_set_map(h, b"next", child)
            if h != head:
                host.op_close(h)
            h = child
        host.op_close(h)
        assert core.stats()["maps"] == 101
        host.op_close(head)
        assert core.stats()["maps"] == 0

    def test_cycle_stays_alive_without_collector(self) -> None:
        """A map that references itself keeps a count above zero after its last handle closes."""
        core = NativeBroker(Limits())
        h = core.host.op_new()
        core.host.op_set_map(h, b"self", h)
        core.host.op_close(h)
        assert core.stats()["maps"] == 1

    def test_teardown_keeps_data_referenced_elsewhere(self) -> None:
        """After close_all, a map stored in a named map keeps all its data."""
        core = NativeBroker(Limits())
        a = core.new_module(Limits(), "a")
        a.grant("shared", ALL_RIGHTS)
        shared, anon = a.op_open(b"shared", ALL_RIGHTS), a.op_new()
        a.op_set(anon, b"k", b"v")
        a.op_set_map(shared, b"m", anon)
        a.teardown()
        assert a.handle_count() == 0
        assert errno_of(a.op_get, anon, b"k") == Errno.STALE
        host_shared = core.host.op_open(b"shared", READ)
        child = core.host.op_get_map(host_shared, b"m")
        assert core.host.op_get(child, b"k") == b"v"

    def test_badf_and_stale_are_exact(self) -> None:
        """A closed handle is STALE; its next generation and handle 0 are BADF."""
        core = NativeBroker(Limits())
        a = core.new_module(Limits(), "a")
        h = a.op_new()
        a.op_close(h)
        assert errno_of(a.op_close, h) == Errno.STALE
        assert errno_of(a.op_close, h + (1 << 21)) == Errno.BADF
        assert errno_of(a.op_close, 0) == Errno.BADF
        assert errno_of(core.host.op_close, h) == Errno.BADF  # per module

    def test_slot_retires_at_last_generation(self) -> None:
        """Reusing one slot 1100 times never issues a number twice, and every old one is STALE."""
        core = NativeBroker(Limits())
        a = core.new_module(Limits(), "a")
        seen: list[int] = []
        for _ in range(1100):
            h = a.op_new()
            assert well_formed_handle(h)
            seen.append(h)
            a.op_close(h)
        assert len(set(seen)) == len(seen)
        assert {errno_of(a.op_close, h) for h in seen} == {Errno.STALE}
        assert core.stats()["maps"] == 0

    def test_read_only_view_stays_read_only(self) -> None:
        """get_map through a READ handle gives a READ handle: it can neither write nor be stored."""
        core = NativeBroker(Limits())
        host = core.host
        parent, child = host.op_new(), host.op_new()
        host.op_set_map(parent, b"c", child)
        view = host.op_clone(parent, READ)
        sub = host.op_get_map(view, b"c")
        assert errno_of(host.op_set, sub, b"k", b"v") == Errno.ACCES
        assert errno_of(host.op_clone, sub, ALL_RIGHTS) == Errno.ACCES
        assert errno_of(host.op_set_map, parent, b"x", sub) == Errno.ACCES
        assert errno_of(host.op_set_map, parent, b"x", host.op_clone(child, WRITE)) == Errno.ACCES

    def test_set_map_checks_child_handle_before_rights(self) -> None:
        """set_map on a read-only parent with a closed child is STALE: handles come before ACCES."""
        core = NativeBroker(Limits())
        host = core.host
        parent, child = host.op_new(), host.op_new()
        view = host.op_clone(parent, READ)
        host.op_close(child)
        assert errno_of(host.op_set_map, view, b"k", child) == Errno.STALE

    def test_set_map_checks_rights_before_key_size(self) -> None:
        """set_map with an oversized key is STALE for a closed child, ACCES for a read-only one."""
        core = NativeBroker(Limits())
        host = core.host
        parent, child = host.op_new(), host.op_new()
        ro_child = host.op_clone(child, READ)
        host.op_close(child)
        big = b"K" * 4097
        assert errno_of(host.op_set_map, parent, big, child) == Errno.STALE
        assert errno_of(host.op_set_map, parent, big, ro_child) == Errno.ACCES

    def test_empty_name_is_invalid(self) -> None:
        """A map name is 1..1024 bytes of UTF-8, so open(b"") is INVAL, even for the host."""
        core = NativeBroker(Limits())
        assert errno_of(core.host.op_open, b"", ALL_RIGHTS) == Errno.INVAL
        assert core.stats()["named"] == 0
