// link.test.js: calls between modules: linking by name, the rules of passing handles, strict borrows.
//
// The answers themselves (handle numbers, errnos, stats after each step)
// are held to the Python host's by the vectors (tests/vectors/xmod_*.json,
// tests/vectors/x_*.json); these tests check the API around them and the
// words of the errors and traps, which vectors do not record.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Broker, ConfigError, GuestTrap, ModuleError } from "../src/index.js";
import { GUESTS } from "./vector_runner.js";

const CALLER = path.join(GUESTS, "xmod_caller.wat");
const CALLEE = path.join(GUESTS, "xmod_callee.wat");
const H1 = 2097152;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wasi-map-link-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A manifest in a folder where every test guest is reachable. @param {string} text */
function app(text) {
  for (const g of ["xmod_caller.wat", "xmod_callee.wat", "abi_driver.wat"]) {
    if (!fs.existsSync(path.join(dir, g))) fs.symlinkSync(path.join(GUESTS, g), path.join(dir, g));
  }
  const file = path.join(dir, `app${fs.readdirSync(dir).length}.toml`);
  fs.writeFileSync(file, text);
  return file;
}

/** The GuestTrap `fn` throws. @param {() => unknown} fn @returns {GuestTrap} */
function trapOf(fn) {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof GuestTrap, String(e));
    return e;
  }
  assert.fail("no trap");
}

/** A broker with caller and callee loaded, the callee's exports declared. @param {Record<string, any>} exports @param {object} [options] */
async function pair(exports, options = {}) {
  const b = new Broker(options);
  await b.load("caller", CALLER);
  await b.load("callee", CALLEE, { exports });
  return b;
}

describe("linking", () => {
  test("an import is resolved when its module comes, in either order; before then a call traps the caller", async () => {
    const b = new Broker();
    await b.load("caller", CALLER);
    const h = /** @type {number} */ (b.call("caller.new"));
    const early = trapOf(() => b.call("caller.via_keep", h));
    assert.equal(early.origin, "caller");
    assert.match(early.reason, /^wasi_map: caller -> callee\.keep: the module is not loaded: load it before calling it$/);
    await b.load("callee", CALLEE);
    assert.equal(b.call("caller.via_keep", 7), 7); // undeclared: a plain number
    b.unload("callee");
    assert.match(trapOf(() => b.call("caller.via_keep", 7)).reason, /the module is not loaded/);
    b.close();
  });

  test("mutual imports and a module importing its own export", async () => {
    const b = new Broker();
    await b.load("ping", path.join(GUESTS, "xmod_ping.wat"));
    await b.load("pong", path.join(GUESTS, "xmod_pong.wat"));
    await b.load("selfref", path.join(GUESTS, "xmod_self.wat"));
    assert.equal(b.call("ping.ping", 4), 2121);
    assert.equal(b.call("selfref.fact", 5), 120);
    b.close();
  });

  test("the import's type must equal the export's; the export must exist", async () => {
    const bad = new TextEncoder().encode('(module (import "callee" "keep" (func (param i64) (result i32))))');
    const b = new Broker();
    await b.load("callee", CALLEE);
    await assert.rejects(b.load("c", bad), { name: "ModuleError", message: "c -> callee.keep: imported as (i64) -> (i32), but exported as (i32) -> (i32)" });
    assert.deepEqual(b.modules, ["callee"]);
    b.close();
    const b2 = new Broker();
    await b2.load("c", bad);
    await assert.rejects(b2.load("callee", CALLEE), /c -> callee\.keep: imported as \(i64\) -> \(i32\), but exported as \(i32\) -> \(i32\)/);
    assert.deepEqual(b2.modules, ["c"]); // the exporter was not kept
    await assert.rejects(b2.load("callee", path.join(GUESTS, "abi_driver.wat")), /c -> callee\.keep: module 'callee' has no exported function 'keep'/);
    const notFunc = new TextEncoder().encode('(module (import "callee" "memory" (memory 1)))');
    await assert.rejects(b2.load("m", notFunc), /imports callee\.memory, which is not a function/);
    b2.close();
  });

  test("Broker.fromManifest refuses an app importing a module it does not have", async () => {
    const file = app('[modules.caller]\npath = "xmod_caller.wat"\n');
    await assert.rejects(Broker.fromManifest(file), { name: "ModuleError", message: `${file}: module 'caller' imports callee.keep, but the app has no module 'callee'` });
  });
});

