"""One successful raw call per ABI function, with its pointer/length pairs, for table tests.

`prepared(broker)` loads the driver as module "a" (granted "cfg" rw), makes
a map with a key, a counter and a map reference, and lays out every input
in guest memory.  `CALLS[fn]` gives, for each function, arguments that
succeed on that state and the pointer/length pairs among them, so table
tests can break one argument at a time.  The map is one of the broker's
store (`Driver.map`): on sqlite or Redis, which hold bytes only, "m" holds
bytes, and set_map/get_map answer TYPE where memory answers OK
(`State.answer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guest_driver import (
    BUF,
    CURSOR,
    KEY,
    OK,
    OUT,
    OUT2,
    RW,
    TYPE,
    VAL,
    Driver,
    pack_items,
    pack_keys,
)

from broker import Broker

NAME = KEY + 0x100  # b"cfg"
MKEY = KEY + 0x200  # b"m": holds a map reference
KEYS = VAL + 0x100  # a get_many key list
ITEMS = VAL + 0x200  # a set_many batch
CAP = 64
VALUE = b"8 bytes!"  # 8 bytes, so incr works on it


@dataclass(frozen=True)
class Arg:
    """A length taken from argument number `index`."""

    index: int


@dataclass(frozen=True)
class Call:
    """Raw arguments that succeed, and the (pointer index, length) pairs among them."""

    args: tuple[Any, ...]  # ints, or "h" / "child" / "version" filled in from the state
    spans: tuple[tuple[int, Arg | int], ...]
    handle_args: tuple[int, ...] = ()  # indexes of handle arguments


CALLS: dict[str, Call] = {
    "open": Call((NAME, 3, RW, OUT), ((0, Arg(1)), (3, 4))),
    "new": Call((OUT,), ((0, 4),)),
    "close": Call(("h",), (), (0,)),
    "clone": Call(("h", RW, OUT), ((2, 4),), (0,)),
    "get": Call(("h", KEY, 1, BUF, CAP, OUT), ((1, Arg(2)), (3, Arg(4)), (5, 4)), (0,)),
    "set": Call(("h", KEY, 1, VAL, 8), ((1, Arg(2)), (3, Arg(4))), (0,)),
    "delete": Call(("h", KEY, 1), ((1, Arg(2)),), (0,)),
    "exists": Call(("h", KEY, 1, OUT), ((1, Arg(2)), (3, 4)), (0,)),
    "len": Call(("h", OUT), ((1, 4),), (0,)),
    "keys": Call(("h", CURSOR, BUF, CAP, OUT, OUT2), ((1, 8), (2, Arg(3)), (4, 4), (5, 4)), (0,)),
    "incr": Call(("h", KEY, 1, 5, OUT), ((1, Arg(2)), (4, 8)), (0,)),
    "version": Call(("h", KEY, 1, OUT), ((1, Arg(2)), (3, 8)), (0,)),
    "set_if": Call(("h", KEY, 1, VAL, 8, "version"), ((1, Arg(2)), (3, Arg(4))), (0,)),
    "get_many": Call(
        ("h", KEYS, len(pack_keys([b"k"])), BUF, CAP, OUT),
        ((1, Arg(2)), (3, Arg(4)), (5, 4)),
        (0,),
    ),
    "set_many": Call(("h", ITEMS, len(pack_items([(b"k", b"new")]))), ((1, Arg(2)),), (0,)),
    "set_map": Call(("h", KEY, 1, "child"), ((1, Arg(2)),), (0, 3)),
    "get_map": Call(("h", MKEY, 1, OUT), ((1, Arg(2)), (3, 4)), (0,)),
}

HANDLE_FUNCTIONS = [fn for fn, c in CALLS.items() if c.handle_args]
POINTER_FUNCTIONS = [fn for fn, c in CALLS.items() if c.spans]


@dataclass
class State:
    """The driver and the handles `prepared` made."""

    d: Driver
    h: int
    child: int

    def version(self) -> int:
        return self.d.broker.native_module(self.d.name).op_version(self.h, b"k")

    def args(self, fn: str) -> list[int]:
        """The arguments of CALLS[fn] with the state's values filled in."""
        values = {"h": self.h, "child": self.child, "version": self.version()}
        return [values[a] if isinstance(a, str) else a for a in CALLS[fn].args]

    def answer(self, fn: str) -> int:
        """The errno CALLS[fn] gives on this state."""
        if fn in ("set_map", "get_map") and self.d.broker.store is not None:
            return TYPE  # a map in a backing store holds bytes only
        return OK

    def snapshot(self) -> tuple[Any, ...]:
        """Everything a call could change, read without touching guest memory."""
        nm = self.d.broker.native_module(self.d.name)
        return (
            nm.op_get(self.h, b"k"),
            nm.op_version(self.h, b"k"),
            nm.op_keys(self.h),
            nm.usage(),
            self.d.broker.stats(),
        )


def prepared(broker: Broker, **load: Any) -> State:
    """Driver "a" with map h = {k: VALUE, m: ref to a map}, a spare child, inputs laid out."""
    d = Driver(broker, "a", grants={"cfg": "rw"}, **load)
    h, child = d.map(), d.new()
    assert d.set(h, b"k", VALUE) == OK
    if broker.store is None:
        ref = d.new()
        assert d.set_map(h, b"m", ref) == OK
        assert d.close(ref) == OK
    else:
        assert d.set(h, b"m", b"bytes, not a map") == OK
    d.put(KEY, b"k")
    d.put(VAL, VALUE)
    d.put(NAME, b"cfg")
    d.put(MKEY, b"m")
    d.put(KEYS, pack_keys([b"k"]))
    d.put(ITEMS, pack_items([(b"k", b"new")]))
    d.put_u64(CURSOR, 0)
    return State(d, h, child)
