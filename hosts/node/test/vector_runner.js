// vector_runner.js: replay a shared test vector (tests/vectors/README.md) on the Node host.
//
// `run(vector)` returns every step as this host answered it, in the vector's
// own notation, so a test compares the two lists step by step.  Memory is
// written and read through the guest's own store64/store8 and
// load64/load8 exports, 8 bytes at a time then byte by byte, as the
// Python runner does (tests/support/vectors.py).

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Broker, GuestTrap } from "../src/index.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, "../../..");
export const GUESTS = path.join(REPO, "tests/guests");
export const VECTORS = process.env.WASI_MAP_VECTORS ?? path.join(REPO, "tests/vectors");

const SAFE = 2n ** 53n;

/** Every vector file of `dir`, by name. */
export function vectorFiles(dir = VECTORS) {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => path.join(dir, f));
}

/**
 * A vector file, parsed.  The notation writes an integer beyond ±2^53 as a
 * decimal string; a file that writes one as a bare JSON number (an i64
 * argument recorded as given) would lose its low bits in JSON.parse, so
 * long integer literals are read as strings first.
 * @param {string} file
 */
export function loadVector(file) {
  const text = fs.readFileSync(file, "utf8").replace(/(?<=[[,:]\s*)(-?\d{16,})(?=\s*[\],}])/g, '"$1"');
  return JSON.parse(text);
}

/** An integer of the notation (a decimal string beyond ±2^53). @param {number | string} v */
const number = (v) => BigInt(v);

/** An integer in the notation. @param {number | bigint} v */
function notation(v) {
  const b = BigInt(v);
  return -SAFE < b && b < SAFE ? Number(b) : b.toString();
}

/** A call's results as the notation's list. @param {unknown} value */
function results(value) {
  const values = value === undefined ? [] : Array.isArray(value) ? value : [value];
  return values.map((v) => notation(/** @type {number | bigint} */ (v)));
}

/** @param {Broker} b @param {string} module @param {number} at @param {Buffer} data */
function write(b, module, at, data) {
  const whole = data.length - (data.length % 8);
  for (let i = 0; i < whole; i += 8) b.call(`${module}.store64`, at + i, data.readBigInt64LE(i));
  for (let i = whole; i < data.length; i++) b.call(`${module}.store8`, at + i, data[i]);
}

/** @param {Broker} b @param {string} module @param {number} at @param {number} n */
function read(b, module, at, n) {
  const out = Buffer.alloc(n);
  const whole = n - (n % 8);
  for (let i = 0; i < whole; i += 8) out.writeBigInt64LE(/** @type {bigint} */ (b.call(`${module}.load64`, at + i)), i);
  for (let i = whole; i < n; i++) out[i] = /** @type {number} */ (b.call(`${module}.load8`, at + i));
  return out;
}

/** What this host answers to one step. @param {Broker} b @param {Record<string, any>} step */
function answer(b, step) {
  if ("write" in step) {
    write(b, step.write, step.at, Buffer.from(step.hex, "hex"));
    return { ...step };
  }
  if ("read" in step) {
    const n = "hex" in step ? step.hex.length / 2 : step.len;
    return { read: step.read, at: step.at, hex: read(b, step.read, step.at, n).toString("hex") };
  }
  if ("stats" in step) {
    const s = b.stats();
    return { stats: { maps: s.maps, named: s.named, handles: s.handles } };
  }
  const args = step.args.map(number);
  try {
    return { call: step.call, args: step.args, results: results(b.call(step.call, ...args)) };
  } catch (e) {
    if (e instanceof GuestTrap) return { call: step.call, args: step.args, trap: true };
    throw e;
  }
}

/**
 * Every step of `vector` as this host answers it.
 * @param {{app: string, steps: Array<Record<string, any>>}} vector
 */
export async function run(vector) {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "wasi-map-vector-"));
  try {
    for (const guest of fs.readdirSync(GUESTS)) fs.symlinkSync(path.join(GUESTS, guest), path.join(scratch, guest));
    const app = path.join(scratch, "app.toml");
    fs.writeFileSync(app, vector.app);
    const b = await Broker.fromManifest(app);
    try {
      return vector.steps.map((step) => answer(b, step));
    } finally {
      b.close();
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
