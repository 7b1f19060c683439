"""tests/guests/raw_caller.wat: any ABI function called with raw arguments, in a world
of prepared maps and handles, and what its guest memory holds after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import wasmtime
from abi_table import signature
from hypothesis import HealthCheck
from paths import GUESTS

from broker import Broker, abi
from broker._native import NativeModule
from broker.abi import Errno

RAW_CALLER = GUESTS / "raw_caller.wat"
RAW_WASM = bytes(wasmtime.wat2wasm(RAW_CALLER.read_text()))
MEM = 65536  # raw_caller.wat: one page that cannot grow


def batch(*fields: bytes) -> bytes:
    """Records of u32 length + bytes, back to back."""
    return b"".join(len(f).to_bytes(4, "little") + f for f in fields)


PREPARED: dict[int, bytes] = {
    0x100: b"alpha",
    0x110: b"beta",
    0x120: b"child",
    0x130: b"scratch",
    0x140: b"config",
    0x150: b"missing",
    0x160: b"\xff\xfe",  # not UTF-8
    0x200: batch(b"alpha", b"beta", b"missing"),  # get_many keys
    0x280: batch(b"alpha", b"child"),  # get_many keys hitting a map reference
    0x300: batch(b"alpha", b"zz", b"gamma", b"v"),  # set_many items
    0x380: b"\x05\x00\x00\x00al",  # a truncated record
    0x400: (1).to_bytes(8, "little"),  # an 8-byte counter value
    MEM - 5: b"alpha",  # ends exactly at the end of memory
}
OUT_AREA = 0x1000  # 4 KiB free for outputs and buffers


#: Each ABI function's parameters grouped by meaning (abi_table.signature,
#: from broker/abi/): "h" a handle, "span" a pointer/length pair (two
#: params), "out4"/"out8" an out-pointer of that size, "rights", "i64".
SIGNATURES: dict[str, tuple[str, ...]] = {f.name: signature(f) for f in abi.FUNCTIONS}


#: Each example makes its own broker on an empty store (`fresh_store`).
SLOW_AND_FRESH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


@dataclass
class World:
    """A broker with the raw caller "rc", another module, and the maps rc may only read."""

    broker: Broker
    handles: dict[str, int]  # rc's handles by role
    config: int  # the host's handle to the named map rc may only read
    child: int  # the host's handle to the map stored in config under b"child" (memory only)
    other: NativeModule
    other_maps: tuple[int, int]

    def call(self, export: str, *args: int) -> int:
        result = self.broker.call(f"rc.{export}", *args)
        assert isinstance(result, int)
        return result

    def poke(self, at: int, data: bytes) -> None:
        for i, byte in enumerate(data):
            self.broker.call("rc.poke8", at + i, byte)

    def peek(self, at: int, size: int) -> int:
        return int(self.broker.call("rc.peek32" if size == 4 else "rc.peek64", at)) % (
            1 << (8 * size)
        )

    def out_handle(self, export: str, *args: int) -> int:
        """Call an export that writes a handle to OUT_AREA; return the handle."""
        assert self.call(export, *args) == Errno.OK, export
        return self.peek(OUT_AREA, 4)


def make_world(broker: Broker) -> World:
    broker.load("rc", RAW_WASM, grants={"config": "r", "scratch": "rw"})
    broker.load("other", RAW_WASM)
    host = broker.host
    config = host.op_open(b"config", 3)
    host.op_set(config, b"alpha", b"1")
    host.op_incr(config, b"beta", 41)
    host.op_set(config, b"", b"the empty key")
    child = host.op_new()
    host.op_set(child, b"x", b"y")
    if broker.store is None:  # a map in a backing store holds bytes only
        host.op_set_map(config, b"child", child)
    other = broker.native_module("other")
    a, b = other.op_new(), other.op_new()
    other.op_set(a, b"alpha", b"theirs")
    other.op_set_map(a, b"child", b)
    other.op_incr(b, b"beta", 7)
    world = World(broker, {}, config, child, other, (a, b))
    for at, data in PREPARED.items():
        world.poke(at, data)
    h = world.handles
    h["rw"] = world.out_handle("new", OUT_AREA)
    h["scratch"] = world.out_handle("open", 0x130, 7, 3, OUT_AREA)
    h["ro"] = world.out_handle("open", 0x140, 6, 1, OUT_AREA)
    if broker.store is None:
        h["ro_child"] = world.out_handle("get_map", h["ro"], 0x120, 5, OUT_AREA)
    else:  # no map references in a store: a second read-only handle to config
        h["ro_child"] = world.out_handle("open", 0x140, 6, 1, OUT_AREA)
    h["none"] = world.out_handle("clone", h["rw"], 0, OUT_AREA)
    h["stale"] = world.out_handle("new", OUT_AREA)
    assert world.call("close", h["stale"]) == Errno.OK
    h["other_a"], h["other_b"] = a, b
    return world


def flatten(
    world: World, name: str, args: tuple[Any, ...]
) -> tuple[list[int], list[tuple[int, int]], list[tuple[int, int]]]:
    """The raw params, every (ptr, len) pair to check for FAULT, and the out-pointers."""
    raw: list[int] = []
    pairs: list[tuple[int, int]] = []
    outs: list[tuple[int, int]] = []
    for kind, arg in zip(SIGNATURES[name], args, strict=True):
        if kind == "h":
            raw.append(world.handles[arg] if isinstance(arg, str) else arg)
        elif kind == "span":
            raw += arg
            pairs.append(arg)
        elif kind in ("out4", "out8"):
            size = 4 if kind == "out4" else 8
            raw.append(arg)
            pairs.append((arg, size))
            outs.append((arg, size))
        else:
            raw.append(arg)
    return raw, pairs, outs
