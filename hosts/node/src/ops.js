// ops.js: the map operations of the ABI, after the FAULT check.
//
// As native/ops.c, ops_memory.c and ops_handles.c, each operation checks in
// the ABI's order -- INVAL (argument values), BADF/STALE (the handle), ACCES
// (rights), TOOBIG (sizes) -- then does the operation, whose own errnos
// follow.  Inputs are views of guest memory (already bounds-checked by
// memory.js); outputs are returned, and abi_imports.js writes them only on
// OK (RANGE: the needed size).  A write checks the quota before it changes
// anything, with the same charging as the C core, so QUOTA comes at the
// same call on both hosts.
//
// V8 runs these on the guest's stack, so any call below may throw
// RangeError when a guest recursed almost to the limit (repair.js).  What a
// guest can see -- an entry's value, a handle -- therefore changes in one
// step that makes no call (the commit): before it only a key inserted but
// not yet written, or a map made but not yet handed out (both undone by the
// repair); after it only counts, charges and releases (recomputed by it).

import { ENTRY_COST, Errno, MAP_COST, MAX_NAME_LEN, RIGHTS_ALL, FUNCTIONS } from "./abi.js";
import { HandleState } from "./handles.js";
import { entrySize, ValueKind } from "./table.js";

/**
 * What an operation needs of the module making it.
 * @typedef {object} Caller
 * @property {import("./handles.js").HandleTable} handles
 * @property {import("./limits.js").Limits} limits
 * @property {import("./accounts.js").Account} account
 * @property {Map<string, number> | null} grants  null: the host (opens any name)
 * @property {number} watchesUsed
 * @property {import("./maps.js").MapStore} store
 */

/** The rights each function's handle needs, from abi.js (param shape "handle", `needs`). */
const NEEDS = Object.fromEntries(
  FUNCTIONS.map((f) => [f.name, f.params.filter((p) => p.shape === "handle").map((p) => p.needs ?? 0)]),
);

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const EMPTY = new Uint8Array(0);

/** @typedef {{err: number, slot?: import("./handles.js").HandleSlot}} Looked */

/** BADF/STALE, then ACCES. @param {Caller} m @param {number} h @param {number} needs @returns {Looked} */
function checkHandle(m, h, needs) {
  const found = m.handles.lookup(h);
  if (found.err === Errno.OK && ((found.slot?.rights ?? 0) & needs) !== needs) return { err: Errno.ACCES };
  return found;
}

/** The handle's checks, then TOOBIG for the key and value sizes. */
function checkKey(/** @type {Caller} */ m, /** @type {number} */ h, /** @type {number} */ needs, keyLen = 0, valLen = 0) {
  const found = checkHandle(m, h, needs);
  if (found.err === Errno.OK && (keyLen > m.limits.key_size || valLen > m.limits.value_size)) {
    return { err: Errno.TOOBIG };
  }
  return found;
}

/** The live map a checked handle reaches. */
const mapOf = (/** @type {Looked} */ found) =>
  /** @type {import("./maps.js").MapObject} */ (/** @type {any} */ (found.slot).map);

/**
 * Would writing `newSize` bytes of key and value over `e` (or a new entry) exceed the quota?
 * What the writer is already charged for `e` comes back first.
 * @param {Caller} m @param {import("./table.js").Entry | undefined} e @param {number} newSize
 */
function overQuota(m, e, newSize) {
  let bytes = m.account.bytes;
  let entries = m.account.entries;
  if (e && e.account === m.account) {
    bytes -= entrySize(e);
    entries -= 1;
  }
  return bytes + newSize + ENTRY_COST > m.limits.bytes || entries + 1 > m.limits.entries;
}

/**
 * Write `key` in `map` (over `e`, or a new entry): `kind` with `value` (BYTES)
 * or `child` (MAP).  Charged to the writer, the old value credited to its
 * writer, a map it referenced released.
 * @param {Caller} m @param {import("./maps.js").MapObject} map @param {Uint8Array} key
 * @param {import("./table.js").Entry | undefined} e @param {number} kind @param {Uint8Array} value
 * @param {import("./maps.js").MapObject | null} child
 */
