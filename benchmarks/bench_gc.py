"""Cycle collection, teardown and the tracer's hot-path cost, beside CPython and a no-tracer build.

Run `python benchmarks/bench_gc.py` (add `--quick` for a smoke run).  Three
parts, each a table:

1. `broker.collect()` on a million unreachable maps in 2-cycles (built by a
   guest loop, benchmarks/guests/gc_bench.wat) beside CPython's
   `gc.collect()` on a million dicts in 2-cycles, one run of each in turn.
2. `broker.unload()` of a module holding a million handles (to a million
   maps, or to one map) beside CPython dropping a million references.
3. Guest loops (get, set, new+close, cross-module own and borrow calls) on
   the C core built normally, with the tracer off; built with -DWM_NO_TRACE
   (no tracer at all); with the tracer on, writing nowhere and writing a
   trace file; and with the C recorder alone.  From these, what an event
   costs in C and in Python, beside the 1 µs target.  Both builds are
   compiled at start-up from native/ into a temporary copy of the package,
   and measured in subprocesses (`--worker`) with PYTHONPATH pointing at
   the copy.

Prints figures and ratios; never asserts on time.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from _harness import (
    Sample,
    fmt_ns,
    fmt_sample,
    machine,
    print_table,
    repeat,
    summarize,
    verdict,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GUESTS = HERE / "guests"
GC_GUEST = GUESTS / "gc_bench.wat"
ABI_GUEST = GUESTS / "abi_loop.wat"
CALLER, CALLEE = GUESTS / "xmod_caller.wat", GUESTS / "xmod_callee.wat"
XMOD_DECLS = {  # as in bench_xmod.py
    "take": {"params": ["own"], "results": ["own"]},
    "peek": {"params": ["borrow"]},
    "peek_len": {"params": ["borrow"]},
}
TARGET_COLLECT_S = 1.0  # 1,000,000 maps
TARGET_COLLECT_SPREAD = 1.2  # a collection's median over its own minimum
TARGET_UNLOAD_S = 1.0  # 1,000,000 handles
TARGET_OVERHEAD_PCT = 5.0  # tracer off vs no tracer compiled in
TARGET_N = 1_000_000


def ms(ns: float) -> str:
    """Nanoseconds as milliseconds."""
    return f"{ns / 1e6:,.1f}"


def fmt_ms(s: Sample) -> str:
    """A Sample of whole-operation nanoseconds, in ms: `median (min x)`."""
    return f"{ms(s.median)} (min {ms(s.min)})"


def check(ok: bool, what: str) -> None:
    """Stop on a wrong answer: that is a bug, not a slow run."""
    if not ok:
        raise RuntimeError(what)


# --- 1. the cycle collector ------------------------------------------------------


def wasi_map_collect(n_pairs: int) -> tuple[float, float]:
    """(collect, build): ns for the whole `broker.collect()` of n_pairs garbage
    2-cycles, and for the guest loop building them; a fresh broker."""
    with _broker(gc_threshold=0) as broker:
        broker.load("garbage", GC_GUEST, limits={"entries": 1 << 22})
        start = time.perf_counter_ns()
        bad = broker.call("garbage.make_pairs", n_pairs)
        build = time.perf_counter_ns() - start
        check(bad == 0, f"make_pairs: {bad} host calls did not return OK")
        maps = broker.stats()["maps"]
        check(maps == 2 * n_pairs, f"make_pairs left {maps} maps, not {2 * n_pairs}")
        with gc_off():
            start = time.perf_counter_ns()
            freed = broker.collect()
            collect = time.perf_counter_ns() - start
        check(freed == 2 * n_pairs, f"collect() reclaimed {freed}, not {2 * n_pairs}")
        check(broker.stats()["maps"] == 0, "maps left after collect()")
    return collect, build


def cpython_collect(n_pairs: int) -> float:
    """ns for the whole `gc.collect()` finding n_pairs dict 2-cycles."""
    with gc_off():
        gc.collect()
        for _ in range(n_pairs):
            a: dict[str, Any] = {}
            b: dict[str, Any] = {}
            a["k"] = b
            b["k"] = a
        del a, b
        start = time.perf_counter_ns()
        found = gc.collect()
        elapsed = time.perf_counter_ns() - start
        check(found >= 2 * n_pairs, f"gc.collect() found {found}, not {2 * n_pairs}")
    return elapsed


def collect_side_by_side(n_pairs: int, reps: int) -> tuple[Sample, Sample, Sample]:
    """(wasi-map collect, its build, CPython collect), per run: one run of each
    in turn, the order swapped every rep, so that both meet the same machine."""
    collect, build, py_collect = [], [], []
    for rep in range(reps):
        for side in ("wasi-map", "CPython") if rep % 2 == 0 else ("CPython", "wasi-map"):
            if side == "wasi-map":
                ns, build_ns = wasi_map_collect(n_pairs)
                collect.append(ns)
                build.append(build_ns)
            else:
                py_collect.append(cpython_collect(n_pairs))
    n = 2 * n_pairs
    return summarize(collect, n), summarize(build, n), summarize(py_collect, n)


# --- 2. teardown ---------------------------------------------------------------------


def wasi_map_unload(export: str, n: int, reps: int) -> Sample:
    """ns for `broker.unload()` of a module whose guest loop `export` left n
    (+1 for clone_loop) handles open, per run; a fresh broker each run."""
    times = []
    for _ in range(reps):
        with _broker() as broker:
            broker.load("holder", GC_GUEST, limits={"handles": n + n // 10 + 16})
            bad = broker.call(f"holder.{export}", n)
            check(bad == 0, f"{export}: {bad} host calls did not return OK")
            handles = broker.stats()["handles"]["holder"]
            check(handles >= n, f"{export} left {handles} handles open, not {n}")
            with gc_off():
                start = time.perf_counter_ns()
                broker.unload("holder")
                times.append(time.perf_counter_ns() - start)
            check(broker.stats()["maps"] == 0, "maps left after unload()")
    return summarize(times, n)


def cpython_clear(make: Callable[[int], list[Any]], n: int, reps: int) -> Sample:
    """ns for `list.clear()` of a list of n references, per run."""
    times = []
    with gc_off():
        for _ in range(reps):
            refs = make(n)
            start = time.perf_counter_ns()
            refs.clear()
            times.append(time.perf_counter_ns() - start)
    return summarize(times, n)


def _broker(**kwargs: Any) -> Any:
    from broker import Broker

    return Broker(**kwargs)


@contextmanager
def gc_off() -> Iterator[None]:
    """Python's collector off inside the block (as it was after)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# --- 3. the tracer's cost on the hot path: the worker ----------------------------------


