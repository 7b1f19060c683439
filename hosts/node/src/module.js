// module.js: a loaded module and its instance: handles, account, grants, memory.
//
// A `LoadedModule` is what was loaded under a name (its compiled code, its
// spec, its declarations); a `ModuleInstance` is one running instance of it
// with everything the ABI needs: its own handle table, its account for the
// quotas, its grants, its memory.  Instances are separate from modules so
// that `instances > 1` can add
// instances without changing what the ABI sees.

import { MAP_COST } from "./abi.js";
import { Account, chargeEntry, creditEntry } from "./accounts.js";
import { HandleState, HandleTable } from "./handles.js";
import { GuestMemory } from "./memory.js";

/**
 * A module as loaded: checked spec and compiled code.
 * @typedef {object} ModuleSpec
 * @property {string} name
 * @property {Map<string, number>} grants
 * @property {import("./limits.js").Limits} limits
 * @property {Map<string, import("./limits.js").ExportDecl>} exports
 * @property {number} instances
 * @property {"replace" | "stop"} onTrap
 */

export class LoadedModule {
  /**
   * @param {ModuleSpec} spec @param {string} label @param {WebAssembly.Module} module
   * @param {import("./wasm.js").ExportInfo[]} exports
   * @param {boolean} timed its code checks its time limit (deadline.js): it imports `tick`
   */
  constructor(spec, label, module, exports, timed) {
    this.spec = spec;
    this.name = spec.name;
    this.label = label;
    this.module = module;
    this.timed = timed;
    /** @type {Map<string, import("./wasm.js").FuncType>} every exported function's type */
    this.functions = new Map(exports.filter((e) => e.kind === "func").map((e) => [e.name, /** @type {any} */ (e.type)]));
    /** @type {ModuleInstance[]} */
    this.instances = [];
    /** @type {import("./wasm.js").ImportInfo[]} its imports of other modules' exports (link.js) */
    this.peerImports = [];
  }

  /** The instance calls go to (one per module on this host, for now). */
  get instance() {
    return this.instances[0];
  }
}

export class ModuleInstance {
  /**
   * @param {LoadedModule} loaded @param {import("./maps.js").MapStore} store
   */
  constructor(loaded, store) {
    this.loaded = loaded;
    this.name = loaded.name;
    this.store = store;
    this.limits = loaded.spec.limits;
    this.grants = loaded.spec.grants;
    this.handles = new HandleTable();
    this.account = new Account(loaded.name);
    this.watchesUsed = 0;
    this.memory = new GuestMemory();
    /** @type {WebAssembly.Instance | null} */
    this.instance = null;
    /** calls into it now running (deadline.js): the outermost's start counts for its time limit */
    this.depth = 0;
    // Both fields start as doubles (not small integers) so that V8 keeps one
    // shape for every instance: the calls between modules read them.
    /** when its outermost call began (performance.now(), ms); NaN before the first */
    this.entry = NaN;
    /** its time_ms; Infinity for none (0) */
    this.timeLimit = Infinity;
    if (this.limits.time_ms) this.timeLimit = this.limits.time_ms;
    /** @type {string | null} why it was torn down, if it was */
    this.tornDown = null;
    this.unloaded = false;
    /** @type {string | null} the host code a RangeError cut off in its last trap ("wasi_map.close"; repair.js) */
    this.cutIn = null;
  }

  /** Close every handle it holds, as `close` would (a trap or an unload). */
  teardown() {
    for (const [, slot] of this.handles.liveHandles()) {
      const map = slot.map;
      const owning = slot.state === HandleState.OWN;
      this.handles.release(slot);
      if (owning && map) this.store.release(map);
    }
  }

  /**
   * It goes for good: handles closed, watches forgotten, and what it is
   * still charged for (entries it wrote, maps it made that live on) moved
   * to `host`.
   * @param {Account} host
   */
  unload(host) {
    this.teardown();
    this.store.forgetWatches(this);
    const mine = this.account;
    for (const map of this.store.live) {
      if (mine.bytes === 0 && mine.entries === 0) break;
      if (map.account === mine) {
        map.account = host;
        mine.credit(MAP_COST, 0);
        host.charge(MAP_COST, 0);
      }
      for (const e of map.table.liveEntries()) {
        if (e.account !== mine) continue;
        creditEntry(e);
        chargeEntry(host, e);
      }
    }
    this.unloaded = true;
    this.instance = null;
    this.memory.memory = null;
  }
}
