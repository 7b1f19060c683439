// table.js: one map's entries, in insertion order, with a sequence-number cursor.
//
// As native/table.c: every entry carries a sequence number that only grows
// (re-setting a key keeps it, deleting and re-adding gives a new one); the
// entry array stays sorted by it, so the `keys` cursor "next seq to list"
// survives any insert, delete or compaction, and a key present for the
// whole listing appears exactly once.  A JS Map indexes the live entries.

import { ENTRY_COST } from "./abi.js";

/** What an entry holds (native/table.h WM_VAL_*). */
export const ValueKind = Object.freeze({ NONE: 0, BYTES: 1, MAP: 2 });

/**
 * One entry of a map.
 * @typedef {object} Entry
 * @property {number} seq        insertion order
 * @property {number} version    the map's clock at the last write
 * @property {Uint8Array} key
 * @property {number} kind       ValueKind
 * @property {Uint8Array} value  the bytes (kind BYTES; empty otherwise)
 * @property {import("./maps.js").MapObject | null} child  the referenced map (kind MAP)
 * @property {import("./accounts.js").Account | null} account  charged for the entry
 */

/** @param {Uint8Array} key */
export const indexKey = (key) => Buffer.from(key.buffer, key.byteOffset, key.length).toString("latin1");

/** What an entry costs its account (docs/abi.md "What `bytes` charges"). */
export function entrySize(/** @type {Entry} */ e) {
  return e.key.length + (e.kind === ValueKind.MAP ? 8 : e.value.length) + ENTRY_COST;
}

export class EntryTable {
  constructor() {
    /** @type {Entry[]} sorted by seq; deleted entries (kind NONE) until compacted */
    this.entries = [];
    /** @type {Map<string, Entry>} */
    this.index = new Map();
    this.nextSeq = 1;
    this.dead = 0;
  }

  get live() {
    return this.index.size;
  }

  /** @param {Uint8Array} key */
  find(key) {
    return this.index.get(indexKey(key));
  }

  /**
   * Append an entry for an absent key (a copy of `key` is kept).
   * @param {Uint8Array} key
   * @returns {Entry}
   */
  insert(key) {
    const k = indexKey(key);
    /** @type {Entry} */
    const e = {
      seq: this.nextSeq,
      version: 0,
      key: Uint8Array.from(key),
      kind: ValueKind.NONE,
      value: EMPTY,
      child: null,
      account: null,
    };
    this.entries.push(e);
    this.index.set(k, e);
    this.nextSeq++;
    return e;
  }

  /** Delete an entry (the caller has released what it held). @param {Entry} e */
  remove(e) {
    this.index.delete(indexKey(e.key));
    e.kind = ValueKind.NONE;
    e.child = null;
    e.value = EMPTY;
    this.dead++;
    // Compact when mostly dead: amortised O(1), and the order (so the cursor) is kept.
    if (this.dead > 16 && this.dead > this.index.size) {
      this.entries = this.entries.filter((x) => x.kind !== ValueKind.NONE);
      this.dead = 0;
    }
  }

  /**
   * Position of the first entry (live or not) whose seq >= cursor.
   * @param {bigint} cursor a u64
   */
  seek(cursor) {
    if (cursor >= BigInt(this.nextSeq)) return this.entries.length;
    const c = Number(cursor);
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid].seq < c) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Every live entry, in insertion order. */
  *liveEntries() {
    for (const e of this.entries) if (e.kind !== ValueKind.NONE) yield e;
  }

  /** Forget every entry (the map is reclaimed; the caller released them). */
  clear() {
    this.entries = [];
    this.index.clear();
    this.dead = 0;
  }
}

const EMPTY = new Uint8Array(0);
