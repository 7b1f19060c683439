// deadline.js: time limits of calls into modules (docs/abi.md "Time limits"; native/deadline.c).
//
// Only Wasm is ever stopped, never host code: a module with a time limit
// is rewritten at load (binaryen) so that every function entry and every
// loop head runs
//     countdown -= 1; if (countdown == 0) countdown = tick();
// with `countdown` a global of its own and `tick` an import from the host.
// `tick` runs in JavaScript between two Wasm instructions -- a safe point:
// no host function is halfway through a change -- and compares the time
// the module's current outermost call has used with its limit; past it,
// it throws the trap, noting the module as the trap's origin, so that the
// broker tears it (and only it) down as for any trap it began.
//
// How often `tick` runs: it sets the next countdown so that about TARGET_MS
// passes between ticks (doubling it after a shorter span, halving it after
// a longer one), so a loop of cheap instructions and a loop of slow host
// calls are both checked about every millisecond, and tick's own cost
// (a JS call and performance.now(), ~0.15 us) stays far below 0.1%.
//
// When calls start: a call from the host (an export, _initialize, a start
// function, a drop notice) reads the clock; a call through a link reads
// `clock.now`, the time of the latest host call or tick anywhere (at most
// about one tick span old), since performance.now() costs more than a
// whole call between modules.  The C core's clock is 1 ms ticks too.

import { HostTrap, ModuleError } from "./errors.js";

/** @typedef {typeof import("binaryen").default} Binaryen */

/** binaryen, loaded on first use: it takes ~0.3 s to load, which `check` and untimed modules need not pay. */
let loading = /** @type {Promise<Tables> | null} */ (null);

/** The import module of `tick`: it has a '.', as no module name can, so it is never a peer's. */
export const HOST_MODULE = "wasi_map.host";
const TICK = "tick";
const TARGET_MS = 1;
const MAX_COUNTDOWN = 1 << 22;
const FIRST_COUNTDOWN = 1 << 10;

/** The time of the latest host call into a module or tick, in ms (performance.now()). */
export const clock = { now: performance.now() };

/**
 * What instrumenting needs of binaryen.
 * @typedef {{binaryen: Binaryen, api: Record<string, (...args: number[]) => number>, FEATURES: number,
 *            CHILDREN: Map<number, Array<string | [string, string]>>, LEAVES: Set<number>}} Tables
 */

/** @returns {Promise<Tables>} */
function load() {
  loading ??= import("binaryen").then(({ default: binaryen }) => tables(binaryen));
  return loading;
}

