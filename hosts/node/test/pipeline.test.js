// pipeline.test.js: the image pipeline example (C, Rust, C++ guests passing one map by own) runs unchanged on Node.
//
// It builds examples/image-pipeline with its build.sh when clang, clang++
// and /usr/bin/rustc are there (skipped otherwise, saying which is
// missing), then runs `wasi-map-node run app.toml --call loader.main SEED`
// and compares with what `wasi-map run` prints (reference.py computes the
// same two numbers).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { REPO } from "./vector_runner.js";

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), "../bin/wasi-map-node.js");
const EXAMPLE = path.join(REPO, "examples/image-pipeline");
const EXPECTED = { 42: "1974463507 628", 1: "3320327027 745", 12: "3409916049 1110", "-7": "3998280622 735" };

/** The first compiler the build needs that is not there, or null. */
function missing() {
  for (const tool of ["clang", "clang++"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return `${tool} is not on PATH`;
  }
  return fs.existsSync("/usr/bin/rustc") ? null : "/usr/bin/rustc is not installed";
}

const why = missing();

describe("examples/image-pipeline", { skip: why ? `cannot build the example: ${why}` : false }, () => {
  test("builds, and prints what wasi-map run prints for seeds 42, 1, 12, -7", () => {
    const build = spawnSync("sh", [path.join(EXAMPLE, "build.sh")], { encoding: "utf8" });
    assert.equal(build.status, 0, build.stderr);
    for (const [seed, want] of Object.entries(EXPECTED)) {
      const run = spawnSync(process.execPath, [BIN, "run", path.join(EXAMPLE, "app.toml"), "--call", "loader.main", seed], { encoding: "utf8" });
      assert.equal(run.stderr, "");
      assert.equal(run.stdout, `${want}\n`, `seed ${seed}`);
    }
  });
});
