// manifest.js: the app manifest (docs/reference/manifest.md), as the Python host reads it.
//
// Every problem is a ManifestError of one line naming the file and the key.
// Options this host does not support yet (stores other than memory:,
// several instances) are refused the same way, rather than silently ignored.

import fs from "node:fs";
import path from "node:path";
import { parse } from "smol-toml";
import { ManifestError } from "./errors.js";
import { DEFAULT_GC_THRESHOLD, thresholdProblem } from "./gc.js";
import {
  checkExports,
  checkGrants,
  checkInstances,
  checkLimits,
  checkOnTrap,
  isTable,
  moduleNameProblem,
  shown,
  SpecError,
  TomlFloat,
} from "./limits.js";

export const MAX_MANIFEST_SIZE = 2 ** 20;

/**
 * One module of an app, checked.
 * @typedef {object} ManifestModule
 * @property {string} name
 * @property {string} path  resolved against the manifest's folder
 * @property {Map<string, number>} grants
 * @property {import("./limits.js").Limits} limits
 * @property {Map<string, import("./limits.js").ExportDecl>} exports
 * @property {number} instances
 * @property {"replace" | "stop"} onTrap
 */

/**
 * @typedef {{path: string, limits: import("./limits.js").Limits, strictBorrows: boolean,
 *   gcThreshold: number | bigint, modules: ManifestModule[]}} Manifest
 */

/** A key's part as TOML writes it: bare, else quoted. @param {string} name */
export function shownKey(name) {
  if (/^[A-Za-z0-9_-]+$/.test(name)) return name;
  const cut = name.length <= 64 ? name : `${name.slice(0, 61)}...`;
  return JSON.stringify(cut);
}

/** @param {string} key @param {string} name */
const sub = (key, name) => (key ? `${key}.${shownKey(name)}` : shownKey(name));

/**
 * Read and check an app manifest; ManifestError naming the file and the key.
 * @param {string} file
 * @returns {Manifest}
 */
export function loadManifest(file) {
  /** @param {string} key @param {string} problem */
  const fail = (key, problem) => new ManifestError(`${file}: ${key}: ${problem.length > 300 ? `${problem.slice(0, 297)}...` : problem}`);
  /** @param {Record<string, unknown>} table @param {string} key @param {string[]} allowed */
  const only = (table, key, allowed) => {
    for (const name of Object.keys(table)) {
      if (!allowed.includes(name)) throw fail(sub(key, name), `unknown key (allowed: ${allowed.join(", ")})`);
    }
  };
  /** @param {unknown} value @param {string} key */
  const table = (value, key) => {
    if (!isTable(value)) throw fail(key, `must be a table, not ${Array.isArray(value) ? "list" : typeof value}`);
    return value;
  };
  /** @param {string} key @param {SpecError} e */
  const specFailed = (key, e) => fail(e.where.reduce(sub, key), e.problem);

  const data = parseFile(file);
  only(data, "", ["store", "broker", "limits", "modules"]);
  const store = table(data.store ?? {}, "store");
  only(store, "store", ["url"]);
  if (store.url !== undefined && store.url !== "memory:") {
    throw fail("store.url", `only "memory:" on the Node host (sqlite, LevelDB and Redis stores stay with the Python host), not ${shown(store.url)}`);
  }
  const options = table(data.broker ?? {}, "broker");
  only(options, "broker", ["strict_borrows", "gc_threshold"]);
  const strictBorrows = options.strict_borrows ?? false;
  if (typeof strictBorrows !== "boolean") throw fail("broker.strict_borrows", `must be true or false, not ${shown(strictBorrows)}`);
  const gcThreshold = /** @type {number | bigint} */ (options.gc_threshold ?? DEFAULT_GC_THRESHOLD);
  const problem = thresholdProblem(gcThreshold);
  if (problem) throw fail("broker.gc_threshold", problem);
  // TOML integers come as BigInt: a number where it is exact, as the API takes it.
  const threshold = typeof gcThreshold === "bigint" && gcThreshold <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(gcThreshold) : gcThreshold;
  let limits;
  try {
    limits = checkLimits(data.limits ?? {});
  } catch (e) {
    if (e instanceof SpecError) throw specFailed("", e);
    throw e;
  }
  const modulesTable = table(data.modules ?? {}, "modules");
  if (!Object.keys(modulesTable).length) throw fail("modules", "an app needs at least one [modules.NAME] table");
  const dir = path.dirname(file);
  const modules = Object.entries(modulesTable).map(([name, value]) => {
    const key = sub("modules", name);
    const problem = moduleNameProblem(name);
    if (problem) throw fail(key, problem);
    const t = table(value, key);
    only(t, key, ["path", "grants", "limits", "exports", "instances", "on_trap"]);
    if (typeof t.path !== "string" || !t.path) throw fail(`${key}.path`, "required: the module's .wat or .wasm file");
    if (t.path.includes("\0")) throw fail(`${key}.path`, "the file name contains a NUL byte");
    try {
      const instances = checkInstances(t.instances ?? 1);
      if (instances > 1) throw fail(`${key}.instances`, "more than 1 is not supported on the Node host yet");
      const resolved = path.resolve(dir, t.path);
      if (!fs.existsSync(resolved)) throw fail(`${key}.path`, `no such file: ${resolved}`);
      return {
        name,
        path: path.isAbsolute(t.path) ? t.path : path.join(dir, t.path),
        grants: checkGrants(t.grants, false),
        limits: checkLimits(t.limits, limits),
        exports: checkExports(t.exports),
        instances,
        onTrap: checkOnTrap(t.on_trap ?? "replace"),
      };
    } catch (e) {
      if (e instanceof SpecError) throw specFailed(key, e);
      throw e;
    }
  });
  return { path: file, limits, strictBorrows, gcThreshold: threshold, modules };
}

/**
 * The parsed document with every float wrapped in a TomlFloat.
 * @param {unknown} value
 * @returns {any}
 */
function floatsMarked(value) {
  if (typeof value === "number") return new TomlFloat(value);
  if (Array.isArray(value)) return value.map(floatsMarked);
  if (value && typeof value === "object" && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, floatsMarked(v)]));
  }
  return value;
}

/** The manifest's TOML: a regular file of at most 1 MiB, in UTF-8. @param {string} file */
function parseFile(file) {
  let raw;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new Error("not a regular file");
    if (st.size > MAX_MANIFEST_SIZE) throw new Error(`larger than ${MAX_MANIFEST_SIZE} bytes`);
    raw = fs.readFileSync(file);
  } catch (e) {
    const err = /** @type {NodeJS.ErrnoException} */ (e);
    throw new ManifestError(`${file}: cannot read manifest: ${err.code === "ENOENT" ? "no such file" : err.message}`);
  }
  let text;
  try {
    // ignoreBOM: keep a BOM in the text, to refuse it below as tomllib does.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(raw);
  } catch {
    throw new ManifestError(`${file}: invalid TOML: not UTF-8`);
  }
  if (text.startsWith("\uFEFF")) throw new ManifestError(`${file}: invalid TOML: a byte order mark at line 1, column 1`);
  try {
    return /** @type {Record<string, unknown>} */ (floatsMarked(parse(text, { integersAsBigInt: true })));
  } catch (e) {
    const first = String(/** @type {Error} */ (e).message).split("\n")[0];
    throw new ManifestError(`${file}: invalid TOML: ${first}`);
  }
}
