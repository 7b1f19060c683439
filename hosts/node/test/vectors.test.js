// vectors.test.js: every shared test vector (tests/vectors/*.json) holds on the Node host.
//
// The Python host runs the same files (tests/abi/test_vectors.py), so a
// behaviour cannot differ between the hosts without a test failing.

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { loadVector, run, vectorFiles, VECTORS } from "./vector_runner.js";

const files = vectorFiles();

test("there are vectors to run", () => {
  assert.ok(files.length > 0, `no *.json vectors in ${VECTORS}`);
});

for (const file of files) {
  test(`vector ${path.basename(file, ".json")}`, async () => {
    const vector = loadVector(file);
    const got = await run(vector);
    assert.equal(got.length, vector.steps.length);
    vector.steps.forEach((/** @type {unknown} */ want, /** @type {number} */ i) => {
      assert.deepStrictEqual(got[i], want, `${path.basename(file)} step ${i}: recorded ${JSON.stringify(want)}, got ${JSON.stringify(got[i])}`);
    });
  });
}
