// errors.js: every error the host throws; the base class is never thrown itself.

/** Base class of every wasi-map error (never thrown itself). */
export class WasiMapError extends Error {
  /** @param {string} message @param {ErrorOptions} [options] */
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A manifest, module, argument or call the broker cannot use. */
export class ConfigError extends WasiMapError {}

/** A manifest that is not valid: the message names the file and the key. */
export class ManifestError extends ConfigError {}

/** A module that cannot be loaded or called (bad file, torn down, unsupported). */
export class ModuleError extends ConfigError {}

/**
 * A guest trapped; the broker has torn down the module it began in.
 * `module`/`export` name the call the host made, `origin` the module torn
 * down, `reason` the one-line cause.
 */
export class GuestTrap extends WasiMapError {
  /**
   * @param {string} module @param {string} exportName @param {string} reason
   * @param {{origin?: string, cause?: unknown}} [more]
   */
  constructor(module, exportName, reason, more = {}) {
    const origin = more.origin ?? module;
    const where = origin !== module ? ` in module ${origin}` : "";
    super(`${module}.${exportName}: guest trapped${where}: ${reason}`, { cause: more.cause });
    this.module = module;
    this.export = exportName;
    this.origin = origin;
    this.reason = reason;
  }
}

/**
 * Thrown from inside an ABI function to trap the guest (a quota configured
 * to trap); Wasm unwinds through it like any host exception.
 */
export class HostTrap extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "HostTrap";
  }
}