function write(m, map, key, e, kind, value, child) {
  const entry = e ?? map.table.insert(key);
  const oldAccount = entry.account;
  const oldSize = entry.kind === ValueKind.NONE ? 0 : entrySize(entry);
  const oldChild = entry.kind === ValueKind.MAP ? entry.child : null;
  // The commit: no call (see the top).  Every write takes the map's next version.
  entry.kind = kind;
  entry.value = value;
  entry.child = child;
  entry.version = ++map.clock;
  entry.account = m.account;
  if (child) m.store.refAdd(map, child); // before the old value goes: it may be the same map
  oldAccount?.credit(oldSize, 1);
  m.account.charge(entrySize(entry), 1);
  if (oldChild) {
    m.store.refForget(map, oldChild);
    m.store.release(oldChild);
  }
}

/** Write bytes under `key`, over `e` or a new entry. */
function writeBytes(/** @type {Caller} */ m, /** @type {import("./maps.js").MapObject} */ map, /** @type {Uint8Array} */ key, /** @type {import("./table.js").Entry | undefined} */ e, /** @type {Uint8Array} */ val) {
  if (overQuota(m, e, key.length + val.length)) return Errno.QUOTA;
  write(m, map, key, e, ValueKind.BYTES, Uint8Array.from(val), null);
  return Errno.OK;
}

// --- open, new, close, clone, watch_drop (ops_handles.c) -----------------------

/** @param {Caller} m @param {Uint8Array} name @param {number} rights */
export function open(m, name, rights) {
  let text = "";
  if (rights & ~RIGHTS_ALL || name.length === 0 || name.length > MAX_NAME_LEN) return { err: Errno.INVAL };
  try {
    text = utf8.decode(name);
  } catch {
    return { err: Errno.INVAL };
  }
  if (m.grants) {
    const granted = m.grants.get(text);
    if (granted === undefined || rights & ~granted) return { err: Errno.ACCES };
  }
  if (m.handles.live >= m.limits.handles) return { err: Errno.QUOTA };
  const map = m.store.named(text);
  const issued = m.handles.issue(m.limits.handles, HandleState.OWN, map, rights);
  m.store.fresh = null; // handed out: no call since the issue (see the top)
  if (issued.err === Errno.OK) m.store.incref(map);
  return issued;
}

/** @param {Caller} m */
export function newMap(m) {
  if (m.handles.live >= m.limits.handles || m.account.bytes + MAP_COST > m.limits.bytes) {
    return { err: Errno.QUOTA };
  }
  const map = m.store.alloc();
  map.account = m.account;
  const issued = m.handles.issue(m.limits.handles, HandleState.OWN, map, RIGHTS_ALL);
  m.store.fresh = null; // handed out: no call since the issue (see the top)
  m.account.charge(MAP_COST, 0);
  if (issued.err !== Errno.OK) m.store.release(map);
  return issued;
}

/** @param {Caller} m @param {number} h */
export function close(m, h) {
  const found = m.handles.lookup(h);
  if (found.err !== Errno.OK) return found.err;
  const slot = /** @type {import("./handles.js").HandleSlot} */ (found.slot);
  if (slot.busy) return Errno.BUSY;
  const map = mapOf(found);
  const owning = slot.state === HandleState.OWN;
  m.handles.release(slot);
  if (owning) m.store.release(map);
  return Errno.OK;
}

/** @param {Caller} m @param {number} h @param {number} rights */
export function clone(m, h, rights) {
  if (rights & ~RIGHTS_ALL) return { err: Errno.INVAL };
  const found = checkHandle(m, h, rights); // a clone's rights must be a subset of h's
  if (found.err !== Errno.OK) return found;
  const map = mapOf(found);
  const issued = m.handles.issue(m.limits.handles, HandleState.OWN, map, rights);
  if (issued.err === Errno.OK) m.store.incref(map);
  return issued;
}

