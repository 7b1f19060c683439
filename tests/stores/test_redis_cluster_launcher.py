"""The Redis Cluster launcher (tests/support/redis_cluster.py), with real redis-servers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.cluster
import redis_cluster
from redis_cluster import RedisCluster, throwaway_cluster


def cluster_client(cluster: RedisCluster) -> redis.cluster.RedisCluster:
    """A redis-py cluster client that finds the cluster from its running nodes."""
    nodes = [redis.cluster.ClusterNode(host, port) for host, port in cluster.startup_nodes]
    return redis.cluster.RedisCluster(startup_nodes=nodes)


def redis_servers_on(ports: set[int]) -> list[int]:
    """The pids of the redis-server processes serving any of `ports`.

    A running redis-server retitles itself `redis-server 127.0.0.1:PORT [cluster]`.
    """
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            name = (proc / "comm").read_text().strip()
            title = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:  # it ended while we looked
            continue
        found = re.search(r"127\.0\.0\.1:(\d+)", title)
        if name == "redis-server" and found and int(found.group(1)) in ports:
            pids.append(int(proc.name))
    return pids


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """One cluster for the tests that leave its nodes running (flushed after each)."""
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def shared_cluster(cluster: RedisCluster) -> Iterator[RedisCluster]:
    try:
        yield cluster
    finally:
        cluster.flush()


class TestStart:
    def test_three_masters_each_with_a_replica_serve_every_slot(
        self, shared_cluster: RedisCluster
    ) -> None:
        """Every node sees the same three masters, one replica each, 16384 slots in all."""
        for node in shared_cluster.nodes:
            views = shared_cluster.topology(via=node)
            masters = [view for view in views if view.is_master]
            replicas = [view for view in views if not view.is_master]
            assert len(masters) == 3 and len(replicas) == 3
            assert sorted(view.master_id or "" for view in replicas) == sorted(
                view.node_id for view in masters
            )
            served = sorted(
                slot
                for view in masters
                for start, end in view.slots
                for slot in range(start, end + 1)
            )
            assert served == list(range(redis_cluster.SLOTS))

    def test_the_url_names_the_masters(self, shared_cluster: RedisCluster) -> None:
        masters = shared_cluster.masters()
        assert len(masters) == 3
        addresses = ",".join(f"127.0.0.1:{node.port}" for node in masters)
        assert shared_cluster.url == f"redis+cluster://{addresses}/"

    def test_a_missing_redis_cli_is_named(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(redis_cluster, "REDIS_CLI", None)
        with pytest.raises(RuntimeError, match="redis-cli is not installed"):
            RedisCluster(tmp_path)


class TestKeys:
    def test_the_keys_of_one_hash_tag_live_on_one_master(
        self, shared_cluster: RedisCluster
    ) -> None:
        """Written through redis-py's cluster client, `{tag}` keys share a slot and a node."""
        keys = [b"{user:7}:name", b"{user:7}:mail", b"{user:7}:seen"]
        with cluster_client(shared_cluster) as client:
            for key in keys:
                client.set(key, key + b"!")
        owners = {shared_cluster.master_of(key).port for key in keys}
        assert len(owners) == 1
        with shared_cluster.node_at(owners.pop()).client() as owner:
            assert [owner.get(key) for key in keys] == [key.decode() + "!" for key in keys]


class TestFailover:
    def test_a_killed_master_is_replaced_and_its_acknowledged_writes_kept(self) -> None:
        """A write its replica acknowledged (WAIT) is read back from the promoted replica."""
        with throwaway_cluster() as cluster:
            key = b"{failover}:key"
            old = cluster.master_of(key)
            with redis.Redis(port=old.port, single_connection_client=True) as client:
                client.set(key, b"kept")
                assert client.wait(1, 10_000) == 1
            cluster.kill_master(old)
            new_port = cluster.wait_for_failover(old.port)
            assert new_port != old.port
            assert cluster.master_of(key).port == new_port
            assert old.port not in {node.port for node in cluster.masters()}
            with cluster_client(cluster) as client:
                assert client.get(key) == b"kept"


class TestStop:
    def test_stop_leaves_no_node_running(self) -> None:
        with throwaway_cluster() as cluster:
            ports = {node.port for node in cluster.nodes}
            started = [node.proc for node in cluster.nodes]
            assert sorted(redis_servers_on(ports)) == sorted(p.pid for p in started if p)
        assert all(p is not None and p.poll() is not None for p in started)
        assert redis_servers_on(ports) == []
        assert all(node.proc is None for node in cluster.nodes)
