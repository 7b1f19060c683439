"""bench_store.py's LevelDB and Redis Cluster tables: the guest beside each
store's own client called directly from Python, measured in the same run.

LevelDB: guest `get` and `set` on `leveldb:` beside plyvel's `db.get` /
`db.put` on a database of its own, and beside the same guest loop on
sqlite -- with sync off (`?sync=normal`, `sync=False`) and, for `set`, on
(the default, `sync=True`).  Redis Cluster: guest `get`/`set`/`get_many` on
`redis+cluster://` beside redis-py's `RedisCluster` GET/SET/MGET on the same
cluster (MGET's keys share one hash tag, so they are one slot, as a map's
are).  Each returns (headers, rows, targets): targets are (label, ratio)
against the issue's 1.5x.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import plyvel
import redis.cluster
from _harness import fmt_sample, summarize
from _store_guest import (
    KEY,
    MANY,
    MANY_KEYS,
    MANY_VALUES,
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

from broker import Broker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
from redis_cluster import throwaway_cluster  # noqa: E402

Row = list[str]
Target = tuple[str, float]
Table = tuple[list[str], list[Row], list[Target]]


def leveldb_table(quick: bool, rounds: int) -> Table:
    """Guest get/set on LevelDB, beside plyvel direct and the guest on sqlite."""
    fast, synced = (20_000, 300) if not quick else (200, 3)
    headers = [
        "operation",
        "leveldb guest ns",
        "plyvel direct ns",
        "sqlite guest ns",
        "guest/direct",
        "leveldb/sqlite",
    ]
    rows: list[Row] = []
    targets: list[Target] = []
    with tempfile.TemporaryDirectory(prefix="wm-bench-leveldb-") as d:
        home = Path(d)
        brokers: dict[str, Broker] = {}
        db = plyvel.DB(str(home / "direct"), create_if_missing=True)
        try:
            for name, url in {
                "leveldb normal": f"leveldb:{home / 'normal'}?sync=normal",
                "leveldb full": f"leveldb:{home / 'full'}",
                "sqlite normal": f"sqlite:{home / 'normal.db'}?sync=normal",
                "sqlite full": f"sqlite:{home / 'full.db'}",
            }.items():
                brokers[name] = guest_broker(url)
                check_guest(brokers[name])
            # As many rows as the guest's database holds (a row per key and one
            # per key of the insertion-order index): a LevelDB read's cost
            # grows with what the database holds.
            for i, (k, v) in enumerate(zip(MANY_KEYS, MANY_VALUES, strict=True)):
                db.put(b"e" + k, v)
                db.put(b"s" + i.to_bytes(8, "big"), k)
            db.put(KEY, VALUE)

            def synced_puts(n: int) -> None:
                for _ in range(n):
                    db.put(KEY, VALUE, sync=True)

            cases: list[tuple[str, str, str, int, Run, str]] = [
                ("get", "get", "normal", fast, calls(db.get, KEY), "db.get"),
                ("set, sync off", "set", "normal", fast, calls(db.put, KEY, VALUE), "db.put"),
                ("set, sync on", "set", "full", synced, synced_puts, "db.put(sync=True)"),
            ]
            for label, op, sync, n, direct, direct_label in cases:
                times = side_by_side(
                    [
                        Contender("leveldb", guest_loop(brokers[f"leveldb {sync}"], op), n),
                        Contender(direct_label, direct, n),
                        Contender("sqlite", guest_loop(brokers[f"sqlite {sync}"], op), n),
                    ],
                    rounds,
                )
                guest, plain, lite = (fmt_sample(summarize(t, n)) for t in times)
                ratio = paired(times[0], times[1])
                rows.append(
                    [
                        label,
                        guest,
                        f"{plain} ({direct_label})",
                        lite,
                        f"{ratio:.2f}x",
                        f"{paired(times[0], times[2]):.2f}x",
                    ]
                )
                targets.append((f"LevelDB {label} / {direct_label}", ratio))
        finally:
            db.close()
            for broker in brokers.values():
                broker.close()
    return headers, rows, targets


def cluster_table(quick: bool, rounds: int) -> Table:
    """Guest get/set/get_many on a Redis Cluster, beside RedisCluster called directly."""
    sizes = {"get": 1_000, "set": 1_000, "get_many": 50}
    if quick:
        sizes = {op: max(2, n // 50) for op, n in sizes.items()}
    headers = ["operation", "cluster guest ns", "RedisCluster direct ns", "guest/direct"]
    rows: list[Row] = []
    targets: list[Target] = []
    with throwaway_cluster(durable=False) as cluster:  # as bench_store's one server
        broker = guest_broker(cluster.url)
        host, port = cluster.startup_nodes[0]
        rc = redis.cluster.RedisCluster(host=host, port=port)
        try:
            check_guest(broker)
            tag = "{bench-direct}"  # one slot for every key, as a map's keys share one
            key, many = f"{tag}single".encode(), [f"{tag}{i:06d}".encode() for i in range(MANY)]
            rc.set(key, VALUE)
            rc.mset(dict(zip(many, MANY_VALUES, strict=True)))
            if rc.get(key) != VALUE or rc.mget(many) != MANY_VALUES:
                raise RuntimeError("RedisCluster: GET/MGET did not return what was set")
            direct: dict[str, tuple[Run, str]] = {
                "get": (calls(rc.get, key), "GET"),
                "set": (calls(rc.set, key, VALUE), "SET"),
                "get_many": (calls(rc.mget, many), "MGET"),
            }
            for op, (run, label) in direct.items():
                n = sizes[op]
                times = side_by_side(
                    [Contender("guest", guest_loop(broker, op), n), Contender(label, run, n)],
                    rounds,
                )
                guest, plain = (fmt_sample(summarize(t, n)) for t in times)
                ratio = paired(times[0], times[1])
                name = op if op != "get_many" else f"get_many ({MANY:,} keys)"
                rows.append([name, guest, f"{plain} ({label})", f"{ratio:.2f}x"])
                targets.append((f"Redis Cluster {name} / RedisCluster {label}", ratio))
        finally:
            rc.close()
            broker.close()
    return headers, rows, targets
