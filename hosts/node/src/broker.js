// broker.js: the Node.js host's Broker: load modules, call their exports, deliver drop notices.
//
// One broker owns the maps (maps.js) and the loaded modules (module.js).
// A call runs the export; a trap tears down the module it began in (every
// handle closed as by `close`), and, by the module's on_trap, a new
// instance takes its place before the call returns.  Drop notices queued
// meanwhile are delivered after the outermost call (docs/abi.md "Drop
// notices").  Imports of other modules' exports are links (link.js),
// resolved as modules come, in either order; a trap that began in a callee
// tears down the callee, not the module the host called.  The cycle
// collector (gc.js) runs inside the map store.  Time limits stop a module's
// Wasm, never host code (deadline.js).  Not supported yet on this host:
// host MapRefs, stores, instances > 1 (README.md).

import { DROP_EXPORT, IMPORT_MODULE } from "./abi.js";
import { abiImports } from "./abi_imports.js";
import { Account } from "./accounts.js";
import { ConfigError, GuestTrap, HostTrap, ModuleError } from "./errors.js";
import { checkExports, checkGrants, checkInstances, checkLimits, checkOnTrap, isHandleKind, moduleNameProblem, SpecError } from "./limits.js";
import { loadManifest } from "./manifest.js";
import { MapStore } from "./maps.js";
import { moduleProblems, declarationProblems } from "./check.js";
import { Links } from "./link.js";
import { DEFAULT_GC_THRESHOLD, thresholdProblem } from "./gc.js";
import { LoadedModule, ModuleInstance } from "./module.js";
import { compile, readModule } from "./wasm.js";
import { repair } from "./repair.js";
import { enterFromHost, instrument, tickImports } from "./deadline.js";

const RANGES = { i32: 2n ** 32n, i64: 2n ** 64n };

/**
 * @typedef {object} LoadOptions
 * @property {Record<string, string | number>} [grants]  map name -> "r", "w", "rw" (or 1..3)
 * @property {Partial<import("./limits.js").Limits>} [limits]  over the broker's defaults
 * @property {Record<string, {params?: string[], results?: string[]}>} [exports]  handle declarations
 * @property {number} [instances]  1 only, for now
 * @property {"replace" | "stop"} [onTrap]
 */

/** @typedef {{maps: number, named: number, handles: Record<string, number>}} Stats */

/**
 * What the broker has done so far: maps reclaimed (by counting and by the
 * collector), the collector's runs, borrows the broker had to close.
 * @typedef {{reclaimed: number, cyclesReclaimed: number, collections: number, unreleasedBorrows: number}} Counters
 */

/**
 * @typedef {object} BrokerOptions
 * @property {Partial<import("./limits.js").Limits>} [limits] every module's defaults
 * @property {boolean} [strictBorrows] a callee that returns with a borrow open traps
 * @property {number | bigint} [gcThreshold] releases before the cycle collector runs by itself; 0: only on demand
 */

/** A list of names for a message, cut after 20. @param {string} what @param {Iterable<string>} names */
function listed(what, names) {
  const all = [...names];
  if (!all.length) return `${what}: none`;
  const more = all.length > 20 ? ` and ${all.length - 20} more` : "";
  return `${what}: ${all.slice(0, 20).map((n) => `'${n}'`).join(", ")}${more}`;
}

export class Broker {
  /** @param {BrokerOptions} [options] */
  constructor(options = {}) {
    this._store = new MapStore();
    this._links = new Links();
    this.strictBorrows = options.strictBorrows ?? false;
    this.gcThreshold = options.gcThreshold ?? DEFAULT_GC_THRESHOLD;
    this._host = new Account("host");
    /** @type {Map<string, LoadedModule>} */
    this._modules = new Map();
    this._defaults = checkLimits(options.limits);
    this._closed = false;
    this._running = false;
    this._delivering = false;
    /** @type {LoadedModule[]} modules whose torn-down instance waits for a new one */
    this._torn = [];
    /** @type {ModuleInstance | null} the instance being started (not yet its module's) */
    this._starting = null;
  }

  /**
   * A broker with every module of an app manifest loaded (docs/reference/manifest.md).
   * @param {string} path
   */
  static async fromManifest(path) {
    const manifest = loadManifest(path);
    const broker = new Broker({ strictBorrows: manifest.strictBorrows, gcThreshold: manifest.gcThreshold });
    broker._defaults = manifest.limits;
    try {
      for (const m of manifest.modules) {
        await broker.load(m.name, m.path, { grants: m.grants, limits: m.limits, exports: m.exports, onTrap: m.onTrap, checked: true });
      }
      for (const link of broker._links.unresolved()) {
        throw new ModuleError(
          `${manifest.path}: module '${link.importer.name}' imports ${link.module}.${link.name}, but the app has no module '${link.module}'`,
        );
      }
    } catch (e) {
      broker.close();
      throw e;
    }
    return broker;
  }

