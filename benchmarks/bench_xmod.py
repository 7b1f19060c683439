"""Calls between modules: wasi-map's C trampoline beside a public-API Python trampoline.

Run `python benchmarks/bench_xmod.py` (add `--quick` for a smoke run).
Module A (benchmarks/guests/xmod_caller.wat) imports module B's exports
(benchmarks/guests/xmod_callee.wat) as ordinary imports and calls them n
times in a loop *inside the guest*; one export call of A is timed per
repetition.  Prints figures and ratios; never asserts on time.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import cffi
import wasmtime
from _cfloor import compile_cffi, define_unchecked, symbol
from _harness import Sample, fmt_ns, fmt_sample, machine, measure, print_table, verdict
from wasmtime import _ffi as wt

GUESTS = Path(__file__).parent / "guests"
CALLER = GUESTS / "xmod_caller.wat"
CALLEE = GUESTS / "xmod_callee.wat"
CALLEE_NAME = "callee"  # the import module name in xmod_caller.wat
# B's exports as the broker loads them: how their handles pass.
DECLS = {
    "take": {"params": ["own"], "results": ["own"]},
    "peek": {"params": ["borrow"]},
    "peek_len": {"params": ["borrow"]},
}
OK, BADF, STALE, ACCES, BUSY, FAULT = 0, 1, 2, 4, 11, 5
READ, WRITE = 1, 2
TARGET_NS = 300.0


@dataclass(frozen=True)
class Row:
    """One call pattern: the loop export of A, and what is in the table."""

    key: str
    loop: str  # A's export: loop n times over one import
    label: str
    cross: bool = True  # a call between modules (else the wasm->wasm floor)
    target: bool = False  # the issue's <= 300 ns target applies


ROWS = (
    Row("own", "own_loop", "(a) own in, own back (take)", target=True),
    Row(
        "borrow", "borrow_loop", "(b) borrow in, i32 back; callee does nothing (peek)", target=True
    ),
    Row("borrow_len", "len_loop", "(b') borrow in, i32 back; callee calls len once (peek_len)"),
    Row("plain", "plain_loop", "(c) i32 in, i32 back, no handles (plain)"),
    Row("direct", "direct_loop", "(d) direct wasm->wasm call inside A", cross=False),
)


@dataclass
class World:
    """A and B instantiated one way: `loop(export, n)` calls one of A's loops."""

    name: str
    loop: Callable[[str, int], int]
    keep: list[Any] = field(default_factory=list)  # objects the C side points into


def i32_functype(nparams: int) -> wasmtime.FuncType:
    """(i32 * nparams) -> i32; made fresh per engine (one shared by two engines aborts)."""
    i32 = wasmtime.ValType.i32()
    return wasmtime.FuncType([i32] * nparams, [i32])


# --- (1) wasi-map ----------------------------------------------------------------


def wasi_map_world() -> World:
    """The project: B loaded with its handle kinds declared; A's imports are C trampolines."""
    from broker import Broker

    broker = Broker()
    broker.load("callee", CALLEE, exports=DECLS)
    broker.load("caller", CALLER)
    if broker.call("caller.setup") != OK:
        raise RuntimeError("wasi-map: A's setup (wasi_map.new) failed")

    def loop(export: str, n: int) -> int:
        result = broker.call(f"caller.{export}", n)
        assert isinstance(result, int)
        return result

    return World("wasi-map", loop, [broker])


# --- (2) the same on wasmtime-py's public API ---------------------------------------


class HandleError(Exception):
    """A handle that may not pass; raised out of a host function, it traps the guest."""


@dataclass
class Slot:
    """What a handle reaches: the map (a dict), whether it owns it, rights, lends."""

    map: dict[bytes, bytes]
    owned: bool
    rights: int
    busy: int = 0


