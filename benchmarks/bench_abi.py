"""Guest `get`/`set` on wasi-map beside a public-API wasmtime-py host and a no-op C floor,
and the same loop written in C, Rust and C++ against their bindings.

Run `python benchmarks/bench_abi.py` (add `--quick` for a smoke run).  Every
host runs the same guest, benchmarks/guests/abi_loop.wat, whose exports loop
over the import n times, so one export call is spread over n operations.
Then a table each for `get` and `set` takes the call apart: a ladder of C
imports (_abi_ladder.c), each doing one stage of the call more than the one
before, from the floor to the real callback, so the differences say where
the nanoseconds above the floor go.  The last table runs abi_loop.c, abi_loop.rs
(the Rust crate's `Map`) and abi_loop.cpp (wasi_map.hpp's `map`) on
wasi-map, built by guests/build.py; a language whose compiler is missing is
left out, saying so.
Prints figures and ratios; never asserts on time.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from types import ModuleType

import wasmtime
from _abi_ladder import Ladder
from _cfloor import compile_cffi, define_unchecked
from _harness import (
    Sample,
    fmt_ns,
    fmt_sample,
    machine,
    measure,
    print_table,
    repeat,
    summarize,
    verdict,
)

GUEST = Path(__file__).parent / "guests" / "abi_loop.wat"
OPS = ("get", "set")
PARAMS = {"new": 1, "get": 6, "set": 5}  # all i32, one i32 result (the errno)
OK, BADF, NOENT, FAULT, RANGE = 0, 1, 3, 5, 6
TARGET_NS = 100.0
TARGET_SPEEDUP = 100.0
LANGUAGES = {"C": "abi_loop.c", "Rust": "abi_loop.rs", "C++": "abi_loop.cpp"}
TARGET_LANGUAGE_RATIO = 1.10  # Rust and C++ within 10% of C


@dataclass
class Host:
    """One way of serving the guest's imports: call an export of the guest with ints."""

    name: str
    call: Callable[..., int]
    writes_values: bool  # False for the no-op floor, which leaves guest memory alone


def functypes() -> dict[str, wasmtime.FuncType]:
    """Fresh FuncTypes for one engine's linker (one used with two engines aborts the process)."""
    i32 = wasmtime.ValType.i32()
    return {name: wasmtime.FuncType([i32] * n, [i32]) for name, n in PARAMS.items()}


def instantiate(engine: wasmtime.Engine, linker: wasmtime.Linker) -> Callable[..., int]:
    """Instantiate the guest in a new store; a function calling its exports."""
    store = wasmtime.Store(engine)
    instance = linker.instantiate(store, wasmtime.Module.from_file(engine, str(GUEST)))
    exports = instance.exports(store)

    def call(export: str, *args: int) -> int:
        return int(exports[export](store, *args))

    return call


# --- (a, b) wasi-map ---------------------------------------------------------


def wasi_map_host(guest: Path = GUEST, name: str = "wasi-map") -> Host:
    """The project: C host functions behind the broker's fast call path."""
    from broker import Broker

    broker = Broker()
    broker.load("bench", guest)

    def call(export: str, *args: int) -> int:
        result = broker.call(f"bench.{export}", *args)
        assert isinstance(result, int)
        return result

    return Host(name, call, writes_values=True)


# --- (e) the same loop in C, Rust and C++ -------------------------------------