@dataclass(frozen=True)
class HotRow:
    key: str
    module: str  # which loaded module's export loops
    export: str
    label: str


HOT_ROWS = (
    HotRow("get", "abi", "get_loop", "get (abi_loop.wat), per call"),
    HotRow("set", "abi", "set_loop", "set (abi_loop.wat), per call"),
    HotRow("new_close", "gc", "new_close_loop", "new + close (gc_bench.wat), per pair"),
    HotRow("own", "caller", "own_loop", "cross-module own in, own back, per call"),
    HotRow("borrow", "caller", "borrow_loop", "cross-module borrow in, i32 back, per call"),
)
ROWS_BY_KEY = {row.key: row for row in HOT_ROWS}
EMPTY_CALLS = 200  # broker.calls per run of the "empty" command
TARGET_TRACE_NS = 1_000  # the Python tracer, per event, trace=True writing nowhere

WORKER_MODES = ("off", "on", "file", "recorder")


def worker(mode: str, warm: float) -> None:
    """Serve timing commands for the broker._wm this process imports.

    mode off: Broker(); on: Broker(trace=True) (the broker drains the events
    into the Python tracer after every call, as a user gets them; structlog
    is not configured, so they go nowhere); file: Broker(trace=FILE), the
    same writing JSON lines to a file in a temporary directory; recorder:
    the C recorder alone (Broker() plus the core's private trace switch:
    events stored in C, never taken).  Stored events (and the trace file's
    lines) are discarded untimed between runs, so memory stays flat.

    Protocol: after loading and warming up, one JSON line describing the
    build; then, per JSON line read from stdin, one JSON line back:
    {"op": "run", "row": key, "n": n, "reps": r} -> [ns per op, per run];
    {"op": "events", "row": key, "n": n} -> events recorded per op;
    {"op": "empty", "reps": r} -> [ns per broker.call of get_loop(0), per run];
    {"op": "quit"} ends the process.
    """
    from broker import Broker, _native

    # The recorder alone stores a whole run in C (the tracer asks for less: broker/tracer.py).
    recorder_limit = 1 << 22

    trace_dir = tempfile.TemporaryDirectory(prefix="bench-gc-trace-")  # mode "file" writes here
    trace_file = Path(trace_dir.name) / "trace.jsonl"
    b = Broker(trace={"on": True, "file": trace_file}.get(mode, False))
    b.load("abi", ABI_GUEST)
    b.load("gc", GC_GUEST)
    b.load("callee", CALLEE, exports=XMOD_DECLS)
    b.load("caller", CALLER)
    check(b.call("abi.setup") == 0 and b.call("caller.setup") == 0, "guest setup failed")
    check(b.call("abi.get_loop", 1) == 0 and b.call("abi.value_ok") == 1, "get is wrong")
    tracer = b.tracer  # None unless mode "on" or "file"

    def reset() -> None:
        if tracer is not None:
            tracer.clear()
            if tracer.file is not None:  # the lines were written (and flushed): drop them
                tracer.file.seek(0)
                tracer.file.truncate()
        elif mode == "recorder":
            b._native.trace(0)  # frees the stored events
            b._native.trace(recorder_limit)

    if mode == "recorder":
        b._native.trace(recorder_limit)

    def runner(row: HotRow) -> Callable[[int], None]:
        target = f"{row.module}.{row.export}"

        def run(count: int) -> None:
            bad = b.call(target, count)
            check(bad == 0, f"{target}: {bad} of {count} went wrong")

        return run

    def empty_calls(count: int) -> None:  # the fixed cost of one broker.call
        run = runner(HOT_ROWS[0])
        for _ in range(count):
            run(0)

    # The first tens of ms of a process measure slower (see bench_xmod.py).
    end = time.perf_counter() + warm
    chunk = 1_000 if tracer is not None else 20_000
    while time.perf_counter() < end:
        for row in HOT_ROWS:
            runner(row)(chunk)
            reset()

    def reply(value: object) -> None:
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()

    reply({"so": _native.core_path(), "trace_compiled": int(_native.trace_compiled())})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "run":
            reply(repeat(runner(ROWS_BY_KEY[cmd["row"]]), cmd["n"], cmd["reps"], 0, reset))
        elif cmd["op"] == "events":
            check(tracer is not None, "events: only with tracing on")
            assert tracer is not None
            runner(ROWS_BY_KEY[cmd["row"]])(cmd["n"])
            reply(tracer.total / cmd["n"])
            reset()
        elif cmd["op"] == "empty":
            reply(repeat(empty_calls, EMPTY_CALLS, cmd["reps"], 0, reset))
        else:
            break
    if mode == "recorder":
        check(b._native.events_dropped() == 0, "the recorder dropped events: lower n")
    b.close()
    trace_dir.cleanup()


