// index.d.ts: the public API of wasi-map-node (src/index.js).

/** A module's limits (docs/reference/limits.md). */
export interface Limits {
  key_size: number;
  value_size: number;
  handles: number;
  bytes: number;
  entries: number;
  watches: number;
  on_quota: "error" | "trap";
  /** Wall clock a call may run, from its outermost entry into the module, in ms; 0: no limit. */
  time_ms: number;
  /** Checked, not enforced yet on the Node host. */
  linear_memory: number;
  /** Checked, not enforced yet on the Node host. */
  table_elements: number;
}

/** How an export's parameters and results pass ("i32", "i64", "own", "borrow:r", ...). */
export interface ExportDeclaration {
  params?: string[];
  results?: string[];
}

export interface LoadOptions {
  /** Map name -> the most rights the module may open it with: "r", "w", "rw" (or 1, 2, 3). */
  grants?: Record<string, "r" | "w" | "rw" | "wr" | number>;
  /** Some limits, over the broker's defaults. */
  limits?: Partial<Limits>;
  /** How the module's exports pass handles when other modules call them (own, borrow, share, ":r"). */
  exports?: Record<string, ExportDeclaration>;
  /** 1 only, for now. */
  instances?: number;
  /** What becomes of the module after a trap: a new instance ("replace", the default) or none ("stop"). */
  onTrap?: "replace" | "stop";
}

export interface Stats {
  /** Live anonymous maps. */
  maps: number;
  /** Named maps. */
  named: number;
  /** Live handles per module. */
  handles: Record<string, number>;
}

/** What the broker has done so far. */
export interface Counters {
  /** Maps reclaimed, by counting and by the collector. */
  reclaimed: number;
  /** Maps the cycle collector reclaimed. */
  cyclesReclaimed: number;
  /** Collections run (by themselves and by collect()). */
  collections: number;
  /** Borrows a callee left open, closed by the broker. */
  unreleasedBorrows: number;
}

export interface BrokerOptions {
  /** Every module's default limits. */
  limits?: Partial<Limits>;
  /** A callee that returns with a borrowed handle still open traps (and is torn down). */
  strictBorrows?: boolean;
  /** Releases that may have cut a cycle loose before the collector runs by itself (default 10000; 0: only collect()). */
  gcThreshold?: number | bigint;
}

/** One call's results: none, one (number for i32, bigint for i64), or several. */
export type CallResult = number | bigint | Array<number | bigint> | undefined;

export class Broker {
  constructor(options?: BrokerOptions);
  /** A broker with every module of an app manifest loaded. */
  static fromManifest(path: string): Promise<Broker>;
  /** Load a module from a .wat/.wasm path or Wasm/WAT bytes; resolves to its name. */
  load(name: string, source: string | Uint8Array, options?: LoadOptions): Promise<string>;
  /** Call `module.export` with i32/i64 arguments, signed or unsigned. */
  call(target: string, ...args: Array<number | bigint>): CallResult;
  /** Unload a module: every handle it holds closed, its notices delivered. */
  unload(name: string): void;
  /** Deliver queued drop notices now (calls deliver them by themselves). */
  deliverNotices(): void;
  stats(): Stats;
  /** Run the cycle collector now: the number of maps reclaimed (their drop notices delivered before it returns). */
  collect(): number;
  /** Counters of reclaims, collections and unreleased borrows. */
  counters(): Counters;
  /** Strict borrows; takes effect for every call from then on. */
  strictBorrows: boolean;
  /** The collector's threshold; 0 turns automatic collection off. */
  gcThreshold: number | bigint;
  /** Loaded modules, in load order. */
  readonly modules: string[];
  readonly closed: boolean;
  /** Drop every module and map (idempotent). */
  close(): void;
}

/** Base class of every wasi-map error (never thrown itself). */
export class WasiMapError extends Error {}
/** A manifest, module, argument or call the broker cannot use. */
export class ConfigError extends WasiMapError {}
/** An invalid manifest: the message names the file and the key. */
export class ManifestError extends ConfigError {}
/** A module that cannot be loaded or called. */
export class ModuleError extends ConfigError {}
/** A guest trapped; the module it began in was torn down. */
export class GuestTrap extends WasiMapError {
  readonly module: string;
  readonly export: string;
  readonly origin: string;
  readonly reason: string;
}

export const Errno: Readonly<{
  OK: 0;
  BADF: 1;
  STALE: 2;
  NOENT: 3;
  ACCES: 4;
  FAULT: 5;
  RANGE: 6;
  INVAL: 7;
  BUSY: 8;
  QUOTA: 9;
  TOOBIG: 10;
  CONFLICT: 11;
  TYPE: 12;
  IO: 13;
}>;
export const READ: 1;
export const WRITE: 2;