class HandleTable:
    """One module's handles.  Numbers are never reused, so a missing one below
    `next` was closed or moved away (STALE); above it, never issued (BADF)."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.slots: dict[int, Slot] = {}
        self.next = 1

    def issue(self, slot: Slot) -> int:
        h = self.next
        self.next += 1
        self.slots[h] = slot
        return h

    def lookup(self, h: int) -> Slot:
        slot = self.slots.get(h)
        if slot is None:
            errno = "STALE" if 0 < h < self.next else "BADF"
            raise HandleError(f"{self.module}: handle {h}: {errno}")
        return slot

    def take_owned(self, h: int) -> Slot:
        """Remove an owning handle that is not lent out: it moves (own)."""
        slot = self.lookup(h)
        if not slot.owned:
            raise HandleError(f"{self.module}: handle {h} is borrowed: ACCES")
        if slot.busy:
            raise HandleError(f"{self.module}: handle {h} is lent out: BUSY")
        del self.slots[h]
        return slot


def abi_functions(table: HandleTable) -> dict[str, Callable[..., int]]:
    """`wasi_map.new` and `wasi_map.len` for one module, over its handle table."""

    def memory(caller: wasmtime.Caller) -> wasmtime.Memory:
        mem = caller["memory"]
        assert isinstance(mem, wasmtime.Memory)
        return mem

    def new(caller: wasmtime.Caller, out_h: int) -> int:
        mem, out_h = memory(caller), out_h & 0xFFFFFFFF
        if out_h + 4 > mem.data_len(caller):
            return FAULT
        h = table.issue(Slot({}, owned=True, rights=READ | WRITE))
        mem.write(caller, h.to_bytes(4, "little"), out_h)
        return OK

    def len_(caller: wasmtime.Caller, h: int, out_u32: int) -> int:
        mem, out_u32 = memory(caller), out_u32 & 0xFFFFFFFF
        if out_u32 + 4 > mem.data_len(caller):
            return FAULT
        slot = table.slots.get(h)
        if slot is None:
            return STALE if 0 < h < table.next else BADF
        if not slot.rights & READ:
            return ACCES
        mem.write(caller, len(slot.map).to_bytes(4, "little"), out_u32)
        return OK

    return {"new": new, "len": len_}


def trampolines(
    a: HandleTable, b: HandleTable, exports: dict[str, wasmtime.Func]
) -> dict[str, Callable[..., int]]:
    """Python trampolines for A's `callee.*` imports: the handle bookkeeping, then
    B's export through `Func.__call__` (with the Caller as the store)."""
    take, peek, peek_len, plain = (exports[n] for n in ("take", "peek", "peek_len", "plain"))

    def own_in_own_out(caller: wasmtime.Caller, h: int) -> int:
        slot = a.take_owned(h)  # moves: A's number is gone
        result = take(caller, b.issue(slot))
        return a.issue(b.take_owned(result))  # the result moves back

    def lend(func: wasmtime.Func) -> Callable[..., int]:
        def borrow_in(caller: wasmtime.Caller, h: int) -> int:
            slot = a.lookup(h)
            slot.busy += 1  # A may not close or move it until the call returns
            lent = b.issue(Slot(slot.map, owned=False, rights=slot.rights))
            try:
                return int(func(caller, lent))
            finally:
                slot.busy -= 1
                b.slots.pop(lent, None)  # the borrow ends (closed if B left it open)

        return borrow_in

    def no_handles(caller: wasmtime.Caller, x: int) -> int:
        return int(plain(caller, x))

    return {
        "take": own_in_own_out,
        "peek": lend(peek),
        "peek_len": lend(peek_len),
        "plain": no_handles,
    }


def public_api_world() -> World:
    """`Linker.define_func(..., access_caller=True)` everywhere, on its own Engine and Store."""
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    a, b = HandleTable("A"), HandleTable("B")
    types = {n: i32_functype(k) for n, k in (("new", 1), ("len", 2), ("xmod", 1))}

    linker_b = wasmtime.Linker(engine)
    for name, fn in abi_functions(b).items():
        linker_b.define_func("wasi_map", name, types[name], fn, access_caller=True)
    inst_b = linker_b.instantiate(store, wasmtime.Module.from_file(engine, str(CALLEE)))
    b_exports = {n: f for n, f in inst_b.exports(store).items() if isinstance(f, wasmtime.Func)}

    linker_a = wasmtime.Linker(engine)
    for name, fn in abi_functions(a).items():
        linker_a.define_func("wasi_map", name, types[name], fn, access_caller=True)
    for name, fn in trampolines(a, b, b_exports).items():
        linker_a.define_func(CALLEE_NAME, name, types["xmod"], fn, access_caller=True)
    inst_a = linker_a.instantiate(store, wasmtime.Module.from_file(engine, str(CALLER)))
    a_exports = inst_a.exports(store)
    if a_exports["setup"](store) != OK:  # type: ignore[operator]
        raise RuntimeError("public-API: A's setup (wasi_map.new) failed")

    def loop(export: str, n: int) -> int:
        return int(a_exports[export](store, n))  # type: ignore[operator]

    return World("public-API", loop, [engine, store, inst_a, inst_b])


