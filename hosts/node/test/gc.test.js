// gc.test.js: the cycle collector's API: collect(), the threshold, its counters.
//
// When it runs by itself and what it reclaims, in which order, is held to
// the Python host's by the vectors (tests/vectors/gc_*.json).

import assert from "node:assert/strict";
import path from "node:path";
import { describe, test } from "node:test";
import { Broker, ConfigError } from "../src/index.js";
import { GUESTS } from "./vector_runner.js";

const CHURN = path.join(GUESTS, "gc_churn.wat");
const RELAY = path.join(GUESTS, "gc_relay.wat");

/** churn and relay, with `options`. @param {object} options */
async function churn(options) {
  const b = new Broker(options);
  await b.load("relay", RELAY);
  await b.load("churn", CHURN, { exports: { churn: { params: ["borrow", "i32"] } } });
  return b;
}

describe("the cycle collector", () => {
  test("collect() reclaims cycles nothing reaches and delivers their drop notices before it returns", async () => {
    const b = await churn({ gcThreshold: 0 });
    assert.equal(b.call("churn.garbage_watched", 3, 50n), 0);
    assert.equal(b.call("churn.garbage", 2), 0);
    assert.equal(b.stats().maps, 7);
    assert.equal(b.counters().collections, 0);
    assert.equal(b.collect(), 7);
    assert.equal(b.stats().maps, 0);
    assert.equal(b.call("churn.log_len"), 3);
    assert.deepEqual([0, 1, 2].map((i) => b.call("churn.log_at", i)), [50n, 51n, 52n]);
    assert.deepEqual(b.counters(), { reclaimed: 7, cyclesReclaimed: 7, collections: 1, unreleasedBorrows: 0 });
    assert.equal(b.collect(), 0);
    b.close();
  });

  test("never a map a handle reaches, directly or through other maps", async () => {
    const b = await churn({ gcThreshold: 0 });
    const h = /** @type {number} */ (b.call("churn.ring", 4, 1));
    assert.equal(b.collect(), 0);
    assert.equal(b.stats().maps, 4);
    assert.equal(b.call("churn.close", h), 0);
    assert.equal(b.collect(), 4);
    b.close();
  });

  test("a map lent to a call in progress is reachable", async () => {
    const b = await churn({ gcThreshold: 1 });
    const h = b.call("relay.make_pair"); // a <-> b, only relay's handle to a
    assert.equal(b.call("relay.lend", h, 3), 11 | (22 << 8)); // collections ran during the lend
    assert.ok(b.counters().collections > 0);
    assert.equal(b.stats().maps, 2);
    assert.equal(b.call("relay.close", h), 0); // the release that cuts it loose: collected at once
    assert.equal(b.stats().maps, 0);
    b.close();
  });

  test("the threshold: an option, a property, checked", async () => {
    assert.equal(new Broker().gcThreshold, 10000);
    const b = new Broker({ gcThreshold: 2n ** 64n - 1n });
    b.gcThreshold = 3;
    assert.equal(b.gcThreshold, 3);
    assert.throws(() => new Broker({ gcThreshold: -1 }), { name: "ConfigError", message: /the collector threshold must be an integer from 0 to 18446744073709551615, not -1/ });
    assert.throws(() => {
      b.gcThreshold = 1.5;
    }, ConfigError);
    b.close();
  });
});