/** @param {Binaryen} binaryen @returns {Tables} */
function tables(binaryen) {
  /**
   * The features a module may use: what wasmtime enables and V8 can run.
   * Left out are those that change how binaryen writes a module that does not
   * use them (compact imports, over-long call_indirect), and proposals V8 lacks.
   */
  const F = binaryen.Features;
  const FEATURES =
    F.MutableGlobals |
    F.NontrappingFPToInt |
    F.SignExt |
    F.Multivalue |
    F.BulkMemory |
    F.BulkMemoryOpt |
    F.ReferenceTypes |
    F.SIMD128 |
    F.RelaxedSIMD |
    F.TailCall |
    F.ExtendedConst |
    F.ExceptionHandling |
    F.Atomics |
    F.MultiMemory |
    F.Memory64 |
    F.GC;

  /**
   * Where the children of each kind of expression are: [getter] for one
   * child (0: none), [count, getter] for a list.  Kinds with no entry and no
   * children (LEAVES) are checked for a loop inside by their text (rare:
   * table.fill/copy/init, try_table, ...): a loop there could not be
   * checked, so the module is refused.
   * @type {Map<number, Array<string | [string, string]>>}
   */
  const CHILDREN = new Map(
    /** @type {Array<[string, Array<string | [string, string]>]>} */ ([
      ["Block", [["BlockGetNumChildren", "BlockGetChildAt"]]],
      ["If", ["IfGetCondition", "IfGetIfTrue", "IfGetIfFalse"]],
      ["Loop", ["LoopGetBody"]],
      ["Break", ["BreakGetCondition", "BreakGetValue"]],
      ["Switch", ["SwitchGetCondition", "SwitchGetValue"]],
      ["Call", [["CallGetNumOperands", "CallGetOperandAt"]]],
      ["CallIndirect", ["CallIndirectGetTarget", ["CallIndirectGetNumOperands", "CallIndirectGetOperandAt"]]],
      ["LocalSet", ["LocalSetGetValue"]],
      ["GlobalSet", ["GlobalSetGetValue"]],
      ["Load", ["LoadGetPtr"]],
      ["Store", ["StoreGetPtr", "StoreGetValue"]],
      ["Unary", ["UnaryGetValue"]],
      ["Binary", ["BinaryGetLeft", "BinaryGetRight"]],
      ["Select", ["SelectGetIfTrue", "SelectGetIfFalse", "SelectGetCondition"]],
      ["Drop", ["DropGetValue"]],
      ["Return", ["ReturnGetValue"]],
      ["MemoryGrow", ["MemoryGrowGetDelta"]],
      ["AtomicRMW", ["AtomicRMWGetPtr", "AtomicRMWGetValue"]],
      ["AtomicCmpxchg", ["AtomicCmpxchgGetPtr", "AtomicCmpxchgGetExpected", "AtomicCmpxchgGetReplacement"]],
      ["AtomicWait", ["AtomicWaitGetPtr", "AtomicWaitGetExpected", "AtomicWaitGetTimeout"]],
      ["AtomicNotify", ["AtomicNotifyGetPtr", "AtomicNotifyGetNotifyCount"]],
      ["SIMDExtract", ["SIMDExtractGetVec"]],
      ["SIMDReplace", ["SIMDReplaceGetVec", "SIMDReplaceGetValue"]],
      ["SIMDShuffle", ["SIMDShuffleGetLeft", "SIMDShuffleGetRight"]],
      ["SIMDTernary", ["SIMDTernaryGetA", "SIMDTernaryGetB", "SIMDTernaryGetC"]],
      ["SIMDShift", ["SIMDShiftGetVec", "SIMDShiftGetShift"]],
      ["SIMDLoad", ["SIMDLoadGetPtr"]],
      ["SIMDLoadStoreLane", ["SIMDLoadStoreLaneGetPtr", "SIMDLoadStoreLaneGetVec"]],
      ["MemoryInit", ["MemoryInitGetDest", "MemoryInitGetOffset", "MemoryInitGetSize"]],
      ["MemoryCopy", ["MemoryCopyGetDest", "MemoryCopyGetSource", "MemoryCopyGetSize"]],
      ["MemoryFill", ["MemoryFillGetDest", "MemoryFillGetValue", "MemoryFillGetSize"]],
      ["RefIsNull", ["RefIsNullGetValue"]],
      ["RefEq", ["RefEqGetLeft", "RefEqGetRight"]],
      ["TableGet", ["TableGetGetIndex"]],
      ["TableSet", ["TableSetGetIndex", "TableSetGetValue"]],
      ["TableGrow", ["TableGrowGetValue", "TableGrowGetDelta"]],
      ["Try", ["TryGetBody", ["TryGetNumCatchBodies", "TryGetCatchBodyAt"]]],
      ["Throw", [["ThrowGetNumOperands", "ThrowGetOperandAt"]]],
      ["TupleMake", [["TupleMakeGetNumOperands", "TupleMakeGetOperandAt"]]],
      ["TupleExtract", ["TupleExtractGetTuple"]],
      ["RefI31", ["RefI31GetValue"]],
      ["I31Get", ["I31GetGetI31"]],
      ["CallRef", ["CallRefGetTarget", ["CallRefGetNumOperands", "CallRefGetOperandAt"]]],
      ["RefTest", ["RefTestGetRef"]],
      ["RefCast", ["RefCastGetRef"]],
      ["BrOn", ["BrOnGetRef"]],
      ["StructNew", [["StructNewGetNumOperands", "StructNewGetOperandAt"]]],
      ["StructGet", ["StructGetGetRef"]],
      ["StructSet", ["StructSetGetRef", "StructSetGetValue"]],
      ["ArrayNew", ["ArrayNewGetInit", "ArrayNewGetSize"]],
      ["ArrayNewData", ["ArrayNewDataGetOffset", "ArrayNewDataGetSize"]],
      ["ArrayNewElem", ["ArrayNewElemGetOffset", "ArrayNewElemGetSize"]],
      ["ArrayNewFixed", [["ArrayNewFixedGetNumValues", "ArrayNewFixedGetValueAt"]]],
      ["ArrayGet", ["ArrayGetGetRef", "ArrayGetGetIndex"]],
      ["ArraySet", ["ArraySetGetRef", "ArraySetGetIndex", "ArraySetGetValue"]],
      ["ArrayLen", ["ArrayLenGetRef"]],
      ["ArrayCopy", ["ArrayCopyGetDestRef", "ArrayCopyGetDestIndex", "ArrayCopyGetSrcRef", "ArrayCopyGetSrcIndex", "ArrayCopyGetLength"]],
      ["ArrayFill", ["ArrayFillGetRef", "ArrayFillGetIndex", "ArrayFillGetValue", "ArrayFillGetSize"]],
      ["ArrayInitData", ["ArrayInitDataGetRef", "ArrayInitDataGetIndex", "ArrayInitDataGetOffset", "ArrayInitDataGetSize"]],
      ["ArrayInitElem", ["ArrayInitElemGetRef", "ArrayInitElemGetIndex", "ArrayInitElemGetOffset", "ArrayInitElemGetSize"]],
      ["RefAs", ["RefAsGetValue"]],
    ]).map(([kind, getters]) => [
      /** @type {number} */ (/** @type {any} */ (binaryen)[`${kind}Id`]),
      getters.map((g) => (typeof g === "string" ? `_Binaryen${g}` : [`_Binaryen${g[0]}`, `_Binaryen${g[1]}`])),
    ]),
  );

  const LEAVES = new Set(
    ["LocalGet", "GlobalGet", "Const", "MemorySize", "Nop", "Unreachable", "AtomicFence", "Pause", "DataDrop", "Pop", "RefNull", "RefFunc", "TableSize", "ElemDrop", "Rethrow", "StringConst"].map(
      (kind) => /** @type {number} */ (/** @type {any} */ (binaryen)[`${kind}Id`]),
    ),
  );
  const api = /** @type {Record<string, (...args: number[]) => number>} */ (/** @type {any} */ (binaryen));
  return { binaryen, api, FEATURES, CHILDREN, LEAVES };
}

