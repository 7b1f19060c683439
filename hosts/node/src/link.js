// link.js: calls from one module into another's export (native/link.c, broker/linking.py).
//
// An import from a module other than `wasi_map` is an import of that peer
// module's export.  Each becomes a `Link`: a JS function in the importer's
// import object that calls the export it is *resolved* to -- as soon as
// both modules are loaded, in either order, so mutual imports and a module
// importing its own export work.  A call through a link:
//   1. checks every declared handle parameter, reserves room in the
//      callee's handle table, then passes them all (ownership.js) -- all
//      or none; a pass that fails traps the module at fault;
//   2. calls the export;
//   3. in strict mode traps a callee that left a borrow open, passes
//      declared own/share results back, then ends the borrows it lent (a
//      borrow the callee left open is closed and counted).
// A trap notes the module it began in (first note wins), for the broker
// to tear down when the trap reaches the host.  A call notes when the
// callee's outermost call began, for its time limit (deadline.js): from
// `clock.now`, as performance.now() costs more than the whole call.

import { clock, timeLimitMessage } from "./deadline.js";
import { HostTrap, ModuleError } from "./errors.js";
import { borrowEnd, kindOf, passAll, passCodes, stillBorrowed } from "./ownership.js";
import { passTrapMessage } from "./traps.js";
import { signature } from "./wasm.js";

/** One import of a peer module's function, and what it is resolved to. */
export class Link {
  /**
   * @param {import("./module.js").ModuleInstance} importer
   * @param {string} module @param {string} name @param {import("./wasm.js").FuncType} type
   */
  constructor(importer, module, name, type) {
    this.importer = importer;
    this.module = module;
    this.name = name;
    this.type = type;
    this.signature = signature(type);
    this.label = `${importer.name} -> ${module}.${name}`;
    /** where a cut-off pass happened, for the trap's words (broker.js) */
    this.cutWhere = `passing handles to ${module}.${name}`;
    this.nparams = type.params.length;
    this.nresults = type.results.length;
    /** @type {import("./module.js").LoadedModule | null} the module it calls, once resolved */
    this.target = null;
    /** @type {Uint8Array} pass codes: every parameter's, then every result's */
    this.how = new Uint8Array(this.nparams + this.nresults);
    this.paramHandles = false;
    this.resultHandles = false;
    /** @type {import("./module.js").ModuleInstance | null} the instance `fn` belongs to */
    this.inst = null;
    /** @type {Function | null} */
    this.fn = null;
  }

  /** Any declared handle: the slow path. */
  get hasHandles() {
    return this.paramHandles || this.resultHandles;
  }
}

/** Every link of every loaded instance, and the state calls through them share. */
export class Links {
  constructor() {
    /** @type {Link[]} */
    this.all = [];
    this.strictBorrows = false;
    this.unreleasedBorrows = 0;
    /** @type {import("./module.js").ModuleInstance | null} where the trap now unwinding began */
    this.origin = null;
  }

  /** Note where a trap began, unless a deeper call noted it first. @param {import("./module.js").ModuleInstance} inst */
  markOrigin(inst) {
    if (!this.origin) this.origin = inst;
  }

  /** The module the last trap began in (null: none noted), forgotten. */
  takeOrigin() {
    const origin = this.origin;
    this.origin = null;
    return origin;
  }

  /**
   * Links for `importer`'s peer imports: {module: {name: function}} for its import object.
   * @param {import("./module.js").ModuleInstance} importer @param {import("./wasm.js").ImportInfo[]} imports
   * @param {string} label the module's source, for messages
   */
  define(importer, imports, label) {
    /** @type {Record<string, Record<string, Function>>} */
    const object = {};
    /** @type {Link[]} */
    const made = [];
    for (const imp of imports) {
      if (imp.kind !== "func" || !imp.type) {
        throw new ModuleError(
          `${label}: imports ${imp.module}.${imp.name}, which is not a function (only functions can be imported from other modules)`,
        );
      }
      const link = new Link(importer, imp.module, imp.name, imp.type);
      made.push(link);
      (object[imp.module] ??= {})[imp.name] = this.trampoline(link);
    }
    this.all.push(...made);
    return object;
  }

