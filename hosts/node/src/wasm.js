// wasm.js: reading a module: WAT text through wabt, and the function types of its imports and exports.
//
// WebAssembly.Module.imports() names an import's kind but not its type;
// `check` and the call path need the types, so the type, import, function
// and export sections are read here (nothing else of the binary is).

import fs from "node:fs";
import path from "node:path";
import wabtInit from "wabt";
import { ModuleError } from "./errors.js";

export const MAX_MODULE_SIZE = 256 * 2 ** 20;

/** @type {Promise<any> | null} */
let wabt = null;

/**
 * A function type, as a signature reads: "(i32, i64) -> (i32)".
 * @typedef {{params: string[], results: string[]}} FuncType
 */

/** @param {FuncType} t */
export const signature = (t) => `(${t.params.join(", ")}) -> (${t.results.join(", ")})`;

/**
 * One import: its module and name, and its kind ("func", "memory", "table", "global", "tag").
 * @typedef {{module: string, name: string, kind: string, type?: FuncType}} ImportInfo
 */

/**
 * One export: its name and kind, with a function's type or a memory's sharedness.
 * @typedef {{name: string, kind: string, type?: FuncType, shared?: boolean, minPages?: number}} ExportInfo
 */

/**
 * The bytes of a .wat or .wasm file (or given bytes, WAT or Wasm), as Wasm.
 * @param {string | Uint8Array} source @param {string} [name] the module's name (for messages about bytes)
 * @returns {Promise<{bytes: Uint8Array, label: string}>}
 */
export async function readModule(source, name = "module") {
  let label;
  let data;
  if (typeof source === "string") {
    label = source;
    const ext = path.extname(source);
    if (ext !== ".wat" && ext !== ".wasm") throw new ModuleError(`${label}: a module must be a .wat or .wasm file`);
    data = readRegular(source, label);
  } else {
    label = `module '${name}'`;
    data = source;
  }
  if (data.length === 0) {
    const given = typeof source === "string" ? "the file is empty" : "no bytes given";
    throw new ModuleError(`${label}: not a valid Wasm module: ${given}`);
  }
  if (data[0] === 0 && data[1] === 0x61 && data[2] === 0x73 && data[3] === 0x6d) return { bytes: data, label };
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(data);
  } catch {
    throw new ModuleError(`${label}: not a valid Wasm module: neither Wasm (no \\0asm header) nor UTF-8 WAT text`);
  }
  wabt ??= wabtInit();
  const w = await wabt;
  try {
    const parsed = w.parseWat(typeof source === "string" ? path.basename(source) : label, text, {
      bulk_memory: true,
      multi_value: true,
      mutable_globals: true,
      sat_float_to_int: true,
      sign_extension: true,
      reference_types: true,
      simd: true,
    });
    try {
      parsed.resolveNames();
      parsed.validate();
      return { bytes: new Uint8Array(parsed.toBinary({}).buffer), label };
    } finally {
      parsed.destroy();
    }
  } catch (e) {
    throw new ModuleError(`${label}: not a valid Wasm module: ${watProblem(/** @type {Error} */ (e).message)}`);
  }
}

/** wabt's several-line error as one line: the first error, with its place and its source line. @param {string} message */
function watProblem(message) {
  const lines = message.split("\n").filter((l) => l.trim() && !/^\s*\^+\s*$/.test(l) && !l.startsWith("parseWat failed"));
  const first = lines[0] ?? message;
  const source = lines[1] && !/error:/.test(lines[1]) ? `: ${lines[1].trim().slice(0, 100)}` : "";
  return first.trim() + source;
}

/** A regular file of at most MAX_MODULE_SIZE bytes (no FIFO or device can block us). @param {string} file @param {string} label */
function readRegular(file, label) {
  let st;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw new ModuleError(`${label}: cannot read module: ${/** @type {any} */ (e).code === "ENOENT" ? "no such file" : /** @type {Error} */ (e).message}`);
  }
  if (!st.isFile()) throw new ModuleError(`${label}: cannot read module: not a regular file`);
  if (st.size > MAX_MODULE_SIZE) throw new ModuleError(`${label}: cannot read module: larger than ${MAX_MODULE_SIZE} bytes`);
  return new Uint8Array(fs.readFileSync(file));
}