/**
 * `bytes` with a countdown check at every function entry and loop head and
 * `tick` imported from HOST_MODULE; the guest's own imports, exports,
 * tables, segments and start function unchanged (binaryen refers to
 * functions by name, and numbers the added import after the guest's).
 * @param {Uint8Array} bytes a module V8 has compiled @param {string} label
 * @returns {Promise<Uint8Array>}
 */
export async function instrument(bytes, label) {
  const t = await load();
  const { binaryen, FEATURES } = t;
  let module;
  try {
    module = binaryen.readBinary(bytes, FEATURES);
  } catch (e) {
    throw new ModuleError(`${label}: cannot add time-limit checks: ${firstLine(e)}`);
  }
  try {
    for (let i = 0; i < module.getNumFunctions(); i++) {
      const info = binaryen.getFunctionInfo(module.getFunctionByIndex(i));
      if (info.module === HOST_MODULE) throw new ModuleError(`${label}: imports ${HOST_MODULE}.${info.base}: that module name is the host's`);
    }
    const countdown = freeName("wasi_map$countdown", (n) => module.getGlobal(n));
    const tick = freeName("wasi_map$tick", (n) => module.getFunction(n));
    module.addGlobal(countdown, binaryen.i32, true, module.i32.const(FIRST_COUNTDOWN));
    module.addFunctionImport(tick, HOST_MODULE, TICK, binaryen.none, binaryen.i32);
    const check = () =>
      module.block(
        null,
        [
          module.global.set(countdown, module.i32.sub(module.global.get(countdown, binaryen.i32), module.i32.const(1))),
          module.if(module.i32.eqz(module.global.get(countdown, binaryen.i32)), module.global.set(countdown, module.call(tick, [], binaryen.i32))),
        ],
        binaryen.none,
      );
    for (let i = 0; i < module.getNumFunctions(); i++) {
      const func = module.getFunctionByIndex(i);
      const info = binaryen.getFunctionInfo(func);
      if (info.module) continue; // imported
      checkLoops(t, module, info.body, check, label, info.name);
      binaryen.Function.setBody(func, module.block(null, [check(), info.body], info.results));
    }
    if (!module.validate()) throw new ModuleError(`${label}: cannot add time-limit checks: the rewritten module is not valid`);
    return module.emitBinary();
  } finally {
    module.dispose();
  }
}