  /**
   * Point `link` at its export in `target`; ModuleError when it cannot be.
   * @param {Link} link @param {import("./module.js").LoadedModule} target
   */
  resolve(link, target) {
    const type = target.functions.get(link.name);
    if (!type) throw new ModuleError(`${link.label}: module '${target.name}' has no exported function '${link.name}'`);
    if (signature(type) !== link.signature) {
      throw new ModuleError(`${link.label}: imported as ${link.signature}, but exported as ${signature(type)}`);
    }
    link.how = passCodes(type, target.spec.exports.get(link.name));
    link.paramHandles = [...link.how.subarray(0, link.nparams)].some((c) => kindOf(c) !== 0);
    link.resultHandles = [...link.how.subarray(link.nparams)].some((c) => kindOf(c) !== 0);
    link.target = target;
    link.inst = null;
    link.fn = null;
  }

  /** Resolve every waiting import, from any module, of `target`'s exports. @param {import("./module.js").LoadedModule} target */
  resolveInto(target) {
    for (const link of this.all) if (link.module === target.name && !link.target) this.resolve(link, target);
  }

  /** Module `name` is going: links into it wait for it again. @param {string} name */
  unresolveInto(name) {
    for (const link of this.all) {
      if (link.module === name) {
        link.target = null;
        link.inst = null;
        link.fn = null;
      }
    }
  }

  /** The instance `importer` is going: its own links go too. @param {import("./module.js").ModuleInstance} importer */
  forget(importer) {
    this.all = this.all.filter((l) => l.importer !== importer);
  }

  /** Links still waiting for their module. */
  unresolved() {
    return this.all.filter((l) => !l.target);
  }

  /**
   * The function the importer calls.  A link without handle kinds takes the
   * short path: find the instance, call, note a trap.
   * @param {Link} link
   */
  trampoline(link) {
    // One parameter, the common case, without a rest array.
    if (link.nparams === 1) {
      return (/** @type {number | bigint} */ a) => {
        if (link.hasHandles) return this.handleCall(link, [a]);
        const target = this.targetOf(link);
        if (target.depth++ === 0) target.entry = clock.now;
        let result;
        try {
          result = /** @type {Function} */ (link.fn)(a);
        } catch (e) {
          if (!this.origin) this.origin = target; // markOrigin, without a call: the stack may be short
          throw e;
        } finally {
          target.depth--;
        }
        if (clock.now - link.importer.entry >= link.importer.timeLimit) this.pastLimit(link.importer);
        return result;
      };
    }
    return (/** @type {Array<number | bigint>} */ ...args) => {
      if (link.hasHandles) return this.handleCall(link, args);
      const target = this.targetOf(link);
      if (target.depth++ === 0) target.entry = clock.now;
      let result;
      try {
        result = /** @type {Function} */ (link.fn)(...args);
      } catch (e) {
        if (!this.origin) this.origin = target; // markOrigin, without a call: the stack may be short
        throw e;
      } finally {
        target.depth--;
      }
      if (clock.now - link.importer.entry >= link.importer.timeLimit) this.pastLimit(link.importer);
      return result;
    };
  }

  /**
   * The live instance a call through `link` runs in, its function cached on
   * the link; a trap of the caller when there is none.
   * @param {Link} link
   */
  targetOf(link) {
    const inst = link.target?.instance;
    if (inst === link.inst && inst && !inst.tornDown) return inst;
    if (!inst || inst.tornDown || !inst.instance) {
      this.markOrigin(link.importer);
      const why = link.target ? "torn down (it trapped earlier): load it again" : "not loaded: load it before calling it";
      throw new HostTrap(`wasi_map: ${link.label}: the module is ${why}`);
    }
    link.inst = inst;
    link.fn = /** @type {Function} */ (inst.instance.exports[link.name]);
    return inst;
  }