# --- (3) the floor: a bare C trampoline --------------------------------------------

FLOOR_SOURCE = r"""
#include <stddef.h>
#include <stdint.h>
typedef struct { uint64_t opaque[2]; } wt_func;  /* wasmtime_func_t */
typedef void *(*call_fn)(void *cx, const wt_func *f, void *args, size_t n, void **trap);
typedef void *(*context_fn)(void *caller);
typedef void *(*trap_new_fn)(const char *msg, size_t len);
typedef struct {
    void *call;      /* wasmtime_func_call_unchecked */
    void *context;   /* wasmtime_caller_context */
    void *trap_new;  /* wasmtime_trap_new */
    wt_func func;    /* the export to forward to */
    size_t slots;    /* max(params, results) */
} fwd_env;

/* Forward the raw arguments to the export: no lock, no handles, nothing else. */
static void *forward(void *env, void *caller, void *args, size_t n)
{
    fwd_env *e = env;
    void *trap = NULL;
    (void)n;
    if (((call_fn)e->call)(((context_fn)e->context)(caller), &e->func, args, e->slots, &trap))
        return ((trap_new_fn)e->trap_new)("bare trampoline: wasmtime error", 31);
    return trap;
}

/* wasi_map.new / len in this world: write errno OK, touch nothing. */
static void *noop(void *env, void *caller, void *args, size_t n)
{
    (void)env; (void)caller; (void)n;
    ((int32_t *)args)[0] = 0;
    return NULL;
}

size_t fwd_env_size(void) { return sizeof(fwd_env); }
uintptr_t forward_address(void) { return (uintptr_t)forward; }
uintptr_t noop_address(void) { return (uintptr_t)noop; }
"""

FLOOR_CDEF = """
typedef struct { uint64_t opaque[2]; } wt_func;
typedef struct {
    void *call; void *context; void *trap_new; wt_func func; size_t slots;
} fwd_env;
size_t fwd_env_size(void);
uintptr_t forward_address(void);
uintptr_t noop_address(void);
"""


def compile_floor() -> tuple[cffi.FFI, Any]:
    """Compile the bare trampoline (cffi API mode, in a temp dir); (ffi, lib)."""
    return compile_cffi("_bench_xmod_floor", FLOOR_CDEF, FLOOR_SOURCE)


def bare_c_world() -> World:
    """A's `callee.*` imports are a 10-line C callback that only forwards through
    `wasmtime_func_call_unchecked`; `wasi_map.*` are no-ops.  Own Engine and Store."""
    ffi, lib = compile_floor()
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    keep: list[Any] = [engine, store]

    types = {n: i32_functype(k) for n, k in (("new", 1), ("len", 2), ("xmod", 1))}
    keep.append(types)
    linker_b = wasmtime.Linker(engine)
    define_unchecked(linker_b, "wasi_map", "len", types["len"], lib.noop_address())
    inst_b = linker_b.instantiate(store, wasmtime.Module.from_file(engine, str(CALLEE)))
    b_exports = inst_b.exports(store)

    linker_a = wasmtime.Linker(engine)
    for name in ("new", "len"):
        define_unchecked(linker_a, "wasi_map", name, types[name], lib.noop_address())
    assert ffi.sizeof("fwd_env") == lib.fwd_env_size()
    assert ctypes.sizeof(wt.wasmtime_func_t) == ffi.sizeof("wt_func")
    for name in ("take", "peek", "peek_len", "plain"):
        func = b_exports[name]
        assert isinstance(func, wasmtime.Func)
        env = ffi.new("fwd_env *")
        env.call = ffi.cast("void *", symbol("wasmtime_func_call_unchecked"))
        env.context = ffi.cast("void *", symbol("wasmtime_caller_context"))
        env.trap_new = ffi.cast("void *", symbol("wasmtime_trap_new"))
        raw = ctypes.string_at(ctypes.addressof(func._func), ctypes.sizeof(func._func))
        ffi.memmove(ffi.addressof(env, "func"), raw, len(raw))
        env.slots = 1
        keep.append(env)
        env_address = int(ffi.cast("uintptr_t", env))
        define_unchecked(
            linker_a, CALLEE_NAME, name, types["xmod"], lib.forward_address(), env_address
        )
    inst_a = linker_a.instantiate(store, wasmtime.Module.from_file(engine, str(CALLER)))
    keep += [inst_a, inst_b, linker_a, linker_b, lib]
    a_exports = inst_a.exports(store)
    # No `new` here: give A a made-up nonzero handle, which B hands back unchanged.
    memory = a_exports["memory"]
    assert isinstance(memory, wasmtime.Memory)
    memory.write(store, (1).to_bytes(4, "little"), 0)

    def loop(export: str, n: int) -> int:
        return int(a_exports[export](store, n))  # type: ignore[operator]

    return World("bare C trampoline", loop, keep)


