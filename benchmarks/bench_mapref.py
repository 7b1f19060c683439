"""The host's MapRef on the memory store beside a dict and beside a cffi call that does nothing.

Run `python benchmarks/bench_mapref.py` (add `--quick` for a smoke run).
For each of `m[k]`, `m[k] = v`, `k in m` and `len(m)` it times, in one
run and taking turns repetition by repetition:
- a dict (the target is at most 10x it);
- a MapRef, whose operations are answered in C (native/hostmap.c);
- the same operation by MapRef's Python way (`_get`, `_setitem`, ...):
  what every case the C path hands back costs, and what every operation
  cost before it;
- a plain cffi call into a C function that does nothing: what any call
  from Python into the core through cffi costs at least.
Each figure includes the timing loop's own few ns, alike for all.  Prints
figures and ratios; never asserts on time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from importlib.metadata import version
from typing import Any

from _cfloor import compile_cffi
from _harness import Sample, fmt_ns, fmt_sample, machine, print_table, summarize, verdict

from broker import Broker

KEY, VALUE = b"user:000042", b"x" * 64  # an 11-byte key, a 64-byte value
TARGET_RATIO = 10.0  # MapRef / dict, median
# What each contender runs per operation, by operation: dict, MapRef, Python way.
OPS: dict[str, tuple[str, str, str]] = {
    "get  m[k]": ("d[k]", "m[k]", "m._get(k)"),
    "set  m[k] = v": ("d[k] = v", "m[k] = v", "m._setitem(k, v)"),
    "in   k in m": ("k in d", "k in m", "m._contains(k)"),
    "len  len(m)": ("len(d)", "len(m)", "m._len()"),
}
COLUMNS = ("dict", "MapRef", "Python way", "cffi no-op")
Timers = dict[str, list[timeit.Timer]]  # by operation: one per contender, in COLUMNS order


def noop_lib() -> Any:
    """A cffi extension with one C function that does nothing."""
    _, lib = compile_cffi("wm_bench_noop", "void noop(void);", "void noop(void) {}")
    return lib


def timers(m: Any, lib: Any) -> Timers:
    """One Timer per contender, per operation, over the same key and value."""
    names = {"d": {KEY: VALUE}, "m": m, "k": KEY, "v": VALUE, "noop": lib.noop}
    return {
        op: [timeit.Timer(stmt, globals=names) for stmt in (*stmts, "noop()")]
        for op, stmts in OPS.items()
    }


def measure(all_timers: Timers, n: int, reps: int) -> dict[str, list[Sample]]:
    """ns per operation, median and min over `reps`; contenders take turns each rep."""
    times: dict[str, list[list[float]]] = {op: [[] for _ in COLUMNS] for op in all_timers}
    for row in all_timers.values():
        for timer in row:
            timer.timeit(n // 10)  # warm-up
    for _ in range(reps):
        for op, row in all_timers.items():
            for i, timer in enumerate(row):
                times[op][i].append(timer.timeit(n) / n * 1e9)  # timeit turns gc off
    return {op: [summarize(t, n) for t in per] for op, per in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny N: a smoke run, rough figures")
    args = parser.parse_args(argv)
    n, reps = (20_000, 3) if args.quick else (500_000, 9)

    with Broker() as broker, broker.new_map() as m:
        m[KEY] = VALUE
        results = measure(timers(m, noop_lib()), n, reps)
        assert m[KEY] == VALUE and len(m) == 1

    print(
        f"wasi-map host MapRef on the memory store: ns per operation, median (min) of {reps} "
        f"runs of {n:,}, contenders taking turns; {len(KEY)}-byte key, {len(VALUE)}-byte value; "
        f"{machine()}, wasmtime {version('wasmtime')}" + ("  [--quick]" if args.quick else "")
    )
    print()
    rows = []
    for op, (d, ref, slow, noop) in results.items():
        rows.append(
            [
                op,
                fmt_sample(d),
                fmt_sample(ref),
                f"{ref.median / d.median:.1f}x",
                fmt_sample(slow),
                f"{slow.median / ref.median:.1f}x",
                fmt_sample(noop),
                f"{ref.median / noop.median:.2f}x",
            ]
        )
    print_table(
        [
            "operation",
            "dict ns",
            "MapRef ns",
            "MapRef/dict",
            "Python way ns",
            "Python way/MapRef",
            "cffi no-op ns",
            "MapRef/no-op",
        ],
        rows,
    )
    print()
    print("targets (issue):")
    for op, (d, ref, _, _) in results.items():
        ratio = ref.median / d.median
        print(
            f"  {op.split()[0]}: MapRef <= {TARGET_RATIO:.0f}x dict: "
            f"{verdict(ratio <= TARGET_RATIO)} ({ratio:.1f}x, {fmt_ns(ref.median)} ns)"
        )
    worst = max(results.values(), key=lambda r: r[1].median / r[3].median)
    print(
        f"(the cffi no-op is what one call through cffi costs; the MapRef's operations take "
        f"{statistics.median(r[1].median / r[3].median for r in results.values()):.2f}x it, "
        f"median over the four, {worst[1].median / worst[3].median:.2f}x at most)"
    )


if __name__ == "__main__":
    sys.exit(main())
