"""Guest `get`/`set`/`get_many` on a named map in each store, beside each store's own client.

Run `python benchmarks/bench_store.py` (add `--quick` for a smoke run).  It
starts its own redis-server (127.0.0.1, a free port, no persistence) and
Redis Cluster (tests/support/redis_cluster.py), and uses a temporary sqlite
file and LevelDB directories (the LevelDB and cluster tables:
_store_tables.py).  Every broker runs the same guest,
benchmarks/guests/store_loop.wat, whose exports loop over the import n
times, so one export call is spread over n operations.  Prints figures and
ratios; never asserts on time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis
import redis.connection
from _harness import fmt_ns, fmt_sample, machine, print_table, repeat, summarize
from _store_guest import (
    KEY,
    MANY,
    MANY_KEYS,
    MANY_VALUES,
    MAP,
    VALUE,
    Contender,
    Run,
    calls,
    check_guest,
    guest_broker,
    guest_loop,
    paired,
    side_by_side,
)
from _store_tables import cluster_table, leveldb_table

from broker import Broker
from broker.stores import Store
from broker.stores.redis_store import DEDUP_MS
from broker.stores.redis_store import SET as STORE_SET_SCRIPT

# The tests' redis-server launcher, the only one (tests/support/redis_server.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
from redis_server import throwaway  # noqa: E402

OPS = ("get", "set", "get_many")
OP_LABEL = {"get": "get", "set": "set", "get_many": f"get_many ({MANY:,} keys)"}
DIRECT = {"get": "GET", "set": "SET", "get_many": "MGET"}  # redis-py, plain string keys
SAME = {"get": "HGET", "set": "EVALSHA", "get_many": "HMGET"}  # what the Redis store sends
TARGET_RATIO = 1.5  # Redis guest op / redis-py direct op, median

Sizes = dict[str, dict[str, int]]  # operations per run, per column (store) and op
COLUMNS = ("memory", "sqlite", "redis", "redis", "redis")  # guest x3, redis-py x2


# --- the door alone: a store that answers at once ---------------------------------


class DictStore(Store):
    """Named maps in Python dicts: what the broker costs per op, the store aside."""

    url = "dict:"

    def __init__(self) -> None:
        self.maps: dict[str, dict[bytes, bytes]] = {}

    def _map(self, name: str) -> dict[bytes, bytes]:
        return self.maps.setdefault(name, {})

    def get(self, name: str, key: bytes) -> bytes | None:
        return self._map(name).get(key)

    def set(self, name: str, key: bytes, value: bytes) -> None:
        self._map(name)[key] = value

    def set_many(self, name: str, items: Sequence[tuple[bytes, bytes]]) -> None:
        self._map(name).update(items)

    def get_many(self, name: str, keys: Sequence[bytes]) -> list[bytes | None]:
        found = self._map(name)
        return [found.get(k) for k in keys]

    def _unused(self, *args: object) -> Any:
        raise NotImplementedError("bench_store.py's guest does not call this")

    delete = exists = len = keys = incr = version = set_if = _unused

    def close(self) -> None:
        pass


def door_figures(n: Sizes, rounds: int) -> dict[str, float]:
    """Median ns per guest op on a DictStore broker (measured on its own)."""
    broker = guest_broker(DictStore())
    try:
        check_guest(broker)
        return {
            op: statistics.median(repeat(guest_loop(broker, op), n["redis"][op] * 10, rounds))
            for op in OPS
        }
    finally:
        broker.close()


# --- redis-py on the same server -----------------------------------------------


def direct_runs(client: redis.Redis) -> dict[str, tuple[Run, Run]]:
    """Per op: (the plain command, the command the Redis store sends for it)."""
    client.set(KEY, VALUE)
    client.mset(dict(zip(MANY_KEYS, MANY_VALUES, strict=True)))
    values = f"wasi-map:v:{{{MAP}}}"  # the store's hash for the guest's map (filled by then)
    if client.get(KEY) != VALUE or client.mget(MANY_KEYS) != MANY_VALUES:
        raise RuntimeError("redis-py: GET/MGET did not return what was set")
    if client.hget(values, KEY) != VALUE or client.hmget(values, MANY_KEYS) != MANY_VALUES:
        raise RuntimeError("redis-py: the store's hash does not hold what the guest wrote")
    # The store's own set script, on a map of its own: EVALSHA with the same
    # keys and arguments, a new request id each time (as the store sends).
    script = client.register_script(STORE_SET_SCRIPT)
    parts = ("v", "ver", "seq", "clock", "done")
    other = [f"wasi-map:{part}:{{{MAP}-direct}}" for part in parts]

    def store_set(n: int) -> None:
        for _ in range(n):
            script(other, ["bench", os.urandom(12).hex(), DEDUP_MS, KEY, VALUE])

    return {
        "get": (calls(client.get, KEY), calls(client.hget, values, KEY)),
        "set": (calls(client.set, KEY, VALUE), store_set),
        "get_many": (calls(client.mget, MANY_KEYS), calls(client.hmget, values, MANY_KEYS)),
    }


# --- measuring and reporting ---------------------------------------------------


@contextmanager
def brokers(port: int) -> Iterator[dict[str, Broker]]:
    """A broker per store: memory, a temporary sqlite file, the benchmark's redis-server."""
    with tempfile.TemporaryDirectory(prefix="wm-bench-sqlite-") as directory:
        urls = {
            "memory": "memory:",
            "sqlite": f"sqlite:{Path(directory) / 'bench.db'}",
            "redis": f"redis://127.0.0.1:{port}/0",
        }
        opened: dict[str, Broker] = {}
        try:
            for store, url in urls.items():
                opened[store] = guest_broker(url)
            yield opened
        finally:
            for broker in opened.values():
                broker.close()


