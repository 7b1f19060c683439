"""A real Redis Cluster for tests: six redis-servers on 127.0.0.1, joined, stopped after.

`RedisCluster(dir)` starts Debian's redis-server in cluster mode, by default
three masters with one replica each, every node in a folder of its own
(its cluster config file, its append-only file, its log).  `start()` joins
them with `redis-cli --cluster create` and returns only once every node
says `cluster_state:ok`, every slot is served and every replica follows
its master.  A short node timeout makes a failover take seconds:
`kill_master()` SIGKILLs a master and `wait_for_failover()` waits until
one of its replicas serves its slots.  `throwaway_cluster()` runs one in a
temporary directory while a block runs.

The single-server launcher, whose ports and redis-server this reuses, is
redis_server.py.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from redis_server import REDIS_SERVER, TlsFiles, free_port

REDIS_CLI = shutil.which("redis-cli")
HOST = "127.0.0.1"
SLOTS = 16384
START_TIMEOUT_S = 30.0
FAILOVER_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
# Short, so that a killed master is voted failed and replaced within a few
# seconds; long enough that a busy 2-core machine does not fail nodes by mistake.
NODE_TIMEOUT_MS = 1500
POLL_S = 0.05

# Every cluster started and not yet stopped (held strongly: an unreferenced
# cluster's processes would run on), so that none outlives the test process.
_running: set[RedisCluster] = set()


@dataclass
class NodeProcess:
    """One redis-server of the cluster: its ports, its folder, its process."""

    port: int
    bus_port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None
    tls: TlsFiles | None = None  # the port speaks TLS only (as does the cluster bus)

    @property
    def address(self) -> tuple[str, int]:
        return (HOST, self.port)

    @property
    def log(self) -> Path:
        return self.dir / "redis.log"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self) -> redis.Redis:
        """A plain (non-cluster) client of this node alone."""
        tls: dict[str, object] = {}
        if self.tls is not None:
            tls = {"ssl": True, "ssl_ca_certs": str(self.tls.ca)}
        return redis.Redis(
            host=HOST,
            port=self.port,
            decode_responses=True,
            socket_connect_timeout=0.5,
            socket_timeout=2.0,
            **tls,  # type: ignore[arg-type]
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log})"
        return "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class NodeView:
    """One line of `CLUSTER NODES`: a node as some node of the cluster sees it."""

    node_id: str
    port: int
    flags: frozenset[str]
    master_id: str | None
    slots: tuple[tuple[int, int], ...]

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def failed(self) -> bool:
        return bool(self.flags & {"fail", "fail?"})

    def serves(self, slot: int) -> bool:
        return any(start <= slot <= end for start, end in self.slots)


def parse_cluster_nodes(text: str) -> list[NodeView]:
    views = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        node_id, address, flags, master_id = fields[:4]
        slots = []
        for token in fields[8:]:
            if token.startswith("["):  # a slot being migrated or imported
                continue
            start, _, end = token.partition("-")
            slots.append((int(start), int(end or start)))
        views.append(
            NodeView(
                node_id=node_id,
                port=int(address.split("@")[0].rpartition(":")[2] or 0),
                flags=frozenset(flags.split(",")),
                master_id=None if master_id == "-" else master_id,
                slots=tuple(slots),
            )
        )
    return views


def _info_fields(text: str) -> dict[str, str]:
    """`CLUSTER INFO` or `INFO` text as a dict (the client leaves it a string)."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