/** @param {Caller} m @param {number} h @param {bigint} cookie */
export function watchDrop(m, h, cookie) {
  const found = m.handles.lookup(h);
  if (found.err !== Errno.OK) return found.err;
  if (m.watchesUsed >= m.limits.watches) return Errno.QUOTA;
  mapOf(found).watches.push({ owner: m, cookie });
  m.watchesUsed++;
  return Errno.OK;
}

// --- one key (ops.c + ops_memory.c) --------------------------------------------

/** @param {Caller} m @param {number} h @param {Uint8Array} key @param {Uint8Array} buf */
export function get(m, h, key, buf) {
  const found = checkKey(m, h, NEEDS.get[0], key.length);
  if (found.err !== Errno.OK) return found;
  const e = mapOf(found).table.find(key);
  if (!e) return { err: Errno.NOENT };
  if (e.kind !== ValueKind.BYTES) return { err: Errno.TYPE };
  if (e.value.length > buf.length) return { err: Errno.RANGE, len: e.value.length };
  buf.set(e.value);
  return { err: Errno.OK, len: e.value.length };
}

/** @param {Caller} m @param {number} h @param {Uint8Array} key @param {Uint8Array} val */
export function set(m, h, key, val) {
  const found = checkKey(m, h, NEEDS.set[0], key.length, val.length);
  if (found.err !== Errno.OK) return found.err;
  const map = mapOf(found);
  return writeBytes(m, map, key, map.table.find(key), val);
}

/** @param {Caller} m @param {number} h @param {Uint8Array} key @param {Uint8Array} val @param {bigint} expected */
export function setIf(m, h, key, val, expected) {
  const found = checkKey(m, h, NEEDS.set_if[0], key.length, val.length);
  if (found.err !== Errno.OK) return found.err;
  const map = mapOf(found);
  const e = map.table.find(key);
  // `expected` is compared as an unsigned 64-bit value.
  if (BigInt(e ? e.version : 0) !== BigInt.asUintN(64, expected)) return Errno.CONFLICT;
  return writeBytes(m, map, key, e, val);
}

/** @param {Caller} m @param {number} h @param {Uint8Array} key */
export function del(m, h, key) {
  const found = checkKey(m, h, NEEDS.delete[0], key.length);
  if (found.err !== Errno.OK) return found.err;
  const map = mapOf(found);
  const e = map.table.find(key);
  if (!e) return Errno.OK;
  const account = e.account;
  const size = entrySize(e);
  const child = e.kind === ValueKind.MAP ? e.child : null;
  map.table.remove(e); // the commit
  account?.credit(size, 1);
  if (child) {
    m.store.refForget(map, child);
    m.store.release(child);
  }
  return Errno.OK;
}

/** @param {Caller} m @param {number} h @param {Uint8Array} key */
export function exists(m, h, key) {
  const found = checkKey(m, h, NEEDS.exists[0], key.length);
  if (found.err !== Errno.OK) return found;
  return { err: Errno.OK, value: mapOf(found).table.find(key) ? 1 : 0 };
}

/** @param {Caller} m @param {number} h @param {Uint8Array} key */
export function version(m, h, key) {
  const found = checkKey(m, h, NEEDS.version[0], key.length);
  if (found.err !== Errno.OK) return found;
  const e = mapOf(found).table.find(key);
  return { err: Errno.OK, value: BigInt(e ? e.version : 0) };
}

/** @param {Caller} m @param {number} h @param {Uint8Array} key @param {bigint} delta */
export function incr(m, h, key, delta) {
  // The value written is 8 bytes: value_size under 8 is TOOBIG, as in the C core.
  const found = checkKey(m, h, NEEDS.incr[0], key.length, 8);
  if (found.err !== Errno.OK) return found;
  const map = mapOf(found);
  const e = map.table.find(key);
  if (e && (e.kind !== ValueKind.BYTES || e.value.length !== 8)) return { err: Errno.TYPE };
  const old = e ? readI64(e.value) : 0n;
  const value = BigInt.asIntN(64, old + delta); // wraps like i64.add
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigInt64(0, value, true);
  if (overQuota(m, e, key.length + 8)) return { err: Errno.QUOTA };
  write(m, map, key, e, ValueKind.BYTES, bytes, null);
  return { err: Errno.OK, value };
}