  /**
   * Load a module under `name` from a .wat/.wasm path or Wasm/WAT bytes.
   * @param {string} name @param {string | Uint8Array} source @param {LoadOptions & {checked?: boolean}} [options]
   */
  async load(name, source, options = {}) {
    this._checkOpen();
    const problem = moduleNameProblem(name);
    if (problem) throw new ConfigError(`module ${JSON.stringify(name)}: ${problem}`);
    if (this._modules.has(name)) throw new ConfigError(`module '${name}' is already loaded`);
    /** @type {import("./module.js").ModuleSpec} */
    let spec;
    try {
      spec = {
        name,
        grants: options.checked ? /** @type {any} */ (options.grants) : checkGrants(options.grants, true),
        limits: options.checked ? /** @type {any} */ (options.limits) : checkLimits(options.limits, this._defaults),
        exports: options.checked ? /** @type {any} */ (options.exports) : checkExports(options.exports),
        instances: checkInstances(options.instances ?? 1),
        onTrap: checkOnTrap(options.onTrap ?? "replace"),
      };
    } catch (e) {
      if (!(e instanceof SpecError)) throw e;
      const [head, ...rest] = e.where;
      const place = rest.length ? `${head === "grants" ? "grant" : "export"} '${rest[0]}'${rest.slice(1).map((r) => ` ${r}`).join("")}` : head;
      throw new ConfigError(`module '${name}' ${place}: ${e.problem}`);
    }
    if (spec.instances > 1) {
      throw new ConfigError(`module '${name}': instances = ${spec.instances} is not yet supported on the Node host (1 only)`);
    }
    const { bytes, label } = await readModule(source, name);
    this._checkOpen(); // closed while it compiled
    if (this._modules.has(name)) throw new ConfigError(`module '${name}' is already loaded`);
    const { module, imports, exports } = compile(bytes, label);
    const wasi = imports.find((i) => i.module === "wasi_snapshot_preview1");
    if (wasi) throw new ModuleError(`${label}: imports ${wasi.module}.${wasi.name}: WASI imports are not yet supported on the Node host`);
    const problems = moduleProblems(imports, exports);
    if (problems.length) throw new ModuleError(`${label}: ${problems[0]}`);
    const types = new Map(exports.filter((e) => e.kind === "func").map((e) => [e.name, /** @type {any} */ (e.type)]));
    const declared = declarationProblems(types, spec.exports);
    if (declared.length) throw new ModuleError(`${label}: exports.${declared[0][0]}: ${declared[0][1]}`);
    // The code that runs checks its time limit (deadline.js); the guest's own is what was checked above.
    const timed = spec.limits.time_ms > 0;
    const code = timed ? compile(await instrument(bytes, label), label).module : module;
    this._checkOpen(); // closed while it was instrumented
    if (this._modules.has(name)) throw new ConfigError(`module '${name}' is already loaded`);
    const loaded = new LoadedModule(spec, label, code, exports, timed);
    loaded.peerImports = imports.filter((i) => i.module !== IMPORT_MODULE);
    loaded.instances.push(this._instantiate(loaded));
    this._modules.set(name, loaded);
    try {
      this._links.resolveInto(loaded); // its own imports of itself, and every module waiting for it
    } catch (e) {
      this._remove(loaded);
      throw e;
    }
    const trap = this._deliver(); // what a failed start left behind, or its handlers
    if (trap) throw trap;
    return loaded.name;
  }

