"""What a module's `bytes` quota really bounds: process memory per byte charged.

A guest fills its quota in the cheapest-looking ways (each in a fresh child
process, so one flood's memory does not blur the next's); the table prints
the growth of the process's resident memory and of malloc's bytes in use
beside the bytes the module is charged, and their ratio. The target
(docs/abi.md, "Limits and quotas") is at most 2x. Figures only: it never
asserts.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _harness import machine, print_table, verdict  # noqa: E402

# Each export floods until QUOTA (or r rounds); returns how many it made.
FLOODS = b"""
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "delete" (func $delete (param i32 i32 i32) (result i32)))
  (import "wasi_map" "set_map" (func $set_map (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func $fresh (result i32) (drop (call $new (i32.const 0))) (i32.load (i32.const 0)))
  (func (export "chain") (result i32)
    (local $prev i32) (local $h i32) (local $n i32)
    (local.set $prev (call $fresh))
    (block $out (loop $more
      (br_if $out (call $new (i32.const 0)))
      (local.set $h (i32.load (i32.const 0)))
      (br_if $out (call $set_map (local.get $h) (i32.const 16) (i32.const 0) (local.get $prev)))
      (drop (call $close (local.get $prev)))
      (local.set $prev (local.get $h))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $more)))
    (local.get $n))
  ;; entries(keep): keys 0.. with empty values until QUOTA, then all but
  ;; every keep-th deleted (keep 1: none)
  (func (export "entries") (param $keep i32) (result i32)
    (local $h i32) (local $n i32) (local $i i32)
    (local.set $h (call $fresh))
    (block $out (loop $more
      (i32.store (i32.const 32) (local.get $n))
      (br_if $out (call $set (local.get $h) (i32.const 32) (i32.const 4) (i32.const 64)
                             (i32.const 0)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $more)))
    (block $done (loop $del
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (if (i32.rem_u (local.get $i) (local.get $keep)) (then
        (i32.store (i32.const 32) (local.get $i))
        (drop (call $delete (local.get $h) (i32.const 32) (i32.const 4)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $del)))
    (local.get $n)))
"""

CASES = [
    ("maps chained under empty keys", "chain", ()),
    ("entries with empty values", "entries", (1,)),
    ("... then every other one deleted", "entries", (2,)),
    ("... then 3 of 4 deleted", "entries", (4,)),
]


def child(export: str, args: list[int], quota: int) -> None:
    """One flood in this process; prints {"grown": bytes, "charged": bytes}."""
    from broker import Broker

    def rss() -> int:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    class MallInfo2(ctypes.Structure):  # glibc's struct mallinfo2: ten size_t
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in (
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            )
        ]

    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = MallInfo2

    def in_use() -> int:  # bytes malloc has handed out and not had back
        info = mallinfo2()
        return int(info.uordblks + info.hblkhd)

    with Broker() as b:
        b.load("flood", FLOODS, limits={"bytes": quota, "entries": 1 << 40})
        before, used_before = rss(), in_use()
        b.call(f"flood.{export}", *args)
        grown, used = rss() - before, in_use() - used_before
        charged = b.native_module("flood").usage()[0]
    print(json.dumps({"grown": grown, "used": used, "charged": charged}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 16 MiB quota (default 128 MiB)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    quota = (16 if opts.quick else 128) << 20
    if opts.child:
        child(opts.child[0], [int(a) for a in opts.child[1:]], quota)
        return
    print(f"wasi-map: process memory per byte charged, quota {quota >> 20} MiB; {machine()}")
    rows, worst = [], 0.0
    for label, export, args in CASES:
        cmd = [sys.executable, __file__, "--child", export, *map(str, args)]
        if opts.quick:
            cmd.append("--quick")
        out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        grown, used, charged = out["grown"], out["used"], out["charged"]
        ratio = used / charged if charged else float("inf")
        worst = max(worst, ratio)
        rows.append(
            [
                label,
                f"{grown / 2**20:.1f}",
                f"{used / 2**20:.1f}",
                f"{charged / 2**20:.1f}",
                f"{ratio:.2f}x",
            ]
        )
    print_table(
        [
            "flood",
            "RSS grown MiB",
            "malloc in use MiB",
            "charged MiB",
            "in use / charged (target <= 2x)",
        ],
        rows,
    )
    print(f"\ntargets (issue 9): in use / charged <= 2x: {verdict(worst <= 2)} ({worst:.2f}x)")
    print(
        "RSS is the high-water mark: after deletes the process keeps the pages for reuse "
        "(it never exceeds the peak, which the quota bounds); 'in use' is what the core holds."
    )


if __name__ == "__main__":
    main()