describe("passing handles", () => {
  test("own: the caller's number turns STALE, the callee owns a new handle", async () => {
    const b = await pair({ keep: { params: ["own"] } });
    const h = b.call("caller.new");
    assert.equal(b.call("caller.via_keep", h), H1);
    assert.equal(b.call("caller.read", h, 1), -2); // STALE
    assert.deepEqual(b.stats().handles, { caller: 0, callee: 1 });
    b.close();
  });

  test("a pass that fails traps the caller, naming the link, the parameter and the errno; nothing passes", async () => {
    const b = await pair({ pair: { params: ["own", "share"] }, keep: { params: ["own"] } });
    const h = b.call("caller.new");
    const twice = trapOf(() => b.call("caller.via_pair", h, h));
    assert.equal(twice.origin, "caller");
    assert.equal(
      twice.reason,
      `wasi_map: caller -> callee.pair: parameter 1 (share): BUSY: handle ${H1} is passed twice, once as own: a handle that moves can go only once; pass a clone for the other`,
    );
    assert.deepEqual(b.stats(), { maps: 0, named: 0, handles: { caller: 0, callee: 0 } }); // the caller was torn down
    const stale = trapOf(() => b.call("caller.via_keep", 5));
    assert.match(stale.reason, /parameter 0 \(own\): BADF: 5 is not a handle the caller was issued/);
    b.close();
  });

  test("a callee with no room for the handle is the module torn down", async () => {
    const b = new Broker();
    await b.load("caller", CALLER);
    await b.load("callee", CALLEE, { exports: { keep: { params: ["own"] } }, limits: { handles: 1 } });
    b.call("callee.new");
    const h = b.call("caller.new");
    const full = trapOf(() => b.call("caller.via_keep", h));
    assert.equal(full.origin, "callee");
    assert.match(full.reason, /parameter 0 \(own\): QUOTA: the callee has no room for another handle/);
    assert.equal(b.call("caller.read", h, 1), -3); // still the caller's (NOENT: empty map)
    b.close();
  });

  test("borrow: BUSY for close and own while lent, even re-entering the lender; a borrow left open is closed and counted", async () => {
    const b = await pair({ call_back: { params: ["borrow"] }, take: { params: ["own"] }, keep: { params: ["borrow"] } });
    const h = b.call("caller.new");
    assert.equal(b.call("caller.via_call_back", h, 0), 0);
    assert.deepEqual([256, 260, 264].map((at) => b.call("caller.load32", at)), [8, 0, 6]); // close BUSY; write, read fine
    const own = trapOf(() => b.call("caller.via_call_back", h, 1));
    assert.match(own.reason, /caller -> callee\.take: parameter 0 \(own\): BUSY: handle \d+ is lent to a call that has not returned/);
    const b2 = await pair({ keep: { params: ["borrow"] } });
    const h2 = b2.call("caller.new");
    assert.equal(b2.counters().unreleasedBorrows, 0);
    assert.equal(b2.call("caller.via_keep", h2), H1);
    assert.equal(b2.counters().unreleasedBorrows, 1);
    assert.deepEqual(b2.stats().handles, { caller: 1, callee: 0 });
    b.close();
    b2.close();
  });

  test("results own and share pass before the borrows end; own of a borrow traps the callee", async () => {
    const b = await pair({ give: { results: ["own"] }, give_back: { params: ["borrow"], results: ["own"] } });
    assert.equal(b.call("caller.via_give"), H1);
    const bad = trapOf(() => b.call("caller.via_give_back", H1));
    assert.equal(bad.origin, "callee");
    assert.match(bad.reason, /caller -> callee\.give_back: result 0 \(own\): ACCES: handle \d+ is borrowed \(lent to the callee for this call\)/);
    assert.equal(b.call("caller.read", H1, 1), 7); // the lender's handle is usable again
    b.close();
  });

  test("a trap in the callee tears down the callee; the caller keeps its handles", async () => {
    const b = await pair({ trap: { params: ["borrow"] }, keep: { params: ["share"] } });
    const h = b.call("caller.new");
    b.call("caller.via_keep", h);
    const t = trapOf(() => b.call("caller.via_trap", h));
    assert.equal(t.module, "caller");
    assert.equal(t.origin, "callee");
    assert.match(t.message, /^caller\.via_trap: guest trapped in module callee: /);
    assert.deepEqual(b.stats(), { maps: 1, named: 0, handles: { caller: 1, callee: 0 } });
    b.close();
  });
});

describe("strict borrows", () => {
  test("a callee that returns with a borrow open traps and is torn down", async () => {
    const b = await pair({ keep: { params: ["borrow"] }, end_borrow: { params: ["borrow"] } }, { strictBorrows: true });
    const h = b.call("caller.new");
    assert.equal(b.call("caller.via_end_borrow", h), 0);
    const t = trapOf(() => b.call("caller.via_keep", h));
    assert.equal(t.origin, "callee");
    assert.equal(
      t.reason,
      "wasi_map: caller -> callee.keep: returned with 1 borrow(s) still open (strict borrows): close each borrowed handle before returning; to keep the map, clone the handle or pass it on as share",
    );
    b.strictBorrows = false; // takes effect for the next call
    assert.equal(b.call("caller.via_keep", h), H1);
    assert.throws(() => {
      b.strictBorrows = /** @type {any} */ (1);
    }, ConfigError);
    b.close();
  });

  test("[broker] strict_borrows = true in the manifest", async () => {
    const file = app('[broker]\nstrict_borrows = true\n[modules.caller]\npath = "xmod_caller.wat"\n[modules.callee]\npath = "xmod_callee.wat"\nexports.keep = { params = ["borrow"] }\n');
    const b = await Broker.fromManifest(file);
    assert.equal(b.strictBorrows, true);
    const h = b.call("caller.new");
    assert.equal(trapOf(() => b.call("caller.via_keep", h)).origin, "callee");
    b.close();
  });

  test("a stopped module cannot be called through a link", async () => {
    const b = new Broker();
    await b.load("caller", CALLER);
    await b.load("callee", CALLEE, { onTrap: "stop", exports: { trap: { params: ["borrow"] } } });
    const h = b.call("caller.new");
    trapOf(() => b.call("caller.via_trap", h));
    const t = trapOf(() => b.call("caller.via_trap", h));
    assert.equal(t.origin, "caller");
    assert.match(t.reason, /caller -> callee\.trap: the module is torn down \(it trapped earlier\): load it again/);
    assert.throws(() => b.call("callee.new"), ModuleError);
    b.close();
  });
});
