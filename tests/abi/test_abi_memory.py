"""ABI conformance: FAULT for every pointer/length pair, and guest memory as the ABI sees it."""

from __future__ import annotations

from pathlib import Path

import pytest
from abi_table import CALLS, POINTER_FUNCTIONS, Arg, State, prepared
from guest_driver import BUF, FAULT, KEY, NOENT, OK, OUT, RW, Driver, driver_fixture
from stores_fixtures import every_store

from broker import Broker

d = driver_fixture()

U32 = 1 << 32
TAIL = 16  # the last bytes of memory, poisoned to catch partial writes

SPAN_CASES = [(fn, i) for fn in POINTER_FUNCTIONS for i in range(len(CALLS[fn].spans))]


def case_id(case: tuple[str, int]) -> str:
    fn, i = case
    return f"{fn}-arg{CALLS[fn].spans[i][0]}"


def broken(s: State, fn: str, span: int, variant: str) -> list[int]:
    """The arguments of a successful call with one pointer/length pair moved out of memory."""
    args = s.args(fn)
    ptr_i, length = CALLS[fn].spans[span]
    size = s.d.memsize()
    if isinstance(length, Arg):
        n = args[length.index]
        if variant == "end":  # the last byte one past the end
            args[ptr_i] = size - n + 1
        elif variant == "start":  # starts at the end
            args[ptr_i] = size
        elif variant == "wrap":  # ptr + len wraps around 2^32 to a small in-bounds sum
            args[ptr_i], args[length.index] = U32 - 0x10, 0x20
        elif variant == "huge":  # a length no memory has
            args[length.index] = 0xFFFFFFFF
    else:
        if variant == "end":
            args[ptr_i] = size - length + 1
        elif variant == "start":
            args[ptr_i] = size
        elif variant == "wrap":
            args[ptr_i] = U32 - length // 2
        elif variant == "huge":
            args[ptr_i] = 0xFFFFFFFF
    return args


class TestFault:
    @every_store
    @pytest.mark.parametrize("variant", ["end", "start", "wrap", "huge"])
    @pytest.mark.parametrize("case", SPAN_CASES, ids=case_id)
    def test_pair_outside_memory_is_fault(
        self, broker: Broker, case: tuple[str, int], variant: str
    ) -> None:
        """A pair past the end, wrapping around 2^32 or too long is FAULT; nothing happens."""
        fn, span = case
        s = prepared(broker)
        before = s.snapshot()
        size = s.d.memsize()
        s.d.poison(OUT, 16)
        s.d.poison(BUF, 64)
        s.d.poison(size - TAIL, TAIL)
        assert s.d.call(fn, *broken(s, fn, span, variant)) == FAULT
        assert s.snapshot() == before
        assert s.d.untouched(OUT, 16) and s.d.untouched(BUF, 64)
        assert s.d.untouched(size - TAIL, TAIL)
        # the same call with the pair put back succeeds: FAULT came from that pair alone
        s.d.put(size - TAIL, b"\0" * TAIL)
        assert s.d.call(fn, *s.args(fn)) == s.answer(fn)

    @every_store
    @pytest.mark.parametrize("fn", [fn for fn in POINTER_FUNCTIONS if CALLS[fn].handle_args])
    def test_fault_comes_before_bad_handle(self, broker: Broker, fn: str) -> None:
        """FAULT is checked first: with handle 0 as well, the answer is FAULT."""
        s = prepared(broker)
        args = broken(s, fn, 0, "end")
        for i in CALLS[fn].handle_args:
            args[i] = 0
        assert s.d.call(fn, *args) == FAULT

    @every_store
    def test_fault_comes_before_inval(self, broker: Broker) -> None:
        """open with unknown rights bits and an out-pointer outside memory is FAULT."""
        s = prepared(broker)
        args = s.args("open")
        args[2] = 0xFF
        args[3] = s.d.memsize()
        assert s.d.call("open", *args) == FAULT

    @every_store
    def test_fault_before_malformed_batch(self, broker: Broker) -> None:
        """get_many with a malformed key list and out_used outside memory is FAULT."""
        s = prepared(broker)
        s.d.put(KEY, b"\x09\x00\x00\x00")
        assert s.d.call("get_many", s.h, KEY, 4, BUF, 64, s.d.memsize()) == FAULT

    def test_fault_does_not_create_a_map(self, d: Driver, broker: Broker) -> None:
        """new with out_h outside memory creates no map and issues no handle."""
        assert d.call("new", d.memsize() - 2) == FAULT
        assert broker.stats() == {"maps": 0, "named": 0, "handles": {"a": 0}}
        assert d.new() == (1 << 21)  # slot 0, generation 1: nothing was issued before

    @every_store
    def test_fault_does_not_open_a_named_map(self, broker: Broker) -> None:
        """open with out_h outside memory creates no named map."""
        d = Driver(broker, "a", grants={"cfg": "rw"})
        d.put(KEY, b"cfg")
        assert d.call("open", KEY, 3, RW, 0xFFFFFFFF) == FAULT
        assert broker.stats()["named"] == 0

    def test_fault_on_get_map_issues_no_handle(self, d: Driver, broker: Broker) -> None:
        """get_map with out_h outside memory issues no handle."""
        h = d.new()
        d.set_map(h, b"m", d.new())
        d.put(KEY, b"m")
        assert d.call("get_map", h, KEY, 1, d.memsize()) == FAULT
        assert broker.stats()["handles"] == {"a": 2}


