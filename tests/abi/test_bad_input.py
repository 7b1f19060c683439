"""Every ABI function, called from a WAT guest with random handles, pointers, lengths, rights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from raw_caller import (
    MEM,
    OUT_AREA,
    PREPARED,
    SIGNATURES,
    SLOW_AND_FRESH,
    World,
    flatten,
    make_world,
)
from stores_fixtures import every_store
from strategies import i64_args, mostly, pointers, raw_handles, rights_args, spans

from broker import Broker, abi
from broker._native import NativeModule
from broker.abi import Errno
from broker.errors import ValueTypeError

#: Pointer/length pairs that lie inside memory and mean something.
GOOD_SPANS = tuple((at, len(data)) for at, data in PREPARED.items()) + (
    (OUT_AREA, 0x1000),
    (OUT_AREA, 16),
    (OUT_AREA, 3),
    (0, 0),
    (MEM, 0),  # empty, at the very end: inside
)
OUT_MARKS = (0, 8, 0x10, 0x20, 0x40, OUT_AREA, MEM - 4, MEM - 8)


#: Where in the signature the out-pointer is that receives the needed size on RANGE.
SIZE_AT = {"get": 3, "keys": 3, "get_many": 3}
WRITES = {"set", "delete", "incr", "set_if", "set_many", "set_map"}
#: Functions whose only argument check before the handle is FAULT (no INVAL).
SINGLE_HANDLE = {
    "close",
    "get",
    "set",
    "delete",
    "exists",
    "len",
    "keys",
    "incr",
    "version",
    "set_if",
    "set_map",
    "get_map",
    "watch_drop",
}
#: Guest handles made in setup, by role; "stale" was closed, "none" has rights 0.
POOL = ("rw", "scratch", "ro", "ro_child", "none", "stale", "other_a", "other_b")
READ_ONLY = ("ro", "ro_child")


SAFE_OUTS = (0, 8, 0x10, 0x20, 0x40, OUT_AREA, OUT_AREA + 0x800, MEM - 8)
handle_args = mostly(st.sampled_from(POOL), raw_handles)
ARG_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "h": handle_args,
    "span": mostly(st.sampled_from(GOOD_SPANS), spans(MEM, GOOD_SPANS)),
    "out4": mostly(st.sampled_from(SAFE_OUTS), pointers(MEM, OUT_MARKS)),
    "out8": mostly(st.sampled_from(SAFE_OUTS), pointers(MEM, OUT_MARKS)),
    "rights": rights_args,
    "i64": i64_args,
}


def call_args(name: str) -> st.SearchStrategy[tuple[str, tuple[Any, ...]]]:
    return st.tuples(st.just(name), st.tuples(*(ARG_STRATEGIES[k] for k in SIGNATURES[name])))


calls = st.sampled_from(sorted(SIGNATURES)).flatmap(call_args)


def snapshot(native: NativeModule, h: int) -> list[tuple[bytes, int, Any]]:
    """(key, version, value or the referenced map's id) for every entry, in order."""
    out = []
    for key in native.op_keys(h):
        version = native.op_version(h, key)
        try:
            value: Any = native.op_get(h, key)
        except ValueTypeError:
            ref = native.op_get_map(h, key)
            value = ("map", native.map_id(ref))
            native.op_close(ref)
        out.append((key, version, value))
    return out


def inside(ptr: int, size: int) -> bool:
    return ptr + size <= MEM


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[0] + b[1] and b[0] < a[0] + a[1]


def never_issued(h: int) -> bool:
    """Handle 0, generation 0, past the last generation, or the top bit set."""
    return not 1 <= h >> 21 <= 1023


def call_and_check(w: World, name: str, args: tuple[Any, ...], read_only: set[int]) -> None:
    """Make one raw call and check every rule that can be judged from its arguments alone."""
    raw, pairs, outs = flatten(w, name, args)
    readable = [o for o in outs if inside(*o)]
    old = {o: w.peek(*o) for o in readable}
    errno = w.call(name, *raw)
    what = f"{name}{tuple(hex(a) for a in raw)}"
    assert 0 <= errno <= 13, f"{what} returned {errno}"
    got = Errno(errno)
    faulty = [p for p in pairs if not inside(*p)]
    assert (got == Errno.FAULT) == bool(faulty), f"{what}: {got.name}"
    # Nothing is written to an out-pointer unless OK; on RANGE only the needed size.
    written: list[tuple[int, int]] = []
    if got == Errno.RANGE:
        kinds = SIGNATURES[name][: SIZE_AT[name]]
        written = [outs[kinds.count("out4") + kinds.count("out8")]]
    if got != Errno.OK:
        for o in readable:
            if not any(overlaps(o, size) for size in written):
                assert w.peek(*o) == old[o], f"{what}: {got.name} wrote to {o}"
    # A read-only handle never writes, is never stored, and never gains WRITE.
    if name in WRITES and raw[0] in read_only:
        assert got != Errno.OK, f"{what}: a write through a read-only handle"
    if name == "set_map" and raw[3] in read_only:
        assert got != Errno.OK, f"{what}: stored a read-only handle"
    if name == "clone" and raw[0] in read_only and raw[1] & 2:
        assert got != Errno.OK, f"{what}: cloned a read-only handle with WRITE"
    if faulty:
        return
    # The order of checks: INVAL (argument values), then BADF/STALE.
    rights = {"open": 2, "clone": 1}.get(name)
    if rights is not None and raw[rights] & ~3:
        assert got == Errno.INVAL, f"{what}: unknown rights bits gave {got.name}"
    if name == "get_many" and pairs[0][1] and pairs[1][1] and overlaps(pairs[0], pairs[1]):
        assert got == Errno.INVAL, f"{what}: overlapping keys and output gave {got.name}"
    if name in SINGLE_HANDLE:
        if never_issued(raw[0]):
            assert got == Errno.BADF, f"{what}: a never-issued handle gave {got.name}"
        if raw[0] == w.handles["stale"]:
            assert got == Errno.STALE, f"{what}: a closed handle gave {got.name}"


class TestRawCaller:
    """raw_caller.wat passes arguments through unchanged (so the random tests mean something)."""

    def test_signatures_cover_the_abi(self) -> None:
        """SIGNATURES lists every implemented function with its exact parameter count."""
        assert set(SIGNATURES) == abi.IMPLEMENTED
        for name, kinds in SIGNATURES.items():
            params = sum(2 if k == "span" else 1 for k in kinds)
            assert params == len(abi.BY_NAME[name].params), name

    def test_every_wrapper_reaches_its_function(self, broker: Broker) -> None:
        """Each export returns OK for good arguments and writes the expected outputs."""
        w = make_world(broker)
        rw, ro = w.handles["rw"], w.handles["ro"]
        assert w.call("set", rw, 0x100, 5, 0x400, 8) == Errno.OK
        assert w.call("get", rw, 0x100, 5, OUT_AREA + 16, 8, OUT_AREA) == Errno.OK
        assert w.peek(OUT_AREA, 4) == 8 and w.peek(OUT_AREA + 16, 8) == 1
        assert w.call("incr", rw, 0x100, 5, 41, OUT_AREA) == Errno.OK
        assert w.peek(OUT_AREA, 8) == 42
        assert w.call("exists", rw, 0x100, 5, OUT_AREA) == Errno.OK and w.peek(OUT_AREA, 4) == 1
        assert w.call("len", ro, OUT_AREA) == Errno.OK and w.peek(OUT_AREA, 4) == 4
        assert w.call("version", ro, 0x110, 4, OUT_AREA) == Errno.OK and w.peek(OUT_AREA, 8) > 0
        assert w.call("set_if", rw, 0x150, 7, 0x400, 8, 0) == Errno.OK
        assert w.call("set_many", rw, 0x300, len(PREPARED[0x300])) == Errno.OK
        assert w.call("get_many", ro, 0x200, len(PREPARED[0x200]), OUT_AREA + 16, 64, OUT_AREA) == 0
        assert w.peek(OUT_AREA, 4) == 4 + 1 + 4 + 8 + 4
        w.poke(OUT_AREA + 8, bytes(8))
        assert w.call("keys", ro, OUT_AREA + 8, OUT_AREA + 16, 256, OUT_AREA, OUT_AREA + 4) == 0
        assert w.peek(OUT_AREA + 4, 4) == 4
        assert w.call("set_map", w.handles["scratch"], 0x120, 5, rw) == Errno.OK
        sub = w.out_handle("get_map", w.handles["scratch"], 0x120, 5, OUT_AREA)
        assert broker.native_module("rc").map_id(sub) == broker.native_module("rc").map_id(rw)
        assert w.call("delete", rw, 0x100, 5) == Errno.OK
        assert w.call("close", sub) == Errno.OK

    @every_store
    def test_read_only_handle_refuses_writes(self, broker: Broker) -> None:
        """Writes through the handle opened with "r" are ACCES, and opening it "rw" is too."""
        w = make_world(broker)
        ro = w.handles["ro"]
        assert w.call("set", ro, 0x100, 5, 0x400, 8) == Errno.ACCES
        assert w.call("delete", ro, 0x100, 5) == Errno.ACCES
        assert w.call("open", 0x140, 6, 3, OUT_AREA) == Errno.ACCES
        assert w.call("clone", ro, 3, OUT_AREA) == Errno.ACCES


@every_store
class TestRandomCalls:
    """Random raw calls never crash the host, break a rule, or touch what they may not."""

    @settings(max_examples=200, deadline=None, suppress_health_check=SLOW_AND_FRESH)
    @given(sequence=st.lists(calls, min_size=1, max_size=40))
    def test_random_calls_are_contained(
        self, fresh_store: Callable[[], str], sequence: list[tuple[str, tuple[Any, ...]]]
    ) -> None:
        """Errnos stay in 0..13, FAULT is exact, errors write nothing, guarded maps never change."""
        with Broker(fresh_store()) as broker:
            w = make_world(broker)
            host = broker.host
            before = (
                snapshot(host, w.config),
                snapshot(host, w.child),
                [snapshot(w.other, m) for m in w.other_maps],
            )
            other_handles = w.other.handle_count()
            read_only = {w.handles[role] for role in READ_ONLY}
            for name, args in sequence:
                call_and_check(w, name, args, read_only)
            after = (
                snapshot(host, w.config),
                snapshot(host, w.child),
                [snapshot(w.other, m) for m in w.other_maps],
            )
            assert after == before
            assert w.other.handle_count() == other_handles
            assert broker.stats()["named"] == 2  # config and scratch: no name rc was not granted
            broker.unload("rc")
            assert (snapshot(host, w.config), snapshot(host, w.child)) == before[:2]
            host.op_close(host.op_new())  # the host still works
