#!/usr/bin/env node
// wasi-map-node: run an app's export, or check a module against the ABI, as `wasi-map` does.
//
// Exit codes, as `wasi-map`'s: 0 success; 1 a trap (or, for check, a
// problem found); 2 a bad manifest, module or command line.

import { main } from "../src/cli.js";

process.exitCode = await main(process.argv.slice(2));
