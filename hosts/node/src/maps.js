// maps.js: every map of a broker, their counts, reclaim at zero, names and drop notices.
//
// As native/refcount.c: a map's count is the owning handles to it (any
// module), the references stored in live maps (set_map), and one while it
// is named.  Borrowed handles do not count.  At zero the map is reclaimed at
// once: its entries are credited back to their writers, the maps it
// referenced lose a reference each (which may reclaim them in turn), and its
// drop-notice registrations are queued.  The cascade runs over a work list,
// so a chain of any length uses no stack.  Cycles are left to the cycle
// collector (gc.js), which runs after `gcThreshold` releases that left a
// map referenced by other maps alive, and on demand.  Each map has a row
// number reused last-freed-first, as the C core's refcount table does: the
// collector visits candidates in row order, so what it reclaims, and the
// order of their drop notices, agree with the Python host.

import { MAP_COST } from "./abi.js";
import { creditEntry } from "./accounts.js";
import { collect, DEFAULT_GC_THRESHOLD } from "./gc.js";
import { EntryTable, ValueKind } from "./table.js";

/**
 * One drop-notice registration: module `owner` wants `cookie` back.
 * @typedef {{owner: object, cookie: bigint}} Watch
 */

export class MapObject {
  /** @param {number} id @param {string | null} name @param {number} row */
  constructor(id, name, row) {
    this.id = id;
    this.row = row; // its row in the C core's refcount table (collection order)
    this.name = name;
    this.table = new EntryTable();
    this.refcount = 1;
    this.refsIn = 0; // references to it stored in maps
    this.refsOut = 0; // references it stores
    this.clock = 0; // the map's version clock: every write takes clock + 1
    /** @type {import("./accounts.js").Account | null} charged MAP_COST (anonymous maps) */
    this.account = null;
    /** @type {Watch[]} in registration order */
    this.watches = [];
    this.alive = true;
    this.gc = 0; // the collector's working count (gc.js)
    this.dying = false; // garbage the collector is freeing
  }
}


export class MapStore {
  constructor() {
    this.nextId = 0;
    /** @type {Set<MapObject>} */
    this.live = new Set();
    this.liveAnon = 0;
    this.liveNamed = 0;
    this.reclaimed = 0;
    /** @type {Map<string, MapObject>} */
    this.names = new Map();
    /** @type {Watch[]} queued notices, in the order their maps were reclaimed */
    this.notices = [];
    /** @type {Array<MapObject | null>} by row; null: a free row */
    this.rows = [];
    /** @type {number[]} free rows, the last freed on top */
    this.freeRows = [];
    /** @type {number | bigint} releases that may have cut a cycle loose before a collection; 0: never by itself */
    this.gcThreshold = DEFAULT_GC_THRESHOLD;
    this.gcPending = 0;
    this.collecting = false;
    this.collections = 0;
    this.cyclesReclaimed = 0;
    // The map the running operation made, until it hands it out (a handle
    // issued, or released): one still fresh when a call is cut off was never
    // handed out, and repair.js forgets it as if it had never been made.
    /** @type {MapObject | null} */
    this.fresh = null;
    /** host code was cut off mid-operation: the counts must be recomputed (repair.js) */
    this.needsRepair = false;
    /**
     * Handle tables a pass was issuing into when it was cut off, as they were
     * before it: [instance, freeHead, freeCount, slots.length, live].
     * @type {Array<[any, number, number, number, number]>}
     */
    this.cutPasses = [];
  }

  /** A new map with count 1 (its first owner's). @param {string | null} name */
  alloc(name = null) {
    const map = new MapObject(this.nextId + 1, name, -1);
    // No call from here on (builtins only): a map is registered whole or not at all (repair.js).
    const row = this.freeRows.length ? /** @type {number} */ (this.freeRows.pop()) : this.rows.length;
    map.row = row;
    this.nextId++;
    this.rows[row] = map;
    this.live.add(map);
    if (name === null) this.liveAnon++;
    else this.liveNamed++;
    this.fresh = map;
    return map;
  }

  /** The named map, created on first open (the name holds its one count). @param {string} name */
  named(name) {
    let map = this.names.get(name);
    if (!map) {
      map = this.alloc(name);
      this.names.set(name, map);
    }
    return map;
  }


  /** @param {MapObject} map */
  incref(map) {
    map.refcount++;
  }

  /** `parent` now stores a reference to `child`. @param {MapObject} parent @param {MapObject} child */
  refAdd(parent, child) {
    child.refcount++;
    child.refsIn++;
    parent.refsOut++;
  }

  /**
   * `parent` no longer stores that reference; the caller releases `child` once the entry is done.
   * @param {MapObject} parent @param {MapObject} child
   */
  refForget(parent, child) {
    parent.refsOut--;
    child.refsIn--;
  }

  /**
   * One count of `map` is gone (not a reference from a map: refForget
   * first); reclaim it at zero, and what only it kept alive.  A map left
   * alive but referenced from maps may now be in a cycle nothing reaches:
   * after gcThreshold of those, the collector runs.
   * @param {MapObject} map
   */
  release(map) {
    if (--map.refcount === 0) this.reclaim([map]);
    else if (map.refsIn) this.gcPending++;
    if (this.gcThreshold && this.gcPending >= this.gcThreshold && !this.collecting) collect(this);
  }

  /** Reclaim every map of `pending` (count zero), and what they alone kept alive; how many. @param {MapObject[]} pending */
  reclaim(pending) {
    let freed = 0;
    while (pending.length) {
      const dying = /** @type {MapObject} */ (pending.pop());
      this.dropEntries(dying, pending);
      this.free(dying);
      freed++;
    }
    return freed;
  }

  /**
   * Drop `map`'s entries, crediting their writers; each map it referenced
   * loses a reference (onto `pending` at zero), unless it is garbage being
   * freed with it.
   * @param {MapObject} map @param {MapObject[]} pending
   */
  dropEntries(map, pending) {
    for (const e of map.table.liveEntries()) {
      creditEntry(e);
      if (e.kind !== ValueKind.MAP || !e.child) continue;
      const child = e.child;
      if (child.dying) continue; // freed with this one by the collector
      child.refsIn--;
      if (--child.refcount === 0) pending.push(child);
      else if (child.refsIn) this.gcPending++; // it may now be a cycle nothing else reaches
    }
    map.table.clear();
  }

  /** Run the cycle collector now; the number of maps reclaimed. */
  collect() {
    return collect(this);
  }

  /** Queue its notices, credit its maker, forget it. @param {MapObject} map */
  free(map) {
    this.notices.push(...map.watches);
    map.watches = [];
    if (map.account) map.account.credit(MAP_COST, 0);
    map.account = null;
    map.alive = false;
    map.dying = false;
    map.refsIn = map.refsOut = 0;
    this.rows[map.row] = null;
    this.freeRows.push(map.row);
    this.live.delete(map);
    this.reclaimed++;
    if (map.name === null) this.liveAnon--;
    else this.liveNamed--;
  }

  /** Take every queued notice (each frees its module's `watches` quota). */
  takeNotices() {
    const taken = this.notices;
    this.notices = [];
    for (const w of taken) /** @type {any} */ (w.owner).watchesUsed--;
    return taken;
  }

  /** Forget every registration of `owner`: on live maps and queued. @param {object} owner */
  forgetWatches(owner) {
    for (const map of this.live) {
      if (map.watches.length) map.watches = map.watches.filter((w) => w.owner !== owner);
    }
    this.notices = this.notices.filter((w) => w.owner !== owner);
  }
}
