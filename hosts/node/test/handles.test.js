// handles.test.js: the handle table numbers handles as native/handles.c does.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Errno, HANDLE_INDEX_BITS, HANDLE_MAX_GEN } from "../src/abi.js";
import { HandleState, HandleTable } from "../src/handles.js";

const MAP = /** @type {any} */ ({});
const FIRST = 2 ** HANDLE_INDEX_BITS; // slot 0, generation 1

describe("HandleTable", () => {
  test("the first handle is slot 0 at generation 1; the next ones take new slots", () => {
    const t = new HandleTable();
    assert.deepEqual(t.issue(10, HandleState.OWN, MAP, 3), { err: Errno.OK, h: FIRST });
    assert.deepEqual(t.issue(10, HandleState.OWN, MAP, 3), { err: Errno.OK, h: FIRST + 1 });
  });

  test("a freed slot is reused last-freed-first, one generation up", () => {
    const t = new HandleTable();
    const hs = [0, 1, 2].map(() => /** @type {number} */ (t.issue(10, HandleState.OWN, MAP, 3).h));
    t.release(/** @type {any} */ (t.lookup(hs[0]).slot));
    t.release(/** @type {any} */ (t.lookup(hs[2]).slot));
    assert.equal(t.issue(10, HandleState.OWN, MAP, 3).h, 2 * FIRST + 2);
    assert.equal(t.issue(10, HandleState.OWN, MAP, 3).h, 2 * FIRST + 0);
    assert.equal(t.issue(10, HandleState.OWN, MAP, 3).h, FIRST + 3);
  });

  test("BADF for numbers never issued, STALE for closed ones", () => {
    const t = new HandleTable();
    const h = /** @type {number} */ (t.issue(10, HandleState.OWN, MAP, 3).h);
    assert.equal(t.lookup(0).err, Errno.BADF);
    assert.equal(t.lookup(-1).err, Errno.BADF);
    assert.equal(t.lookup(h + 1).err, Errno.BADF); // index never used
    assert.equal(t.lookup(h + FIRST).err, Errno.BADF); // generation not reached
    t.release(/** @type {any} */ (t.lookup(h).slot));
    assert.equal(t.lookup(h).err, Errno.STALE);
  });

  test("the handles limit counts live handles: QUOTA at it", () => {
    const t = new HandleTable();
    t.issue(1, HandleState.OWN, MAP, 3);
    assert.equal(t.issue(1, HandleState.OWN, MAP, 3).err, Errno.QUOTA);
  });

  test("a slot whose generation is spent is retired; the host's table wraps instead", () => {
    for (const wraps of [false, true]) {
      const t = new HandleTable({ wraps });
      let h = 0;
      for (let i = 0; i < HANDLE_MAX_GEN; i++) {
        h = /** @type {number} */ (t.issue(10, HandleState.OWN, MAP, 3).h);
        t.release(/** @type {any} */ (t.lookup(h).slot));
      }
      assert.equal(h >>> HANDLE_INDEX_BITS, HANDLE_MAX_GEN);
      assert.equal(t.issue(10, HandleState.OWN, MAP, 3).h, wraps ? FIRST : FIRST + 1);
    }
  });
});
