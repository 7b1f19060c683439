"""Named maps in a Redis Cluster: `redis+cluster://HOST:PORT[,HOST:PORT...]/`.

The keys of a map carry the hash tag {NAME} (redis_store.py), so all of a
map lives in one hash slot, on one master: every command of an operation,
and every script, goes to that master, and `incr`, `set_if`, `set_many`
and the request-id dedup stay atomic per map exactly as on one server.
Nothing is atomic across maps.

redis-py's `RedisCluster` finds the masters (from any of the listed nodes)
and keeps the slot map; this store asks it which master holds a map's slot
and sends the command there the way RedisStore does (packed by hiredis, on
that node's pool).  When a master stops answering or a slot has moved
(MOVED, a failover), the slot map is read again and the command sent once
more, to the new master; until a replica has taken over, operations answer
IO, and afterwards the same broker goes on.

A master acknowledges a write before its replicas have it, so a failover
can lose writes that were acknowledged.  `?replicas=N` makes every write
wait (WAIT) until N replicas have it, up to `replica_timeout_ms` (default
1000); a write that fewer confirm answers IO -- its outcome is unknown:
it is on the old master, and on the new one only if it was replicated.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import StoreError
from .redis_store import CONNECT_TIMEOUT_S, REPLY_TIMEOUT_S, RedisStore

try:
    import redis
    import redis.cluster
except ImportError:  # pragma: no cover - not installed (RedisStore says what to install)
    redis = None  # type: ignore[assignment]

DEFAULT_REPLICA_TIMEOUT_MS = 1000


class RedisClusterStore(RedisStore):
    def __init__(
        self,
        url: str,
        nodes: Sequence[tuple[str, int]],
        *,
        username: str | None = None,
        password: str | None = None,
        replicas: int = 0,
        replica_timeout_ms: int = DEFAULT_REPLICA_TIMEOUT_MS,
        tls: dict[str, Any] | None = None,
    ) -> None:
        """`nodes`: where to find the cluster (any of its nodes; the masters
        are found from them).  `tls`: redis-py's ssl_* options, for rediss+cluster."""
        self._maps_in_redis(url)
        self._nodes = list(nodes)
        self._options: dict[str, Any] = {
            "username": username,
            "password": password,
            "socket_connect_timeout": CONNECT_TIMEOUT_S,
            "socket_timeout": REPLY_TIMEOUT_S,
            "protocol": 2,
            **({"ssl": True, **tls} if tls is not None else {}),
        }
        self._cluster: Any = None  # made at the first operation: the cluster may be down now
        self._cluster_lock = threading.Lock()
        if replicas:
            self._after_write = (b"WAIT", replicas, replica_timeout_ms)
        self._replicas = replicas

    # --- where a map's commands go ----------------------------------------

    def _rc(self) -> Any:
        """The RedisCluster client, made (reading the slot map) on first use."""
        cluster = self._cluster
        if cluster is None:
            with self._cluster_lock:
                if self._cluster is None:
                    nodes = [
                        redis.cluster.ClusterNode(h, p)  # type: ignore[no-untyped-call]
                        for h, p in self._nodes
                    ]
                    self._cluster = redis.cluster.RedisCluster(startup_nodes=nodes, **self._options)
                cluster = self._cluster
        return cluster

    def _pool_for(self, name: str) -> Any:
        rc = self._rc()
        node = rc.get_node_from_key(self._keys(name)[0])
        return rc.get_redis_connection(node).connection_pool

    def _refresh(self) -> None:
        """Read the slot map again (a master is gone, or a slot moved)."""
        cluster = self._cluster
        if cluster is not None:
            cluster.nodes_manager.initialize()

    def _then(self, reply: Any, command: Sequence[Any]) -> None:
        if int(reply) < self._replicas:
            raise StoreError(
                f"{self.url}: the write reached the master, but {int(reply)} of "
                f"{self._replicas} replicas confirmed it within {command[2]} ms: "
                "a failover now may lose it"
            )

    def _run(self, how: Callable[..., Any], *args: Any) -> Any:
        """`how(*args)`; when the slot moved, once more at the node MOVED names;
        when the master is unreachable, once more after reading the slot map
        again; any failure a StoreError."""
        try:
            try:
                return how(*args)
            except redis.exceptions.MovedError as moved:
                # MOVED names the slot's master: go there.  Reading the slot
                # map again is not enough: right after a failover the node
                # asked may not know of it yet, and send us back.
                self._rc().nodes_manager.move_slot(moved)
                return how(*args)
            except (
                redis.ConnectionError,
                redis.TimeoutError,
                redis.exceptions.ReadOnlyError,  # a demoted master, before MOVED
                redis.exceptions.ClusterDownError,
                redis.exceptions.SlotNotCoveredError,
            ):
                self._refresh()
                return how(*args)
        except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
            raise StoreError(f"{self.url}: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        with self._cluster_lock:
            cluster, self._cluster = self._cluster, None
        if cluster is not None:
            cluster.close()
