"""Host functions: wasi-map's `Broker.define` beside wasmtime-py's `Linker.define_func`.

Run `python benchmarks/bench_hostfn.py` (add `--quick` for a smoke run).
One guest calls the imported `env.tick(i32) -> i32` n times in a loop
*inside the guest*; one export call is timed per repetition, so the
figure is the cost of one guest-to-Python call and back.  Rows: a plain
i32 through wasi-map's C link and its one `extern "Python"` dispatcher;
the same with a map handle passed as `borrow` (a MapRef made and ended per
call); wasmtime-py's public host function, with and without the caller.
Prints figures and ratios; never asserts on time.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import wasmtime
from _harness import Sample, fmt_sample, machine, measure, print_table

from broker import Broker

GUEST = """
(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (param $n i32) (result i32) (local $acc i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $acc (i32.add (local.get $acc) (call $tick (local.get $n))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $acc))
  ;; a map to lend: run it once, then pass its handle to `run`
  (func (export "make") (result i32) (drop (call $new (i32.const 0))) (i32.load (i32.const 0))))
"""

# The borrow row: `tick` lends the handle it is given (the loop passes n,
# so a second guest passes its one handle every time instead).
BORROW_GUEST = (
    GUEST.replace("(call $tick (local.get $n))", "(call $tick (global.get $h))")
    .replace("(memory", "(global $h (mut i32) (i32.const 0))\n  (memory")
    .replace(
        "(i32.load (i32.const 0))))", "(global.set $h (i32.load (i32.const 0))) (global.get $h)))"
    )
)


def wasi_map_row(kind: str) -> Callable[[int], object]:
    broker = Broker()
    if kind == "i32":
        broker.define("env", "tick", lambda caller, x: 1, params=["i32"], results=["i32"])
        broker.load("g", GUEST.encode())
    else:
        broker.define("env", "tick", lambda caller, ref: 1, params=["borrow"], results=["i32"])
        broker.load("g", BORROW_GUEST.encode())
        broker.call("g.make")
    return lambda n: broker.call("g.run", n)


def wasmtime_row(access_caller: bool) -> Callable[[int], object]:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    i32 = wasmtime.ValType.i32()
    fn: Any = (lambda caller, x: 1) if access_caller else (lambda x: 1)
    linker.define_func("env", "tick", wasmtime.FuncType([i32], [i32]), fn, access_caller)
    linker.define_func("wasi_map", "new", wasmtime.FuncType([i32], [i32]), lambda p: 0)
    instance = linker.instantiate(store, wasmtime.Module(engine, GUEST))
    run = instance.exports(store)["run"]
    assert isinstance(run, wasmtime.Func)
    return lambda n: run(store, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few calls")
    args = parser.parse_args()
    n, reps = (200, 3) if args.quick else (20_000, 7)
    print(f"{machine()}; wasmtime-py {version('wasmtime')}; {n} calls x {reps} repetitions")
    rows: list[tuple[str, Sample]] = [
        ("wasi-map Broker.define, i32 -> i32", measure(wasi_map_row("i32"), n, reps)),
        ("wasi-map Broker.define, borrow -> i32", measure(wasi_map_row("borrow"), n, reps)),
        ("wasmtime-py Linker.define_func, i32 -> i32", measure(wasmtime_row(False), n, reps)),
        ("wasmtime-py define_func + caller", measure(wasmtime_row(True), n, reps)),
    ]
    base = rows[2][1].median
    print_table(
        ["host function call from a guest", "ns/call (median, min)", "vs define_func"],
        [(label, fmt_sample(s), f"{base / s.median:.1f}x faster") for label, s in rows],
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