class RedisCluster:
    def __init__(
        self,
        directory: Path,
        *,
        masters: int = 3,
        replicas_per_master: int = 1,
        durable: bool = True,
        node_timeout_ms: int = NODE_TIMEOUT_MS,
        tls: TlsFiles | None = None,
    ) -> None:
        if REDIS_SERVER is None or REDIS_CLI is None:
            missing = "redis-server" if REDIS_SERVER is None else "redis-cli"
            raise RuntimeError(
                f"{missing} is not installed: run scripts/install-deps.sh "
                "(Debian redis-server, which brings redis-cli in redis-tools)"
            )
        if masters < 3:
            raise ValueError("redis-cli --cluster create needs at least 3 masters")
        self.dir = directory
        self.masters_wanted = masters
        self.replicas_per_master = replicas_per_master
        self.durable = durable
        self.node_timeout_ms = node_timeout_ms
        self.tls = tls
        count = masters * (1 + replicas_per_master)
        ports = self._distinct_free_ports(2 * count)
        self.nodes = [
            NodeProcess(port=port, bus_port=bus_port, dir=directory / f"node-{port}", tls=tls)
            for port, bus_port in zip(ports[:count], ports[count:], strict=True)
        ]
        # For each master killed by kill_master(): the ports of its replicas then.
        self._replicas_of_killed: dict[int, set[int]] = {}

    @staticmethod
    def _distinct_free_ports(count: int) -> list[int]:
        ports: list[int] = []
        while len(ports) < count:
            port = free_port()
            if port not in ports:
                ports.append(port)
        return ports

    # -- addresses ----------------------------------------------------------

    @property
    def url(self) -> str:
        """The masters' addresses, in the `redis+cluster://` URL the project accepts."""
        addresses = ",".join(f"{HOST}:{node.port}" for node in self.masters())
        if self.tls is not None:
            return f"rediss+cluster://{addresses}/?ssl_ca_certs={self.tls.ca}"
        return f"redis+cluster://{addresses}/"

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """Every node still running, as (host, port)."""
        return [node.address for node in self.nodes if node.alive]

    def node_at(self, port: int) -> NodeProcess:
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(f"no node of this cluster on port {port}")

    # -- starting and stopping ----------------------------------------------

    def args(self, node: NodeProcess) -> list[str]:
        args = [str(REDIS_SERVER), "--bind", HOST]
        if self.tls is None:
            args += ["--port", str(node.port)]
        else:  # TLS only, for clients, the cluster bus and replication alike
            args += ["--port", "0", "--tls-port", str(node.port), "--tls-cluster", "yes"]
            args += ["--tls-replication", "yes", "--tls-auth-clients", "no"]
            args += ["--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)]
            args += ["--tls-ca-cert-file", str(self.tls.ca)]
        args += ["--dir", str(node.dir), "--logfile", str(node.log), "--save", ""]
        args += ["--cluster-enabled", "yes", "--cluster-port", str(node.bus_port)]
        args += ["--cluster-config-file", str(node.dir / "nodes.conf")]
        args += ["--cluster-node-timeout", str(self.node_timeout_ms)]
        args += ["--cluster-announce-ip", HOST]
        # A replica cut off by its master's death may always take over.
        args += ["--cluster-replica-validity-factor", "0"]
        # Replicas sync at once (the default waits 5 s for more replicas to come).
        args += ["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]
        # SIGTERM stops a master at once, without waiting for lagging replicas.
        args += ["--shutdown-timeout", "0"]
        if self.durable:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        return args

    def start(self) -> RedisCluster:
        _running.add(self)
        try:
            for node in self.nodes:
                node.dir.mkdir(parents=True, exist_ok=True)
                # Output into the log too: a bad option is told there, before the
                # log file opens.  Same session as the tests: a Ctrl-C reaches the nodes.
                with node.log.open("ab") as log:
                    node.proc = subprocess.Popen(
                        self.args(node), stdout=log, stderr=subprocess.STDOUT
                    )
            deadline = time.monotonic() + START_TIMEOUT_S
            for node in self.nodes:
                self._wait_for_ping(node, deadline)
            self._create()
            self._wait_until("the cluster is ok", self._not_ready_reason, deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_ping(self, node: NodeProcess, deadline: float) -> None:
        with node.client() as client:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if not node.alive or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"redis-server on port {node.port} did not start; "
                            f"its log ({node.log}) ends:\n{node.log_tail()}"
                        ) from None
                    time.sleep(POLL_S)

    def _create(self) -> None:
        addresses = [f"{HOST}:{node.port}" for node in self.nodes]
        command = [str(REDIS_CLI), "--cluster", "create", *addresses]
        command += ["--cluster-replicas", str(self.replicas_per_master), "--cluster-yes"]
        if self.tls is not None:
            command += ["--tls", "--cacert", str(self.tls.ca)]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False
        )
        if done.returncode != 0 or f"All {SLOTS} slots covered" not in done.stdout:
            output = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
            raise RuntimeError(
                f"redis-cli --cluster create failed (exit {done.returncode}):\n{output}"
            )

    def stop(self) -> None:
        """SIGTERM every node, wait, SIGKILL the stragglers; safe to call twice."""
        running = [node for node in self.nodes if node.proc is not None]
        for node in running:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for node in running:
            assert node.proc is not None
            try:
                node.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()
            node.proc = None
        _running.discard(self)

    # -- what the cluster says ----------------------------------------------

    def topology(self, via: NodeProcess | None = None) -> list[NodeView]:
        """`CLUSTER NODES` as node `via` (by default the first one running) sees it."""
        node = via or self._any_running()
        with node.client() as client:
            return parse_cluster_nodes(str(client.execute_command("CLUSTER", "NODES")))

    def _any_running(self) -> NodeProcess:
        for node in self.nodes:
            if node.alive:
                return node
        raise RuntimeError("no node of this cluster is running")

    def masters(self) -> list[NodeProcess]:
        """The running masters that serve slots, by port."""
        ports = {
            view.port
            for view in self.topology()
            if view.is_master and view.slots and not view.failed
        }
        return [node for node in self.nodes if node.port in ports and node.alive]

    def master_of(self, key: bytes) -> NodeProcess:
        """The master that serves `key`'s slot now."""
        any_node = self._any_running()
        with any_node.client() as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
        for view in self.topology(any_node):
            if view.is_master and not view.failed and view.serves(slot):
                return self.node_at(view.port)
        raise RuntimeError(f"no master serves slot {slot} of key {key!r}")

    def _not_ready_reason(self) -> str | None:
        """Why the cluster is not yet fully up, or None once it is."""
        for node in self.nodes:
            try:
                with node.client() as client:
                    info = _info_fields(str(client.execute_command("CLUSTER", "INFO")))
                    views = parse_cluster_nodes(str(client.execute_command("CLUSTER", "NODES")))
                    replication = _info_fields(str(client.execute_command("INFO", "replication")))
            except redis.RedisError as error:
                return f"node {node.port} does not answer: {error}"
            if info.get("cluster_state") != "ok":
                return f"node {node.port} says cluster_state:{info.get('cluster_state')}"
            if info.get("cluster_slots_ok") != str(SLOTS):
                return f"node {node.port} says cluster_slots_ok:{info.get('cluster_slots_ok')}"
            if info.get("cluster_known_nodes") != str(len(self.nodes)):
                return f"node {node.port} knows {info.get('cluster_known_nodes')} nodes"
            masters = {view.node_id for view in views if view.is_master and view.slots}
            if len(masters) != self.masters_wanted:
                return f"node {node.port} sees {len(masters)} masters with slots"
            for master_id in masters:
                replicas = [view for view in views if view.master_id == master_id]
                if len(replicas) != self.replicas_per_master:
                    return f"node {node.port} sees {len(replicas)} replicas of {master_id}"
            if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
                return f"replica {node.port} has not synced with its master yet"
        return None

    def _wait_until(self, what: str, not_yet: Callable[[], str | None], deadline: float) -> None:
        while (reason := not_yet()) is not None:
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {node.log}:\n{node.log_tail(8)}" for node in self.nodes)
                raise RuntimeError(f"gave up waiting until {what}: {reason}\n{logs}")
            time.sleep(POLL_S)

    # -- failures -----------------------------------------------------------

    def kill_master(self, node: NodeProcess) -> None:
        """SIGKILL a master: no shutdown, no last write to its replicas."""
        views = self.topology()
        own = next(view for view in views if view.port == node.port)
        if not own.is_master:
            raise ValueError(f"node {node.port} is not a master")
        replica_ports = {view.port for view in views if view.master_id == own.node_id}
        self._replicas_of_killed[node.port] = replica_ports
        assert node.proc is not None
        node.proc.kill()
        node.proc.wait()
        node.proc = None

    def wait_for_failover(self, old_master_port: int, timeout: float = FAILOVER_TIMEOUT_S) -> int:
        """Wait until every surviving node is ok with a replica of the killed master
        promoted in its place; return the new master's port."""
        replica_ports = self._replicas_of_killed.get(old_master_port)
        if not replica_ports:
            raise ValueError(f"no master on port {old_master_port} was killed by kill_master()")
        promoted: list[int] = []

        def not_yet() -> str | None:
            seen: set[int] = set()
            for node in self.nodes:
                if not node.alive:
                    continue
                try:
                    with node.client() as client:
                        info = _info_fields(str(client.execute_command("CLUSTER", "INFO")))
                        views = parse_cluster_nodes(str(client.execute_command("CLUSTER", "NODES")))
                except redis.RedisError as error:
                    return f"node {node.port} does not answer: {error}"
                if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != str(SLOTS):
                    return f"node {node.port} says cluster_state:{info.get('cluster_state')}"
                mine = {
                    view.port
                    for view in views
                    if view.port in replica_ports and view.is_master and view.slots
                }
                if len(mine) != 1:
                    return f"node {node.port} sees as new master: {sorted(mine) or 'none'}"
                seen |= mine
            if len(seen) != 1:
                return f"the surviving nodes see as new master: {sorted(seen) or 'none'}"
            promoted[:] = seen
            return None

        self._wait_until(
            f"a replica of {old_master_port} took over", not_yet, time.monotonic() + timeout
        )
        return promoted[0]

    # -- between tests --------------------------------------------------------

    def flush(self) -> None:
        """FLUSHALL on every master (their replicas follow)."""
        for node in self.masters():
            with node.client() as client:
                client.flushall()


@contextmanager
def throwaway_cluster(*, durable: bool = True) -> Iterator[RedisCluster]:
    """A RedisCluster (durable unless asked) in a temporary directory while the block runs."""
    with tempfile.TemporaryDirectory(prefix="wm-redis-cluster-") as directory:
        cluster = RedisCluster(Path(directory), durable=durable).start()
        try:
            yield cluster
        finally:
            cluster.stop()


@atexit.register
def _stop_every_cluster() -> None:
    """A safety net: a cluster a test forgot to stop dies with the test process."""
    for cluster in list(_running):
        cluster.stop()
