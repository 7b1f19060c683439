// cli.test.js: `wasi-map-node run` and `check`, their output and exit codes.

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { GUESTS } from "./vector_runner.js";

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), "../bin/wasi-map-node.js");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wasi-map-cli-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Run the CLI: {status, stdout, stderr}. @param {...string} args */
const cli = (...args) => spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8" });

/** @param {string} name @param {string} text */
function file(name, text) {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

const APP = file("app.toml", `[modules.d]\npath = ${JSON.stringify(path.join(GUESTS, "abi_driver.wat"))}\n`);

describe("wasi-map-node run", () => {
  test("prints the results space-separated; nothing for none", () => {
    assert.deepEqual([cli("run", APP, "--call", "d.new", "256").stdout, cli("run", APP, "--call", "d.new", "256").status], ["0\n", 0]);
    assert.equal(cli("run", "--call", "d.load64", "0x10", APP).stdout, "0\n");
    assert.equal(cli("run", APP, "--call", "d.store8", "1", "-1").stdout, "\n");
  });

  test("a trap: exit 1 and one line", () => {
    const r = cli("run", APP, "--call", "d.trap");
    assert.equal(r.status, 1);
    assert.equal(r.stderr, "wasi-map-node: d.trap: guest trapped: unreachable\n");
  });

  test("a bad manifest or call: exit 2 and one line naming it", () => {
    const bad = file("bad.toml", "[modules.d]\npath = 3\n");
    const r = cli("run", bad, "--call", "d.new", "0");
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `wasi-map-node: ${bad}: modules.d.path: required: the module's .wat or .wasm file\n`);
    assert.match(cli("run", APP, "--call", "d.nope").stderr, /^wasi-map-node: module 'd' has no exported function 'nope' \(its functions: 'open'/);
    assert.equal(cli("run", APP, "--call", "d.new", "x1").status, 2);
  });
});

describe("wasi-map-node check", () => {
  test("lists the module's wasi_map imports against the ABI, as wasi-map check does", () => {
    const out = execFileSync(process.execPath, [BIN, "check", path.join(GUESTS, "abi_driver.wat")], { encoding: "utf8" });
    const lines = out.trim().split("\n");
    assert.equal(lines.length, 17);
    assert.equal(lines[0], "wasi_map.open (i32, i32, i32, i32) -> (i32): ok");
    assert.ok(lines.includes("wasi_map.incr (i32, i32, i32, i64, i32) -> (i32): ok"));
  });

  test("bad imports and a missing memory are errors: exit 1", () => {
    const m = file(
      "bad.wat",
      '(module (import "wasi_map" "new" (func (param i64) (result i32))) (import "wasi_map" "frob" (func)) (import "wasi_map" "mem" (memory 1)))',
    );
    const r = cli("check", m);
    assert.equal(r.status, 1);
    assert.equal(
      r.stdout,
      [
        "wasi_map.new (i64) -> (i32): ERROR: signature (i64) -> (i32) does not match the ABI's (i32) -> (i32)",
        "wasi_map.frob () -> (): ERROR: not in the WASI-Map v1 ABI",
        "wasi_map.mem MemoryType: ERROR: not a function",
        "memory: ERROR: imports wasi_map but does not export its linear memory as `memory`",
        "",
      ].join("\n"),
    );
    assert.equal(r.stderr, `${m}: 4 problem(s)\n`);
  });

  test("no imports; a module that does not compile (exit 2)", () => {
    const none = file("none.wat", "(module)");
    assert.equal(cli("check", none).stdout, `${none}: no wasi_map imports\n`);
    const broken = file("broken.wat", "(module (func (i32.add (i32.const 1) (bogus))))");
    const r = cli("check", broken);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^wasi-map-node: .*broken\.wat: not a valid Wasm module: broken\.wat:1:39: error: unexpected token "bogus"/);
  });
});
