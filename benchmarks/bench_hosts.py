"""The Node.js host beside the Python host: the same guests, the same calls, one run.

Run `python benchmarks/bench_hosts.py` (add `--quick` for a smoke run).  The
Python host's figures are measured here (benchmarks/guests/abi_loop.wat's
get/set loops, xmod_caller.wat's loops over xmod_callee.wat's exports); the
Node host's by `node hosts/node/bench/abi.js --json`, run right after, with
the same guests and loop lengths.  Each host is shown against its own floor:
a no-op C host function for the Python host (bench_abi.py's), a no-op
JavaScript import for Node.  Prints figures and ratios; never asserts.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from _harness import Sample, fmt_sample, machine, measure, print_table
from bench_abi import loop, noop_c_host, prepare, wasi_map_host
from bench_xmod import ROWS, runner, wasi_map_world

NODE_BENCH = Path(__file__).resolve().parents[1] / "hosts" / "node" / "bench" / "abi.js"
# The Node bench's row names, for each row here.
NODE_ROWS = {
    "floor": "no-op JS import (floor)",
    "get": "wasi_map.get (16 B key, 64 B value)",
    "set": "wasi_map.set (16 B key, 64 B value)",
    "plain": "xmod plain (i32 in, i32 back)",
    "own": "xmod own in, own back (take)",
    "borrow": "xmod borrow in, i32 back (peek)",
    "borrow_len": "xmod borrow, callee calls len (peek_len)",
    "direct": "direct wasm->wasm call",
}
LABELS = {
    "floor": "floor: a no-op host function",
    "get": "guest get (16 B key, 64 B value)",
    "set": "guest set",
    "plain": "cross-module call, no handles",
    "own": "cross-module, own in and out",
    "borrow": "cross-module, borrow",
    "borrow_len": "cross-module, borrow + len",
    "direct": "wasm -> wasm inside a module",
}


def python_host(n: int, reps: int) -> dict[str, Sample]:
    """The Python host's figures for every row."""
    figures = {}
    hosts = {"get": wasi_map_host(), "set": wasi_map_host(), "floor": noop_c_host()}
    for op, host in hosts.items():
        prepare(host)
        figures[op] = measure(loop(host, "get" if op == "floor" else op), n, reps)
    world = wasi_map_world()
    for row in ROWS:
        figures[row.key] = measure(runner(world, row), n, reps)
    return figures


def node_host(quick: bool) -> dict[str, float] | str:
    """The Node host's medians by row, or why there are none."""
    node = shutil.which("node")
    if node is None:
        return "no node on PATH"
    if not (NODE_BENCH.parent.parent / "node_modules").is_dir():
        return "hosts/node has no node_modules: run `npm ci` there"
    argv = [node, str(NODE_BENCH), "--json", *(["--quick"] if quick else [])]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    if done.returncode:
        return f"the Node bench failed: {done.stderr.strip().splitlines()[-1:]}"
    rows = json.loads(done.stdout)
    return {key: float(rows[name]["median"]) for key, name in NODE_ROWS.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short loops: rough figures")
    args = parser.parse_args(argv)
    n, reps = (20_000, 3) if args.quick else (500_000, 9)
    py = python_host(n, reps)
    node = node_host(args.quick)
    print(f"ns per call, median (min) of {reps} runs of {n:,} calls; {machine()}")
    if isinstance(node, str):
        print(f"(the Node host is left out: {node})")
    print()
    headers = [
        "call",
        "Python host ns",
        "x its floor",
        "Node host ns",
        "x its floor",
        "Node/Python",
    ]
    rows = []
    for key, label in LABELS.items():
        ours = py[key]
        row = [label, fmt_sample(ours), f"{ours.median / py['floor'].median:.1f}x"]
        if isinstance(node, dict):
            theirs = node[key]
            row += [
                f"{theirs:.1f}",
                f"{theirs / node['floor']:.1f}x",
                f"{theirs / ours.median:.2f}x",
            ]
        else:
            row += ["-", "-", "-"]
        rows.append(row)
    print_table(headers, rows)


if __name__ == "__main__":
    sys.exit(main())
