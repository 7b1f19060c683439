// abi_imports.js: the `wasi_map` import object a module instance is given.
//
// Each function: checks every span (FAULT) through memory.js, runs the
// operation in ops.js, writes outputs only on OK (on RANGE only the needed
// size), and returns the errno.  A bad argument is an errno, never a trap;
// the one trap is a quota configured to trap (on_quota = "trap").  And one
// the guest causes without meaning to: host code cut off by a RangeError
// when the guest left it too little stack.  The wrapper notes where and
// marks the broker for repair (repair.js); the error unwinds as a trap,
// which the broker words (broker.js `_trapped`).

import { Errno, FUNCTIONS } from "./abi.js";
import { HostTrap } from "./errors.js";
import { checkSpans, getU64, put, SPANS } from "./memory.js";
import * as ops from "./ops.js";

/**
 * What an ABI function needs of its module: the operations' caller, and its memory.
 * @typedef {import("./ops.js").Caller & {memory: import("./memory.js").GuestMemory}} AbiModule
 */

/**
 * The operation behind each function: its arguments by name (i32 as u32,
 * i64 as BigInt) and its spans by name, in; the errno out.
 * @type {Record<string, (m: AbiModule, a: Record<string, any>, v: Record<string, Uint8Array>) => number>}
 */
const OPERATIONS = {
  open(m, a, v) {
    const r = ops.open(m, v.name_ptr, a.rights);
    if (r.err === Errno.OK) put.u32(v.out_h, /** @type {number} */ (r.h));
    return r.err;
  },
  new(m, a, v) {
    const r = ops.newMap(m);
    if (r.err === Errno.OK) put.u32(v.out_h, /** @type {number} */ (r.h));
    return r.err;
  },
  close: (m, a) => ops.close(m, a.h),
  clone(m, a, v) {
    const r = ops.clone(m, a.h, a.rights);
    if (r.err === Errno.OK) put.u32(v.out_h, /** @type {number} */ (r.h));
    return r.err;
  },
  get(m, a, v) {
    const r = ops.get(m, a.h, v.key_ptr, v.buf_ptr);
    if (r.err === Errno.OK || r.err === Errno.RANGE) put.u32(v.out_len, /** @type {number} */ (r.len));
    return r.err;
  },
  set: (m, a, v) => ops.set(m, a.h, v.key_ptr, v.val_ptr),
  delete: (m, a, v) => ops.del(m, a.h, v.key_ptr),
  exists(m, a, v) {
    const r = ops.exists(m, a.h, v.key_ptr);
    if (r.err === Errno.OK) put.u32(v.out_u32, /** @type {number} */ (r.value));
    return r.err;
  },
  len(m, a, v) {
    const r = ops.len(m, a.h);
    if (r.err === Errno.OK) put.u32(v.out_u32, /** @type {number} */ (r.value));
    return r.err;
  },
  keys(m, a, v) {
    const r = ops.keys(m, a.h, getU64(v.cursor_ptr), v.buf_ptr);
    if (r.err === Errno.OK || r.err === Errno.RANGE) put.u32(v.out_used, /** @type {number} */ (r.used));
    if (r.err === Errno.OK) {
      put.u32(v.out_count, /** @type {number} */ (r.count));
      put.u64(v.cursor_ptr, /** @type {bigint} */ (r.cursor));
    }
    return r.err;
  },
  incr(m, a, v) {
    const r = ops.incr(m, a.h, v.key_ptr, a.delta);
    if (r.err === Errno.OK) put.u64(v.out_i64, /** @type {bigint} */ (r.value));
    return r.err;
  },
  version(m, a, v) {
    const r = ops.version(m, a.h, v.key_ptr);
    if (r.err === Errno.OK) put.u64(v.out_u64, /** @type {bigint} */ (r.value));
    return r.err;
  },
  set_if: (m, a, v) => ops.setIf(m, a.h, v.key_ptr, v.val_ptr, a.expected),
  get_many(m, a, v) {
    const r = ops.getMany(m, a.h, v.keys_ptr, v.buf_ptr);
    if (r.err === Errno.OK || r.err === Errno.RANGE) put.u32(v.out_used, /** @type {number} */ (r.used));
    return r.err;
  },
  set_many: (m, a, v) => ops.setMany(m, a.h, v.items_ptr),
  set_map: (m, a, v) => ops.setMap(m, a.h, v.key_ptr, a.child_h),
  get_map(m, a, v) {
    const r = ops.getMap(m, a.h, v.key_ptr);
    if (r.err === Errno.OK) put.u32(v.out_h, /** @type {number} */ (r.h));
    return r.err;
  },
  watch_drop: (m, a) => ops.watchDrop(m, a.h, a.cookie),
};

for (const f of FUNCTIONS) {
  if (!OPERATIONS[f.name]) throw new Error(`abi_imports.js: no operation for ${f.name} (abi.js is newer)`);
}

/** The errno, or a trap when a quota is configured to trap. @param {AbiModule} m @param {number} err */
function done(m, err) {
  if (err === Errno.QUOTA && m.limits.on_quota === "trap") throw new HostTrap("wasi_map: module quota exceeded");
  return err;
}

/**
 * The `wasi_map` functions for module `m`.
 * @param {AbiModule & {cutIn: string | null}} m
 * @returns {Record<string, Function>}
 */
export function abiImports(m) {
  /** @type {Record<string, Function>} */
  const out = {};
  for (const f of FUNCTIONS) {
    const spans = SPANS[f.name];
    const names = f.params.map((p) => p.name);
    const wide = f.params.map((p) => p.wasm === "i64");
    const operation = OPERATIONS[f.name];
    const where = `wasi_map.${f.name}`;
    out[f.name] = (/** @type {Array<number | bigint>} */ ...raw) => {
      let err;
      try {
        /** @type {Record<string, Uint8Array>} */
        let views = {};
        if (spans.length) {
          const checked = checkSpans(m.memory.bytes(), spans, raw);
          if (!checked) return done(m, Errno.FAULT);
          views = checked;
        }
        /** @type {Record<string, any>} */
        const args = {};
        names.forEach((name, i) => {
          args[name] = wide[i] ? BigInt.asIntN(64, BigInt(raw[i])) : Number(raw[i]) >>> 0;
        });
        err = operation(m, args, views);
      } catch (e) {
        // Stores only, no call: the stack may still be too short for one.
        m.cutIn = where;
        m.store.needsRepair = true;
        throw e;
      }
      return done(m, err);
    };
  }
  return out;
}
