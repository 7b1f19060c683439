// deadline.test.js: time limits (src/deadline.js): a guest past its time_ms traps, and only it goes.

import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { Broker, GuestTrap, ModuleError } from "../src/index.js";
import { readModule } from "../src/wasm.js";
import { HOST_MODULE, instrument } from "../src/deadline.js";
import { GUESTS } from "./vector_runner.js";

const HERE = path.join(path.dirname(fileURLToPath(import.meta.url)), "guests");
const SPIN = path.join(HERE, "spin.wat");
const DRIVER = path.join(GUESTS, "abi_driver.wat");

/** ms `fn` took. @param {() => unknown} fn */
function timed(fn) {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

/** The trap `fn` throws (it must throw a GuestTrap). @param {() => unknown} fn */
function trapOf(fn) {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof GuestTrap, `expected a GuestTrap, got ${String(e)}`);
    return e;
  }
  assert.fail("expected a trap");
}

/**
 * Call `target` with a count doubling from 2^20 until it traps (by the
 * clock, not by a guess of the machine's speed); that trap, and the count.
 * @param {Broker} b @param {string} target
 */
function firstTrap(b, target) {
  for (let n = 2 ** 20; n < 2 ** 31; n *= 2) {
    try {
      b.call(target, n);
    } catch (e) {
      assert.ok(e instanceof GuestTrap, `expected a GuestTrap, got ${String(e)}`);
      return { trap: e, n };
    }
  }
  assert.fail(`${target} never trapped`);
}

