// traps.js: the traps of calls between modules, in words (native/traps.c).
//
// A handle that could not pass becomes a trap that names the link, the
// parameter or result, the errno, and what the module can do instead --
// the same words as the C core's wm_pass_explain, so a message reads the
// same on both hosts.

import { Errno, MAX_HANDLE_ARGS, PassKind } from "./abi.js";
import { kindOf, MAX_LENDS } from "./ownership.js";

const ERRNO_NAMES = Object.fromEntries(Object.entries(Errno).map(([name, n]) => [n, name]));
const KIND_NAMES = Object.fromEntries(Object.entries(PassKind).map(([name, n]) => [n, name.toLowerCase()]));

const NEW_HANDLE = "a handle it got from open, new, clone, get_map or a call";
const NO_ROOM =
  "has no room for another handle (its `handles` limit, or every handle number it may be " +
  "issued is spent): raise its limit, have it close handles it no longer needs, or reload it";

/**
 * Why handle `handle` could not pass as `how` (errno `err`), and what to do instead.
 * @param {number} err @param {number} how @param {{result: boolean, twice: boolean}} flags @param {number} handle
 */
export function passExplain(err, how, flags, handle) {
  const { result } = flags;
  const own = kindOf(how) === PassKind.OWN;
  const giver = result ? "the callee" : "the caller";
  const pass = result ? "returned" : "passed";
  const verb = result ? "return" : "pass";
  switch (err) {
    case Errno.BADF:
      return `${handle} is not a handle ${giver} was issued: ${verb} ${NEW_HANDLE}`;
    case Errno.STALE:
      return `handle ${handle} was closed, or moved away as own, before it was ${pass}: ${verb} a live handle`;
    case Errno.ACCES:
      if (own && result) {
        return (
          `handle ${handle} is borrowed (lent to the callee for this call), and a borrowed handle ` +
          "cannot be returned as own: declare the result share, or return an owned handle (clone makes one)"
        );
      }
      if (own) {
        return (
          `handle ${handle} is borrowed (lent to the caller for the call it is in), and a borrowed ` +
          "handle cannot be passed as own: pass it as borrow or share, or pass an owned handle (clone makes one)"
        );
      }
      break;
    case Errno.BUSY:
      if (flags.twice) {
        return `handle ${handle} is ${pass} twice, once as own: a handle that moves can go only once; ${verb} a clone for the other`;
      }
      if (own) {
        return (
          `handle ${handle} is lent to a call that has not returned (passed as borrow), and cannot ` +
          `move until it does: ${verb} a clone as own${result ? "" : ", or pass it as borrow or share"}`
        );
      }
      return `handle ${handle} is lent to ${MAX_LENDS} calls at once, the most there can be: let one return first`;
    case Errno.QUOTA:
      return `${result ? "the caller" : "the callee"} ${NO_ROOM}`;
    case Errno.INVAL:
      return `more than ${MAX_HANDLE_ARGS} handles in one call`;
    default:
      break;
  }
  return `handle ${handle} cannot be ${pass} as ${KIND_NAMES[kindOf(how)]}`;
}

/**
 * The trap message of a handle that could not pass through link `label`.
 * @param {string} label @param {number} err @param {number} index @param {number} how
 * @param {{result: boolean, twice: boolean}} flags @param {number} handle
 */
export function passTrapMessage(label, err, index, how, flags, handle) {
  const why = passExplain(err, how, flags, handle);
  return `wasi_map: ${label}: ${flags.result ? "result" : "parameter"} ${index} (${KIND_NAMES[kindOf(how)]}): ${ERRNO_NAMES[err]}: ${why}`;
}
