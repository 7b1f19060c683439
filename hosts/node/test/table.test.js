// table.test.js: a map's entries keep insertion order, and the keys cursor survives changes.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EntryTable, ValueKind } from "../src/table.js";

const k = (/** @type {string} */ s) => new TextEncoder().encode(s);

/** @param {EntryTable} t @param {string} key */
function put(t, key) {
  const e = t.find(k(key)) ?? t.insert(k(key));
  e.kind = ValueKind.BYTES;
  return e;
}

/** The keys from `cursor` on, in order. @param {EntryTable} t @param {bigint} cursor */
const listed = (t, cursor) =>
  t.entries.slice(t.seek(cursor)).filter((e) => e.kind !== ValueKind.NONE).map((e) => new TextDecoder().decode(e.key));

describe("EntryTable", () => {
  test("keys come in insertion order; re-setting a key keeps its place", () => {
    const t = new EntryTable();
    ["a", "b", "c"].forEach((x) => put(t, x));
    put(t, "a");
    assert.deepEqual(listed(t, 0n), ["a", "b", "c"]);
  });

  test("deleting and re-adding a key gives it a new, later sequence number", () => {
    const t = new EntryTable();
    ["a", "b"].forEach((x) => put(t, x));
    t.remove(/** @type {any} */ (t.find(k("a"))));
    put(t, "a");
    assert.deepEqual(listed(t, 0n), ["b", "a"]);
    assert.equal(/** @type {any} */ (t.find(k("a"))).seq, 3);
  });

  test("a cursor stays valid across deletes and compaction", () => {
    const t = new EntryTable();
    for (let i = 0; i < 100; i++) put(t, `k${i}`);
    const cursor = BigInt(/** @type {any} */ (t.find(k("k60"))).seq);
    for (let i = 0; i < 90; i++) if (i !== 95) t.remove(/** @type {any} */ (t.find(k(`k${i}`))));
    assert.ok(t.entries.length < 100, "compacted");
    assert.deepEqual(listed(t, cursor), ["k90", "k91", "k92", "k93", "k94", "k95", "k96", "k97", "k98", "k99"]);
  });

  test("any cursor is accepted: past the end lists nothing", () => {
    const t = new EntryTable();
    put(t, "a");
    assert.deepEqual(listed(t, 2n ** 64n - 1n), []);
    assert.equal(t.seek(5n), t.entries.length);
  });

  test("the sequence numbers go on after every entry is deleted", () => {
    const t = new EntryTable();
    put(t, "a");
    t.remove(/** @type {any} */ (t.find(k("a"))));
    assert.equal(put(t, "b").seq, 2);
  });
});