describe("time limits", () => {
  test("a guest that loops forever traps after its limit; the others keep working", async () => {
    const b = new Broker();
    await b.load("s", SPIN, { limits: { time_ms: 100 } });
    await b.load("d", DRIVER);
    assert.ok(b.call("s.new") > 0);
    assert.equal(b.call("d.new", 256), 0);
    let trap;
    const took = timed(() => (trap = trapOf(() => b.call("s.spin"))));
    assert.equal(trap.reason, "wasi_map: module 's' ran past its time limit of 100 ms");
    assert.equal(trap.message, "s.spin: guest trapped: wasi_map: module 's' ran past its time limit of 100 ms");
    assert.equal(trap.origin, "s");
    assert.ok(took >= 100 && took < 1000, `trapped after ${took} ms`);
    // s was torn down (its map reclaimed) and replaced (on_trap = "replace"); d untouched.
    assert.deepEqual(b.stats(), { maps: 1, named: 0, handles: { s: 0, d: 1 } });
    assert.equal(b.call("s.ok"), 7);
    assert.ok(b.call("s.new") > 0);
    assert.equal(b.call("d.new", 256), 0);
    assert.deepEqual(b.stats(), { maps: 3, named: 0, handles: { s: 1, d: 2 } });
    // The new instance has its whole limit again.
    assert.throws(() => b.call("s.spin"), /ran past its time limit of 100 ms/);
    b.close();
  });

  test("on_trap = stop leaves the module torn down", async () => {
    const b = new Broker();
    await b.load("s", SPIN, { limits: { time_ms: 50 }, onTrap: "stop" });
    assert.throws(() => b.call("s.spin"), /ran past its time limit of 50 ms/);
    assert.throws(() => b.call("s.ok"), ModuleError);
    b.close();
  });

  test("a guest that recurses forever (no loop) traps: V8's stack overflow comes first", async () => {
    const b = new Broker();
    await b.load("s", SPIN, { limits: { time_ms: 100 } });
    const trap = trapOf(() => b.call("s.recurse"));
    assert.equal(trap.origin, "s");
    assert.match(trap.reason, /Maximum call stack size exceeded|ran past its time limit/);
    assert.equal(b.call("s.ok"), 7);
    b.close();
  });

  test("time spent in a callee counts for the caller, which traps as the callee returns", async () => {
    const b = new Broker();
    await b.load("spin", SPIN, { limits: { time_ms: 10_000 } });
    await b.load("c", path.join(HERE, "slow_caller.wat"), { limits: { time_ms: 50 } });
    assert.ok(b.call("spin.new") > 0);
    const { trap } = firstTrap(b, "c.call_busy");
    assert.equal(trap.reason, "wasi_map: module 'c' ran past its time limit of 50 ms");
    assert.equal(trap.origin, "c"); // the callee is not blamed
    assert.deepEqual(b.stats().handles, { spin: 1, c: 0 });
    // A short call is fine, from a fresh start.
    assert.equal(b.call("c.call_busy", 10), 10);
    b.close();
  });

  test("time_ms = 0 is no limit: it never traps", async () => {
    const b = new Broker();
    await b.load("s", SPIN, { limits: { time_ms: 0 } });
    await b.load("t", SPIN, { limits: { time_ms: 100 } });
    const { trap, n } = firstTrap(b, "t.busy");
    assert.equal(trap.reason, "wasi_map: module 't' ran past its time limit of 100 ms");
    assert.equal(b.call("s.busy", 2 * n), 2 * n); // longer than t took to trap
    b.close();
  });

  test("a drop-notice handler that loops forever is stopped", async () => {
    const b = new Broker();
    await b.load("s", SPIN, { limits: { time_ms: 50 } });
    await b.load("d", DRIVER);
    const h = b.call("s.new");
    assert.equal(b.call("s.watch", h), 0);
    const trap = trapOf(() => b.call("s.close", h)); // the map goes: its notice runs the handler
    assert.equal(trap.export, "wasi_map_on_drop");
    assert.equal(trap.reason, "wasi_map: module 's' ran past its time limit of 50 ms");
    assert.equal(b.call("s.ok"), 7);
    assert.equal(b.call("d.new", 256), 0);
    assert.deepEqual(b.stats(), { maps: 1, named: 0, handles: { s: 0, d: 1 } });
    b.close();
  });

  test("a start function or _initialize that loops forever fails the load, in one line", async () => {
    const b = new Broker();
    const start = path.join(HERE, "spin_start.wat");
    await assert.rejects(b.load("st", start, { limits: { time_ms: 50 } }), (e) => {
      assert.ok(e instanceof ModuleError);
      assert.equal(e.message, `${start}: trapped while starting: wasi_map: module 'st' ran past its time limit of 50 ms`);
      return true;
    });
    const init = path.join(HERE, "spin_init.wat");
    await assert.rejects(b.load("in", init, { limits: { time_ms: 50 } }), (e) => {
      assert.ok(e instanceof ModuleError);
      assert.equal(e.message, `${init}: trapped in _initialize: wasi_map: module 'in' ran past its time limit of 50 ms`);
      return true;
    });
    assert.deepEqual(b.modules, []);
    await b.load("in", path.join(HERE, "spin.wat"), { limits: { time_ms: 50 } }); // the names are free again
    b.close();
  });
});

describe("instrument", () => {
  test("adds one import and keeps the guest's imports, exports and start", async () => {
    const { bytes } = await readModule(SPIN);
    const out = await instrument(bytes, "spin");
    const before = new WebAssembly.Module(bytes);
    const after = new WebAssembly.Module(out);
    assert.deepEqual(WebAssembly.Module.exports(after), WebAssembly.Module.exports(before));
    assert.deepEqual(WebAssembly.Module.imports(after), [
      ...WebAssembly.Module.imports(before),
      { module: HOST_MODULE, name: "tick", kind: "function" },
    ]);
  });

  test("refuses a guest that imports from the host's module", async () => {
    const enc = (/** @type {string} */ s) => new TextEncoder().encode(s);
    const b = new Broker();
    await assert.rejects(
      b.load("x", enc(`(module (import "${HOST_MODULE}" "tick" (func (result i32))))`)),
      /imports wasi_map\.host\.tick: that module name is the host's/,
    );
    b.close();
  });
});
