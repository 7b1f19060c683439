// abi.js: the WASI-Map v1 ABI, as the Node.js host reads it.
// Generated from broker/abi/ by `python -m broker.abi`; do not edit.

export const IMPORT_MODULE = "wasi_map";
export const DROP_EXPORT = "wasi_map_on_drop";

/** Errno values every ABI function returns. */
export const Errno = Object.freeze({
  OK: 0,
  BADF: 1,
  STALE: 2,
  NOENT: 3,
  ACCES: 4,
  FAULT: 5,
  RANGE: 6,
  INVAL: 7,
  BUSY: 8,
  QUOTA: 9,
  TOOBIG: 10,
  CONFLICT: 11,
  TYPE: 12,
  IO: 13,
});

/** What each errno means (by number). */
export const ERRNO_MEANING = Object.freeze([
  "success",
  "not a handle of this module (never issued to it)",
  "a handle this module had, but it was closed or moved away",
  "key absent",
  "right missing, name not granted, or more rights than the grant",
  "a pointer/length pair outside the guest's memory",
  "output buffer too small (needed size written where the call says)",
  "bad argument: unknown rights bits, malformed batch, bad name",
  "the handle is lent to a call in progress",
  "a module limit reached (handles, bytes, entries)",
  "key or value over the configured size limit",
  "set_if version mismatch",
  "map reference where bytes were expected, or the reverse",
  "the backing store failed; the operation did not happen",
]);

/** Rights bits a handle carries. */
export const READ = 1;
export const WRITE = 2;
export const RIGHTS_ALL = 3;

/** How a declared export parameter or result passes a handle. */
export const PassKind = Object.freeze({
  PLAIN: 0,
  OWN: 1,
  BORROW: 2,
  SHARE: 3,
});
export const PASS_KIND_MASK = 3;
export const PASS_READONLY = 4;

/** A handle number: slot index in the low bits, generation (1..max) above. */
export const HANDLE_INDEX_BITS = 21;
export const HANDLE_MAX_GEN = 1023;

/** What the `bytes` quota charges beyond key and value bytes, and fixed limits. */
export const ENTRY_COST = 88;
export const MAP_COST = 160;
export const MAX_NAME_LEN = 1024;
export const MAX_MODULES = 65535;
export const MAX_INSTANCES = 256;
export const MAX_HANDLE_ARGS = 64;

/** A module's limits by default, the largest each may be, and on_quota's choices. */
export const DEFAULT_LIMITS = Object.freeze({"key_size": 4096, "value_size": 1048576, "handles": 65536, "bytes": 268435456, "entries": 1048576, "watches": 65536, "on_quota": "error", "time_ms": 10000, "linear_memory": 268435456, "table_elements": 1000000});
export const LIMIT_CEILINGS = Object.freeze({"key_size": 1073741824, "value_size": 1073741824, "handles": 2097151, "bytes": 9223372036854775808, "entries": 9223372036854775808, "watches": 4294967295, "time_ms": 4294967295, "linear_memory": 281474976710656, "table_elements": 4294967295});
export const ON_QUOTA = Object.freeze(["error", "trap"]);

/**
 * Every function of the import module: its parameters (name, Wasm type,
 * shape; `length` names an input's or buffer's length parameter, `size` a
 * fixed output's bytes, `needs` a handle's rights) and its errnos in the
 * order it checks them.
 */
