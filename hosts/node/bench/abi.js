#!/usr/bin/env node
// bench/abi.js: the Node host's cost per call, as a table of figures and ratios; never asserts on time.
//
//   node bench/abi.js [--quick] [--json] [--time-ms N]
//
// Every figure is one guest export that loops n times *inside the guest*
// over one import, timed whole and divided by n; the median of several
// runs.  Rows:
//   get, set          benchmarks/guests/abi_loop.wat's get_loop/set_loop
//                     (a 16-byte key, a 64-byte value): the wasi_map ABI
//   xmod plain/own/borrow
//                     benchmarks/guests/xmod_caller.wat looping over an
//                     import of xmod_callee.wat's export, declared as
//                     benchmarks/bench_xmod.py declares them (take: own in,
//                     own back; peek: borrow; plain: no handles)
//   direct            the same loop calling a function of its own module
//                     (wasm -> wasm, no host in between)
//   no-op JS import   a loop over an import that is a JS function doing
//                     nothing: the floor of any host call on V8
// Every module has the broker's default time limit (10,000 ms), so its code
// carries the time-limit checks (src/deadline.js); `--time-ms 0` loads
// them without (no limit), to see what the checks cost.  The first module
// with a limit loads binaryen, whose own code V8 then optimizes in the
// background for about half a second of CPU: each broker waits a second
// after its loads, so that the figures are the guests', not that.
// The Python host's figures: benchmarks/bench_abi.py and bench_xmod.py.

import path from "node:path";
import { fileURLToPath } from "node:url";
import { Broker } from "../src/index.js";
import { readModule } from "../src/wasm.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const GUESTS = path.join(REPO, "benchmarks/guests");
const quick = process.argv.includes("--quick");
const N = quick ? 20_000 : 500_000;
const RUNS = quick ? 3 : 9;
const at = process.argv.indexOf("--time-ms");
const LIMITS = at > 0 ? { time_ms: Number(process.argv[at + 1]) } : {};

const DECLS = {
  take: { params: ["own"], results: ["own"] },
  peek: { params: ["borrow"] },
  peek_len: { params: ["borrow"] },
};

const NOOP_WAT = `(module
  (import "env" "noop" (func $noop (param i32) (result i32)))
  (func (export "loop") (param $n i32) (result i32)
    (local $bad i32)
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $bad (i32.add (local.get $bad) (i32.ne (local.get $n) (call $noop (local.get $n)))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $bad)))`;

/** A second for V8's background compiling (of binaryen, after a load) to end. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 1000));

/** ns per call of `run(n)`: the median of RUNS timed runs (after one warm-up). @param {(n: number) => unknown} run */
function measure(run) {
  run(Math.min(N, 10_000));
  const times = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    const bad = run(N);
    const t1 = process.hrtime.bigint();
    if (bad !== 0) throw new Error(`a loop reported ${String(bad)} failed calls`);
    times.push(Number(t1 - t0) / N);
  }
  times.sort((a, b) => a - b);
  return { median: times[times.length >> 1], min: times[0], max: times[times.length - 1] };
}

async function main() {
  /** @type {Array<[string, {median: number, min: number, max: number}]>} */
  const rows = [];

  const noopBytes = (await readModule(new TextEncoder().encode(NOOP_WAT), "noop")).bytes;
  const noop = new WebAssembly.Instance(new WebAssembly.Module(noopBytes), { env: { noop: (/** @type {number} */ x) => x } });
  const floor = measure((n) => /** @type {Function} */ (noop.exports.loop)(n));
  rows.push(["no-op JS import (floor)", floor]);

  const abi = new Broker({ limits: LIMITS });
  await abi.load("d", path.join(GUESTS, "abi_loop.wat"));
  if (abi.call("d.setup") !== 0) throw new Error("abi_loop setup failed");
  await settle();
  rows.push(["wasi_map.get (16 B key, 64 B value)", measure((n) => abi.call("d.get_loop", n))]);
  rows.push(["wasi_map.set (16 B key, 64 B value)", measure((n) => abi.call("d.set_loop", n))]);
  if (abi.call("d.value_ok") !== 1) throw new Error("get did not read the value back");
  abi.close();

  const xmod = new Broker({ limits: LIMITS });
  await xmod.load("callee", path.join(GUESTS, "xmod_callee.wat"), { exports: DECLS });
  await xmod.load("caller", path.join(GUESTS, "xmod_caller.wat"));
  if (xmod.call("caller.setup") !== 0) throw new Error("xmod setup failed");
  await settle();
  rows.push(["xmod plain (i32 in, i32 back)", measure((n) => xmod.call("caller.plain_loop", n))]);
  rows.push(["xmod own in, own back (take)", measure((n) => xmod.call("caller.own_loop", n))]);
  rows.push(["xmod borrow in, i32 back (peek)", measure((n) => xmod.call("caller.borrow_loop", n))]);
  rows.push(["xmod borrow, callee calls len (peek_len)", measure((n) => xmod.call("caller.len_loop", n))]);
  rows.push(["direct wasm->wasm call", measure((n) => xmod.call("caller.direct_loop", n))]);
  xmod.close();

  if (process.argv.includes("--json")) {
    // For benchmarks/bench_hosts.py: each row's median, min and max, ns per call.
    console.log(JSON.stringify(Object.fromEntries(rows)));
    return;
  }
  const width = Math.max(...rows.map(([name]) => name.length));
  const limit = LIMITS.time_ms === undefined ? "the default time limit" : LIMITS.time_ms ? `time_ms = ${LIMITS.time_ms}` : "no time limit";
  console.log(`Node ${process.version}, ${N.toLocaleString("en")} calls a run, median of ${RUNS} runs, ${limit}${quick ? " (--quick: rough)" : ""}`);
  console.log(`${"call".padEnd(width)}  ${"ns/call".padStart(8)}  ${"min..max".padStart(13)}  ${"x floor".padStart(7)}`);
  for (const [name, s] of rows) {
    const range = `${s.min.toFixed(1)}..${s.max.toFixed(1)}`;
    console.log(`${name.padEnd(width)}  ${s.median.toFixed(1).padStart(8)}  ${range.padStart(13)}  ${(s.median / floor.median).toFixed(1).padStart(7)}`);
  }
}

await main();
