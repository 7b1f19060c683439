// broker.test.js: the Broker's API around the ABI: loading, calls, traps, what is not supported yet.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { Broker, ConfigError, GuestTrap, ModuleError } from "../src/index.js";
import { GUESTS } from "./vector_runner.js";

const DRIVER = path.join(GUESTS, "abi_driver.wat");

describe("Broker", () => {
  test("loads WAT bytes as well as a path; results are numbers, i64 BigInt", async () => {
    const b = new Broker();
    await b.load("d", fs.readFileSync(DRIVER));
    assert.equal(b.call("d.new", 256), 0);
    assert.equal(b.call("d.load64", 256), 2097152n);
    assert.equal(b.call("d.store8", 0, 255), undefined);
    assert.equal(b.call("d.close", 0xffffffff), 1); // unsigned i32 accepted: BADF
    assert.deepEqual(b.stats(), { maps: 1, named: 0, handles: { d: 1 } });
    b.close();
    assert.throws(() => b.stats(), ConfigError);
  });

  test("unknown modules, exports and bad arguments say what there is", async () => {
    const b = new Broker();
    await b.load("d", DRIVER);
    assert.throws(() => b.call("x.new", 0), /no module named 'x' is loaded \(loaded: 'd'\)/);
    assert.throws(() => b.call("d.nope"), /has no exported function 'nope' \(its functions: 'open', 'new'/);
    assert.throws(() => b.call("d.new"), TypeError);
    assert.throws(() => b.call("d.new", 2 ** 32), TypeError);
    b.close();
  });

  test("a trap tears the module down; on_trap = stop leaves it so", async () => {
    const b = new Broker();
    await b.load("d", DRIVER, { onTrap: "stop" });
    b.call("d.new", 256);
    assert.throws(() => b.call("d.trap"), (e) => e instanceof GuestTrap && e.origin === "d");
    assert.deepEqual(b.stats(), { maps: 0, named: 0, handles: { d: 0 } });
    assert.throws(() => b.call("d.new", 256), ModuleError);
    b.close();
  });

  test("a quota configured to trap traps the guest", async () => {
    const b = new Broker();
    await b.load("d", DRIVER, { limits: { handles: 1, on_quota: "trap" } });
    assert.equal(b.call("d.new", 256), 0);
    assert.throws(() => b.call("d.new", 256), /guest trapped: wasi_map: module quota exceeded/);
    b.close();
  });

  test("WASI, handles from the host and instances > 1 are refused for now", async () => {
    const b = new Broker();
    const wasi = '(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))))';
    await assert.rejects(b.load("w", new TextEncoder().encode(wasi)), /WASI imports are not yet supported on the Node host/);
    await b.load("d", DRIVER, { exports: { new: { params: ["own"] } } });
    assert.throws(() => b.call("d.new", 1), { name: "TypeError", message: /d\.new: parameter 0 is declared own: passing handles from the host .* not yet supported/ });
    await assert.rejects(b.load("e", DRIVER, { instances: 2 }), /not yet supported/);
    b.close();
  });

  test("a module importing wasi_map must export its memory", async () => {
    const b = new Broker();
    const wat = '(module (import "wasi_map" "new" (func (param i32) (result i32))))';
    await assert.rejects(b.load("m", new TextEncoder().encode(wat)), /does not export its linear memory as `memory`/);
    b.close();
  });
});