  /**
   * A new, started instance of `loaded`; ModuleError (nothing of it left) when it traps starting.
   * @param {LoadedModule} loaded
   */
  _instantiate(loaded) {
    const inst = new ModuleInstance(loaded, this._store);
    const peers = this._links.define(inst, loaded.peerImports, loaded.label);
    try {
      for (const link of this._links.all) {
        if (link.importer !== inst) continue;
        const target = this._modules.get(link.module);
        if (target) this._links.resolve(link, target); // a replaced instance's own module among them
      }
    } catch (e) {
      this._links.forget(inst);
      throw e;
    }
    this._links.takeOrigin();
    try {
      // A start function's ABI calls see no memory yet (every pointer FAULT): JS gives
      // host functions no way to the instance before instantiation returns.
      const ticks = loaded.timed ? tickImports(inst, (i) => this._links.markOrigin(i)) : {};
      const imports = { ...peers, ...ticks, [IMPORT_MODULE]: abiImports(inst) };
      enterFromHost(inst); // its start function
      this._starting = inst;
      try {
        inst.instance = new WebAssembly.Instance(loaded.module, imports);
      } finally {
        inst.depth--;
      }
      const memory = inst.instance.exports.memory;
      if (memory instanceof WebAssembly.Memory) inst.memory.memory = memory;
      const init = inst.instance.exports._initialize;
      if (typeof init === "function") {
        this._running = true;
        enterFromHost(inst);
        try {
          init();
        } finally {
          this._running = false;
          inst.depth--;
        }
      }
      this._repairIfNeeded(null); // a cut the guest went on from (it caught the trap)
    } catch (e) {
      this._repairIfNeeded(e);
      const where = inst.instance ? "in _initialize" : "while starting"; // broker/runtime.py's words
      // A trap that began in a peer tears that peer down, as any trap does.
      const origin = this._links.takeOrigin();
      if (origin) origin.cutIn = null;
      if (origin && origin !== inst) this._tearDown(origin, `trapped in ${loaded.name}'s ${inst.instance ? "_initialize" : "start function"}`);
      this._dropInstance(inst);
      throw new ModuleError(`${loaded.label}: trapped ${where}: ${trapReason(e)}`, { cause: e });
    } finally {
      this._starting = null;
    }
    return inst;
  }

  /**
   * Call `module.export` with integer arguments (i32: number; i64: number or
   * BigInt; signed or unsigned).  The results: undefined for none, one
   * value (number for i32, BigInt for i64), or an array for several.
   * @param {string} target @param {...(number | bigint)} args
   * @returns {number | bigint | Array<number | bigint> | undefined}
   */
  call(target, ...args) {
    this._checkOpen();
    if (this._running) throw new ConfigError(`call '${target}': not from inside a guest call`);
    const dot = target.indexOf(".");
    if (dot < 0 || dot === target.length - 1) throw new ConfigError(`call target '${target}': expected MODULE.EXPORT`);
    const [moduleName, exportName] = [target.slice(0, dot), target.slice(dot + 1)];
    const loaded = this._modules.get(moduleName);
    if (!loaded) throw new ConfigError(`no module named '${moduleName}' is loaded (${listed("loaded", this._modules.keys())})`);
    const inst = loaded.instance;
    if (inst.tornDown) throw new ModuleError(`module '${moduleName}' was torn down (${inst.tornDown}); load it again`);
    const type = loaded.functions.get(exportName);
    if (!type) {
      throw new ConfigError(`module '${moduleName}' has no exported function '${exportName}' (${listed("its functions", loaded.functions.keys())})`);
    }
    const decl = loaded.spec.exports.get(exportName);
    const handle = decl ? [...decl.params, ...decl.results].findIndex(isHandleKind) : -1;
    if (decl && handle >= 0) {
      const part = handle < decl.params.length ? `parameter ${handle}` : `result ${handle - decl.params.length}`;
      const kind = [...decl.params, ...decl.results][handle];
      throw new TypeError(
        `${target}: ${part} is declared ${kind}: passing handles from the host (Own, Borrow, Share of a MapRef) is not yet supported on the Node host`,
      );
    }
    const values = this._arguments(target, type, args);
    const fn = /** @type {Function} */ (/** @type {WebAssembly.Instance} */ (inst.instance).exports[exportName]);
    /** @type {unknown} */
    let raw;
    /** @type {GuestTrap | null} */
    let error = null;
    this._running = true;
    this._links.takeOrigin();
    enterFromHost(inst);
    try {
      raw = fn(...values);
    } catch (e) {
      error = this._trapped(inst, moduleName, exportName, e);
    } finally {
      this._running = false;
      inst.depth--;
      this._repairIfNeeded(null); // a cut the guest went on from (it caught the trap)
    }
    const dropTrap = this._deliver();
    this._replaceTorn();
    if (error || dropTrap) throw error ?? dropTrap;
    return type.results.length === 1 ? /** @type {any} */ (raw) : type.results.length ? [.../** @type {any[]} */ (raw)] : undefined;
  }

