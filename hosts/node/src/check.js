// check.js: a module against the guest ABI: its wasi_map imports, its memory, its drop handler.
//
// The same checks and words as broker/check.py, from abi.js's table.

import { DROP_EXPORT, FUNCTIONS, IMPORT_MODULE, MAX_HANDLE_ARGS } from "./abi.js";
import { isHandleKind } from "./limits.js";
import { signature } from "./wasm.js";

const BY_NAME = new Map(FUNCTIONS.map((f) => [f.name, f]));

/** The signature the ABI gives function `f`. @param {(typeof FUNCTIONS)[number]} f */
export const expectedSignature = (f) => signature({ params: f.params.map((p) => p.wasm), results: ["i32"] });

/** What `WebAssembly` calls an import kind, as wasmtime-py's type names read. */
const KIND_TYPE = /** @type {Record<string, string>} */ ({
  memory: "MemoryType",
  table: "TableType",
  global: "GlobalType",
  tag: "TagType",
});

/**
 * One `wasi_map` import and what is wrong with it, if anything.
 * @typedef {{name: string, signature: string, problem: string | null}} ImportReport
 */

/**
 * Every import from `wasi_map`, each checked against the ABI table.
 * @param {import("./wasm.js").ImportInfo[]} imports
 * @returns {ImportReport[]}
 */
export function wasiMapImports(imports) {
  return imports
    .filter((i) => i.module === IMPORT_MODULE)
    .map((i) => {
      if (i.kind !== "func" || !i.type) return { name: i.name, signature: KIND_TYPE[i.kind] ?? i.kind, problem: "not a function" };
      const sig = signature(i.type);
      const f = BY_NAME.get(i.name);
      let problem = null;
      if (!f) problem = "not in the WASI-Map v1 ABI";
      else if (sig !== expectedSignature(f)) problem = `signature ${sig} does not match the ABI's ${expectedSignature(f)}`;
      return { name: i.name, signature: sig, problem };
    });
}

/** Why the module's memory cannot serve the ABI, or null. @param {import("./wasm.js").ExportInfo[]} exports */
export function memoryProblem(exports) {
  const mem = exports.find((e) => e.name === "memory");
  if (!mem) return "imports wasi_map but does not export its linear memory as `memory`";
  if (mem.kind !== "memory") return "exports `memory`, but it is not a memory";
  if (mem.shared) return "exports a shared memory as `memory` (not supported)";
  return null;
}

/** Why the module's wasi_map_on_drop export cannot take notices, or null. @param {import("./wasm.js").ExportInfo[]} exports */
export function dropHandlerProblem(exports) {
  const e = exports.find((x) => x.name === DROP_EXPORT);
  if (!e) return null;
  const found = e.kind === "func" && e.type ? signature(e.type) : "not a function";
  return found === "(i64) -> ()" ? null : `exports ${DROP_EXPORT} as ${found}, not (i64) -> ()`;
}

/**
 * Every problem, one line each: bad imports, a missing memory, a bad drop handler.
 * @param {import("./wasm.js").ImportInfo[]} imports @param {import("./wasm.js").ExportInfo[]} exports
 */
export function moduleProblems(imports, exports) {
  const reports = wasiMapImports(imports);
  const problems = reports.filter((r) => r.problem).map((r) => `import wasi_map.${r.name}: ${r.problem}`);
  if (reports.length) {
    const mem = memoryProblem(exports);
    if (mem) problems.push(mem);
  }
  const drop = dropHandlerProblem(exports);
  if (drop) problems.push(drop);
  return problems;
}

/**
 * [export, problem] for every declaration its function cannot serve.
 * @param {Map<string, import("./wasm.js").FuncType>} types every exported function's type
 * @param {Map<string, import("./limits.js").ExportDecl>} decls
 * @returns {Array<[string, string]>}
 */
export function declarationProblems(types, decls) {
  /** @type {Array<[string, string]>} */
  const problems = [];
  for (const [name, decl] of decls) {
    const ty = types.get(name);
    if (!ty) {
      problems.push([name, "declared in exports, but not an exported function"]);
      continue;
    }
    for (const [part, kinds, slots] of /** @type {const} */ ([
      ["params", decl.params, ty.params],
      ["results", decl.results, ty.results],
    ])) {
      if (kinds.length > slots.length) {
        problems.push([name, `declares ${kinds.length} ${part}, the function has ${slots.length}`]);
        continue;
      }
      kinds.forEach((k, i) => {
        if (!isHandleKind(k) && k !== slots[i]) problems.push([name, `${part}[${i}] is declared ${k}, but is ${slots[i]}`]);
        if (isHandleKind(k) && slots[i] !== "i32") {
          problems.push([name, `${part}[${i}] is declared ${k}, but a handle is an i32, not ${slots[i]}`]);
        }
      });
    }
    if ([...decl.params, ...decl.results].filter(isHandleKind).length > MAX_HANDLE_ARGS) {
      problems.push([name, `at most ${MAX_HANDLE_ARGS} handle parameters`]);
    }
  }
  return problems;
}

/**
 * `wasi-map-node check MODULE`: the lines to print, the problems found, as `wasi-map check` prints them.
 * @param {string} label @param {import("./wasm.js").ImportInfo[]} imports @param {import("./wasm.js").ExportInfo[]} exports
 * @returns {{lines: string[], bad: number}}
 */
export function checkReport(label, imports, exports) {
  const reports = wasiMapImports(imports);
  const lines = [];
  let bad = 0;
  for (const r of reports) {
    bad += r.problem ? 1 : 0;
    lines.push(`wasi_map.${r.name} ${r.signature}: ${r.problem ? `ERROR: ${r.problem}` : "ok"}`);
  }
  if (reports.length) {
    const mem = memoryProblem(exports);
    if (mem) {
      bad++;
      lines.push(`memory: ERROR: ${mem}`);
    }
  } else {
    lines.push(`${label}: no wasi_map imports`);
  }
  return { lines, bad };
}
