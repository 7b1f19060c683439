// ownership.js: how a handle passes from one module to another (native/ownership.c, link.c's wm_pass_all).
//
// The rules, as broker/ownership.py states them for people:
//   own     the handle moves: the giver's number turns STALE, the receiver
//           owns a new one.  Only an owning handle that is not lent out may
//           move (a borrowed one: ACCES; a lent one: BUSY).
//   borrow  the receiver gets a borrowed handle (not counted) with the
//           giver's rights; the giver's handle is busy (no close, no move)
//           until the borrow ends, when the call returns.
//   share   the receiver gets its own owning handle: one reference more.
// A ":r" pass (PASS_READONLY) gives the receiver READ only.  Checking and
// applying are split so that a call with several handle parameters passes
// all of them or none.

import { Errno, MAX_HANDLE_ARGS, PASS_KIND_MASK, PASS_READONLY, PassKind, READ, RIGHTS_ALL } from "./abi.js";
import { HandleState } from "./handles.js";

/** A handle lent to this many calls at once is BUSY (a u16 in the C core). */
export const MAX_LENDS = 0xffff;

/** The PassKind of a pass code (without the :r bit). @param {number} how */
export const kindOf = (how) => how & PASS_KIND_MASK;

/**
 * The pass code of a declared kind ("own", "borrow:r", "i32"...).
 * @param {string | undefined} kind
 */
export function passCode(kind) {
  if (kind === undefined) return PassKind.PLAIN;
  const [base, suffix] = kind.split(":");
  const code = { own: PassKind.OWN, borrow: PassKind.BORROW, share: PassKind.SHARE }[base] ?? PassKind.PLAIN;
  return code | (code !== PassKind.PLAIN && suffix === "r" ? PASS_READONLY : 0);
}

/**
 * Every parameter's pass code, then every result's (the missing ones plain).
 * @param {import("./wasm.js").FuncType} type @param {import("./limits.js").ExportDecl | undefined} decl
 */
export function passCodes(type, decl) {
  const params = type.params.map((_, i) => passCode(decl?.params[i]));
  const results = type.results.map((_, i) => passCode(decl?.results[i]));
  return Uint8Array.from([...params, ...results]);
}

/**
 * What a pass needs of a module: its handle table, its limit, and the maps.
 * @typedef {{handles: import("./handles.js").HandleTable, limits: {handles: number}, store: import("./maps.js").MapStore}} Holder
 */

/**
 * May `from` pass handle `h` as `how`?  OK with the slot, or the errno.
 * @param {Holder} from @param {number} h @param {number} how
 */
export function passCheck(from, h, how) {
  const found = from.handles.lookup(h);
  if (found.err) return found;
  const slot = /** @type {import("./handles.js").HandleSlot} */ (found.slot);
  switch (kindOf(how)) {
    case PassKind.OWN:
      if (slot.state !== HandleState.OWN) return { err: Errno.ACCES }; // not the holder's to give away
      if (slot.busy) return { err: Errno.BUSY };
      break;
    case PassKind.BORROW:
      if (slot.busy === MAX_LENDS) return { err: Errno.BUSY };
      break;
    default:
      break;
  }
  return found;
}

/**
 * Pass a checked handle: the giver's side first, then the receiver's new handle (room reserved).
 * @param {Holder} from @param {import("./handles.js").HandleSlot} slot @param {number} how
 * @param {number} mask rights the pass may keep @param {Holder} to
 * @returns {number} the receiver's handle
 */
export function passApply(from, slot, how, mask, to) {
  let rights = slot.rights & mask;
  if (how & PASS_READONLY) rights &= READ;
  const map = /** @type {import("./maps.js").MapObject} */ (slot.map);
  let state = HandleState.OWN;
  switch (kindOf(how)) {
    case PassKind.OWN:
      from.handles.release(slot);
      break;
    case PassKind.SHARE:
      from.store.incref(map);
      break;
    case PassKind.BORROW:
      slot.busy++;
      state = HandleState.BORROW;
      break;
  }
  return /** @type {number} */ (to.handles.issue(Infinity, state, map, rights).h);
}

/**
 * A borrow ends: the lender's handle is no longer busy for it, and the
 * callee's borrowed handle is closed if it is still open (true then: it was
 * left open).
 * @param {Holder} lender @param {number} lenderH @param {Holder} callee @param {number} calleeH
 */
export function borrowEnd(lender, lenderH, callee, calleeH) {
  const lent = lender.handles.lookup(lenderH);
  if (lent.slot && lent.slot.busy) lent.slot.busy--;
  const kept = callee.handles.lookup(calleeH);
  if (kept.slot && kept.slot.state === HandleState.BORROW) {
    callee.handles.release(kept.slot);
    return true;
  }
  return false;
}

/** Whether `callee` still holds borrowed handle `h`. @param {Holder} callee @param {number} h */
export function stillBorrowed(callee, h) {
  const kept = callee.handles.lookup(h);
  return Boolean(kept.slot && kept.slot.state === HandleState.BORROW);
}

/**
 * A pass that failed: its errno, which value (`bad`), whether the
 * receiver's table was the reason, whether a moving handle came twice.
 * @typedef {{err: number, bad: number, receiverFull: boolean, twice: boolean}} PassFailure
 */

/**
 * Pass the handles among vals[0..count) whose code `how[offset + i]` is not
 * plain from `from` to `to`, all or none; each borrow is recorded in
 * `lends` as [lender's handle, callee's handle].  null, or the failure.
 * `vals` is changed in place: each passed handle becomes the receiver's.
 * @param {Array<number | bigint>} vals @param {Uint8Array} how @param {number} offset @param {number} count
 * @param {Uint8Array | null} masks @param {Holder} from @param {Holder} to @param {number[] | null} lends
 * @returns {PassFailure | null}
 */
export function passAll(vals, how, offset, count, masks, from, to, lends) {
  /** @type {number[]} */
  const which = [];
  for (let i = 0; i < count; i++) {
    const code = how[offset + i];
    if (kindOf(code) === PassKind.PLAIN) continue;
    if (which.length === MAX_HANDLE_ARGS) return { err: Errno.INVAL, bad: i, receiverFull: false, twice: false };
    const h = Number(vals[i]) >>> 0;
    const found = passCheck(from, h, code);
    if (found.err) return { err: found.err, bad: i, receiverFull: false, twice: false };
    // A handle that moves may not be passed twice in one call.
    for (const other of which) {
      const moves = kindOf(code) === PassKind.OWN || kindOf(how[offset + other]) === PassKind.OWN;
      if (Number(vals[other]) >>> 0 === h && moves) return { err: Errno.BUSY, bad: i, receiverFull: false, twice: true };
    }
    which.push(i);
  }
  const err = to.handles.reserve(to.limits.handles, which.length);
  if (err) return { err, bad: which.length ? which[0] : 0, receiverFull: true, twice: false };
  for (const i of which) {
    const h = Number(vals[i]) >>> 0;
    // Checked above and nothing has closed it since: this lookup succeeds.
    const slot = /** @type {import("./handles.js").HandleSlot} */ (from.handles.lookup(h).slot);
    const out = passApply(from, slot, how[offset + i], masks ? masks[i] : RIGHTS_ALL, to);
    vals[i] = out;
    if (lends && kindOf(how[offset + i]) === PassKind.BORROW) lends.push(h, out);
  }
  return null;
}
