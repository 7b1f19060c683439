"""Instances in parallel: one module as 1 and as 2 instances, driven from 1 and 2 threads.

Run `python benchmarks/bench_parallel.py` (add `--quick` for a smoke run).
One guest (benchmarks/guests/parallel.wat) is loaded twice in one broker:
once with `instances=1`, once with `instances=2`.  Each thread calls one
loop export a fixed number of times; a run is timed on the wall clock from
a barrier that starts every thread at once until the last one is done.
Prints throughput and ratios measured side by side; never asserts on time.
It stops with an error if a guest call is not OK, and exits 1 (after the
table) if the shared counter lost an update: those are bugs, not slow runs.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from _harness import machine, print_table, verdict

from broker import Broker, MapRef

GUEST = Path(__file__).parent / "guests" / "parallel.wat"
NAMED = "counter"  # the named map shared_loop opens, granted to both modules
COUNTER_KEY = b"hits"  # the key it increments
TARGET_RATIO = 1.8  # issue 12: 2 instances x 2 threads vs 1 x 1, private maps


@dataclass(frozen=True)
class Loop:
    """A loop export of the guest: what one iteration does, and how many are a call."""

    export: str
    what: str
    ops_per_iter: int  # wasi_map calls per iteration (the reference loop makes none: 1)
    n_full: int
    n_quick: int


PRIVATE = Loop("private_loop", "private map, set + get", 2, 100_000, 20_000)
SHARED = Loop("shared_loop", "named map, incr", 1, 200_000, 40_000)
SPIN = Loop("spin_loop", "reference: guest only, no calls", 1, 10_000_000, 2_000_000)


@dataclass(frozen=True)
class Config:
    """One run: a loop, on the module with `instances` instances, from `threads` threads."""

    loop: Loop
    instances: int
    threads: int

    @property
    def key(self) -> str:
        return f"{self.loop.export}:{self.instances}x{self.threads}"

    @property
    def module(self) -> str:
        return MODULES[self.instances]

    @property
    def label(self) -> str:
        return f"{self.loop.what}: {self.instances} inst x {self.threads} thr"

    @property
    def base(self) -> str:
        """The key of the same loop on 1 instance from 1 thread."""
        return Config(self.loop, 1, 1).key


MODULES = {1: "one", 2: "two"}  # the guest loaded with that many instances
CONFIGS = (
    Config(PRIVATE, 1, 1),
    Config(PRIVATE, 2, 2),
    Config(PRIVATE, 1, 2),  # two threads wait their turn for one instance
    Config(SHARED, 1, 1),
    Config(SHARED, 2, 2),
    Config(SHARED, 1, 2),
    Config(SPIN, 1, 1),
    Config(SPIN, 2, 2),  # what the machine gives two threads right now
)


@dataclass(frozen=True)
class Sizes:
    """How much work: `rounds` rounds of runs, each thread making `calls` calls a run."""

    rounds: int
    calls: int
    quick: bool

    def n(self, loop: Loop) -> int:
        return loop.n_quick if self.quick else loop.n_full


QUICK = Sizes(rounds=3, calls=4, quick=True)
FULL = Sizes(rounds=9, calls=20, quick=False)


def make_broker() -> Broker:
    """The guest as 1 instance ("one") and as 2 ("two"), both granted the named map."""
    broker = Broker()
    for instances, name in MODULES.items():
        broker.load(name, GUEST, instances=instances, grants={NAMED: "rw"})
    return broker


def drive(broker: Broker, target: str, threads: int, calls: int, n: int) -> float:
    """`threads` threads each call `target(n)` `calls` times; wall seconds from
    the barrier to the last thread done.  SystemExit if a call was not OK."""
    barrier = threading.Barrier(threads + 1)
    bad = [0] * threads
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            for _ in range(calls):
                result = broker.call(target, n)
                assert isinstance(result, int)
                bad[i] += result
        except BaseException as exc:  # re-raised on the main thread
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    if sum(bad):
        raise SystemExit(f"{target}: {sum(bad)} wasi_map calls were not OK (a bug, not a slow run)")
    return elapsed


def counter(ref: MapRef) -> int:
    """The shared counter as the host reads it (absent: 0)."""
    raw = ref.get(COUNTER_KEY)
    return 0 if raw is None else int.from_bytes(raw, "little", signed=True)


@dataclass
class Results:
    """Per config: ops/s of every round; lost updates of the shared runs."""

    rate: dict[str, list[float]]
    lost: dict[str, list[int]]  # per run: incr calls made - counter's growth

    @classmethod
    def empty(cls) -> Results:
        return cls({c.key: [] for c in CONFIGS}, {c.key: [] for c in CONFIGS})


def run_round(broker: Broker, ref: MapRef, sizes: Sizes, order: list[Config], out: Results) -> None:
    """Every config once, in `order`; the collector off while timing."""
    for config in order:
        loop = config.loop
        n = sizes.n(loop)
        before = counter(ref)
        gc.disable()
        try:
            seconds = drive(
                broker, f"{config.module}.{loop.export}", config.threads, sizes.calls, n
            )
        finally:
            gc.enable()
        iterations = config.threads * sizes.calls * n
        out.rate[config.key].append(iterations * loop.ops_per_iter / seconds)
        if loop is SHARED:
            out.lost[config.key].append(iterations - (counter(ref) - before))


def measure(broker: Broker, sizes: Sizes) -> Results:
    """One warm-up round (one call a thread), then `sizes.rounds` rounds, each
    starting one config later than the one before (so drift lands on all)."""
    ref = broker.open(NAMED)
    warm = Results.empty()
    run_round(broker, ref, Sizes(1, 1, sizes.quick), list(CONFIGS), warm)
    out = Results(Results.empty().rate, warm.lost)  # a lost update counts even in a warm-up
    for r in range(sizes.rounds):
        shift = r % len(CONFIGS)
        run_round(broker, ref, sizes, list(CONFIGS[shift:] + CONFIGS[:shift]), out)
    ref.close()
    return out


def paired_ratio(out: Results, key: str, base: str) -> float:
    """Median over rounds of config ÷ base within the same round."""
    return statistics.median(a / b for a, b in zip(out.rate[key], out.rate[base], strict=True))


def fmt_rate(ops: float) -> str:
    return f"{ops / 1e6:,.2f} M"


def table_row(out: Results, config: Config) -> list[str]:
    rates = out.rate[config.key]
    if config.loop is SHARED:
        lost = sum(out.lost[config.key])
        check = "no lost updates: " + ("yes" if lost == 0 else f"NO ({lost:,} lost)")
    elif config.loop is PRIVATE:
        check = "all OK"
    else:
        check = "-"
    return [
        config.label,
        fmt_rate(statistics.median(rates)),
        fmt_rate(max(rates)),
        f"{paired_ratio(out, config.key, config.base):.2f}x",
        check,
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few short runs: rough figures")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL

    broker = make_broker()
    out = measure(broker, sizes)
    handles = broker.stats()["handles"]
    broker.close()

    print(
        f"wasi-map instances in parallel: wasi_map calls per second from guest loops, "
        f"median (best) of {sizes.rounds} rounds; {machine()}, wasmtime {version('wasmtime')}"
    )
    print(
        f"each thread: {sizes.calls} calls a run of "
        + ", ".join(f"{loop.export} {sizes.n(loop):,}" for loop in (PRIVATE, SHARED, SPIN))
        + ("  [--quick: rough figures]" if args.quick else "")
    )
    print()
    headers = ["run", "ops/s median", "ops/s best", "vs 1 inst x 1 thr", "check"]
    print_table(headers, [table_row(out, config) for config in CONFIGS])
    print()
    print("ops: wasi_map calls (set and get count one each); for the reference, loop iterations")
    print("vs 1 inst x 1 thr: the median over rounds of the two runs' ratio in the same round")
    print(
        "open handles at the end (a private map and the named map in each instance that ran): "
        + ", ".join(f"{k} {v}" for k, v in handles.items())
    )
    print()
    private = paired_ratio(out, Config(PRIVATE, 2, 2).key, Config(PRIVATE, 1, 1).key)
    shared = paired_ratio(out, Config(SHARED, 2, 2).key, Config(SHARED, 1, 1).key)
    ceiling = paired_ratio(out, Config(SPIN, 2, 2).key, Config(SPIN, 1, 1).key)
    lost_any = any(x != 0 for runs in out.lost.values() for x in runs)
    print("targets (issue 12):")
    print(
        f"  private map, 2 instances x 2 threads vs 1 x 1: {private:.2f}x "
        f"(target >= {TARGET_RATIO}x): {verdict(private >= TARGET_RATIO)}"
    )
    print(
        f"  named map, incr, 2 instances x 2 threads vs 1 x 1: {shared:.2f}x (no target); "
        "the counter grew by exactly the incr calls made in every run "
        f"(no lost updates): {'yes' if not lost_any else 'NO'}"
    )
    print(
        f"  (the reference loop, which makes no calls, reached {ceiling:.2f}x on 2 instances "
        "x 2 threads in this run: what this machine gave two threads; below ~1.8x it was busy)"
    )
    if lost_any:
        sys.exit(1)


if __name__ == "__main__":
    main()