/** @param {Caller} m @param {number} h @param {Uint8Array} key @param {number} childH */
export function setMap(m, h, key, childH) {
  // Both handles, then both handles' rights, then the size.  A stored
  // reference gives whoever reads the parent the parent's rights on the
  // child, so only a handle with every right may be stored.
  const [needs, childNeeds] = NEEDS.set_map;
  const parentFound = m.handles.lookup(h);
  if (parentFound.err !== Errno.OK) return parentFound.err;
  const childFound = m.handles.lookup(childH);
  if (childFound.err !== Errno.OK) return childFound.err;
  const pr = /** @type {any} */ (parentFound.slot).rights;
  const cr = /** @type {any} */ (childFound.slot).rights;
  if ((pr & needs) !== needs || (cr & childNeeds) !== childNeeds) return Errno.ACCES;
  if (key.length > m.limits.key_size) return Errno.TOOBIG;
  const map = mapOf(parentFound);
  const child = mapOf(childFound);
  const e = map.table.find(key);
  if (overQuota(m, e, key.length + 8)) return Errno.QUOTA;
  write(m, map, key, e, ValueKind.MAP, EMPTY, child);
  return Errno.OK;
}

/** @param {Caller} m @param {number} h @param {Uint8Array} key */
export function getMap(m, h, key) {
  const found = checkKey(m, h, NEEDS.get_map[0], key.length);
  if (found.err !== Errno.OK) return found;
  const e = mapOf(found).table.find(key);
  if (!e) return { err: Errno.NOENT };
  if (e.kind !== ValueKind.MAP || !e.child) return { err: Errno.TYPE };
  // A read-only view stays read-only all the way down: the parent handle's rights.
  const rights = /** @type {any} */ (found.slot).rights;
  const issued = m.handles.issue(m.limits.handles, HandleState.OWN, e.child, rights);
  if (issued.err === Errno.OK) m.store.incref(e.child);
  return issued;
}

// --- the whole map --------------------------------------------------------------

/** @param {Caller} m @param {number} h */
export function len(m, h) {
  const found = checkKey(m, h, NEEDS.len[0]);
  if (found.err !== Errno.OK) return found;
  return { err: Errno.OK, value: mapOf(found).table.live };
}

/**
 * One page of keys from `cursor` (docs/abi.md "keys").
 * @param {Caller} m @param {number} h @param {bigint} cursor @param {Uint8Array} buf
 */
export function keys(m, h, cursor, buf) {
  const found = checkKey(m, h, NEEDS.keys[0]);
  if (found.err !== Errno.OK) return found;
  const table = mapOf(found).table;
  const view = dataView(buf);
  let i = table.seek(cursor);
  let used = 0;
  let count = 0;
  for (; i < table.entries.length; i++) {
    const e = table.entries[i];
    if (e.kind === ValueKind.NONE) continue;
    const need = 4 + e.key.length;
    if (used + need > buf.length) {
      if (count === 0) return { err: Errno.RANGE, used: need }; // not even one key fits
      break;
    }
    view.setUint32(used, e.key.length, true);
    buf.set(e.key, used + 4);
    used += need;
    count++;
  }
  const next = i < table.entries.length ? BigInt(table.entries[i].seq) : 0n;
  return { err: Errno.OK, used, count, cursor: next };
}

/**
 * Walk a batch of (u32 length, bytes) records, `fields` per item: the items'
 * fields, or null when a record is truncated.
 * @param {Uint8Array} bytes @param {number} fields
 * @returns {Uint8Array[][] | null}
 */
export function walkBatch(bytes, fields) {
  const view = dataView(bytes);
  /** @type {Uint8Array[][]} */
  const items = [];
  let off = 0;
  while (off < bytes.length) {
    const item = [];
    for (let k = 0; k < fields; k++) {
      if (bytes.length - off < 4) return null;
      const n = view.getUint32(off, true);
      off += 4;
      if (bytes.length - off < n) return null;
      item.push(bytes.subarray(off, off + n));
      off += n;
    }
    items.push(item);
  }
  return items;
}

