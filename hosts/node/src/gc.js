// gc.js: the cycle collector (native/gc.c, explained there at length).
//
// Reference counting reclaims a map the moment its count reaches zero, but
// maps that reference each other through set_map keep each other's counts
// above zero after the last handle or name is gone.  This collector finds
// such garbage by trial deletion, as CPython's gc does, over the graph
// whose nodes are maps and whose edges are map references stored in
// entries.  One function per phase, named after CPython's (and the C core's):
//
//   updateRefs       Candidates are the live maps some map references
//                    (refsIn > 0), in the C core's row order.  Each gets
//                    gc = its count.
//   subtractRefs     Every reference from a candidate to a candidate is
//                    subtracted from the target's gc.  What is left counts
//                    references from outside: handles, names, and maps no
//                    map references.
//   moveUnreachable  Candidates with gc > 0 are reachable; so is all they
//                    reference, transitively (a work list, no recursion).
//                    The rest are garbage, marked dying.
//   deleteGarbage    The garbage is freed together: references among it are
//                    dropped without counting down, references out of it
//                    release their targets (plain counting then reclaims
//                    what only the garbage kept alive), and its drop notices
//                    are queued -- in the same order as the C core, so drop
//                    notices and handle numbers agree on both hosts.
//
// A map lent to a call in progress is reachable: the lender's owning handle
// cannot be closed or moved while it is lent.  A named map is never garbage.
//
// gc states, on each candidate (MapObject.gc): >= 0 the count left;
// REACHABLE; DYING.

import { ValueKind } from "./table.js";

export const DEFAULT_GC_THRESHOLD = 10000;
const MAX_THRESHOLD = 2n ** 64n - 1n; // the C core takes a uint64_t

/** Why `value` cannot be the collector's threshold, or null (broker/gc.py's words). @param {unknown} value */
export function thresholdProblem(value) {
  const isInt = (typeof value === "number" && Number.isInteger(value)) || typeof value === "bigint";
  if (!isInt || BigInt(value) < 0n || BigInt(value) > MAX_THRESHOLD) {
    const shown = typeof value === "string" ? `'${value}'` : typeof value === "boolean" ? (value ? "True" : "False") : String(value);
    return `must be an integer from 0 to ${MAX_THRESHOLD}, not ${shown}`;
  }
  return null;
}

const REACHABLE = -2;
const DYING = -3;

/** @typedef {import("./maps.js").MapObject} MapObject */

/** Call `visit` with every map `map` references. @param {MapObject} map @param {(child: MapObject) => void} visit */
function eachChild(map, visit) {
  if (!map.refsOut) return;
  for (const e of map.table.liveEntries()) if (e.kind === ValueKind.MAP && e.child) visit(e.child);
}

/** @param {Array<MapObject | null>} rows @returns {MapObject[]} */
function updateRefs(rows) {
  const candidates = [];
  for (const map of rows) {
    if (!map || !map.refsIn) continue;
    map.gc = map.refcount;
    candidates.push(map);
  }
  return candidates;
}

/** @param {MapObject[]} candidates */
function subtractRefs(candidates) {
  for (const map of candidates) {
    eachChild(map, (child) => {
      if (child.gc >= 0) child.gc--;
    });
  }
}

/** @param {MapObject[]} candidates @returns {MapObject[]} the garbage, in row order */
function moveUnreachable(candidates) {
  const stack = candidates.filter((m) => m.gc > 0);
  for (const m of stack) m.gc = REACHABLE;
  while (stack.length) {
    eachChild(/** @type {MapObject} */ (stack.pop()), (child) => {
      if (child.gc >= 0) {
        child.gc = REACHABLE;
        stack.push(child);
      }
    });
  }
  const garbage = candidates.filter((m) => m.gc === 0);
  for (const m of garbage) {
    m.gc = DYING;
    m.dying = true;
  }
  return garbage;
}

/** @param {import("./maps.js").MapStore} store @param {MapObject[]} garbage @returns {number} maps reclaimed */
function deleteGarbage(store, garbage) {
  /** @type {MapObject[]} what only the garbage kept alive */
  const pending = [];
  for (const map of garbage) store.dropEntries(map, pending);
  for (const map of garbage) store.free(map);
  const freed = garbage.length;
  return freed + store.reclaim(pending);
}

/**
 * Collect the unreachable cycles among `store`'s maps now; the number of maps reclaimed.
 * @param {import("./maps.js").MapStore} store
 */
export function collect(store) {
  if (store.collecting) return 0;
  store.collecting = true;
  store.gcPending = 0;
  store.collections++;
  try {
    const candidates = updateRefs(store.rows);
    subtractRefs(candidates);
    const freed = deleteGarbage(store, moveUnreachable(candidates));
    store.cyclesReclaimed += freed;
    return freed;
  } finally {
    store.collecting = false;
  }
}
