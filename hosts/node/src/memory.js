// memory.js: a guest's linear memory as ABI functions see it, and the one bounds check.
//
// Every pointer/length pair a guest passes goes through `span()` (as
// native/guest.h's span() in the C core), driven by abi.js's table of each
// function's spans: all are checked before anything else, so a call never
// half-happens because an output could not be written.  Memory may grow
// between calls: every call takes a fresh view.

import { FUNCTIONS } from "./abi.js";

const NOTHING = new Uint8Array(0);

/**
 * One span of a function: the position of its pointer parameter, and the
 * position of its length parameter or a fixed size.
 * @typedef {{name: string, ptr: number, len: number | null, size: number}} SpanSpec
 */

/**
 * The spans of every ABI function, by name, from abi.js: inputs and buffers
 * have a length parameter, outputs and in/outs a fixed size.
 * @type {Record<string, SpanSpec[]>}
 */
export const SPANS = Object.fromEntries(
  FUNCTIONS.map((f) => {
    const at = Object.fromEntries(f.params.map((p, i) => [p.name, i]));
    const spans = f.params.flatMap((p, i) => {
      if (p.shape === "input" || p.shape === "buffer") {
        return [{ name: p.name, ptr: i, len: at[/** @type {string} */ (p.length)], size: 0 }];
      }
      if (p.shape === "output" || p.shape === "inout") {
        return [{ name: p.name, ptr: i, len: null, size: /** @type {number} */ (p.size) }];
      }
      return [];
    });
    return [f.name, spans];
  }),
);

/** A module's linear memory, once known (a start function runs before it is). */
export class GuestMemory {
  constructor() {
    /** @type {WebAssembly.Memory | null} */
    this.memory = null;
  }

  /** The whole memory as bytes, now (empty before the memory is known). */
  bytes() {
    return this.memory ? new Uint8Array(this.memory.buffer) : NOTHING;
  }
}

/**
 * The one bounds check: [ptr, ptr + len) inside `mem`, computed without
 * wrapping (JS numbers are exact to 2^53, so a pair past 2^32 is refused).
 * @param {Uint8Array} mem @param {number} ptr u32 @param {number} len
 * @returns {Uint8Array | null}
 */
export function span(mem, ptr, len) {
  if (ptr + len > mem.length) return null;
  return mem.subarray(ptr, ptr + len);
}

/**
 * Every span of a call, by parameter name; null (FAULT) if any lies outside memory.
 * @param {Uint8Array} mem @param {SpanSpec[]} spans @param {ArrayLike<number | bigint>} args
 * @returns {Record<string, Uint8Array> | null}
 */
export function checkSpans(mem, spans, args) {
  /** @type {Record<string, Uint8Array>} */
  const views = {};
  for (const s of spans) {
    const len = s.len === null ? s.size : Number(args[s.len]) >>> 0;
    const view = span(mem, Number(args[s.ptr]) >>> 0, len);
    if (!view) return null;
    views[s.name] = view;
  }
  return views;
}

/** Little-endian writes of fixed outputs (no alignment needed). */
export const put = {
  /** @param {Uint8Array} at @param {number} v */
  u32(at, v) {
    new DataView(at.buffer, at.byteOffset, 4).setUint32(0, v >>> 0, true);
  },
  /** @param {Uint8Array} at @param {bigint} v */
  u64(at, v) {
    new DataView(at.buffer, at.byteOffset, 8).setBigUint64(0, BigInt.asUintN(64, v), true);
  },
};

/** @param {Uint8Array} at */
export function getU64(at) {
  return new DataView(at.buffer, at.byteOffset, 8).getBigUint64(0, true);
}
