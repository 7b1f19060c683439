"""Many processes count hits into one store at once; the counts must add up.

    python swarm.py STORE_URL [-p PROCESSES] [-n HITS] [--pages PAGES] [--seed SEED]

STORE_URL is `sqlite:PATH` (a relative path is relative to the working
directory) or `redis://HOST:PORT/DB`.  The script resets the named map
"hits" (counter.reset), starts PROCESSES worker processes, each with its own
Broker loading counter.wasm against STORE_URL; at a common start line each
races once for the leader post (counter.claim) and then calls counter.hit
HITS times on pseudo-random pages.  Afterwards it checks, from a fresh read
of the store, that every page's count is what the workers counted, that
report(PAGES) == total() == the hits that succeeded, and that exactly one
worker won the claim.  It prints one line; the exit status is 0 when all
holds, 1 on a mismatch or a failed worker, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import queue
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier
from pathlib import Path

from broker import Broker

HERE = Path(__file__).resolve().parent
WASM = HERE / "counter.wasm"
GRANTS = {"hits": "rw"}
STORE_FAILED = -13  # what counter's exports return when the store answers IO
START_TIMEOUT_S = 120.0  # how long the workers may take to load before giving up


@dataclass
class WorkerResult:
    """What one worker did: its hits per page, failures, and the claim's outcome."""

    index: int
    counts: list[int] = field(default_factory=list)
    failures: int = 0  # hit() calls that returned STORE_FAILED
    leader: int | None = None  # what claim() returned (STORE_FAILED on IO)
    error: str | None = None  # why the worker stopped early


def counter(url: str) -> Broker:
    """A broker on `url` with counter.wasm loaded as module "counter"."""
    broker = Broker(store=url)
    try:
        broker.load("counter", WASM, grants=GRANTS)
    except BaseException:
        broker.close()
        raise
    return broker


def work(
    url: str,
    index: int,
    hits: int,
    pages: int,
    seed: int,
    start: Barrier,
    results: mp.Queue[WorkerResult],
) -> None:
    """One worker process: load, wait at the start line, claim, hit."""
    result = WorkerResult(index, [0] * pages)
    try:
        with counter(url) as b:
            start.wait(START_TIMEOUT_S)
            result.leader = b.call("counter.claim", index)
            rng = random.Random(seed * 1_000_003 + index)
            for _ in range(hits):
                page = rng.randrange(pages)
                if b.call("counter.hit", page) == STORE_FAILED:
                    result.failures += 1
                else:
                    result.counts[page] += 1
    except threading.BrokenBarrierError:
        result.error = "another worker failed before the start"
    except Exception as exc:  # reported by the parent, which exits 1
        start.abort()
        result.error = f"{type(exc).__name__}: {exc}"
    results.put(result)


@dataclass
class Verdict:
    """What the store holds after the run, and every way it disagrees with the workers."""

    total: int
    report: int
    problems: list[str]


def check(b: Broker, workers: list[WorkerResult], pages: int) -> Verdict:
    """Read the store back (per page, total, report, leader) and compare."""
    counted = [sum(w.counts[page] for w in workers) for page in range(pages)]
    stored = [b.call("counter.hits", page) for page in range(pages)]
    total, report = b.call("counter.total"), b.call("counter.report", pages)
    leader = b.call("counter.leader")
    if STORE_FAILED in (*stored, total, report, leader):
        return Verdict(total, report, ["the store failed (IO) while the results were read"])
    problems = []
    wrong = [p for p in range(pages) if stored[p] != counted[p]]
    if wrong:
        p = wrong[0]
        problems.append(
            f"{len(wrong)} pages miscounted (page {p}: stored {stored[p]}, counted {counted[p]})"
        )
    if not total == report == sum(counted):
        problems.append(f"total {total}, report {report}, successful hits {sum(counted)}")
    winners = [w.index for w in workers if w.leader == w.index]
    if len(winners) != 1 or leader != winners[0]:
        problems.append(f"claim winners {winners}, leader in the store {leader}")
    return Verdict(total, report, problems)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", help="sqlite:PATH or redis://HOST:PORT/DB")
    parser.add_argument("-p", "--processes", type=int, default=4, help="workers (default 4)")
    parser.add_argument("-n", "--hits", type=int, default=250, help="hits per worker (250)")
    parser.add_argument("--pages", type=int, default=16, help="pages 0..PAGES-1 (16)")
    parser.add_argument("--seed", type=int, default=1, help="of the pseudo-random pages (1)")
    args = parser.parse_args(argv)
    if args.processes < 1 or args.hits < 0 or not 1 <= args.pages <= 4096:
        parser.error("need PROCESSES >= 1, HITS >= 0 and 1 <= PAGES <= 4096")
    if not args.url.startswith(("sqlite:", "redis://")):
        parser.error(f"STORE_URL must be sqlite:PATH or redis://HOST:PORT/DB, not {args.url!r}")
    if not WASM.exists():
        parser.error(f"{WASM} is missing: run {HERE / 'build.sh'} first")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    url, procs, pages = args.url, args.processes, args.pages
    with counter(url) as b:
        if b.call("counter.reset", pages) == STORE_FAILED:
            print(f"swarm: {url}: the store failed (IO) on reset; is it up?", file=sys.stderr)
            return 1

        # spawn, not fork: each worker starts a fresh interpreter and its own broker.
        ctx = mp.get_context("spawn")
        start = ctx.Barrier(procs + 1)
        results: mp.Queue[WorkerResult] = ctx.Queue()
        workers = [
            ctx.Process(target=work, args=(url, i, args.hits, pages, args.seed, start, results))
            for i in range(procs)
        ]
        for w in workers:
            w.start()
        with contextlib.suppress(threading.BrokenBarrierError):
            start.wait(START_TIMEOUT_S)  # broken: a worker failed to load; its result says why
        began = time.perf_counter()
        done: list[WorkerResult] = []
        while len(done) < procs:
            try:
                done.append(results.get(timeout=1.0))
            except queue.Empty:
                if not any(w.is_alive() for w in workers) and results.empty():
                    break  # a worker died without a word
        seconds = time.perf_counter() - began
        for w in workers:
            w.join()

        errors = [f"worker {r.index}: {r.error}" for r in done if r.error]
        if len(done) < procs:
            errors.append(f"{procs - len(done)} workers exited without a result")
        if errors:
            print(f"swarm: {url}: FAILED: {'; '.join(errors)}", file=sys.stderr)
            return 1
        done.sort(key=lambda r: r.index)
        verdict = check(b, done, pages)

    failures = sum(r.failures for r in done)
    winner = next((r.index for r in done if r.leader == r.index), None)
    counted = procs * args.hits - failures
    rate = counted / seconds if seconds > 0 else float("inf")
    print(
        f"swarm: {url}: {procs} processes x {args.hits} hits on {pages} pages: "
        f"total {verdict.total}, report {verdict.report}, "
        f"{failures} store failures, leader {winner}; "
        f"{seconds:.2f} s, {rate:,.0f} hits/s: {'MISMATCH' if verdict.problems else 'OK'}"
    )
    for problem in verdict.problems:
        print(f"swarm: {problem}", file=sys.stderr)
    if verdict.problems and failures:
        print(
            "swarm: a hit that answered IO may still have counted: the server can apply a "
            "write and fail to reply (docs/stores.md, the one case where IO does not mean "
            '"did not happen")',
            file=sys.stderr,
        )
    return 1 if verdict.problems else 0


if __name__ == "__main__":
    sys.exit(main())
