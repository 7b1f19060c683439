// index.js: the public surface of wasi-map-node.

export { Broker } from "./broker.js";
export { ConfigError, GuestTrap, ManifestError, ModuleError, WasiMapError } from "./errors.js";
export { Errno, READ, WRITE } from "./abi.js";
