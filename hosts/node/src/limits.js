// limits.js: a module's limits, grants and names, checked in one place.
//
// The same rules and words as broker/limits.py and broker/module_spec.py:
// the manifest reader and Broker.load both check through these, and a
// problem is a SpecError saying where (["limits"], ["grants", NAME]) and what.

import { DEFAULT_LIMITS, LIMIT_CEILINGS, MAX_INSTANCES, MAX_NAME_LEN, ON_QUOTA, READ, RIGHTS_ALL, WRITE } from "./abi.js";

/**
 * A module's limits (docs/reference/limits.md).  `bytes` and `entries`
 * may be up to 2^63; they are kept as numbers (usage never nears 2^53).
 * @typedef {object} Limits
 * @property {number} key_size
 * @property {number} value_size
 * @property {number} handles
 * @property {number} bytes
 * @property {number} entries
 * @property {number} watches
 * @property {"error" | "trap"} on_quota
 * @property {number} time_ms        wall clock per outermost call, ms; 0: none (deadline.js)
 * @property {number} linear_memory  checked, not enforced yet on this host
 * @property {number} table_elements checked, not enforced yet on this host
 */

/** @type {Readonly<Limits>} */
export const DEFAULTS = /** @type {any} */ (DEFAULT_LIMITS);

/** A problem in a module's spec: where it is, and what. */
export class SpecError extends Error {
  /** @param {Array<string>} where @param {string} problem */
  constructor(where, problem) {
    super(problem);
    this.where = where;
    this.problem = problem;
  }
}

/**
 * A TOML float, kept apart from integers (which the parser gives as BigInt),
 * so that `handles = 1.0` is refused as Python's manifest reader refuses it;
 * it shows as Python shows a float.
 */
export class TomlFloat {
  /** @param {number} value */
  constructor(value) {
    this.value = value;
  }

  toString() {
    return Number.isInteger(this.value) ? `${this.value}.0` : String(this.value);
  }

  toJSON() {
    return this.toString();
  }
}

/** A value as a message quotes it, cut short. @param {unknown} value */
export function shown(value) {
  let text;
  if (typeof value === "string") text = `'${value}'`;
  else if (typeof value === "bigint" || value instanceof TomlFloat) text = value.toString();
  else text = JSON.stringify(value) ?? String(value);
  return text.length <= 40 ? text : `${text.slice(0, 37)}...`;
}

