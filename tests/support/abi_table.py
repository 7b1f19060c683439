"""One successful raw call per ABI function, for table tests; the rest from broker/abi/.

`prepared(broker)` loads the driver as module "a" (granted "cfg" rw), makes
a map with a key, a counter and a map reference, and lays out every input
in guest memory.  `CALLS[fn]` gives, for each function, arguments that
succeed on that state -- the one thing written here.  Which of them are
pointer/length pairs and handles is read from the function's declaration
in broker/abi/ (`Call.spans`, `Call.handle_args`), so table tests can
break one argument at a time and a new function needs only its
declaration and a line here.  The map is one of the broker's store
(`Driver.map`): on sqlite or Redis, which hold bytes only, "m" holds bytes,
and set_map/get_map answer TYPE where memory answers OK (`State.answer`).
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
from broker.abi import BY_NAME, AbiFunction, Shape

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
    """Raw arguments of `fn` that succeed; its spans and handles from its declaration."""

    fn: str
    args: tuple[Any, ...]  # ints, or "h" / "child" / "version" filled in from the state

    @property
    def declared(self) -> AbiFunction:
        return BY_NAME[self.fn]

    @property
    def spans(self) -> tuple[tuple[int, Arg | int], ...]:
        """(pointer index, length) of every pointer: Arg(i) when argument i holds it."""
        return tuple(
            (s.at, Arg(s.length_at) if s.length_at is not None else s.size)
            for s in self.declared.spans
        )

    @property
    def handle_args(self) -> tuple[int, ...]:
        """Indexes of the handle arguments."""
        return tuple(self.declared.index(p.name) for p in self.declared.handles)


def signature(fn: AbiFunction) -> tuple[str, ...]:
    """`fn`'s parameters grouped by meaning: "h" a handle, "span" a pointer
    and its length (two params), "out4"/"out8" a pointer to that many bytes,
    "rights", "i64"."""
    out = []
    for p in fn.params:
        if p.shape is Shape.HANDLE:
            out.append("h")
        elif p.shape in (Shape.INPUT, Shape.BUFFER):
            out.append("span")
        elif p.shape in (Shape.OUTPUT, Shape.INOUT):
            out.append(f"out{p.size}")
        elif p.shape is Shape.VALUE:
            out.append("rights" if p.name == "rights" else p.wasm)
    return tuple(out)


def _calls(**recipes: tuple[Any, ...]) -> dict[str, Call]:
    calls = {fn: Call(fn, args) for fn, args in recipes.items()}
    for c in calls.values():
        assert len(c.args) == len(c.declared.params), f"CALLS[{c.fn!r}]: wrong number of args"
    return calls


CALLS: dict[str, Call] = _calls(
    open=(NAME, 3, RW, OUT),
    new=(OUT,),
    close=("h",),
    clone=("h", RW, OUT),
    get=("h", KEY, 1, BUF, CAP, OUT),
    set=("h", KEY, 1, VAL, 8),
    delete=("h", KEY, 1),
    exists=("h", KEY, 1, OUT),
    len=("h", OUT),
    keys=("h", CURSOR, BUF, CAP, OUT, OUT2),
    incr=("h", KEY, 1, 5, OUT),
    version=("h", KEY, 1, OUT),
    set_if=("h", KEY, 1, VAL, 8, "version"),
    get_many=("h", KEYS, len(pack_keys([b"k"])), BUF, CAP, OUT),
    set_many=("h", ITEMS, len(pack_items([(b"k", b"new")]))),
    set_map=("h", KEY, 1, "child"),
    get_map=("h", MKEY, 1, OUT),
)

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