# --- measuring and reporting ---------------------------------------------------------


def runner(world: World, row: Row) -> Callable[[int], None]:
    """run(n): one export call of A looping n times; every answer checked."""

    def run(n: int) -> None:
        bad = world.loop(row.loop, n)
        if bad:
            raise RuntimeError(f"{world.name}: {bad} of {n} calls in {row.loop} went wrong")

    return run


def warm_up(worlds: list[World], seconds: float) -> None:
    """Run every loop until `seconds` have passed: the first tens of ms of a
    process measure slower (clock ramp-up, cold caches), in every world alike.
    (The public-API world needs none: its calls take tens of µs.)"""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for world in worlds:
            for row in ROWS:
                runner(world, row)(100_000)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny N: a smoke run, rough figures")
    args = parser.parse_args(argv)
    # The public-API trampolines cost tens of µs a call: fewer iterations.
    reps, n_fast, n_public = (3, 20_000, 100) if args.quick else (11, 500_000, 2_000)

    ours, public, bare = wasi_map_world(), public_api_world(), bare_c_world()
    warm_up([ours, bare], 0.05 if args.quick else 0.5)
    results: dict[str, dict[str, Sample]] = {}
    for row in ROWS:
        results[row.key] = {"ours": measure(runner(ours, row), n_fast, reps)}
        if row.cross:
            results[row.key]["bare"] = measure(runner(bare, row), n_fast, reps)
            results[row.key]["public"] = measure(runner(public, row), n_public, reps)

    print(
        f"wasi-map calls between modules: ns per call from a guest loop in A to B's "
        f"export, median (min) of {reps} runs; {machine()}, wasmtime {version('wasmtime')}"
    )
    print(
        f"loop length: {n_fast:,} calls (wasi-map, bare C), {n_public:,} (public-API)"
        + ("  [--quick: rough figures]" if args.quick else "")
    )
    print()
    headers = [
        "call (A's guest loop -> B's export)",
        "wasi-map ns",
        "bare C trampoline ns",
        "public-API Python ns",
        "speedup (public/wasi-map)",
    ]
    rows = []
    for row in ROWS:
        r = results[row.key]
        if row.cross:
            speedup = r["public"].median / r["ours"].median
            rows.append(
                [
                    row.label,
                    fmt_sample(r["ours"]),
                    fmt_sample(r["bare"]),
                    fmt_sample(r["public"]),
                    f"{speedup:,.0f}x",
                ]
            )
        else:
            rows.append([row.label, fmt_sample(r["ours"]), "-", "-", "-"])
    print_table(headers, rows)
    print()
    plain, direct = results["plain"]["ours"].median, results["direct"]["ours"].median
    floor = results["plain"]["bare"].median
    print(
        f"where a plain call's {fmt_ns(plain)} ns goes: {fmt_ns(direct)} wasm->wasm, "
        f"{fmt_ns(floor - direct)} wasmtime's host re-entry (bare C trampoline - direct), "
        f"{fmt_ns(plain - floor)} wasi-map's trampoline (wasi-map - bare C)"
    )
    print()
    print("targets (issue):")
    for row in ROWS:
        if row.target:
            ns = results[row.key]["ours"].median
            print(
                f"  {row.key}: median <= {TARGET_NS:.0f} ns per cross-module call: "
                f"{verdict(ns <= TARGET_NS)} ({fmt_ns(ns)} ns)"
            )


if __name__ == "__main__":
    sys.exit(main())