/** @param {unknown} value @returns {value is Record<string, unknown>} */
export function isTable(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** @param {unknown} value */
const typeName = (value) => (Array.isArray(value) ? "list" : value === null ? "null" : typeof value);

/**
 * Limits: `base` with some of them replaced by `table`; SpecError for an unknown or out-of-range one.
 * @param {unknown} table @param {Readonly<Limits>} [base]
 * @returns {Limits}
 */
export function checkLimits(table, base = DEFAULTS) {
  if (table === undefined || table === null) return { ...base };
  if (!isTable(table)) throw new SpecError(["limits"], `must be a table, not ${typeName(table)}`);
  const known = Object.keys(DEFAULT_LIMITS).sort();
  /** @type {Record<string, any>} */
  const out = { ...base };
  for (const [name, value] of Object.entries(table)) {
    if (!Object.hasOwn(DEFAULT_LIMITS, name)) {
      throw new SpecError(["limits"], `unknown limit '${name}' (known: ${known.join(", ")})`);
    }
    if (name === "on_quota") {
      if (typeof value !== "string" || !ON_QUOTA.includes(value)) {
        throw new SpecError(["limits"], `limit on_quota must be one of ('error', 'trap'), got ${shown(value)}`);
      }
      out[name] = value;
      continue;
    }
    const ceiling = /** @type {Record<string, number>} */ (LIMIT_CEILINGS)[name];
    const isInt = (typeof value === "number" && Number.isInteger(value)) || typeof value === "bigint";
    // Compare in BigInt: a ceiling of 2^63 is exact there.
    const ok = isInt && BigInt(value) >= 0n && BigInt(value) <= BigInt(ceiling);
    if (!ok) {
      throw new SpecError(["limits"], `limit ${name} must be an integer in 0..${BigInt(ceiling)}, got ${shown(value)}`);
    }
    out[name] = Number(value);
  }
  return /** @type {Limits} */ (out);
}

/**
 * Rights as 'r', 'w' or 'rw' (or, when `numbers`, an int combining READ and WRITE).
 * @param {unknown} rights @param {boolean} numbers
 */
export function parseRights(rights, numbers) {
  if (numbers && typeof rights === "number" && Number.isInteger(rights) && (rights & ~RIGHTS_ALL) === 0 && rights >= 0) {
    return rights;
  }
  if (typeof rights === "string" && rights && /^[rw]+$/.test(rights) && new Set(rights).size === rights.length) {
    return (rights.includes("r") ? READ : 0) | (rights.includes("w") ? WRITE : 0);
  }
  throw new Error(`rights must be 'r', 'w' or 'rw', not ${shown(rights)}`);
}

/** Why `name` cannot name a map, or null. @param {string} name */
export function mapNameProblem(name) {
  if (!name.isWellFormed()) return "a map name must be valid Unicode text (no lone surrogates)";
  const size = Buffer.byteLength(name, "utf8");
  if (size < 1 || size > MAX_NAME_LEN) return `a map name must be 1..${MAX_NAME_LEN} bytes of UTF-8`;
  return null;
}

/** Why `name` cannot name a module, or null: it names calls ("a.f") and messages. @param {unknown} name */
export function moduleNameProblem(name) {
  if (typeof name !== "string" || name.length < 1 || [...name].length > 255) {
    return "a module name must be 1..255 characters";
  }
  // eslint-disable-next-line no-control-regex
  if (name.includes(".") || /[\p{C}\p{Z}]/u.test(name.replace(/ /g, ""))) {
    return "a module name must have no '.' and no unprintable characters";
  }
  return null;
}

/**
 * Grants: map name -> rights.
 * @param {unknown} grants @param {boolean} numbers rights may be ints (Broker.load)
 * @returns {Map<string, number>}
 */
export function checkGrants(grants, numbers) {
  /** @type {Map<string, number>} */
  const out = new Map();
  if (grants === undefined || grants === null) return out;
  if (!isTable(grants)) throw new SpecError(["grants"], `must be a table, not ${typeName(grants)}`);
  for (const [name, rights] of Object.entries(grants)) {
    const problem = mapNameProblem(name);
    if (problem) throw new SpecError(["grants", name], problem);
    try {
      out.set(name, parseRights(rights, numbers));
    } catch (e) {
      throw new SpecError(["grants", name], /** @type {Error} */ (e).message);
    }
  }
  return out;
}

const PLAIN_TYPES = ["i32", "i64", "f32", "f64"];
const HANDLE_KINDS = ["own", "borrow", "share"];

/**
 * One declared kind: a plain type, or own/borrow/share with an optional ':r'.
 * @param {unknown} text @param {boolean} result
 */
export function parseKind(text, result) {
  if (typeof text !== "string") throw new Error(`a kind must be a string, not ${shown(text)}`);
  const [base, ...rest] = text.split(":");
  const suffix = rest.join(":");
  if (PLAIN_TYPES.includes(base) && rest.length === 0) return text;
  if (HANDLE_KINDS.includes(base) && (rest.length === 0 || suffix === "r")) {
    if (result && base === "borrow") throw new Error("a result may be 'own' or 'share', never 'borrow'");
    return text;
  }
  throw new Error(
    `unknown kind '${text}' (one of ${[...PLAIN_TYPES, ...HANDLE_KINDS].join(", ")}; handle kinds may end in ':r')`,
  );
}

/** Whether a declared kind passes a handle. @param {string} kind */
export const isHandleKind = (kind) => HANDLE_KINDS.includes(kind.split(":")[0]);

/**
 * How an export's parameters and results pass.
 * @typedef {{params: string[], results: string[]}} ExportDecl
 */

/**
 * Export name -> its declaration, every kind checked.
 * @param {unknown} exports
 * @returns {Map<string, ExportDecl>}
 */
export function checkExports(exports) {
  /** @type {Map<string, ExportDecl>} */
  const out = new Map();
  if (exports === undefined || exports === null) return out;
  if (!isTable(exports)) throw new SpecError(["exports"], `must be a table, not ${typeName(exports)}`);
  for (const [name, decl] of Object.entries(exports)) {
    if (!isTable(decl)) throw new SpecError(["exports", name], `must be a table, not ${typeName(decl)}`);
    for (const key of Object.keys(decl)) {
      if (key !== "params" && key !== "results") {
        throw new SpecError(["exports", name, key], "unknown key (allowed: params, results)");
      }
    }
    /** @type {ExportDecl} */
    const checked = { params: [], results: [] };
    for (const part of /** @type {const} */ (["params", "results"])) {
      const items = decl[part] ?? [];
      if (!Array.isArray(items)) throw new SpecError(["exports", name, part], "must be a list of kinds");
      try {
        checked[part] = items.map((k) => parseKind(k, part === "results"));
      } catch (e) {
        throw new SpecError(["exports", name, part], /** @type {Error} */ (e).message);
      }
    }
    out.set(name, checked);
  }
  return out;
}

/** @param {unknown} n */
export function checkInstances(n) {
  const ok = (typeof n === "number" && Number.isInteger(n)) || typeof n === "bigint";
  if (!ok || Number(n) < 1 || Number(n) > MAX_INSTANCES) {
    throw new SpecError(["instances"], `must be an integer in 1..${MAX_INSTANCES}, got ${shown(n)}`);
  }
  return Number(n);
}

/** @param {unknown} onTrap @returns {"replace" | "stop"} */
export function checkOnTrap(onTrap) {
  if (onTrap !== "replace" && onTrap !== "stop") {
    throw new SpecError(["on_trap"], `must be "replace" or "stop", got ${shown(onTrap)}`);
  }
  return onTrap;
}
