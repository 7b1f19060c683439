// types.test-d.ts: the shipped declarations in use (checked by `npm run typecheck`, never run).
import { Broker, ConfigError, Errno, GuestTrap, READ, WRITE } from "wasi-map-node";
import type { BrokerOptions, CallResult, Counters, LoadOptions, Stats } from "wasi-map-node";

async function use(): Promise<void> {
  const broker: Broker = await Broker.fromManifest("app.toml");
  const options: LoadOptions = { grants: { hits: "rw", config: READ }, limits: { handles: 10, on_quota: "trap" } };
  const name: string = await broker.load("counter", "counter.wat", options);
  const result: CallResult = broker.call(`${name}.bump`, 1, 2n);
  if (typeof result === "bigint") console.log(result + 1n);
  const stats: Stats = broker.stats();
  const live: number = stats.handles[name] ?? 0;
  const ok: 0 = Errno.OK;
  try {
    broker.call("counter.trap");
  } catch (e) {
    if (e instanceof GuestTrap) console.log(e.origin, e.reason);
    if (e instanceof ConfigError) console.log(e.message);
  }
  const freed: number = broker.collect();
  const counters: Counters = broker.counters();
  broker.strictBorrows = true;
  broker.gcThreshold = 0n;
  broker.close();
  const strict: BrokerOptions = { strictBorrows: true, gcThreshold: 500 };
  const b2 = new Broker(strict);
  await b2.load("callee", "callee.wat", { exports: { take: { params: ["own", "i64"], results: ["share:r"] } } });
  console.log(live, ok, READ | WRITE, broker.closed, freed, counters.unreleasedBorrows, b2.strictBorrows);
}

void use;
