// cli.js: the `wasi-map-node` command: `run APP.toml --call MODULE.EXPORT [INT ...]` and `check MODULE`.

import { Broker } from "./broker.js";
import { checkReport } from "./check.js";
import { ConfigError, GuestTrap, WasiMapError } from "./errors.js";
import { compile, readModule } from "./wasm.js";

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_BAD_INPUT = 2;

const USAGE = `usage: wasi-map-node run APP.toml --call MODULE.EXPORT [INT ...]
       wasi-map-node check MODULE.wasm|MODULE.wat`;

/** A command line that cannot be run (exit 2). */
class UsageError extends Error {}

/** An integer word: decimal, 0x hex, 0o, 0b, negative. @param {string} word */
function parseInt64(word) {
  const m = /^([+-]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|\d[\d_]*)$/.exec(word);
  if (!m) return null;
  const v = BigInt(m[2].replace(/_/g, ""));
  return m[1] === "-" ? -v : v;
}

/** @param {string} word */
const isOption = (word) => word.startsWith("-") && word !== "-" && parseInt64(word) === null;

/**
 * `run`'s words: the manifest, the call's target and its integers (the call's words end at the next option).
 * @param {string[]} words
 */
function parseRun(words) {
  /** @type {string | null} */
  let app = null;
  /** @type {string | null} */
  let target = null;
  /** @type {bigint[]} */
  const args = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    if (word === "--call" || word.startsWith("--call=")) {
      if (target !== null) throw new UsageError("--call is given more than once");
      target = word.includes("=") ? word.slice(word.indexOf("=") + 1) : words[++i] ?? "";
      while (i + 1 < words.length && !isOption(words[i + 1])) {
        const v = parseInt64(words[i + 1]);
        if (v === null) {
          if (app === null && (i + 2 >= words.length || isOption(words[i + 2]))) break; // the manifest
          throw new UsageError(`argument '${words[i + 1]}' is not an integer`);
        }
        args.push(v);
        i++;
      }
    } else if (isOption(word)) {
      throw new UsageError(`unknown option ${word}`);
    } else if (app === null) {
      app = word;
    } else {
      throw new UsageError(`unexpected argument '${word}'`);
    }
  }
  if (!target) throw new UsageError("--call needs MODULE.EXPORT");
  if (!target.replace(/^\.+|\.+$/g, "").includes(".")) throw new UsageError(`--call '${target}': expected MODULE.EXPORT`);
  if (!app) throw new UsageError("run needs the app's manifest (APP.toml)");
  return { app, target, args };
}

/** A result as printed. @param {unknown} result */
function shownResult(result) {
  if (result === undefined) return "";
  return Array.isArray(result) ? result.map(String).join(" ") : String(result);
}

/** @param {string[]} words @param {{out: (s: string) => void, err: (s: string) => void}} io */
async function cmdRun(words, io) {
  const { app, target, args } = parseRun(words);
  const broker = await Broker.fromManifest(app);
  try {
    let result;
    try {
      result = broker.call(target, ...args);
    } catch (e) {
      if (e instanceof GuestTrap) {
        io.err(`wasi-map-node: ${e.message}`);
        return EXIT_FAILED;
      }
      throw e;
    }
    io.out(shownResult(result));
    return EXIT_OK;
  } finally {
    broker.close();
  }
}

/** @param {string[]} words @param {{out: (s: string) => void, err: (s: string) => void}} io */
async function cmdCheck(words, io) {
  if (words.length !== 1) throw new UsageError("check takes one module (.wasm or .wat)");
  const [file] = words;
  if (!file.endsWith(".wat") && !file.endsWith(".wasm")) {
    throw new UsageError(`${file}: check of a whole app is not yet supported on the Node host (give a .wat or .wasm)`);
  }
  const { bytes, label } = await readModule(file);
  const { imports, exports } = compile(bytes, label);
  const { lines, bad } = checkReport(label, imports, exports);
  for (const line of lines) io.out(line);
  if (bad) io.err(`${label}: ${bad} problem(s)`);
  return bad ? EXIT_FAILED : EXIT_OK;
}

/**
 * Run the command line; the exit code.
 * @param {string[]} argv
 * @param {{out: (s: string) => void, err: (s: string) => void}} [io]
 */
export async function main(argv, io = { out: (s) => console.log(s), err: (s) => console.error(s) }) {
  const [command, ...rest] = argv;
  try {
    if (command === "run") return await cmdRun(rest, io);
    if (command === "check") return await cmdCheck(rest, io);
    if (command === "-h" || command === "--help") {
      io.out(USAGE);
      return EXIT_OK;
    }
    throw new UsageError(command ? `unknown command '${command}'` : "a command is needed");
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`${USAGE}\nwasi-map-node: ${e.message}`);
      return EXIT_BAD_INPUT;
    }
    if (e instanceof ConfigError || e instanceof TypeError || e instanceof WasiMapError) {
      io.err(`wasi-map-node: ${/** @type {Error} */ (e).message}`);
      return EXIT_BAD_INPUT;
    }
    // Anything else is this host's own bug: still one line, never a stack trace.
    io.err(`wasi-map-node: internal error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    return EXIT_BAD_INPUT;
  }
}