def guest_build() -> ModuleType:
    """guests/build.py, the one place the guests' compiler command lines are."""
    path = Path(__file__).resolve().parents[1] / "guests" / "build.py"
    spec = importlib.util.spec_from_file_location("guest_build", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def language_hosts(out_dir: Path) -> list[Host]:
    """A wasi-map host for each language's loop that builds here."""
    builder = guest_build()
    hosts = []
    for language, source in LANGUAGES.items():
        path = Path(__file__).parent / "guests" / source
        problem = builder.missing(path)
        if problem:
            print(f"({language} left out: {problem})")
            continue
        wasm = builder.build(path, out_dir / f"{path.stem}_{path.suffix[1:]}.wasm")
        hosts.append(wasi_map_host(wasm, language))
    return hosts


# --- (c) a hand-written host on wasmtime-py's public API ---------------------


class DictMaps:
    """get/set/new over Python dicts, reading guest memory through `caller["memory"]`."""

    def __init__(self) -> None:
        self.maps: list[dict[bytes, bytes]] = []

    def _map(self, h: int) -> dict[bytes, bytes] | None:
        return self.maps[h - 1] if 1 <= h <= len(self.maps) else None

    def new(self, caller: wasmtime.Caller, out_h: int) -> int:
        mem = caller["memory"]
        assert isinstance(mem, wasmtime.Memory)
        out_h &= 0xFFFFFFFF
        if out_h + 4 > mem.data_len(caller):
            return FAULT
        self.maps.append({})
        mem.write(caller, len(self.maps).to_bytes(4, "little"), out_h)
        return OK

    def get(
        self,
        caller: wasmtime.Caller,
        h: int,
        key_ptr: int,
        key_len: int,
        buf_ptr: int,
        buf_cap: int,
        out_len: int,
    ) -> int:
        mem = caller["memory"]
        assert isinstance(mem, wasmtime.Memory)
        key_ptr, key_len, buf_ptr, buf_cap, out_len = (
            x & 0xFFFFFFFF for x in (key_ptr, key_len, buf_ptr, buf_cap, out_len)
        )
        size = mem.data_len(caller)
        if key_ptr + key_len > size or buf_ptr + buf_cap > size or out_len + 4 > size:
            return FAULT
        m = self._map(h)
        if m is None:
            return BADF
        value = m.get(bytes(mem.read(caller, key_ptr, key_ptr + key_len)))
        if value is None:
            return NOENT
        mem.write(caller, len(value).to_bytes(4, "little"), out_len)
        if len(value) > buf_cap:
            return RANGE
        mem.write(caller, value, buf_ptr)
        return OK

    def set(
        self,
        caller: wasmtime.Caller,
        h: int,
        key_ptr: int,
        key_len: int,
        val_ptr: int,
        val_len: int,
    ) -> int:
        mem = caller["memory"]
        assert isinstance(mem, wasmtime.Memory)
        key_ptr, key_len, val_ptr, val_len = (
            x & 0xFFFFFFFF for x in (key_ptr, key_len, val_ptr, val_len)
        )
        size = mem.data_len(caller)
        if key_ptr + key_len > size or val_ptr + val_len > size:
            return FAULT
        m = self._map(h)
        if m is None:
            return BADF
        key = bytes(mem.read(caller, key_ptr, key_ptr + key_len))
        m[key] = bytes(mem.read(caller, val_ptr, val_ptr + val_len))
        return OK


def public_api_host() -> Host:
    """`Linker.define_func(..., access_caller=True)` backed by a dict: the baseline."""
    engine = wasmtime.Engine()
    linker = wasmtime.Linker(engine)
    impl = DictMaps()
    for name, ty in functypes().items():
        linker.define_func("wasi_map", name, ty, getattr(impl, name), access_caller=True)
    return Host("public-API host", instantiate(engine, linker), writes_values=True)


# --- (d) the floor: a C host function that does nothing ----------------------

NOOP_SOURCE = r"""
#include <stddef.h>
#include <stdint.h>
/* An unchecked wasmtime callback: errno OK in the first result slot, no trap. */
static void *noop(void *env, void *caller, void *args, size_t n)
{
    (void)env; (void)caller; (void)n;
    ((int32_t *)args)[0] = 0;
    return NULL;
}
uintptr_t noop_address(void) { return (uintptr_t)noop; }
"""


def noop_address() -> int:
    """Compile the no-op callback (cffi API mode, in a temp dir); its address."""
    _, lib = compile_cffi("_bench_abi_noop", "uintptr_t noop_address(void);", NOOP_SOURCE)
    return int(lib.noop_address())


def noop_c_host() -> Host:
    """Every import is the no-op callback, registered like wasi-map's (unchecked API)."""
    callback = noop_address()
    engine = wasmtime.Engine()
    linker = wasmtime.Linker(engine)
    for name, ty in functypes().items():
        define_unchecked(linker, "wasi_map", name, ty, callback)
    call = instantiate(engine, linker)
    return Host("no-op C floor", call, writes_values=False)


# --- measuring and reporting ---------------------------------------------------


def loop(host: Host, op: str) -> Callable[[int], None]:
    """run(n): n guest calls of `op` in one export call, checked to have all returned OK."""

    def run(n: int) -> None:
        bad = host.call(f"{op}_loop", n)
        if bad:
            raise RuntimeError(f"{host.name}: {bad} of {n} {op} calls did not return OK")

    return run


def prepare(host: Host) -> None:
    """Create the map and its one entry, and check a `get` returns the whole value."""
    if host.call("setup") != OK:
        raise RuntimeError(f"{host.name}: guest setup failed")
    loop(host, "get")(1)
    if host.writes_values and host.call("value_ok") != 1:
        raise RuntimeError(f"{host.name}: get did not return the value that was set")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny N: a smoke run, rough figures")
    args = parser.parse_args(argv)
    # The public-API host costs 20-30 µs a call, so it gets fewer iterations.
    reps, n_fast, n_public = (3, 20_000, 100) if args.quick else (11, 500_000, 5_000)

    hosts = [(wasi_map_host(), n_fast), (public_api_host(), n_public), (noop_c_host(), n_fast)]
    for host, _ in hosts:
        prepare(host)
    results: dict[str, list[Sample]] = {
        op: [measure(loop(host, op), n, reps) for host, n in hosts] for op in OPS
    }

    print(
        f"wasi-map guest ABI: ns per call, median (min) of {reps} runs; "
        f"16-byte key, 64-byte value; {machine()}, wasmtime {version('wasmtime')}"
    )
    print(
        f"loop length: {n_fast:,} calls (wasi-map, floor), {n_public:,} (public-API host)"
        + ("  [--quick: rough figures]" if args.quick else "")
    )
    print()
    headers = [
        "operation",
        "wasi-map ns",
        "public-API host ns",
        "no-op C floor ns",
        "speedup (public/wasi-map)",
    ]
    rows = []
    for op in OPS:
        ours, public, floor = results[op]
        rows.append(
            [
                op,
                fmt_sample(ours),
                fmt_sample(public),
                fmt_sample(floor),
                f"{public.median / ours.median:,.0f}x",
            ]
        )
    print_table(headers, rows)
    print()
    print("targets (issue):")
    for op in OPS:
        ours, public, _ = results[op]
        speedup = public.median / ours.median
        print(
            f"  {op}: median <= {TARGET_NS:.0f} ns: {verdict(ours.median <= TARGET_NS)} "
            f"({fmt_ns(ours.median)} ns); >= {TARGET_SPEEDUP:.0f}x public-API host: "
            f"{verdict(speedup >= TARGET_SPEEDUP)} ({speedup:,.0f}x)"
        )
    breakdown(Ladder(), n_fast, reps, results)
    with tempfile.TemporaryDirectory() as scratch:
        languages(language_hosts(Path(scratch)), n_fast, reps)


def breakdown(ladder: Ladder, n: int, reps: int, results: dict[str, list[Sample]]) -> None:
    """The ladder's rungs, measured interleaved: ns per stage and its share of the call."""
    ladder.check()
    for op in OPS:
        for rung in ladder.rungs[op]:
            rung.run(n)  # warm-up
    # Interleave the rungs, rep by rep, so drift on the machine hits all alike.
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(reps):
        for op in OPS:
            for rung in ladder.rungs[op]:
                times.setdefault((op, rung.name), []).extend(repeat(rung.run, n, 1, warmup=0))
    print()
    print(
        f"where the time of a call goes: each rung a C import doing one stage more than the "
        f"one above\n(benchmarks/_abi_ladder.c, on a module of its own broker, engine with epoch "
        f"checks as wasi-map's); ns per call, median of {reps} runs, interleaved"
    )
    for op in OPS:
        medians = [statistics.median(times[(op, r.name)]) for r in ladder.rungs[op]]
        total, floor = medians[-1], medians[0]
        rows = []
        for i, rung in enumerate(ladder.rungs[op]):
            step = medians[i] - (medians[i - 1] if i else 0.0)
            rows.append(
                [
                    rung.name,
                    rung.adds,
                    fmt_ns(medians[i]),
                    f"{step:+.1f}" if i else fmt_ns(step),
                    f"{step / total:.0%}",
                    f"{step / (total - floor):.0%}" if i else "",
                ]
            )
        ours, _, plain = results[op]
        print()
        headers = [op, "adds", "ns", "stage ns", "share of call", "share above floor"]
        print_table(headers, rows, left=2)
        print(
            f"  beside: the no-op C floor above {fmt_ns(plain.median)} ns (no epoch checks), "
            f"wasi-map {fmt_ns(ours.median)} ns; above this floor: {fmt_ns(total - floor)} ns"
        )


def languages(hosts: list[Host], n: int, reps: int) -> None:
    """The loop in each language, measured interleaved, and each against C."""
    if not hosts or hosts[0].name != "C":
        print("\n(no C guest to compare the languages with)")
        return
    for host in hosts:
        prepare(host)
    # Interleave the languages, rep by rep, so drift on the machine hits all alike.
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(reps):
        for op in OPS:
            for host in hosts:
                times.setdefault((host.name, op), []).extend(repeat(loop(host, op), n, 1))
    samples = {key: summarize(ts, n) for key, ts in times.items()}
    c = {op: samples[("C", op)] for op in OPS}
    print()
    print(f"the same loop from guests in each language, on wasi-map: ns per call, {reps} runs")
    print()
    rows = [
        [host.name, op, fmt_sample(samples[(host.name, op)]),
         f"{samples[(host.name, op)].median / c[op].median:.2f}x"]
        for op in OPS
        for host in hosts
    ]  # fmt: skip
    print_table(["guest", "operation", "ns per call", "vs C"], rows)
    print()
    print(f"targets (issue): Rust and C++ within {TARGET_LANGUAGE_RATIO - 1:.0%} of C")
    for host in hosts[1:]:
        for op in OPS:
            ratio = samples[(host.name, op)].median / c[op].median
            print(f"  {host.name} {op}: {verdict(ratio <= TARGET_LANGUAGE_RATIO)} ({ratio:.2f}x C)")


if __name__ == "__main__":
    sys.exit(main())
