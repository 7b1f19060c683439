// handles.js: one module's handle table, numbered exactly as native/handles.c numbers.
//
// A handle is a 31-bit number: a slot index in the low HANDLE_INDEX_BITS
// bits and the slot's generation (1..HANDLE_MAX_GEN) above.  Each reuse of
// a slot bumps its generation, so a closed handle is told apart from a live
// one (STALE) and from a number never issued (BADF).  Freed slots are
// reused last-freed-first, as the C free list does, so the same calls give
// the same numbers on both hosts (the shared test vectors rely on it).  A
// slot whose generation reaches the maximum is retired for good.

import { Errno, HANDLE_INDEX_BITS, HANDLE_MAX_GEN } from "./abi.js";

export const MAX_SLOTS = 2 ** HANDLE_INDEX_BITS;
const INDEX_MASK = MAX_SLOTS - 1;

/** What a slot holds (native/abi_gen.h WM_H_*). */
export const HandleState = Object.freeze({ FREE: 0, OWN: 1, BORROW: 2 });

/**
 * One live handle.
 * @typedef {object} HandleSlot
 * @property {number} gen    generation of the last issue (0: never issued)
 * @property {number} state  HandleState
 * @property {import("./maps.js").MapObject | null} map
 * @property {number} rights READ | WRITE bits
 * @property {number} busy   lends in progress (close gives BUSY); cross-module borrows set it
 * @property {number} nextFree index + 1 of the next free slot (0 ends the list)
 * @property {number} index    its place in the table
 */

/** Either an errno, or OK with the live slot. */
export class HandleTable {
  /** @param {{wraps?: boolean}} [options] wraps: reuse spent slots (the host's table) */
  constructor(options = {}) {
    /** @type {HandleSlot[]} */
    this.slots = [];
    this.freeHead = 0; // index + 1 of the first reusable slot; 0 = none
    this.freeCount = 0;
    this.live = 0;
    this.wraps = Boolean(options.wraps);
  }

  /**
   * Resolve a handle number (any JS number; read as u32).
   * @param {number} h
   * @returns {{err: number, slot?: HandleSlot}}
   */
  lookup(h) {
    const n = h >>> 0;
    const gen = n >>> HANDLE_INDEX_BITS;
    const index = n & INDEX_MASK;
    if (gen === 0 || gen > HANDLE_MAX_GEN || index >= this.slots.length) return { err: Errno.BADF };
    const slot = this.slots[index];
    if (gen > slot.gen) return { err: Errno.BADF }; // that generation was never issued
    if (gen < slot.gen || slot.state === HandleState.FREE) return { err: Errno.STALE };
    return { err: Errno.OK, slot };
  }

  /**
   * Issue a new handle; QUOTA when `limit` live handles exist or the index space is spent.
   * @param {number} limit @param {number} state @param {import("./maps.js").MapObject} map
   * @param {number} rights
   * @returns {{err: number, h?: number}}
   */
  issue(limit, state, map, rights) {
    if (this.live >= limit) return { err: Errno.QUOTA };
    let index;
    if (this.freeHead) {
      index = this.freeHead - 1;
      this.freeHead = this.slots[index].nextFree;
      this.freeCount--;
    } else {
      if (this.slots.length + 1 > MAX_SLOTS) return { err: Errno.QUOTA };
      index = this.slots.length;
      this.slots.push({ gen: 0, state: HandleState.FREE, map: null, rights: 0, busy: 0, nextFree: 0, index });
    }
    const slot = this.slots[index];
    slot.gen++;
    slot.map = map;
    slot.state = state;
    slot.rights = rights;
    slot.busy = 0;
    // nextFree is left as it was: undoIssues walks the old free list through it.
    this.live++;
    // No call from the first change on: an issue is whole or not at all (repair.js).
    return { err: Errno.OK, h: ((slot.gen << HANDLE_INDEX_BITS) | index) >>> 0 };
  }

  /**
   * Room for `n` more handles without failing: QUOTA otherwise (cross-module passes reserve first).
   * @param {number} limit @param {number} n
   */
  reserve(limit, n) {
    if (this.live + n > limit) return Errno.QUOTA;
    if (n <= this.freeCount) return Errno.OK;
    return this.slots.length + (n - this.freeCount) > MAX_SLOTS ? Errno.QUOTA : Errno.OK;
  }

  /**
   * Take back every handle issued since the table had this free list, size
   * and count (nothing else happened since): a pass cut off half-way
   * (repair.js).  Numbers come out as they would have: the slots go back
   * on the free list in their old order, at their old generation.
   * @param {number} head @param {number} free @param {number} length @param {number} live
   */
  undoIssues(head, free, length, live) {
    let index = head;
    for (let n = free - this.freeCount; n > 0; n--) {
      const slot = this.slots[index - 1];
      slot.state = HandleState.FREE;
      slot.map = null;
      slot.gen--;
      index = slot.nextFree;
    }
    this.slots.length = length;
    this.freeHead = head;
    this.freeCount = free;
    this.live = live;
  }

  /**
   * Free a live slot (the caller releases the map it reached).
   * @param {HandleSlot} slot
   */
  release(slot) {
    slot.state = HandleState.FREE;
    slot.map = null;
    this.live--;
    if (slot.gen === HANDLE_MAX_GEN && this.wraps) slot.gen = 0; // next issue: generation 1
    if (slot.gen < HANDLE_MAX_GEN) {
      // else retired: never reused, so a stale number never aliases a new one
      slot.nextFree = this.freeHead;
      this.freeHead = slot.index + 1;
      this.freeCount++;
    }
  }

  /**
   * Every live handle as [number, slot], in slot order (teardown closes them so).
   * @returns {Array<[number, HandleSlot]>}
   */
  liveHandles() {
    /** @type {Array<[number, HandleSlot]>} */
    const out = [];
    this.slots.forEach((slot, index) => {
      if (slot.state !== HandleState.FREE) out.push([handleNumber(slot.gen, index), slot]);
    });
    return out;
  }
}

/** @param {number} gen @param {number} index */
export function handleNumber(gen, index) {
  return ((gen << HANDLE_INDEX_BITS) | index) >>> 0;
}
