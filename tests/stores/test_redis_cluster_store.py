"""What only the Redis Cluster store does: URLs of many nodes, a map kept in
one hash slot, and a master killed with SIGKILL mid-run -- the replica takes
over and the same broker answers again, having lost no write that a replica
confirmed (`?replicas=1`).

The conformance suite (`@every_store`) and the multi-process incr and
set_if tests (test_store_processes.py) run on the session's cluster too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from certificates import make_certificates
from redis_cluster import RedisCluster

from broker import Broker, ConfigError
from broker.errors import StoreError
from broker.stores import open_store, redact_url, url_problem
from broker.stores.cluster_url import ClusterUrl, parse
from broker.stores.redis_cluster_store import RedisClusterStore

GUESTS = Path(__file__).parent.parent / "guests"


class TestUrls:
    @pytest.mark.parametrize(
        ("url", "nodes", "options"),
        [
            ("redis+cluster://127.0.0.1:7000/", [("127.0.0.1", 7000)], {}),
            ("redis+cluster://a:1,b:2", [("a", 1), ("b", 2)], {}),
            ("redis+cluster://[::1]:7000,h:7001/0", [("::1", 7000), ("h", 7001)], {}),
            (
                "redis+cluster://h:1/?replicas=1&replica_timeout_ms=500",
                [("h", 1)],
                {"replicas": 1, "replica_timeout_ms": 500},
            ),
        ],
    )
    def test_good(self, url: str, nodes: list[tuple[str, int]], options: dict[str, int]) -> None:
        assert url_problem(url) is None
        parsed = parse(url, {})
        assert isinstance(parsed, ClusterUrl) and parsed.nodes == nodes
        kwargs = parsed.store_options()
        assert {k: v for k, v in kwargs.items() if k in options} == options

    def test_user_and_password(self) -> None:
        parsed = parse("redis+cluster://app:s%40cret@h:1,h:2/", {})
        assert isinstance(parsed, ClusterUrl)
        assert (parsed.username, parsed.password) == ("app", "s@cret")
        assert redact_url("redis+cluster://app:s%40cret@h:1,h:2/") == (
            "redis+cluster://app:***@h:1,h:2/"
        )

    def test_tls_options(self) -> None:
        """As redis-py's from_url reads them for rediss://: booleans are
        booleans, choices lower case, files as written."""
        url = (
            "rediss+cluster://h:1/?ssl_cert_reqs=Required&ssl_check_hostname=false"
            "&ssl_ca_certs=ca.pem"
        )
        assert url_problem(url) is None
        parsed = parse(
            url, {"ssl_cert_reqs": None, "ssl_check_hostname": None, "ssl_ca_certs": None}
        )
        assert isinstance(parsed, ClusterUrl)
        assert parsed.store_options()["tls"] == {
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": False,
            "ssl_ca_certs": "ca.pem",
        }
        for word, value in (("yes", True), ("1", True), ("no", False), ("0", False)):
            parsed = parse(
                f"rediss+cluster://h:1/?ssl_check_hostname={word}", {"ssl_check_hostname": None}
            )
            assert isinstance(parsed, ClusterUrl)
            assert parsed.store_options()["tls"] == {"ssl_check_hostname": value}

    @pytest.mark.parametrize(
        ("url", "problem"),
        [
            ("redis+cluster:///", "write redis+cluster://HOST:PORT[,HOST:PORT...]/"),
            ("redis+cluster://h/", "write redis+cluster://HOST:PORT"),
            ("redis+cluster://h:0/", "a port from 1 to 65535"),
            ("redis+cluster://h:1,,h:2/", "write redis+cluster://HOST:PORT"),
            ("redis+cluster://h:1/3", "a cluster has only database 0"),
            ("redis+cluster://h:1/?db=2", "unknown option 'db'"),
            ("redis+cluster://h:1/?ssl_ca_certs=ca.pem", "TLS options: use rediss+cluster://"),
            ("redis+cluster://h:1/?replicas=many", "replicas must be a number from 0 to 1000"),
            ("redis+cluster://h:1/?replicas=1&replicas=2", "the option replicas is given twice"),
            ("redis+cluster://h:1/#x", "takes no '#'"),
            ("redis+cluster://h:" + "9" * 5000 + "/", "write redis+cluster://HOST:PORT"),
            ("redis+cluster://h:1/?replicas=" + "1" * 5000, "replicas must be a number"),
        ],
    )
    def test_bad(self, url: str, problem: str) -> None:
        assert problem in (url_problem(url) or "")
        with pytest.raises(ConfigError, match="store 'redis\\+cluster://"):
            open_store(url)


class TestOneSlotPerMap:
    def test_a_maps_keys_share_a_slot_and_maps_spread(self, redis_cluster_url: str) -> None:
        """Every key the store keeps for one map hashes to one slot; 40 maps
        land on every master."""
        with Broker(store=redis_cluster_url) as broker:
            for i in range(40):
                ref = broker.open(f"map-{i}")
                ref[b"k"] = b"v"
                ref.incr(b"n", 1)
        cluster = redis.cluster.RedisCluster.from_url(
            redis_cluster_url.replace("redis+cluster://", "redis://").split(",")[0] + "/"
        )
        try:
            slots = {
                cluster.keyslot(f"wasi-map:{part}:{{map-7}}")
                for part in ("v", "ver", "seq", "clock", "done")
            }
            assert len(slots) == 1
            per_master = [
                cluster.get_redis_connection(node).dbsize() for node in cluster.get_primaries()
            ]
            assert len(per_master) == 3 and all(n > 0 for n in per_master)
        finally:
            cluster.close()

    def test_unreachable_cluster_is_io_then_answers(self, tmp_path: Path) -> None:
        """A broker made while no node answers: its operations fail with IO; it
        answers once the cluster is up (no reload)."""
        cluster = RedisCluster(tmp_path / "late", durable=False)
        url = "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in cluster.nodes) + "/"
        with Broker(store=url) as broker:
            ref = broker.open("m")
            with pytest.raises(StoreError):
                ref[b"k"] = b"v"
            cluster.start()
            try:
                ref[b"k"] = b"v"
                assert ref[b"k"] == b"v"
            finally:
                cluster.stop()


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    """A durable cluster of this test's own (appendfsync always), two replicas
    per master: after a failover, the new master still has one to confirm writes."""
    cluster = RedisCluster(tmp_path / "cluster", durable=True, replicas_per_master=2).start()
    try:
        yield cluster
    finally:
        cluster.stop()


class TestFailover:
    """kill -9 of the master holding a map, while a thread counts on it."""

    BEFORE, AFTER = 150, 150  # acknowledged increments before the kill, and after the takeover

    def test_no_confirmed_write_is_lost_and_the_broker_goes_on(
        self, own_cluster: RedisCluster
    ) -> None:
        url = own_cluster.url + "?replicas=1&replica_timeout_ms=2000"
        acked: list[int] = []
        failures: list[BaseException] = []
        stop, killed = threading.Event(), threading.Event()
        with Broker(store=url) as broker:
            broker.load("w", GUESTS / "worker.wat", grants={"tally": "rw"})
            ref = broker.open("tally")

            def count() -> None:
                after = 0
                while not stop.is_set():
                    try:
                        acked.append(ref.incr(b"hits", 1))
                    except StoreError as exc:  # the master is gone: IO until the takeover
                        failures.append(exc)
                        continue
                    after += killed.is_set()
                    if after >= self.AFTER:
                        stop.set()

            counter = threading.Thread(target=count)
            counter.start()
            try:
                while len(acked) < self.BEFORE and counter.is_alive():
                    threading.Event().wait(0.01)
                master = own_cluster.master_of(b"wasi-map:v:{tally}")
                own_cluster.kill_master(master)
                killed.set()
                own_cluster.wait_for_failover(master.port)
                counter.join(60)
            finally:
                stop.set()
                counter.join(60)
            assert not counter.is_alive()
            assert all(a < b for a, b in zip(acked, acked[1:], strict=False)), (
                "a confirmed increment was lost: the count went back"
            )
            final = ref.incr(b"hits", 0)
            assert final == acked[-1]
            assert failures, "the kill was not noticed (no IO while the master was gone)"
            assert broker.call("w.run", 5) == sum(range(5))  # a guest goes on, no reload
            assert ref.incr(b"hits", 0) == final + 5


class TestDemotedMaster:
    """A manual failover (CLUSTER FAILOVER on a replica) leaves the old master
    running, as a replica: it answers MOVED, and with ?replicas= the WAIT sent
    with the write answers an error too -- the store must still read the slot
    map again and go on, for writes as for reads."""

    def test_writes_go_on_after_the_roles_swap(self, own_cluster: RedisCluster) -> None:
        store = open_store(own_cluster.url + "?replicas=1&replica_timeout_ms=2000")
        assert isinstance(store, RedisClusterStore)
        try:
            store.set("m", b"k", b"v0")  # the slot map is read now
            master = own_cluster.master_of(b"wasi-map:v:{m}")
            views = own_cluster.topology()
            master_id = next(v.node_id for v in views if v.port == master.port)
            replica = next(v for v in views if not v.is_master and v.master_id == master_id)
            with own_cluster.node_at(replica.port).client() as client:
                client.execute_command("CLUSTER", "FAILOVER")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with master.client() as client:
                    if client.info("replication")["role"] == "slave":
                        break
                time.sleep(0.05)
            else:
                pytest.fail("the manual failover did not happen")
            store.set("m", b"k", b"v1")  # MOVED: the slot map is read again
            assert store.incr("m", b"n", 1) == 1
            assert store.get("m", b"k") == b"v1"
        finally:
            store.close()


class TestWait:
    def test_too_few_replicas_is_io(self, redis_cluster_url: str) -> None:
        """replicas=2 on a cluster with one replica per master: the write is
        made, but cannot be confirmed: IO, saying so."""
        store = open_store(redis_cluster_url + "?replicas=2&replica_timeout_ms=50")
        assert isinstance(store, RedisClusterStore)
        try:
            with pytest.raises(StoreError, match="1 of 2 replicas confirmed it within 50 ms"):
                store.set("m", b"k", b"v")
            assert store.get("m", b"k") == b"v"  # on the master all the same
        finally:
            store.close()


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A cluster that speaks TLS only (clients, bus, replication), its
    certificates signed by a CA of the test's own."""
    pytest.importorskip("cryptography")
    directory = tmp_path_factory.mktemp("tls-cluster")
    cluster = RedisCluster(directory / "c", durable=False, tls=make_certificates(directory))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


class TestTls:
    def test_maps_over_tls(self, tls_cluster: RedisCluster) -> None:
        """rediss+cluster:// with the test CA: a guest and the host count on it."""
        url = tls_cluster.url
        assert url.startswith("rediss+cluster://") and "ssl_ca_certs=" in url
        with Broker(store=url) as broker:
            broker.load("w", GUESTS / "worker.wat", grants={"tally": "rw"})
            assert broker.call("w.run", 4) == sum(range(4))
            assert broker.open("tally").incr(b"hits", 0) == 4
            store = broker.store
            assert isinstance(store, RedisClusterStore)
            pool = store._pool_for("tally")
            assert pool.connection_class is redis.SSLConnection

    def test_an_unknown_ca_is_refused(self, tls_cluster: RedisCluster) -> None:
        """Without the test CA the server's certificate does not verify: IO, saying so."""
        url = tls_cluster.url.partition("?")[0]
        with Broker(store=url) as broker, pytest.raises(StoreError, match="certificate"):
            broker.open("m")[b"k"] = b"v"