# --- 3. the driver: builds and worker subprocesses ------------------------------------

BUILD_SCRIPT = """
import sys
sys.path.insert(0, "native")
from ffi_build import build_hostmap_here, make_ffi
print(make_ffi("broker._wm", sys.argv[1:]).compile(tmpdir="."))
build_hostmap_here()  # MapRef's extension, beside the variant's core
"""

VARIANTS = {"normal": [], "notrace": ["-DWM_NO_TRACE"]}


def build_variants(tmp: Path) -> dict[str, Path]:
    """Copy broker/ and native/ into tmp/<variant>/ and compile broker._wm
    there with make_ffi (the same flags as `pip install`, plus the variant's),
    broker._hostmap beside it, both variants at once; the copies' roots."""
    ignore = shutil.ignore_patterns("*.so", "_wm.c", "*.o", "__pycache__")
    procs = {}
    for variant, extra in VARIANTS.items():
        root = tmp / variant
        for pkg in ("broker", "native"):
            shutil.copytree(ROOT / pkg, root / pkg, ignore=ignore)
        procs[variant] = (
            root,
            subprocess.Popen(
                [sys.executable, "-c", BUILD_SCRIPT, *extra],
                cwd=root,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        )
    roots = {}
    for variant, (root, proc) in procs.items():
        output, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"building the {variant} C core failed:\n{output}")
        roots[variant] = root
    return roots