/** Whether two views of guest memory share a byte. @param {Uint8Array} a @param {Uint8Array} b */
function overlap(a, b) {
  return (
    a.length > 0 &&
    b.length > 0 &&
    a.buffer === b.buffer &&
    a.byteOffset < b.byteOffset + b.length &&
    b.byteOffset < a.byteOffset + a.length
  );
}

const UINT32_MAX = 0xffffffff;

/** @param {Caller} m @param {number} h @param {Uint8Array} keysIn @param {Uint8Array} buf */
export function getMany(m, h, keysIn, buf) {
  const items = walkBatch(keysIn, 1);
  if (!items || overlap(keysIn, buf)) return { err: Errno.INVAL };
  const found = checkKey(m, h, NEEDS.get_many[0], longest(items, 0));
  if (found.err !== Errno.OK) return found;
  const table = mapOf(found).table;
  const entries = items.map(([k]) => table.find(k));
  if (entries.some((e) => e && e.kind !== ValueKind.BYTES)) return { err: Errno.TYPE };
  const need = entries.reduce((n, e) => n + 4 + (e ? e.value.length : 0), 0);
  if (need > buf.length) return { err: Errno.RANGE, used: Math.min(need, UINT32_MAX) };
  const view = dataView(buf);
  let off = 0;
  for (const e of entries) {
    view.setUint32(off, e ? e.value.length : UINT32_MAX, true);
    if (e) buf.set(e.value, off + 4);
    off += 4 + (e ? e.value.length : 0);
  }
  return { err: Errno.OK, used: need };
}

/** All or nothing: every check happens before the first change. @param {Caller} m @param {number} h @param {Uint8Array} itemsIn */
export function setMany(m, h, itemsIn) {
  const items = walkBatch(itemsIn, 2);
  if (!items) return Errno.INVAL;
  const found = checkKey(m, h, NEEDS.set_many[0], longest(items, 0), longest(items, 1));
  if (found.err !== Errno.OK) return found.err;
  // The quota check counts every item as a new entry of its full size (documented).
  const n = items.length;
  const bytes = itemsIn.length - 8 * n + ENTRY_COST * n;
  if (m.account.bytes + bytes > m.limits.bytes || m.account.entries + n > m.limits.entries) {
    return Errno.QUOTA;
  }
  const map = mapOf(found);
  // Copied out of guest memory, and every entry found or inserted (not yet
  // written), before the commit; a key given twice is one entry.
  const values = items.map(([, v]) => Uint8Array.from(v));
  const entries = items.map(([k]) => map.table.find(k) ?? map.table.insert(k));
  /** @type {Array<{account: import("./accounts.js").Account | null, size: number, child: import("./maps.js").MapObject | null} | null>} */
  const seen = new Set();
  const first = entries.map((e) => !seen.has(e) && Boolean(seen.add(e)));
  const olds = entries.map((e, i) =>
    first[i] && e.kind !== ValueKind.NONE ? { account: e.account, size: entrySize(e), child: e.kind === ValueKind.MAP ? e.child : null } : null,
  );
  // The commit of the whole batch: no call (see the top).
  for (let i = 0; i < n; i++) {
    const e = entries[i];
    e.kind = ValueKind.BYTES;
    e.value = values[i];
    e.child = null;
    e.version = ++map.clock;
    e.account = m.account;
  }
  for (let i = 0; i < n; i++) {
    const old = olds[i];
    if (first[i]) m.account.charge(entrySize(entries[i]), 1);
    if (!old) continue;
    old.account?.credit(old.size, 1);
    if (old.child) {
      m.store.refForget(map, old.child);
      m.store.release(old.child);
    }
  }
  return Errno.OK;
}

/** The longest field `k` of a batch's items. @param {Uint8Array[][]} items @param {number} k */
function longest(items, k) {
  let n = 0;
  for (const item of items) n = Math.max(n, item[k].length);
  return n;
}

/** @param {Uint8Array} b */
function dataView(b) {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** @param {Uint8Array} b */
function readI64(b) {
  return dataView(b).getBigInt64(0, true);
}