/**
 * Put a check at the head of every loop in `root`'s tree (iteratively: a
 * compiler's nesting can be deeper than the JS stack).
 * @param {Tables} t @param {import("binaryen").default.Module} module @param {number} root
 * @param {() => number} check @param {string} label @param {string} func
 */
function checkLoops(t, module, root, check, label, func) {
  const { binaryen, api, CHILDREN, LEAVES } = t;
  const TRY_TABLE = api._BinaryenTryTableId();
  const stack = [root];
  while (stack.length) {
    const expr = /** @type {number} */ (stack.pop());
    const id = api._BinaryenExpressionGetId(expr);
    // Wasm can catch a JS exception with catch_all: a guest could catch the trap and go on.
    if (id === TRY_TABLE || (id === binaryen.TryId && api._BinaryenTryHasCatchAll(expr))) {
      throw new ModuleError(
        `${label}: function ${func} catches every exception (catch_all), so it could catch the trap that ends it at its time limit: load it with time_ms = 0 (no limit) to run it`,
      );
    }
    const getters = CHILDREN.get(id);
    if (!getters) {
      if (LEAVES.has(id)) continue;
      if (binaryen.emitText(expr).includes("(loop")) {
        throw new ModuleError(`${label}: cannot add time-limit checks: function ${func} has a loop inside an instruction this host cannot look into`);
      }
      continue;
    }
    for (const g of getters) {
      if (typeof g === "string") {
        const child = api[g](expr);
        if (child) stack.push(child);
      } else {
        for (let n = api[g[0]](expr), i = 0; i < n; i++) stack.push(api[g[1]](expr, i));
      }
    }
    if (id === binaryen.LoopId) {
      const body = api._BinaryenLoopGetBody(expr);
      const type = binaryen.getExpressionType(body);
      api._BinaryenLoopSetBody(expr, module.block(null, [check(), body], type === binaryen.unreachable ? binaryen.auto : type));
    }
  }
}

/** `base`, or `base$N`, whichever `taken` says is free. @param {string} base @param {(n: string) => number} taken */
function freeName(base, taken) {
  let name = base;
  for (let n = 1; taken(name); n++) name = `${base}$${n}`;
  return name;
}

/** @param {unknown} e */
function firstLine(e) {
  return String(e instanceof Error ? e.message : e).split("\n")[0];
}

/**
 * The import object part for an instance with a time limit: `tick`, which
 * traps `inst` when its outermost call has run past `time_ms`.
 * @param {import("./module.js").ModuleInstance} inst @param {(inst: import("./module.js").ModuleInstance) => void} markOrigin
 */
export function tickImports(inst, markOrigin) {
  const limit = inst.limits.time_ms;
  let countdown = FIRST_COUNTDOWN;
  let last = 0;
  const tick = () => {
    const now = performance.now();
    clock.now = now;
    if (inst.depth > 0 && now - inst.entry >= limit) {
      markOrigin(inst);
      throw new HostTrap(timeLimitMessage(inst));
    }
    const since = now - Math.max(last, inst.entry);
    if (since < TARGET_MS / 2) countdown = Math.min(MAX_COUNTDOWN, countdown * 2);
    else if (since > TARGET_MS * 2) countdown = Math.max(1, Math.floor((countdown * TARGET_MS) / since));
    last = now;
    return countdown;
  };
  return { [HOST_MODULE]: { [TICK]: tick } };
}

/** The trap's words, as the C core's. @param {import("./module.js").ModuleInstance} inst */
export function timeLimitMessage(inst) {
  return `wasi_map: module '${inst.name}' ran past its time limit of ${inst.limits.time_ms} ms`;
}

/** A call from the host into `inst` begins (re-entry keeps the outermost's start). @param {import("./module.js").ModuleInstance} inst */
export function enterFromHost(inst) {
  if (inst.depth++ === 0) inst.entry = clock.now = performance.now();
}