class Worker:
    """A worker subprocess importing broker from `root`; `ask` sends it one command."""

    def __init__(self, root: Path, mode: str, warm: float, expect_tracer: bool) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        self.label = f"{root.name} build, {mode}"
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by close()
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "bench_gc.py"), "--worker", mode, "--warm", str(warm)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        hello = self._read()
        check(
            Path(hello["so"]).resolve().is_relative_to(root.resolve()),
            f"worker imported {hello['so']}, not the build in {root}",
        )
        check(
            hello["trace_compiled"] == expect_tracer,
            f"{self.label}: wm_trace_compiled() is {hello['trace_compiled']}",
        )

    def _read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.stderr.seek(0)
            raise RuntimeError(f"worker ({self.label}) failed:\n{self.stderr.read()}")
        return json.loads(line)

    def ask(self, **cmd: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
        self.proc.stdin.close()
        status = self.proc.wait()
        self.stderr.seek(0)
        errors = self.stderr.read()
        self.stderr.close()
        check(status == 0, f"worker ({self.label}) exited {status}:\n{errors}")


@dataclass
class HotResults:
    off: dict[str, Sample]  # (a) normal build, tracer off
    notrace: dict[str, Sample]  # (b) -DWM_NO_TRACE
    overhead: dict[str, float]  # median over paired runs of (a)/(b) - 1, in %
    on: dict[str, Sample]  # (c) Broker(trace=True)
    file: dict[str, Sample]  # (d) Broker(trace=FILE): JSON lines
    recorder: dict[str, Sample]  # (c') the C recorder alone
    events_per_call: dict[str, float]
    empty_call: dict[str, Sample]  # ns per broker.call of an export doing nothing
    rounds: int
    n: int
    n_trace: int
    reps: int
    reps_trace: int


def hot_path(
    n: int, n_trace: int, reps: int, reps_trace: int, rounds: int, warm: float
) -> HotResults:
    """Build both variants.  Per round, start one (a) and one (b) worker and
    time every row `reps` times in each, alternating a b, b a, ... one run at a
    time (the idle worker waits on its stdin), so both see the same machine;
    then one (c), one (d) and one (c') worker on the normal build."""
    pooled: dict[str, dict[str, list[float]]] = {v: {r.key: [] for r in HOT_ROWS} for v in VARIANTS}
    ratios: dict[str, list[float]] = {r.key: [] for r in HOT_ROWS}
    empty_off: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-gc-") as tmp:
        roots = build_variants(Path(tmp))
        for _ in range(rounds):
            pair = {v: Worker(roots[v], "off", warm, v == "normal") for v in VARIANTS}
            for row in HOT_ROWS:
                for w in pair.values():  # a warm-up run each
                    w.ask(op="run", row=row.key, n=n, reps=1)
                for i in range(reps):
                    got = {}
                    for v in list(VARIANTS) if i % 2 == 0 else list(reversed(VARIANTS)):
                        (got[v],) = pair[v].ask(op="run", row=row.key, n=n, reps=1)
                        pooled[v][row.key].append(got[v])
                    ratios[row.key].append(got["normal"] / got["notrace"])
            empty_off += pair["normal"].ask(op="empty", reps=reps)
            for w in pair.values():
                w.close()
        traced: dict[str, dict[str, list[float]]] = {}
        empty: dict[str, list[float]] = {}
        events: dict[str, float] = {}
        for mode in ("on", "file", "recorder"):
            w = Worker(roots["normal"], mode, warm, True)
            traced[mode] = {
                r.key: w.ask(op="run", row=r.key, n=n_trace, reps=reps_trace) for r in HOT_ROWS
            }
            empty[mode] = w.ask(op="empty", reps=reps_trace)
            if mode == "on":
                events = {r.key: w.ask(op="events", row=r.key, n=n_trace) for r in HOT_ROWS}
            w.close()

    def samples(rows: dict[str, list[float]], count: int) -> dict[str, Sample]:
        return {key: summarize(times, count) for key, times in rows.items()}

    return HotResults(
        off=samples(pooled["normal"], n),
        notrace=samples(pooled["notrace"], n),
        overhead={k: (statistics.median(r) - 1) * 100 for k, r in ratios.items()},
        on=samples(traced["on"], n_trace),
        file=samples(traced["file"], n_trace),
        recorder=samples(traced["recorder"], n_trace),
        events_per_call=events,
        empty_call={
            "off": summarize(empty_off, EMPTY_CALLS),
            "on": summarize(empty["on"], EMPTY_CALLS),
            "recorder": summarize(empty["recorder"], EMPTY_CALLS),
        },
        rounds=rounds,
        n=n,
        n_trace=n_trace,
        reps=reps,
        reps_trace=reps_trace,
    )


# --- reporting ----------------------------------------------------------------------


def pct(a: float, b: float) -> str:
    return f"{(a - b) / b * 100:+.1f}%"


@dataclass(frozen=True)
class EventCosts:
    """ns per event of one row: the C recorder, the Python tracer, the tracer writing a file."""

    c: float  # (c') - (a)
    python: float  # (c) - (c')
    file: float  # (d) - (c')


def event_costs(hot: HotResults) -> dict[str, EventCosts]:
    """Per event, what each part of tracing costs, for the rows that make events."""
    out = {}
    for row in HOT_ROWS:
        events = hot.events_per_call[row.key]
        if events >= 1:
            off, rec = hot.off[row.key].median, hot.recorder[row.key].median
            on, file = hot.on[row.key].median, hot.file[row.key].median
            out[row.key] = EventCosts(
                (rec - off) / events, (on - rec) / events, (file - rec) / events
            )
    return out


def median_costs(costs: dict[str, EventCosts]) -> EventCosts:
    """The median of each figure over the rows."""
    return EventCosts(
        *(
            statistics.median(getattr(c, part) for c in costs.values())
            for part in ("c", "python", "file")
        )
    )


def print_trace_costs(hot: HotResults) -> None:
    """Where tracing's time goes: per event in C, in Python (with a file too), per call."""
    costs = event_costs(hot)
    empty = hot.empty_call
    if costs:
        print_table(
            [
                "ns per event",
                "events/op",
                "C recorder (c')-(a)",
                "Python tracer (c)-(c')",
                "with a trace file (d)-(c')",
            ],
            [
                [
                    ROWS_BY_KEY[key].label,
                    f"{hot.events_per_call[key]:.2f}",
                    fmt_ns(c.c),
                    fmt_ns(c.python),
                    fmt_ns(c.file),
                ]
                for key, c in costs.items()
            ],
        )
        mid = median_costs(costs)
        print(
            f"tracing, where the time goes (median over the rows with events): the C recorder "
            f"~{fmt_ns(mid.c)} ns per event; the Python tracer ~{fmt_ns(mid.python)} ns per "
            f"event (target <= {TARGET_TRACE_NS:,} ns: {verdict(mid.python <= TARGET_TRACE_NS)}); "
            f"writing a trace file (JSON lines) ~{fmt_ns(mid.file)} ns per event"
        )
    print(
        f"one broker.call of an export that does nothing (get_loop 0): "
        f"{fmt_ns(empty['off'].median)} ns tracer off, {fmt_ns(empty['recorder'].median)} ns "
        f"C recorder on, {fmt_ns(empty['on'].median)} ns Broker(trace=True) (its drain after "
        f"every call); over {hot.n_trace:,} ops that is "
        f"{fmt_ns((empty['on'].median - empty['off'].median) / hot.n_trace)} ns per op of (c)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny N: a smoke run, rough figures")
    parser.add_argument("--worker", choices=WORKER_MODES, help=argparse.SUPPRESS)
    parser.add_argument("--warm", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.warm)
        return

    if args.quick:
        n_maps, gc_reps = 20_000, 1
        hot_n, hot_n_trace, hot_reps, reps_trace, rounds, warm = 20_000, 2_000, 3, 3, 1, 0.05
    else:
        n_maps, gc_reps = TARGET_N, 5
        hot_n, hot_n_trace, hot_reps, reps_trace, rounds, warm = 500_000, 20_000, 4, 5, 6, 0.5

    collect, build, py_collect = collect_side_by_side(n_maps // 2, gc_reps)
    unload_new = wasi_map_unload("new_loop", n_maps, gc_reps)
    unload_clone = wasi_map_unload("clone_loop", n_maps, gc_reps)
    py_clear_new = cpython_clear(lambda k: [{} for _ in range(k)], n_maps, gc_reps)
    py_clear_one = cpython_clear(lambda k: [{}] * k, n_maps, gc_reps)
    hot = hot_path(hot_n, hot_n_trace, hot_reps, reps_trace, rounds, warm)

    quick = "  [--quick: rough figures, smaller N]" if args.quick else ""
    print(
        f"wasi-map cycle collector, teardown and tracer cost; {machine()}, "
        f"wasmtime {version('wasmtime')}{quick}"
    )
    print()
    print(
        f"1. cycle collection: {n_maps:,} unreachable maps in {n_maps // 2:,} 2-cycles "
        "(every handle closed, Broker(gc_threshold=0)), time of broker.collect() alone; "
        f"CPython: gc.collect() alone on {n_maps:,} dicts in 2-cycles (gc off while "
        f"building); median (min) of {gc_reps} runs each, taking turns"
    )
    print()
    print_table(
        [
            "collection",
            "wasi-map ms",
            "ns/map",
            "median/min",
            "CPython gc ms",
            "ns/dict",
            "median/min",
            "wasi-map/CPython",
        ],
        [
            [
                f"{n_maps:,} in 2-cycles",
                fmt_ms(collect),
                fmt_ns(collect.median / n_maps),
                f"{collect.median / collect.min:.2f}",
                fmt_ms(py_collect),
                fmt_ns(py_collect.median / n_maps),
                f"{py_collect.median / py_collect.min:.2f}",
                f"{collect.median / py_collect.median:.2f}x",
            ]
        ],
    )
    print(
        f"(building the garbage in the guest, make_pairs: {fmt_ms(build)} ms, "
        f"{fmt_ns(build.median / (3 * n_maps))} ns per host call: new, set_map, close per map)"
    )
    print()
    print(
        f"2. teardown: broker.unload() of a module holding {n_maps:,} handles "
        "(limits handles n + 10%); CPython: list.clear() dropping as many references; "
        f"median (min) of {gc_reps} runs"
    )
    print()
    print_table(
        [
            "module's handles",
            "unload ms",
            "ns/handle",
            "CPython clear ms",
            "ns/ref",
            "wasi-map/CPython",
        ],
        [
            [
                f"{n_maps:,} to {n_maps:,} maps (new)",
                fmt_ms(unload_new),
                fmt_ns(unload_new.median / n_maps),
                fmt_ms(py_clear_new),
                fmt_ns(py_clear_new.median / n_maps),
                f"{unload_new.median / py_clear_new.median:.2f}x",
            ],
            [
                f"{n_maps + 1:,} to one map (clone)",
                fmt_ms(unload_clone),
                fmt_ns(unload_clone.median / n_maps),
                fmt_ms(py_clear_one),
                fmt_ns(py_clear_one.median / n_maps),
                f"{unload_clone.median / py_clear_one.median:.2f}x",
            ],
        ],
    )
    print()
    print(
        f"3. the tracer on the hot path: ns per guest operation, median (min); (a) and (b): "
        f"{hot.rounds} pair(s) of worker processes, {hot.reps} runs of {hot.n:,} each, "
        f"taking turns run by run; (c) and (c'): {hot.reps_trace} runs of {hot.n_trace:,}"
    )
    print(
        "(a) the normal build, tracer off   (b) built with -DWM_NO_TRACE   "
        "(c) Broker(trace=True): events drained into Python after each call, "
        "structlog unconfigured   (d) Broker(trace=FILE): the same, writing JSON lines   "
        "(c') the C recorder alone, events never taken"
    )
    print()
    rows = []
    for row in HOT_ROWS:
        a, b = hot.off[row.key], hot.notrace[row.key]
        rows.append(
            [
                row.label,
                fmt_sample(a),
                fmt_sample(b),
                f"{hot.overhead[row.key]:+.1f}% (min {pct(a.min, b.min)})",
                fmt_sample(hot.on[row.key]),
                fmt_sample(hot.file[row.key]),
                fmt_sample(hot.recorder[row.key]),
                f"{hot.events_per_call[row.key]:.2f}",
            ]
        )
    print_table(
        [
            "guest loop",
            "(a) tracer off ns",
            "(b) no tracer ns",
            "(a) vs (b), paired",
            "(c) tracing ns",
            "(d) trace file ns",
            "(c') recorder ns",
            "events/op",
        ],
        rows,
    )
    print()
    print_trace_costs(hot)
    print()
    print("targets (issue):" + ("  [--quick: smaller N than the targets name]" if quick else ""))
    print(
        f"  collect {n_maps:,} maps <= {TARGET_COLLECT_S:.0f} s: "
        f"{verdict(collect.median <= TARGET_COLLECT_S * 1e9)} ({collect.median / 1e9:.3f} s)"
    )
    print(
        f"  collect {n_maps:,} maps, median <= CPython gc.collect()'s median: "
        f"{verdict(collect.median <= py_collect.median)} "
        f"({ms(collect.median)} ms vs {ms(py_collect.median)} ms)"
    )
    print(
        f"  collect {n_maps:,} maps, median <= {TARGET_COLLECT_SPREAD}x its own min: "
        f"{verdict(collect.median <= TARGET_COLLECT_SPREAD * collect.min)} "
        f"({collect.median / collect.min:.2f}x: {ms(collect.median)} ms over {ms(collect.min)} ms)"
    )
    for label, s in (("new", unload_new), ("clone", unload_clone)):
        print(
            f"  unload {n_maps:,} handles ({label}) <= {TARGET_UNLOAD_S:.0f} s: "
            f"{verdict(s.median <= TARGET_UNLOAD_S * 1e9)} ({s.median / 1e9:.3f} s)"
        )
    for row in HOT_ROWS:
        over = hot.overhead[row.key]
        print(
            f"  {row.key}: tracer-off overhead <= {TARGET_OVERHEAD_PCT:.0f}%: "
            f"{verdict(over <= TARGET_OVERHEAD_PCT)} ({over:+.1f}%)"
        )
    costs = event_costs(hot)
    if costs:
        mid = median_costs(costs)
        print(
            f"  Python tracer <= {TARGET_TRACE_NS:,} ns per event (Broker(trace=True), median "
            f"over the rows with events): {verdict(mid.python <= TARGET_TRACE_NS)} "
            f"({fmt_ns(mid.python)} ns; with a trace file {fmt_ns(mid.file)} ns, no target)"
        )


if __name__ == "__main__":
    sys.exit(main())
