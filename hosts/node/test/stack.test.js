// stack.test.js: ABI calls and passes cut off by V8's stack limit leave the broker as the Python host would (repair.js).
//
// test/guests/deep_ops.wat recurses n frames, then makes one call: close of
// a map referencing another (with a drop watch), set_map and set_many into
// a named map, get_map, and a pass of own, borrow and share to
// deep_peer.wat.  For many n around where the stack runs out, the
// RangeError lands at many points inside host code.  Each step's outcome on
// Node picks the Python step it must equal -- the call made (not cut),
// the module trapping before it ("before"), or after it ("after"), or the
// callee trapping (the pass made, "callee_trap") -- and the Python host
// replays them all (WASI_MAP_PYTHON, a Python with wasi-map installed, as
// .ci/run sets it; else python3 if it imports broker, else skipped): after every
// step, the stats and a following normal call (`probe`, `takes`) must be
// the same.  A set_many seen half-written, or a step no Python step
// explains, fails.

import { execFileSync, spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import assert from "node:assert/strict";
import { Broker, GuestTrap } from "../src/index.js";
import { repair } from "../src/repair.js";

const here = dirname(fileURLToPath(import.meta.url));
const GUESTS = join(here, "guests");
// Named: it must be there (CI).  Else python3, when it has wasi-map.
const PYTHON = process.env.WASI_MAP_PYTHON || "python3";
const OPS = { close: 0, set_map: 1, set_many: 2, get_map: 3, pass: 4 };

async function broker() {
  const b = new Broker();
  const decl = { params: ["own", "borrow", "share"] };
  await b.load("peer", join(GUESTS, "deep_peer.wat"), { exports: { take: decl, trap_take: decl } });
  await b.load("d", join(GUESTS, "deep_ops.wat"), { grants: { n: "rw" } });
  return b;
}

/** What a step left: stats and a following normal call on each module. @param {Broker} b */
function seen(b) {
  return { stats: b.stats(), probe: Number(b.call("d.probe")), takes: Number(b.call("peer.takes")) };
}

/** The Python step a Node step must equal. */
function pythonStep(/** @type {number} */ op, /** @type {GuestTrap | null} */ trap, /** @type {ReturnType<typeof seen>} */ after, /** @type {number} */ takesBefore) {
  if (!trap) return ["d.attempt", [op, 0]];
  if (trap.origin === "peer") return ["d.callee_trap", [op]];
  const digits = after.probe & 0xf;
  const len = (after.probe >> 4) & 0xfff;
  if (op === OPS.set_many) {
    assert.ok(digits === 3 || digits === 6, `set_many half-written: the digits add up to ${digits}`);
    return [digits === 6 ? "d.after" : "d.before", [op]];
  }
  if (op === OPS.set_map && len === 4) return ["d.after", [op]];
  if (op === OPS.pass && after.takes > takesBefore) return ["d.after", [op]];
  return ["d.before", [op]];
}

/** The Python host's `seen` after each step. @param {Array<[string, number[]]>} steps */
function python(steps) {
  const script = `
import json, sys
from broker import Broker
from broker.errors import GuestTrap
G = ${JSON.stringify(GUESTS + "/")}
b = Broker()
decl = {"params": ["own", "borrow", "share"]}
b.load("peer", G + "deep_peer.wat", exports={"take": decl, "trap_take": decl})
b.load("d", G + "deep_ops.wat", grants={"n": "rw"})
out = []
for target, args in json.load(sys.stdin):
    try:
        b.call(target, *args)
        trapped = False
    except GuestTrap:
        trapped = True
    out.append({"trapped": trapped, "stats": b.stats(), "probe": b.call("d.probe"), "takes": b.call("peer.takes")})
print(json.dumps(out))
`;
  // Run outside the checkout: its broker/ has no compiled core, the installed one has.
  return JSON.parse(execFileSync(PYTHON, ["-c", script], { input: JSON.stringify(steps), cwd: tmpdir(), maxBuffer: 1 << 28 }).toString());
}

/**
 * After every step, Node's stats, probe and takes are the Python host's.
 * @param {Array<[string, number[]]>} steps @param {Array<ReturnType<typeof seen>>} got
 */
function sameAsPython(steps, got) {
  const want = python(steps);
  for (let i = 0; i < steps.length; i++) {
    const { stats, probe, takes } = got[i];
    assert.deepEqual({ stats, probe, takes }, { stats: want[i].stats, probe: want[i].probe, takes: want[i].takes }, `step ${i}: ${JSON.stringify(steps[i])}`);
  }
}

/** Every live map is counted, and a recount changes nothing. @param {Broker} b */
function consistent(b) {
  const store = /** @type {any} */ (b)._store;
  for (const map of store.live) assert.ok(map.refcount > 0, `map ${map.id} alive with count ${map.refcount}`);
  const instances = b.modules.map((name) => /** @type {any} */ (b)._modules.get(name).instance);
  const books = () => ({
    counts: [...store.live].map((m) => [m.id, m.refcount, m.refsIn, m.refsOut]),
    accounts: instances.map((i) => [i.account.bytes, i.account.entries, i.watchesUsed, i.handles.live]),
    maps: [store.liveAnon, store.liveNamed],
  });
  const was = books();
  assert.equal(repair(store, instances, /** @type {any} */ (b)._host), 0);
  assert.deepEqual(books(), was);
}

const hasBroker = spawnSync(PYTHON, ["-c", "import broker._native"], { cwd: tmpdir() }).status === 0;
const skip = hasBroker || process.env.WASI_MAP_PYTHON ? false : `no wasi-map in ${PYTHON} (set WASI_MAP_PYTHON)`;

for (const [name, op] of Object.entries(OPS)) {
  test(`${name} cut off at every depth near the stack limit ends as on the Python host`, { skip }, async (t) => {
    const b = await broker();
    /** @type {Array<[string, number[]]>} */
    const steps = [];
    /** @type {Array<ReturnType<typeof seen> & {trapped: boolean}>} */
    const got = [];
    let takes = 0;
    const step = (/** @type {number} */ n) => {
      /** @type {GuestTrap | null} */
      let trap = null;
      try {
        b.call("d.attempt", op, n);
      } catch (e) {
        if (!(e instanceof GuestTrap)) throw e;
        trap = e;
      }
      const after = seen(b);
      steps.push(pythonStep(op, trap, after, takes));
      got.push({ trapped: trap !== null, ...after });
      takes = after.takes;
      return trap;
    };
    for (let i = 0; i < 300; i++) step(10); // optimized code, as a long-running guest has
    let first = 0;
    for (let n = 1000; !first; n += 500) if (step(n)) first = n;
    // The limit moves a little as code tiers up: on from below it until 200 calls trapped.
    let traps = 0;
    /** @type {Map<string, number>} */
    const reasons = new Map();
    for (let n = first - 600; traps < 200 && n < first + 5000; n++) {
      const trap = step(n);
      if (!trap) continue;
      traps++;
      reasons.set(trap.reason, (reasons.get(trap.reason) ?? 0) + 1);
    }
    assert.equal(traps, 200);
    const cut = [...reasons.keys()].filter((r) => r.includes("ran out of stack in"));
    assert.ok(cut.length > 0, `no call was cut off inside host code: ${JSON.stringify([...reasons])}`);
    t.diagnostic(JSON.stringify([...reasons]));
    consistent(b);
    sameAsPython(steps, got);
    b.close();
  });
}

/**
 * Make the `k`th call (from 0) of any method below throw V8's RangeError
 * while `run` runs: a cut at every point of host code, not only where a
 * sweep of depths happens to land.  How many calls there were, if fewer.
 */
async function cutAt(/** @type {number} */ k, /** @type {() => void} */ run) {
  const { HandleTable } = await import("../src/handles.js");
  const { MapStore } = await import("../src/maps.js");
  const { EntryTable } = await import("../src/table.js");
  const { Account } = await import("../src/accounts.js");
  const { Links } = await import("../src/link.js");
  const methods = [
    [HandleTable, ["issue", "release", "lookup", "reserve"]],
    [MapStore, ["alloc", "named", "incref", "refAdd", "refForget", "release", "reclaim", "dropEntries", "free"]],
    [EntryTable, ["find", "insert", "remove"]],
    [Account, ["charge", "credit"]],
    [Links, ["handleCall", "handleReturn", "targetOf"]],
  ];
  let calls = 0;
  /** @type {Array<() => void>} */
  const undo = [];
  for (const [cls, names] of /** @type {Array<[any, string[]]>} */ (methods)) {
    for (const name of names) {
      const real = cls.prototype[name];
      cls.prototype[name] = function (/** @type {any[]} */ ...args) {
        if (calls++ === k) throw new RangeError("Maximum call stack size exceeded");
        return real.apply(this, args);
      };
      undo.push(() => (cls.prototype[name] = real));
    }
  }
  try {
    run();
  } finally {
    for (const u of undo) u();
  }
  return calls;
}

for (const [name, op] of Object.entries(OPS)) {
  test(`${name} cut off at each call inside host code ends as on the Python host`, { skip }, async () => {
    const b = await broker();
    /** @type {Array<[string, number[]]>} */
    const steps = [];
    /** @type {Array<ReturnType<typeof seen>>} */
    const got = [];
    let takes = 0;
    let cuts = 0;
    for (let k = 0; k !== Infinity; k++) {
      b.call("d.setup");
      steps.push(["d.setup", []]);
      got.push(seen(b));
      /** @type {GuestTrap | null} */
      let trap = null;
      let calls = 0;
      try {
        calls = await cutAt(k, () => b.call("d.op", op));
      } catch (e) {
        if (!(e instanceof GuestTrap)) throw e;
        trap = e;
      }
      const after = seen(b);
      const [target, args] = pythonStep(op, trap, after, takes);
      // The same steps without the setup, which came before.
      steps.push([{ "d.attempt": "d.op", "d.before": "d.die", "d.after": "d.op_die", "d.callee_trap": "d.op_callee_trap" }[target] ?? target, target === "d.before" ? [] : [op]]);
      got.push(after);
      takes = after.takes;
      if (trap) cuts++;
      else if (calls <= k) k = Infinity - 1; // every call was cut once: done
    }
    assert.ok(cuts >= 3, `${cuts} cuts`);
    consistent(b);
    sameAsPython(steps, got);
    b.close();
  });
}
