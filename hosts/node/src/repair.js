// repair.js: the broker's books recomputed from what exists, after host code was cut off.
//
// V8 runs host functions on the guest's own stack: a guest that recursed
// almost to the limit can make an ABI function (or a pass between modules)
// throw RangeError between two of its steps.  (wasmtime keeps native stack
// for host functions: the Python host never sees this.)  The call traps,
// its module is torn down as for any trap it began, and before anything
// else runs -- before the teardown, so that it releases by right counts --
// the broker calls `repair`.
//
// The operations are ordered so that what a guest can see changes in one
// step that makes no call (ops.js, handles.js, maps.js): what a cut leaves
// is, besides counts, a key inserted but not yet written, a map made but
// not yet handed out, or handles a pass issued before it was cut; those
// are undone here, as if the operation had not begun.  Everything else is
// recomputed, the invariant stated once:
//
//   map.refcount    owning handles to it in every module's table
//                   + references to it stored in live maps + 1 while named
//   map.refsIn/Out  references stored in live maps, to it / by it
//   account         bytes: key + value (8 for a map) + ENTRY_COST for every
//                   live entry it wrote last, + MAP_COST for every live
//                   anonymous map it made; entries: those entries
//   watchesUsed     its registrations on live maps + its queued notices
//   handles.live    slots not free; none borrowed, none lent (no call runs)
//
// Then every map whose count is 0 is reclaimed the usual way (cascading,
// drop notices queued), and the collector runs if the releases the cut
// skipped bring it to its threshold.

import { MAP_COST } from "./abi.js";
import { HandleState } from "./handles.js";
import { entrySize, indexKey, ValueKind } from "./table.js";

/**
 * @typedef {import("./module.js").ModuleInstance} ModuleInstance
 * @typedef {import("./maps.js").MapObject} MapObject
 */

/**
 * Put `store` and `instances` (every instance not unloaded) right; the maps reclaimed.
 * @param {import("./maps.js").MapStore} store @param {ModuleInstance[]} instances
 * @param {import("./accounts.js").Account} host
 */
export function repair(store, instances, host) {
  store.needsRepair = false;
  const live = instances.filter((inst) => !inst.unloaded);
  undoPasses(store);
  for (const map of store.live) undoInserts(map);
  const before = new Map([...store.live].map((map) => [map, map.refcount]));
  recount(store, live);
  recharge(store, live, host);
  forgetFresh(store);
  // A release the cut skipped that left a map referenced by maps alive counts for the collector, as it would have.
  for (const [map, was] of before) if (map.alive && map.refcount > 0 && map.refcount < was && map.refsIn) store.gcPending += was - map.refcount;
  let freed = 0;
  for (const map of store.rows) if (map && map.alive && map.refcount === 0) freed += store.reclaim([map]);
  if (store.gcThreshold && store.gcPending >= store.gcThreshold && !store.collecting) freed += store.collect();
  return freed;
}

/** Take back the handles a cut pass issued into its receiver (handles.js undoIssues). @param {import("./maps.js").MapStore} store */
function undoPasses(store) {
  const cut = store.cutPasses;
  store.cutPasses = [];
  for (const [inst, head, free, length, count] of cut.reverse()) {
    const t = inst.handles;
    if (inst.unloaded || inst.tornDown) continue; // its table is going anyway
    const issued = free - t.freeCount + (t.slots.length - length);
    if (t.live - count !== issued || issued < 0) continue; // something else happened since: left to the recount
    t.undoIssues(head, free, length, count);
  }
}

/** Keys inserted but never written (kind NONE still indexed) go, their sequence numbers too. @param {MapObject} map */
function undoInserts(map) {
  const table = map.table;
  const cut = [...table.index.values()].filter((e) => e.kind === ValueKind.NONE);
  if (!cut.length && table.entries.length === table.live + table.dead) return;
  for (const e of cut) table.index.delete(indexKey(e.key));
  table.entries = table.entries.filter((e) => e.kind !== ValueKind.NONE); // the order, so the cursor, is kept
  table.dead = 0;
  const seqs = new Set(cut.map((e) => e.seq));
  while (seqs.has(table.nextSeq - 1)) table.nextSeq--;
}

/** Counts, references, handle tables. @param {import("./maps.js").MapStore} store @param {ModuleInstance[]} instances */
function recount(store, instances) {
  for (const map of store.live) {
    map.refcount = map.name !== null && store.names.get(map.name) === map ? 1 : 0;
    map.refsIn = map.refsOut = 0;
    map.dying = false;
    map.gc = 0;
  }
  for (const map of store.live) {
    for (const e of map.table.liveEntries()) {
      if (e.kind !== ValueKind.MAP || !e.child) continue;
      e.child.refcount++;
      e.child.refsIn++;
      map.refsOut++;
    }
  }
  for (const inst of instances) {
    const t = inst.handles;
    for (const slot of t.slots) {
      if (slot.state === HandleState.FREE) continue;
      slot.busy = 0; // no call is running: nothing is lent
      // A borrow outlives no call; a handle to a map that is gone is no handle.
      if (slot.state === HandleState.BORROW || !slot.map?.alive) t.release(slot);
      else slot.map.refcount++;
    }
  }
  store.liveAnon = [...store.live].filter((map) => map.name === null).length;
  store.liveNamed = store.live.size - store.liveAnon;
}

/**
 * Every account's bytes and entries, every module's watches.
 * @param {import("./maps.js").MapStore} store @param {ModuleInstance[]} instances @param {import("./accounts.js").Account} host
 */
function recharge(store, instances, host) {
  const accounts = new Set([host, ...instances.map((inst) => inst.account)]);
  for (const map of store.live) {
    if (map.account) accounts.add(map.account);
    for (const e of map.table.liveEntries()) if (e.account) accounts.add(e.account);
  }
  for (const account of accounts) account.bytes = account.entries = 0;
  for (const map of store.live) {
    if (map.account && map.name === null) map.account.charge(MAP_COST, 0);
    for (const e of map.table.liveEntries()) e.account?.charge(entrySize(e), 1);
  }
  /** @type {Map<object, number>} */
  const watches = new Map(instances.map((inst) => [inst, 0]));
  const count = (/** @type {{owner: object}} */ w) => watches.set(w.owner, (watches.get(w.owner) ?? 0) + 1);
  for (const map of store.live) map.watches.forEach(count);
  store.notices.forEach(count);
  for (const inst of instances) inst.watchesUsed = /** @type {number} */ (watches.get(inst));
}

/**
 * A map the cut operation made but never handed out goes as if never made:
 * no reclaim counted, no notice, its row back on top of the free rows.
 * @param {import("./maps.js").MapStore} store
 */
function forgetFresh(store) {
  const map = store.fresh;
  store.fresh = null;
  if (!map || !map.alive) return;
  const named = map.name !== null && store.names.get(map.name) === map;
  if (map.refcount !== (named ? 1 : 0) || map.table.live || map.watches.length) return; // handed out after all
  if (named) store.names.delete(/** @type {string} */ (map.name));
  store.free(map);
  store.reclaimed--;
}