@every_store
class TestMemoryEdges:
    def test_empty_pair_at_the_end_is_fine(self, d: Driver) -> None:
        """A zero-length pair starting exactly at the end of memory is inside it."""
        h = d.map()
        assert d.call("get", h, d.memsize(), 0, BUF, 64, OUT) == NOENT
        assert d.call("set", h, d.memsize(), 0, d.memsize(), 0) == OK
        assert d.value(h, b"") == b""

    def test_empty_pair_past_the_end_is_fault(self, d: Driver) -> None:
        """A zero-length pair starting past the end of memory is FAULT."""
        h = d.map()
        assert d.call("set", h, d.memsize() + 1, 0, KEY, 0) == FAULT
        assert d.call("set", h, 0xFFFFFFFF, 0, KEY, 0) == FAULT

    def test_pair_ending_exactly_at_the_end(self, d: Driver) -> None:
        """A pair whose last byte is the last byte of memory is fine."""
        h = d.map()
        end = d.memsize()
        d.put(end - 3, b"key")
        assert d.call("set", h, end - 3, 3, end - 3, 3) == OK
        assert d.value(h, b"key") == b"key"
        assert d.call("len", h, end - 4) == OK
        assert d.u32(end - 4) == 1

    def test_memory_growth_is_seen(self, d: Driver) -> None:
        """After memory.grow, pointers into the new pages are valid."""
        h = d.map()
        old = d.memsize()
        assert d.call("len", h, old) == FAULT
        assert d.grow(1) == old // 65536
        assert d.memsize() == old + 65536
        d.put(old + 100, b"grown")
        assert d.call("set", h, old + 100, 5, old + 100, 5) == OK
        assert d.call("len", h, old) == OK
        assert d.u32(old) == 1
        assert d.value(h, b"grown") == b"grown"


class TestStartFunction:
    def test_abi_calls_from_a_start_function(self, broker: Broker, guests: Path) -> None:
        """A start function's ABI calls find the memory before instantiation has finished."""
        broker.load("s", guests / "start_calls.wat", grants={"cfg": "rw"})
        assert broker.call("s.status") == OK
        h = broker.call("s.handle")
        assert broker.native_module("s").op_get(h, b"from") == b"start"
        cfg = broker.host.op_open(b"cfg", RW)
        assert broker.host.op_get(cfg, b"from") == b"start"