def sizes(quick: bool) -> Sizes:
    """Operations per run, per column and op: a run takes about 10-100 ms in full."""
    full = {
        "memory": {"get": 200_000, "set": 200_000, "get_many": 2_000},
        "sqlite": {"get": 10_000, "set": 300, "get_many": 30},
        "redis": {"get": 1_000, "set": 1_000, "get_many": 50},
    }
    if not quick:
        return full
    return {col: {op: max(2, n // 50) for op, n in ops.items()} for col, ops in full.items()}


def pass_miss(ratio: float) -> str:
    return "PASS" if ratio <= TARGET_RATIO else "MISS"


def measure_all(port: int, n: Sizes, rounds: int) -> dict[str, list[list[float]]]:
    """Per op, the per-round figures of its five columns (COLUMNS)."""
    results: dict[str, list[list[float]]] = {}
    with brokers(port) as by_store:
        for broker in by_store.values():
            check_guest(broker)
        client = redis.Redis(host="127.0.0.1", port=port)
        try:
            direct = direct_runs(client)
            for op in OPS:
                plain, same = direct[op]
                contenders = [
                    Contender(store, guest_loop(broker, op), n[store][op])
                    for store, broker in by_store.items()
                ]
                contenders.append(Contender(DIRECT[op], plain, n["redis"][op]))
                contenders.append(Contender(SAME[op], same, n["redis"][op]))
                results[op] = side_by_side(contenders, rounds)
        finally:
            client.close()
    return results


def server_version(port: int) -> str:
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny N: a smoke run, rough figures")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 21
    n = sizes(args.quick)
    with throwaway() as server:
        redis_version = server_version(server.port)
        results = measure_all(server.port, n, rounds)
    door = door_figures(n, rounds)

    print(
        f"wasi-map stores: ns per operation, median (min) of {rounds} rounds taking turns; "
        f"16-byte keys, 100-byte values; {machine()}"
    )
    print(
        f"wasmtime {version('wasmtime')}, redis-server {redis_version} on 127.0.0.1 "
        f"(no persistence), redis-py {version('redis')} "
        f"({redis.connection.DefaultParser.__name__}), sqlite file in a temporary directory"
    )
    print(
        "ops per run: "
        + "; ".join(
            f"{op} {n['memory'][op]:,} memory, {n['sqlite'][op]:,} sqlite, {n['redis'][op]:,} redis"
            for op in OPS
        )
        + ("  [--quick: rough figures]" if args.quick else "")
    )
    print()
    headers = [
        "operation",
        "memory ns",
        "sqlite ns",
        "redis guest ns",
        "redis-py GET/SET/MGET ns",
        "redis-py HGET/EVALSHA/HMGET ns",
        "guest/direct",
        "guest/same cmd",
    ]
    rows = []
    for op in OPS:
        figures = [summarize(t, n[col][op]) for t, col in zip(results[op], COLUMNS, strict=True)]
        _, _, guest, plain, same = results[op]
        rows.append(
            [
                OP_LABEL[op],
                *(fmt_sample(f) for f in figures),
                f"{paired(guest, plain):.2f}x",
                f"{paired(guest, same):.2f}x",
            ]
        )
    print_table(headers, rows)
    print()
    med = {op: [statistics.median(t) for t in results[op]] for op in OPS}
    print(
        "the broker's cost on Redis (guest - redis-py sending the store's command): "
        + ", ".join(f"{op} {med[op][2] - med[op][4]:+,.0f} ns" for op in OPS)
    )
    print(
        "the store's choice of command alone (redis-py HGET/EVALSHA/HMGET / GET/SET/MGET): "
        + ", ".join(f"{op} {paired(results[op][4], results[op][3]):.2f}x" for op in OPS)
    )
    print(
        "the door alone (guest op on a store of Python dicts, answering at once): "
        + ", ".join(f"{op} {fmt_ns(door[op])} ns" for op in OPS)
    )
    print(
        f"get_many per key: memory {fmt_ns(med['get_many'][0] / MANY)} ns, "
        f"sqlite {fmt_ns(med['get_many'][1] / MANY)} ns, "
        f"redis {fmt_ns(med['get_many'][2] / MANY)} ns"
    )
    print()
    leveldb = leveldb_table(args.quick, rounds)
    cluster = cluster_table(args.quick, rounds)
    for title, (table_headers, table_rows, _) in (
        ("LevelDB (plyvel " + version("plyvel") + ", a temporary directory)", leveldb),
        ("Redis Cluster (3 masters, 3 replicas on 127.0.0.1, no persistence)", cluster),
    ):
        print()
        print(title)
        print_table(table_headers, table_rows)
    print()
    print(
        "targets (issue): guest op / the store's client called directly (median of the "
        f"per-round ratios), at most {TARGET_RATIO}x"
    )
    for op in OPS:
        _, _, guest, plain, _ = results[op]
        ratio = paired(guest, plain)
        print(f"  Redis {OP_LABEL[op]} / {DIRECT[op]}: {ratio:.2f}x  {pass_miss(ratio)}")
    for label, ratio in leveldb[2] + cluster[2]:
        print(f"  {label}: {ratio:.2f}x  {pass_miss(ratio)}")


if __name__ == "__main__":
    sys.exit(main())