export const FUNCTIONS = Object.freeze([
  {"name": "open", "doc": "open a named map granted to this module", "params": [{"name": "name_ptr", "wasm": "i32", "shape": "input", "length": "name_len"}, {"name": "name_len", "wasm": "i32", "shape": "length"}, {"name": "rights", "wasm": "i32", "shape": "value"}, {"name": "out_h", "wasm": "i32", "shape": "output", "size": 4}], "errnos": ["FAULT", "INVAL", "ACCES", "QUOTA"]},
  {"name": "new", "doc": "a new anonymous map, owned by the caller, rights READ|WRITE", "params": [{"name": "out_h", "wasm": "i32", "shape": "output", "size": 4}], "errnos": ["FAULT", "QUOTA"]},
  {"name": "close", "doc": "give up this handle", "params": [{"name": "h", "wasm": "i32", "shape": "handle"}], "errnos": ["BADF", "STALE", "BUSY"]},
  {"name": "clone", "doc": "a second owning handle, rights a subset of h's", "params": [{"name": "h", "wasm": "i32", "shape": "handle"}, {"name": "rights", "wasm": "i32", "shape": "value"}, {"name": "out_h", "wasm": "i32", "shape": "output", "size": 4}], "errnos": ["FAULT", "INVAL", "BADF", "STALE", "ACCES", "QUOTA"]},
  {"name": "get", "doc": "copy the value into buf", "params": [{"name": "h", "wasm": "i32", "shape": "handle", "needs": 1}, {"name": "key_ptr", "wasm": "i32", "shape": "input", "length": "key_len"}, {"name": "key_len", "wasm": "i32", "shape": "length"}, {"name": "buf_ptr", "wasm": "i32", "shape": "buffer", "length": "buf_cap"}, {"name": "buf_cap", "wasm": "i32", "shape": "length"}, {"name": "out_len", "wasm": "i32", "shape": "output", "size": 4}], "errnos": ["FAULT", "BADF", "STALE", "ACCES", "TOOBIG", "NOENT", "TYPE", "RANGE", "IO"]},
  {"name": "set", "doc": "insert or replace", "params": [{"name": "h", "wasm": "i32", "shape": "handle", "needs": 2}, {"name": "key_ptr", "wasm": "i32", "shape": "input", "length": "key_len"}, {"name": "key_len", "wasm": "i32", "shape": "length"}, {"name": "val_ptr", "wasm": "i32", "shape": "input", "length": "val_len"}, {"name": "val_len", "wasm": "i32", "shape": "length"}], "errnos": ["FAULT", "BADF", "STALE", "ACCES", "TOOBIG", "QUOTA", "IO"]},
  {"name": "delete", "doc": "remove; OK also when absent", "params": [{"name": "h", "wasm": "i32", "shape": "handle", "needs": 2}, {"name": "key_ptr", "wasm": "i32", "shape": "input", "length": "key_len"}, {"name": "key_len", "wasm": "i32", "shape": "length"}], "errnos": ["FAULT", "BADF", "STALE", "ACCES", "TOOBIG", "IO"]},
  {"name": "exists", "doc": "1 or 0", "params": [{"name": "h", "wasm": "i32", "shape": "handle", "needs": 1}, {"name": "key_ptr", "wasm": "i32", "shape": "input", "length": "key_len"}, {"name": "key_len", "wasm": "i32", "shape": "length"}, {"name": "out_u32", "wasm": "i32", "shape": "output", "size": 4}], "errnos": ["FAULT", "BADF", "STALE", "ACCES", "TOOBIG", "IO"]},
  {"name": "len", "doc": "number of entries", "params": [{"name": "h", "wasm": "i32", "shape": "handle", "needs": 1}, {"name": "out_u32", "wasm": "i32", "shape": "output", "size": 4}], "errnos": ["FAULT", "BADF", "STALE", "ACCES", "IO"]},
  {"name": "keys", "doc": "one page of keys", "params": [{"name": "h", "wasm": "i32", "shape": "handle", "needs": 1}, {"name": "cursor_ptr", "wasm": "i32", "shape": "inout", "size": 8}, {"name": "buf_ptr", "wasm": "i32", "shape": "buffer", "length": "buf_cap"}, {"name": "buf_cap", "wasm": "i32", "shape": "length"}, {"name": "out_used", "wasm": "i32", "shape": "output", "size": 4}, {"name": "out_count", "wasm": "i32", "shape": "output", "size": 4}], "errnos": ["FAULT", "BADF", "STALE", "ACCES", "RANGE", "IO"]},
  {"name": "incr", "doc": "atomic add on an 8-byte LE i64", "params": [{"name": "h", "wasm": "i32", "shape": "handle", "needs": 3}, {"name": "key_ptr", "wasm": "i32", "shape": "input", "length": "key_len"}, {"name": "key_len", "wasm": "i32", "shape": "length"}, {"name": "delta", "wasm": "i64", "shape": "value"}, {"name": "out_i64", "wasm": "i32", "shape": "output", "size": 8}], "errnos": ["FAULT", "BADF", "STALE", "ACCES", "TOOBIG", "TYPE", "QUOTA", "IO"]},
  {"name": "version", "doc": "the key's version, 0 when absent", "params": [{"name": "h", "wasm": "i32", "shape": "handle", "needs": 1}, {"name": "key_ptr", "wasm": "i32", "shape": "input", "length": "key_len"}, {"name": "key_len", "wasm": "i32", "shape": "length"}, {"name": "out_u64", "wasm": "i32", "shape": "output", "size": 8}], "errnos": ["FAULT", "BADF", "STALE", "ACCES", "TOOBIG", "IO"]},
  {"name": "set_if", "doc": "set only if the version equals expected", "params": [{"name": "h", "wasm": "i32", "shape": "handle", "needs": 3}, {"name": "key_ptr", "wasm": "i32", "shape": "input", "length": "key_len"}, {"name": "key_len", "wasm": "i32", "shape": "length"}, {"name": "val_ptr", "wasm": "i32", "shape": "input", "length": "val_len"}, {"name": "val_len", "wasm": "i32", "shape": "length"}, {"name": "expected", "wasm": "i64", "shape": "value"}], "errnos": ["FAULT", "BADF", "STALE", "ACCES", "TOOBIG", "CONFLICT", "QUOTA", "IO"]},
  {"name": "get_many", "doc": "batch get", "params": [{"name": "h", "wasm": "i32", "shape": "handle", "needs": 1}, {"name": "keys_ptr", "wasm": "i32", "shape": "input", "length": "keys_len"}, {"name": "keys_len", "wasm": "i32", "shape": "length"}, {"name": "buf_ptr", "wasm": "i32", "shape": "buffer", "length": "buf_cap"}, {"name": "buf_cap", "wasm": "i32", "shape": "length"}, {"name": "out_used", "wasm": "i32", "shape": "output", "size": 4}], "errnos": ["FAULT", "INVAL", "BADF", "STALE", "ACCES", "TOOBIG", "TYPE", "RANGE", "IO"]},
  {"name": "set_many", "doc": "batch set, all or nothing", "params": [{"name": "h", "wasm": "i32", "shape": "handle", "needs": 2}, {"name": "items_ptr", "wasm": "i32", "shape": "input", "length": "items_len"}, {"name": "items_len", "wasm": "i32", "shape": "length"}], "errnos": ["FAULT", "INVAL", "BADF", "STALE", "ACCES", "TOOBIG", "QUOTA", "IO"]},
  {"name": "set_map", "doc": "store a reference to child's map", "params": [{"name": "h", "wasm": "i32", "shape": "handle", "needs": 2}, {"name": "key_ptr", "wasm": "i32", "shape": "input", "length": "key_len"}, {"name": "key_len", "wasm": "i32", "shape": "length"}, {"name": "child_h", "wasm": "i32", "shape": "handle", "needs": 3}], "errnos": ["FAULT", "BADF", "STALE", "ACCES", "TOOBIG", "TYPE", "QUOTA"]},
  {"name": "get_map", "doc": "a new owning handle to the referenced map", "params": [{"name": "h", "wasm": "i32", "shape": "handle", "needs": 1}, {"name": "key_ptr", "wasm": "i32", "shape": "input", "length": "key_len"}, {"name": "key_len", "wasm": "i32", "shape": "length"}, {"name": "out_h", "wasm": "i32", "shape": "output", "size": 4}], "errnos": ["FAULT", "BADF", "STALE", "ACCES", "TOOBIG", "NOENT", "TYPE", "QUOTA", "IO"]},
  {"name": "watch_drop", "doc": "call wasi_map_on_drop(cookie) when the map is reclaimed", "params": [{"name": "h", "wasm": "i32", "shape": "handle"}, {"name": "cookie", "wasm": "i64", "shape": "value"}], "errnos": ["BADF", "STALE", "QUOTA"]},
]);