const VALTYPES = /** @type {Record<number, string>} */ ({
  0x7f: "i32",
  0x7e: "i64",
  0x7d: "f32",
  0x7c: "f64",
  0x7b: "v128",
  0x70: "funcref",
  0x6f: "externref",
});

/** A cursor over a module's bytes. */
class Reader {
  /** @param {Uint8Array} bytes @param {number} at @param {number} end */
  constructor(bytes, at = 0, end = bytes.length) {
    this.bytes = bytes;
    this.at = at;
    this.end = end;
  }
  byte() {
    if (this.at >= this.end) throw new Error("unexpected end of section");
    return this.bytes[this.at++];
  }
  u32() {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return result;
      shift += 7;
    }
  }
  name() {
    const n = this.u32();
    const s = Buffer.from(this.bytes.subarray(this.at, this.at + n)).toString("utf8");
    this.at += n;
    return s;
  }
  valtype() {
    const b = this.byte();
    return VALTYPES[b] ?? `0x${b.toString(16)}`;
  }
  /** memory or table limits: [flags, min] */
  limits() {
    const flags = this.byte();
    const min = this.u32();
    if (flags & 1) this.u32();
    return { flags, min };
  }
}

/**
 * The imports and exports of a compiled module, with function types.
 * @param {Uint8Array} bytes a valid Wasm binary
 * @returns {{imports: ImportInfo[], exports: ExportInfo[]}}
 */
export function moduleTypes(bytes) {
  /** @type {FuncType[]} */
  const types = [];
  /** @type {ImportInfo[]} */
  const imports = [];
  /** @type {number[]} type index of every function, imported ones first */
  const funcs = [];
  /** @type {Array<{shared: boolean, minPages: number}>} */
  const memories = [];
  /** @type {ExportInfo[]} */
  const exports = [];
  const r = new Reader(bytes, 8);
  while (r.at < bytes.length) {
    const id = r.byte();
    const size = r.u32();
    const s = new Reader(bytes, r.at, r.at + size);
    r.at += size;
    if (id === 1) {
      for (let n = s.u32(); n > 0; n--) {
        s.byte(); // 0x60: func
        const params = Array.from({ length: s.u32() }, () => s.valtype());
        const results = Array.from({ length: s.u32() }, () => s.valtype());
        types.push({ params, results });
      }
    } else if (id === 2) {
      for (let n = s.u32(); n > 0; n--) {
        const module = s.name();
        const name = s.name();
        const kind = s.byte();
        if (kind === 0) {
          const t = s.u32();
          funcs.push(t);
          imports.push({ module, name, kind: "func", type: types[t] });
        } else if (kind === 1) {
          s.byte();
          s.limits();
          imports.push({ module, name, kind: "table" });
        } else if (kind === 2) {
          const { flags, min } = s.limits();
          memories.push({ shared: Boolean(flags & 2), minPages: min });
          imports.push({ module, name, kind: "memory" });
        } else if (kind === 3) {
          s.valtype();
          s.byte();
          imports.push({ module, name, kind: "global" });
        } else {
          imports.push({ module, name, kind: "tag" });
          break; // nothing after a tag import is needed by the host
        }
      }
    } else if (id === 3) {
      for (let n = s.u32(); n > 0; n--) funcs.push(s.u32());
    } else if (id === 5) {
      for (let n = s.u32(); n > 0; n--) {
        const { flags, min } = s.limits();
        memories.push({ shared: Boolean(flags & 2), minPages: min });
      }
    } else if (id === 7) {
      for (let n = s.u32(); n > 0; n--) {
        const name = s.name();
        const kind = s.byte();
        const index = s.u32();
        if (kind === 0) exports.push({ name, kind: "func", type: types[funcs[index]] });
        else if (kind === 2) exports.push({ name, kind: "memory", ...memories[index] });
        else exports.push({ name, kind: kind === 1 ? "table" : kind === 3 ? "global" : "tag" });
      }
    }
  }
  return { imports, exports };
}

/**
 * A compiled module with what the host reads of it.
 * @param {Uint8Array} bytes @param {string} label
 */
export function compile(bytes, label) {
  let module;
  try {
    module = new WebAssembly.Module(bytes);
  } catch (e) {
    throw new ModuleError(`${label}: not a valid Wasm module: ${/** @type {Error} */ (e).message}`);
  }
  return { module, ...moduleTypes(bytes) };
}
