// manifest.test.js: every manifest problem is one line naming the file and the key.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Broker, ManifestError } from "../src/index.js";
import { loadManifest } from "../src/manifest.js";
import { GUESTS } from "./vector_runner.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wasi-map-manifest-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const driver = JSON.stringify(path.join(GUESTS, "abi_driver.wat"));

/** A manifest file of `text`. @param {string} text */
function app(text) {
  const file = path.join(dir, `app${fs.readdirSync(dir).length}.toml`);
  fs.writeFileSync(file, text);
  return file;
}

/** The one-line ManifestError `text` gives. @param {string} text */
function problem(text) {
  const file = app(text);
  try {
    loadManifest(file);
  } catch (e) {
    assert.ok(e instanceof ManifestError, String(e));
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
    assert.ok(e.message.startsWith(`${file}: `), e.message);
    return e.message.slice(file.length + 2);
  }
  assert.fail("no error");
}

describe("loadManifest", () => {
  test("a good app: paths relative to the manifest, limits over the top-level ones", () => {
    fs.copyFileSync(path.join(GUESTS, "abi_driver.wat"), path.join(dir, "d.wat"));
    const m = loadManifest(app('[limits]\nhandles = 7\n[modules.d]\npath = "d.wat"\ngrants = { hits = "rw", cfg = "r" }\nlimits = { bytes = 1000 }\n'));
    const [d] = m.modules;
    assert.equal(d.path, path.join(dir, "d.wat"));
    assert.deepEqual([...d.grants], [["hits", 3], ["cfg", 1]]);
    assert.equal(d.limits.handles, 7);
    assert.equal(d.limits.bytes, 1000);
    assert.equal(d.limits.key_size, 4096);
  });

  test("unknown keys name the key and what is allowed", () => {
    assert.match(problem(`[modules.d]\npath = ${driver}\ncolour = 1\n`), /^modules\.d\.colour: unknown key \(allowed: path, grants/);
    assert.match(problem("[sttore]\n"), /^sttore: unknown key/);
  });

  test("limits out of range, unknown limits, bad on_quota", () => {
    assert.match(problem(`[modules.d]\npath = ${driver}\nlimits = { handles = 2097152 }\n`), /^modules\.d\.limits: limit handles must be an integer in 0\.\.2097151/);
    assert.match(problem(`[limits]\nbytes = 9223372036854775809\n[modules.d]\npath = ${driver}\n`), /^limits: limit bytes must be an integer in 0\.\.9223372036854775808/);
    assert.match(problem(`[modules.d]\npath = ${driver}\nlimits = { speed = 1 }\n`), /^modules\.d\.limits: unknown limit 'speed'/);
    assert.match(problem(`[modules.d]\npath = ${driver}\nlimits = { on_quota = "panic" }\n`), /on_quota must be one of/);
  });

  test("grants: rights and names are checked", () => {
    assert.match(problem(`[modules.d]\npath = ${driver}\ngrants = { cfg = "rx" }\n`), /^modules\.d\.grants\.cfg: rights must be 'r', 'w' or 'rw'/);
    assert.match(problem(`[modules.d]\npath = ${driver}\ngrants = { "" = "r" }\n`), /^modules\.d\.grants\."": a map name must be 1\.\.1024 bytes/);
  });

  test("what the Node host does not support yet is refused by key", () => {
    assert.match(problem(`[store]\nurl = "sqlite:x.db"\n[modules.d]\npath = ${driver}\n`), /^store\.url: only "memory:" on the Node host/);
    assert.match(problem(`[modules.d]\npath = ${driver}\ninstances = 2\n`), /^modules\.d\.instances: more than 1 is not supported/);
  });

  test("[broker]: strict_borrows and gc_threshold, checked as the Python host words it", () => {
    const m = loadManifest(app(`[broker]\nstrict_borrows = true\ngc_threshold = 5\n[modules.d]\npath = ${driver}\n`));
    assert.equal(m.strictBorrows, true);
    assert.equal(m.gcThreshold, 5);
    assert.equal(loadManifest(app(`[modules.d]\npath = ${driver}\n`)).gcThreshold, 10000);
    assert.equal(loadManifest(app(`[broker]\ngc_threshold = 18446744073709551615\n[modules.d]\npath = ${driver}\n`)).gcThreshold, 2n ** 64n - 1n);
    const range = "must be an integer from 0 to 18446744073709551615";
    assert.equal(problem(`[broker]\ngc_threshold = -1\n[modules.d]\npath = ${driver}\n`), `broker.gc_threshold: ${range}, not -1`);
    assert.equal(problem(`[broker]\ngc_threshold = "x"\n[modules.d]\npath = ${driver}\n`), `broker.gc_threshold: ${range}, not 'x'`);
    assert.equal(problem(`[broker]\nstrict_borrows = 1\n[modules.d]\npath = ${driver}\n`), "broker.strict_borrows: must be true or false, not 1");
  });

  test("a missing module file, a missing path, no modules, bad TOML", () => {
    assert.match(problem('[modules.d]\npath = "nope.wat"\n'), /^modules\.d\.path: no such file: .*nope\.wat$/);
    assert.match(problem("[modules.d]\n"), /^modules\.d\.path: required/);
    assert.match(problem("[limits]\n"), /^modules: an app needs at least one/);
    assert.match(problem("[modules.d\n"), /^invalid TOML: /);
    assert.match(problem(`[modules."a.b"]\npath = ${driver}\n`), /^modules\."a\.b": a module name must have no '\.'/);
  });

  test("exports: kinds are checked, and a declaration must fit its function at load", async () => {
    assert.match(problem(`[modules.d]\npath = ${driver}\nexports.new = { results = ["borrow"] }\n`), /^modules\.d\.exports\.new\.results: a result may be 'own' or 'share', never 'borrow'/);
    const file = app(`[modules.d]\npath = ${driver}\nexports.new = { params = ["i64"] }\n`);
    await assert.rejects(Broker.fromManifest(file), /exports\.new: params\[0\] is declared i64, but is i32/);
  });
});

describe("values the Python host refuses are refused here too", () => {
  test("a float where an integer is wanted, a limit named like an Object member, a BOM", () => {
    assert.match(problem(`[modules.d]\npath = ${driver}\nlimits = { handles = 1.0 }\n`), /limit handles must be an integer in 0\.\.\d+, got 1\.0$/);
    assert.match(problem(`[modules.d]\npath = ${driver}\nlimits = { handles = 1e3 }\n`), /got 1000\.0$/);
    assert.match(problem(`[broker]\ngc_threshold = 5.0\n[modules.d]\npath = ${driver}\n`), /^broker\.gc_threshold: /);
    assert.match(problem(`[modules.d]\npath = ${driver}\nlimits = { toString = 1 }\n`), /unknown limit 'toString'/);
    assert.match(problem(`\uFEFF[modules.d]\npath = ${driver}\n`), /invalid TOML/);
  });
});