  /**
   * A call through a link with declared handles (native/link.c link_call).
   * @param {Link} link @param {Array<number | bigint>} args
   */
  handleCall(link, args) {
    const caller = link.importer;
    const target = this.targetOf(link);
    /** @type {number[]} lender's handle, callee's handle; pairs */
    const lends = [];
    // The callee's table as it was, to take back what a pass cut off half-way
    // issued (repair.js): the caller is torn down, the callee keeps nothing.
    const t = target.handles;
    const head = t.freeHead;
    const free = t.freeCount;
    const length = t.slots.length;
    const live = t.live;
    /** @type {import("./ownership.js").PassFailure | null} */
    let failed;
    try {
      failed = passAll(args, link.how, 0, link.nparams, null, caller, target, lends);
    } catch (e) {
      // Stores only, no call (the stack may still be short).
      caller.cutIn = link.cutWhere;
      caller.store.needsRepair = true;
      if (target !== caller) caller.store.cutPasses[caller.store.cutPasses.length] = [target, head, free, length, live];
      if (!this.origin) this.origin = caller;
      throw e;
    }
    if (failed) {
      this.markOrigin(failed.receiverFull ? target : caller);
      const handle = Number(args[failed.bad]) >>> 0;
      throw new HostTrap(passTrapMessage(link.label, failed.err, failed.bad, link.how[failed.bad], { result: false, twice: failed.twice }, handle));
    }
    /** @type {any} */
    let raw;
    /** @type {unknown} */
    let trap = null;
    if (target.depth++ === 0) target.entry = clock.now;
    try {
      raw = /** @type {Function} */ (link.fn)(...args);
    } catch (e) {
      trap = e;
      if (!this.origin) this.origin = target; // markOrigin, without a call: the stack may be short
    } finally {
      target.depth--;
    }
    try {
      return this.handleReturn(link, lends, target, raw, trap);
    } catch (e) {
      // Cut off after the callee ran (not a trap of its own): the caller's stack ran short.
      if (e !== trap && !(e instanceof HostTrap)) {
        caller.cutIn = link.cutWhere;
        caller.store.needsRepair = true;
        if (!this.origin) this.origin = caller;
      }
      throw e;
    }
  }

  /**
   * The end of a call with declared handles: strict borrows, results passed,
   * borrows ended; the result, or `trap` (or another) thrown.
   * @param {Link} link @param {number[]} lends @param {import("./module.js").ModuleInstance} target
   * @param {any} raw @param {unknown} trap
   */
  handleReturn(link, lends, target, raw, trap) {
    const caller = link.importer;
    // Strict borrows: a callee that left a borrow open traps before any
    // result passes (a result the caller's code never sees would leak).
    if (!trap && this.strictBorrows) {
      let open = 0;
      for (let i = 0; i < lends.length; i += 2) open += Number(stillBorrowed(target, lends[i + 1]));
      if (open) {
        this.markOrigin(target);
        trap = new HostTrap(
          `wasi_map: ${link.label}: returned with ${open} borrow(s) still open (strict borrows): close each ` +
            "borrowed handle before returning; to keep the map, clone the handle or pass it on as share",
        );
      }
    }
    // Results before the borrows end: a callee may return a handle it was lent as share.
    if (!trap && link.resultHandles) {
      const vals = link.nresults === 1 ? [raw] : raw;
      const bad = passAll(vals, link.how, link.nparams, link.nresults, null, target, caller, null);
      if (bad) {
        this.markOrigin(bad.receiverFull ? caller : target);
        const handle = Number(vals[bad.bad]) >>> 0;
        const how = link.how[link.nparams + bad.bad];
        trap = new HostTrap(passTrapMessage(link.label, bad.err, bad.bad, how, { result: true, twice: bad.twice }, handle));
      } else if (link.nresults === 1) {
        raw = vals[0];
      }
    }
    let leftOpen = 0;
    for (let i = 0; i < lends.length; i += 2) leftOpen += Number(borrowEnd(caller, lends[i], target, lends[i + 1]));
    this.unreleasedBorrows += leftOpen;
    if (trap) {
      this.markOrigin(target);
      throw trap;
    }
    if (clock.now - caller.entry >= caller.timeLimit) this.pastLimit(caller);
    return raw;
  }

  /**
   * The caller's time ran out while its callee ran (the callee not blamed):
   * it traps as the call returns, as at its next check.
   * @param {import("./module.js").ModuleInstance} caller
   */
  pastLimit(caller) {
    this.markOrigin(caller);
    throw new HostTrap(timeLimitMessage(caller));
  }
}