  /**
   * The arguments as Wasm takes them; TypeError for a wrong count, type or range.
   * @param {string} target @param {import("./wasm.js").FuncType} type @param {Array<number | bigint>} args
   */
  _arguments(target, type, args) {
    const bad = [...type.params, ...type.results].find((t) => t !== "i32" && t !== "i64");
    if (bad) throw new TypeError(`${target}: only i32/i64 parameters and results can be passed from the host, not ${bad}`);
    if (args.length !== type.params.length) {
      throw new TypeError(`${target} takes ${type.params.length} argument(s) (${type.params.join(", ")}), ${args.length} given`);
    }
    return args.map((value, i) => {
      const t = /** @type {"i32" | "i64"} */ (type.params[i]);
      const span = RANGES[t];
      const ok = typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value));
      if (!ok || BigInt(value) < -(span >> 1n) || BigInt(value) >= span) {
        throw new TypeError(`${target}: argument ${i} must be an ${t}, got ${String(value)}`);
      }
      return t === "i64" ? BigInt.asIntN(64, BigInt(value)) : Number(BigInt.asIntN(32, BigInt(value)));
    });
  }

  /**
   * A call of `module.exportName` (running in `inst`) trapped: tear down the
   * instance the trap began in (noted by the links; else `inst`); the GuestTrap to throw.
   * @param {ModuleInstance} inst @param {string} module @param {string} exportName @param {unknown} cause
   */
  _trapped(inst, module, exportName, cause) {
    this._repairIfNeeded(cause); // before the teardown: it releases by the counts
    const origin = this._links.takeOrigin() ?? inst;
    this._tearDown(origin, `trapped in ${module}.${exportName}`);
    return new GuestTrap(module, exportName, this._cutReason(origin, cause), { cause, origin: origin.name });
  }

  /**
   * Why `origin` trapped: if host code running for it was cut off (a guest
   * that left it too little stack: abi_imports.js, link.js), in those words.
   * @param {ModuleInstance} origin @param {unknown} cause
   */
  _cutReason(origin, cause) {
    const where = origin.cutIn;
    origin.cutIn = null;
    if (!where) return trapReason(cause);
    if (cause instanceof RangeError && /call stack/.test(cause.message)) return `wasi_map: module '${origin.name}' ran out of stack in ${where}`;
    return `wasi_map: module '${origin.name}' failed in ${where}: ${trapReason(cause)}`;
  }

  /**
   * Host code was cut off (a guest left it too little stack; abi_imports.js,
   * link.js), or a trap came from a RangeError that may have cut it: put
   * the counts, charges and handle tables right (repair.js).  Only when no
   * guest code runs.
   * @param {unknown} cause the trap, if one is unwinding
   */
  _repairIfNeeded(cause) {
    if (cause instanceof RangeError) this._store.needsRepair = true; // a cut the flag may have missed
    if (!this._store.needsRepair) return;
    const instances = [...this._modules.values()].flatMap((loaded) => loaded.instances);
    if (this._starting && !instances.includes(this._starting)) instances.push(this._starting);
    repair(this._store, instances, this._host);
  }

  /**
   * Tear `inst` down (every handle closed; calls into it trap) and queue it
   * for a new instance, by its module's on_trap; once.
   * @param {ModuleInstance} inst @param {string} why
   */
  _tearDown(inst, why) {
    if (inst.tornDown || inst.unloaded) return;
    inst.tornDown = why;
    inst.teardown();
    if (inst.loaded.spec.onTrap === "replace") this._torn.push(inst.loaded);
  }

  /** An instance goes for good: its handles, watches and links. @param {ModuleInstance} inst */
  _dropInstance(inst) {
    this._links.forget(inst);
    if (!inst.unloaded) inst.unload(this._host);
  }

  /** `loaded` goes whole: links into it wait again, its instances go. @param {LoadedModule} loaded */
  _remove(loaded) {
    if (this._modules.get(loaded.name) === loaded) this._modules.delete(loaded.name);
    this._links.unresolveInto(loaded.name);
    for (const inst of loaded.instances) this._dropInstance(inst);
  }

  /** A new instance for each module a trap tore down (on_trap = "replace"). */
  _replaceTorn() {
    const torn = this._torn;
    this._torn = [];
    for (const loaded of torn) {
      if (this._modules.get(loaded.name) !== loaded) continue; // unloaded meanwhile
      const old = loaded.instance;
      try {
        loaded.instances[0] = this._instantiate(loaded);
      } catch (e) {
        old.tornDown = `${old.tornDown}; a new instance failed to start: ${/** @type {Error} */ (e).message}`;
        continue;
      }
      this._dropInstance(old);
    }
  }

  /**
   * Deliver the drop notices queued so far: each a call of the watching
   * instance's wasi_map_on_drop(cookie), if it is loaded, not torn down, and
   * exports one.  Notices the handlers cause wait for the next delivery.
   * The first trap, if any.
   */
  _deliver() {
    if (this._delivering || this._running) return null;
    this._delivering = true;
    /** @type {GuestTrap | null} */
    let first = null;
    try {
      for (const { owner, cookie } of this._store.takeNotices()) {
        const inst = /** @type {ModuleInstance} */ (owner);
        const handler = inst.instance?.exports[DROP_EXPORT];
        if (inst.unloaded || inst.tornDown || typeof handler !== "function") continue;
        this._running = true;
        this._links.takeOrigin();
        enterFromHost(inst);
        try {
          handler(cookie);
        } catch (e) {
          first ??= this._trapped(inst, inst.name, DROP_EXPORT, e);
        } finally {
          this._running = false;
          inst.depth--;
          this._repairIfNeeded(null);
        }
      }
    } finally {
      this._delivering = false;
    }
    return first;
  }

  /** Deliver queued drop notices now; throws the first trap of a handler. */
  deliverNotices() {
    this._checkOpen();
    const trap = this._deliver();
    this._replaceTorn();
    if (trap) throw trap;
  }

  /**
   * Unload `name`: every handle it holds closed, its watches forgotten, what
   * it is still charged for moved to the host; drop notices then delivered.
   * @param {string} name
   */
  unload(name) {
    this._checkOpen();
    if (this._running) throw new ConfigError(`unload '${name}': not from inside a guest call`);
    const loaded = this._modules.get(name);
    if (!loaded) throw new ConfigError(`no module named '${name}' is loaded (${listed("loaded", this._modules.keys())})`);
    this._remove(loaded);
    const trap = this._deliver();
    this._replaceTorn();
    if (trap) throw trap;
  }

  /** Live anonymous maps, named maps, and each module's live handles. @returns {Stats} */
  stats() {
    this._checkOpen();
    /** @type {Record<string, number>} */
    const handles = {};
    for (const [name, loaded] of this._modules) handles[name] = loaded.instance.handles.live;
    return { maps: this._store.liveAnon, named: this._store.liveNamed, handles };
  }

  /**
   * Run the cycle collector now; the number of maps reclaimed.  Their drop
   * notices are delivered before it returns (the first handler's trap thrown).
   */
  collect() {
    this._checkOpen();
    if (this._running) throw new ConfigError("collect: not from inside a guest call");
    const freed = this._store.collect();
    const trap = this._deliver();
    this._replaceTorn();
    if (trap) throw trap;
    return freed;
  }

  /** Strict borrows: an export that returns with a borrow still open traps.  Takes effect for every call from then on. */
  get strictBorrows() {
    return this._links.strictBorrows;
  }

  set strictBorrows(strict) {
    if (typeof strict !== "boolean") throw new ConfigError(`strictBorrows must be true or false, not ${String(strict)}`);
    this._links.strictBorrows = strict;
  }

  /** Releases that may have cut a cycle loose before the collector runs by itself; 0: only on demand. */
  get gcThreshold() {
    return this._store.gcThreshold;
  }

  set gcThreshold(value) {
    const problem = thresholdProblem(value);
    if (problem) throw new ConfigError(`the collector threshold ${problem}`);
    this._store.gcThreshold = value;
  }

  /** What the broker has done so far. @returns {Counters} */
  counters() {
    this._checkOpen();
    return {
      reclaimed: this._store.reclaimed,
      cyclesReclaimed: this._store.cyclesReclaimed,
      collections: this._store.collections,
      unreleasedBorrows: this._links.unreleasedBorrows,
    };
  }

  /** The loaded modules' names, in load order. */
  get modules() {
    return [...this._modules.keys()];
  }

  /** Drop every module and map; the broker cannot be used afterwards (idempotent). */
  close() {
    if (this._closed) return;
    this._closed = true;
    for (const loaded of this._modules.values()) {
      for (const inst of loaded.instances) if (!inst.unloaded) inst.unload(this._host);
    }
    this._modules.clear();
    const threshold = this._store.gcThreshold;
    this._store = new MapStore();
    this._store.gcThreshold = threshold;
    this._links = new Links();
  }

  get closed() {
    return this._closed;
  }

  _checkOpen() {
    if (this._closed) throw new ConfigError("the broker is closed");
  }
}

/** Why a guest trapped, in one line. @param {unknown} e */
export function trapReason(e) {
  if (e instanceof HostTrap || e instanceof WebAssembly.RuntimeError) return e.message;
  if (e instanceof RangeError) return e.message; // V8: "Maximum call stack size exceeded"
  if (e instanceof ModuleError) return e.message;
  return `host error: ${e instanceof Error ? e.message : String(e)}`;
}
