"""Timing and table printing shared by the benchmark scripts (figures only, never asserts)."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """Nanoseconds per operation over several repetitions."""

    median: float
    min: float
    n: int  # operations per repetition
    reps: int


def repeat(
    run: Callable[[int], object],
    n: int,
    reps: int,
    warmup: int = 1,
    between: Callable[[], object] | None = None,
) -> list[float]:
    """Time `run(n)` (which performs n operations) `reps` times; ns per operation, each run.

    The collector is off while timing, as in `timeit`, so a pause it takes
    does not land in one repetition.  `between()`, if given, runs untimed
    after every run (the warm-up included): to reset state that would grow.
    """
    for _ in range(warmup):
        run(n)
        if between is not None:
            between()
    times = []
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(reps):
            start = time.perf_counter_ns()
            run(n)
            times.append((time.perf_counter_ns() - start) / n)
            if between is not None:
                between()
    finally:
        if was_enabled:
            gc.enable()
    return times


def summarize(times: Sequence[float], n: int) -> Sample:
    """Median and minimum of per-run figures (from `repeat`, possibly pooled)."""
    return Sample(statistics.median(times), min(times), n, len(times))


def measure(run: Callable[[int], object], n: int, reps: int, warmup: int = 1) -> Sample:
    """`repeat` summarized: median and minimum ns per operation."""
    return summarize(repeat(run, n, reps, warmup), n)


def fmt_ns(ns: float) -> str:
    """A figure in ns with as many decimals as are worth reading."""
    return f"{ns:,.1f}" if ns < 1000 else f"{ns:,.0f}"


def fmt_sample(s: Sample) -> str:
    """`median (min x)`."""
    return f"{fmt_ns(s.median)} (min {fmt_ns(s.min)})"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> None:
    """A plain-text table: the first `left` columns left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        out = [
            str(c).ljust(w) if i < left else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return " | ".join(out)

    print(line(headers))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def machine() -> str:
    """One line naming what the figures were measured on."""
    return (
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} cores"
    )
