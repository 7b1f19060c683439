"""Stores across processes: named maps in a real sqlite file and a real redis-server.

Every process is a real broker with a real guest (tests/support/store_worker.py run
with `sys.executable`, or the test process itself): what one writes another
reads back; `incr` and `set_if` stay atomic between processes; a Redis
server killed with SIGKILL gives IO promptly, loses no acknowledged write
and is used again once it is back; an sqlite write waits out another
process's lock; a failed `set_many` leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import operator
import queue
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from guest_driver import DRIVER, RW, Driver
from paths import GUESTS, SUPPORT
from redis_server import RedisServer
from store_worker import Worker

from broker import Broker
from broker.abi import Errno
from broker.errors import ConfigError, StoreError

WORKER = SUPPORT / "store_worker.py"
WORKER_WAT = GUESTS / "worker.wat"  # run(n): n incr's of tally["hits"]
OK, CONFLICT, IO = int(Errno.OK), int(Errno.CONFLICT), int(Errno.IO)
CONNECT_TIMEOUT_S = 2.0  # the Redis store's connect timeout (docs/stores.md, Timeouts)
REPLY_WAIT_S = 60.0  # the longest a worker may take to answer before the test fails


def i64(value: int) -> bytes:
    """An incr counter as stored: 8 bytes, little-endian."""
    return value.to_bytes(8, "little", signed=True)


# --- worker processes --------------------------------------------------------


class WorkerProcess:
    """tests/support/store_worker.py in a subprocess: one JSON request, one JSON reply."""

    def __init__(self, url: str, maps: tuple[str, ...]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), url, *maps],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put("")  # end of output: the process is gone

    def send(self, op: str, **args: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()

    def reply(self) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=REPLY_WAIT_S)
        except queue.Empty:
            raise AssertionError(f"worker {self.proc.pid} did not answer") from None
        assert line, f"worker {self.proc.pid} exited with {self.proc.wait()}"
        reply: dict[str, Any] = json.loads(line)
        assert "error" not in reply, reply["error"]
        return reply

    def ask(self, op: str, **args: Any) -> dict[str, Any]:
        self.send(op, **args)
        return self.reply()

    def exit(self) -> int:
        """Ask the worker to close its broker and exit; its exit status."""
        self.send("exit")
        return self.proc.wait(timeout=REPLY_WAIT_S)

    def close(self) -> None:
        """Kill the worker if it still runs, and close its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        self._reader.join(timeout=10)
        self.proc.stdout.close()


Spawn = Callable[..., list[WorkerProcess]]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """spawn(url, *maps, n=1): n worker processes, started together, each ready."""
    started: list[WorkerProcess] = []

    def spawn(url: str, *maps: str, n: int = 1) -> list[WorkerProcess]:
        workers = [WorkerProcess(url, maps) for _ in range(n)]
        started.extend(workers)
        for w in workers:
            assert w.reply()["ready"] == w.proc.pid
        return workers

    yield spawn
    for w in started:
        w.close()


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store: an sqlite file of its own, or the session's redis-server emptied."""
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'maps.db'}"
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A durable redis-server of this test's own (append-only file, fsync always), not started."""
    server = RedisServer(tmp_path / "redis", durable=True)
    server.dir.mkdir()
    try:
        yield server
    finally:
        server.stop()


def h(data: bytes) -> str:
    return data.hex()


# --- 1. persistence ---------------------------------------------------------

BIG = bytes(i * 7 % 256 for i in range(4000))


def writes() -> tuple[list[dict[str, Any]], dict[bytes, bytes]]:
    """Guest requests on map "shared", and the entries they leave, in insertion order."""
    reqs: list[dict[str, Any]] = []
    expected: dict[bytes, bytes] = {}  # a dict keeps insertion order; overwriting keeps a place

    def req(op: str, **args: Any) -> None:
        reqs.append({"op": op, "map": "shared", **args})

    for key, value in [
        (b"alpha", b"1"),
        (b"\x00\xffbin\x00", bytes(range(256))),
        (b"empty", b""),
        (b"big", BIG),
    ]:
        req("set", key=h(key), value=h(value))
        expected[key] = value
    items = [(f"item{i:02d}".encode(), f"value {i}".encode()) for i in range(20)]
    items.append((b"item05", b"again"))  # later items win
    req("set_many", items=[[h(k), h(v)] for k, v in items])
    expected.update(items)
    for _ in range(5):
        req("incr", key=h(b"counter"), delta=3)
    req("incr", key=h(b"neg"), delta=-7)
    expected[b"counter"], expected[b"neg"] = i64(15), i64(-7)
    req("set", key=h(b"alpha"), value=h(b"2"))
    expected[b"alpha"] = b"2"
    req("delete", key=h(b"item10"))
    req("delete", key=h(b"absent"))
    del expected[b"item10"]
    req("set", key=h(b"item10"), value=h(b"back"))  # a new insertion: listed last
    expected[b"item10"] = b"back"
    return reqs, expected


def check_dump(entries: list[list[Any]], expected: dict[bytes, bytes]) -> None:
    """A worker's dump holds exactly `expected`, in order, each with its own version."""
    assert [(bytes.fromhex(k), bytes.fromhex(v)) for k, v, _ in entries] == list(expected.items())
    versions = [ver for _, _, ver in entries]
    assert all(ver > 0 for ver in versions)
    assert len(set(versions)) == len(versions), "a version was reused within the map"


class TestPersistence:
    """What one broker writes to a store, another reads back identically."""

    def test_another_process_reads_what_one_wrote(self, store_url: str, spawn: Spawn) -> None:
        """A writes and exits; B (another process) and this one read the same entries, versions."""
        reqs, expected = writes()
        (a,) = spawn(store_url, "shared", "other")
        replies = a.ask("batch", requests=reqs)["replies"]
        assert [r["errno"] for r in replies] == [OK] * len(reqs)
        assert [r["value"] for r in replies if "value" in r] == [3, 6, 9, 12, 15, -7]
        written = a.ask("dump", map="shared")["entries"]
        check_dump(written, expected)
        assert a.exit() == 0

        (b,) = spawn(store_url, "shared", "other")
        assert b.ask("dump", map="shared")["entries"] == written
        assert b.ask("dump", map="other")["entries"] == []  # maps are kept apart by name
        assert b.exit() == 0

        with Broker(store=store_url) as broker, broker.open("shared", "r") as ref:
            assert list(ref) == list(expected)
            assert dict(ref.items()) == expected
            assert [ref.version(k) for k in ref] == [ver for _, _, ver in written]
            assert len(ref) == len(expected)

    def test_the_store_outlives_a_broker(self, store_url: str) -> None:
        """Close the broker, open a new one on the same store: same entries; the clock goes on."""
        reqs, expected = writes()
        first = Worker(store_url, ["shared"])
        try:
            assert [first.answer(r)["errno"] for r in reqs] == [OK] * len(reqs)
            written = first.answer({"op": "dump", "map": "shared"})["entries"]
        finally:
            first.broker.close()
        check_dump(written, expected)

        second = Worker(store_url, ["shared"])
        try:
            assert second.answer({"op": "dump", "map": "shared"})["entries"] == written
            counter = {"map": "shared", "key": h(b"counter")}
            assert second.answer({"op": "incr", "delta": 1, **counter})["value"] == 16
            after = second.answer({"op": "version", **counter})["version"]
            assert after > max(ver for _, _, ver in written)
        finally:
            second.broker.close()


# --- 2. incr between processes ------------------------------------------------


class TestIncrAcrossProcesses:
    """Guest incr's from two processes on one key all count, each exactly once."""

    N = 400
    # A short sleep before each incr hands the lock over often: without it one
    # sqlite process tends to run many incr's in a row while the other waits.
    PAUSE_S = 0.0005

    def test_two_processes_lose_nothing(self, store_url: str, spawn: Spawn) -> None:
        """Final value 2N; each process saw rising values; between them every value once."""
        workers = spawn(store_url, "race", n=2)
        for w in workers:  # both are idle and ready: let them go at once
            w.send("incr_loop", map="race", key=h(b"n"), n=self.N, pause=self.PAUSE_S)
        seen = [w.reply() for w in workers]
        for got in seen:
            assert got["errnos"] == []
            assert len(got["values"]) == self.N
            assert all(a < b for a, b in zip(got["values"], got["values"][1:], strict=False))
        values = seen[0]["values"] + seen[1]["values"]
        assert sorted(values) == list(range(1, 2 * self.N + 1))
        by_value = [owner for _, owner in sorted((v, i) for i in (0, 1) for v in seen[i]["values"])]
        turns = 1 + sum(a != b for a, b in zip(by_value, by_value[1:], strict=False))
        assert turns > 2, "the processes did not run at the same time"
        for w in workers:
            assert w.exit() == 0
        with Broker(store=store_url) as broker, broker.open("race") as ref:
            assert ref[b"n"] == i64(2 * self.N)
            assert ref.incr(b"n", 0) == 2 * self.N


class TestAppProcesses:
    """`wasi-map run` processes of one app manifest share the store its [store] table names."""

    LOOP = 300

    def test_two_runs_at_once_add_up(self, store_url: str, tmp_path: Path) -> None:
        """Two runs of a guest loop of incr's on one named map: the map ends at 2 x LOOP."""
        if store_url.startswith("sqlite:"):
            store_url = "sqlite:data/maps.db"  # relative: to the manifest's directory
            (tmp_path / "data").mkdir()
        app = tmp_path / "app.toml"
        app.write_text(
            f"[store]\nurl = {json.dumps(store_url)}\n\n"
            f"[modules.w]\npath = {json.dumps(str(WORKER_WAT))}\n"
            'grants = { tally = "rw" }\n'
        )
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        command = [sys.executable, "-m", "broker.cli", "run", str(app), "--call", "w.run"]
        runs = [
            subprocess.Popen(
                [*command, str(self.LOOP)],
                cwd=elsewhere,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=REPLY_WAIT_S) for run in runs]
        for run, (out, err) in zip(runs, outputs, strict=True):
            assert (run.returncode, out, err) == (0, f"{self.LOOP * (self.LOOP - 1) // 2}\n", "")
        if store_url.startswith("sqlite:"):
            assert (tmp_path / "data" / "maps.db").is_file()
            assert list(elsewhere.iterdir()) == []
        with Broker.from_manifest(app) as broker, broker.open("tally", "r") as tally:
            assert tally[b"hits"] == i64(2 * self.LOOP)


# --- 3. set_if between processes ----------------------------------------------


class TestSetIfAcrossProcesses:
    """K processes race set_if on one key with the version they all read: one wins each round."""

    K, ROUNDS = 3, 8

    def test_exactly_one_winner_per_round(self, store_url: str, spawn: Spawn) -> None:
        """Each round: one OK, K-1 CONFLICT; the winner's value is stored under a newer version."""
        workers = spawn(store_url, "cas", n=self.K)
        key = h(b"leader")
        last = 0
        for r in range(self.ROUNDS):
            versions = {w.ask("version", map="cas", key=key)["version"] for w in workers}
            assert versions == {last}, "everyone reads the same version before anyone writes"
            for i, w in enumerate(workers):
                w.send("set_if", map="cas", key=key, value=h(f"{r}:{i}".encode()), expected=last)
            errnos = [w.reply()["errno"] for w in workers]
            assert sorted(errnos) == [OK] + [CONFLICT] * (self.K - 1), errnos
            winner = errnos.index(OK)
            (entry,) = workers[0].ask("dump", map="cas")["entries"]
            assert bytes.fromhex(entry[1]) == f"{r}:{winner}".encode()
            assert entry[2] > last
            last = entry[2]
        for w in workers:
            assert w.exit() == 0


# --- 4. Redis killed and restarted --------------------------------------------


class IncrLoop(threading.Thread):
    """Guest incr's of 1 on one key until stopped; every answer with the time it took."""

    def __init__(self, driver: Driver, handle: int, key: bytes) -> None:
        super().__init__(name="incr-loop", daemon=True)
        self.driver, self.handle, self.key = driver, handle, key
        self.answers: list[tuple[int, int | None, float]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            start = time.monotonic()
            err, value = self.driver.incr(self.handle, self.key, 1)
            self.answers.append((err, value, time.monotonic() - start))

    def count(self, errno: int) -> int:
        return sum(1 for err, _, _ in list(self.answers) if err == errno)

    def wait_for(self, errno: int, n: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count(errno) < n:
            assert self.is_alive(), "the loop died"
            assert time.monotonic() < deadline, f"fewer than {n} answers {Errno(errno).name}"
            time.sleep(0.005)

    def finish(self) -> None:
        self.halt.set()
        self.join(timeout=30)
        assert not self.is_alive(), "a guest call hung"


class TestRedisKilled:
    """kill -9 of the redis-server: IO, then the same broker and guest go on once it is back."""

    def test_kill_mid_run_then_restart(self, own_redis: RedisServer) -> None:
        """IO promptly while down; host StoreError names the URL; no acknowledged incr lost."""
        server = own_redis.start()
        with Broker(store=server.url) as broker:
            driver = Driver(broker, "g", grants={"counters": "rw"})
            err, handle = driver.open(b"counters", RW)
            assert err == OK and handle is not None
            ref = broker.open("counters")

            loop = IncrLoop(driver, handle, b"n")
            loop.start()
            loop.wait_for(OK, 150)
            server.kill()  # while the loop runs: a request may be in flight
            loop.wait_for(IO, 20)
            loop.finish()

            errs = [err for err, _, _ in loop.answers]
            acked = [value for err, value, _ in loop.answers if err == OK]
            first_io = errs.index(IO)
            assert set(errs) == {OK, IO}
            assert set(errs[first_io:]) == {IO}, "an answer came from a dead server"
            assert acked == list(range(1, len(acked) + 1))
            slowest = max(took for err, _, took in loop.answers if err == IO)
            assert slowest < CONNECT_TIMEOUT_S + 1.0, f"an IO answer took {slowest:.2f} s"

            for op in (
                lambda: ref[b"n"],
                lambda: ref.incr(b"n"),
                lambda: operator.setitem(ref, b"x", b"y"),
                lambda: len(ref),
                lambda: list(ref),
            ):
                with pytest.raises(StoreError, match=re.escape(server.url)) as info:
                    op()
                assert info.value.errno == Errno.IO

            server.start()  # same port, same directory: the append-only file is read back
            ios = errs.count(IO)
            err, now = driver.incr(handle, b"n", 0)
            assert err == OK and now is not None
            assert len(acked) <= now <= len(acked) + ios, (len(acked), now, ios)
            for i in range(1, 51):
                assert driver.incr(handle, b"n", 1) == (OK, now + i)
            assert ref.incr(b"n", 0) == now + 50
            ref[b"x"] = b"y"
            assert ref[b"x"] == b"y"

    def test_broker_created_while_redis_is_down(self, own_redis: RedisServer) -> None:
        """A broker whose Redis is not up yet is made; calls give IO until the server starts."""
        server = own_redis
        with Broker(store=server.url) as broker:
            driver = Driver(broker, "g", grants={"counters": "rw"})
            err, handle = driver.open(b"counters", RW)
            assert err == OK and handle is not None  # opening does not touch the store
            start = time.monotonic()
            assert driver.incr(handle, b"n", 1) == (IO, None)
            assert driver.set(handle, b"k", b"v") == IO
            assert driver.get(handle, b"k") == (IO, None)
            assert time.monotonic() - start < 3 * CONNECT_TIMEOUT_S
            with (
                broker.open("counters") as ref,
                pytest.raises(StoreError, match=re.escape(server.url)),
            ):
                ref.incr(b"n")

            server.start()
            assert driver.incr(handle, b"n", 1) == (OK, 1)
            assert driver.set(handle, b"k", b"v") == OK
            assert driver.value(handle, b"k") == b"v"


class CuttingProxy:
    """A TCP relay to a redis-server that can close a connection just before a reply passes.

    The server has then carried out the request; the broker sees a broken
    connection and sends the request once more, on a new connection.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._lock = threading.Lock()
        self._to_cut = 0
        self.cuts = 0
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, name="proxy", daemon=True).start()

    def cut(self, n: int = 1) -> None:
        """Swallow the next `n` replies, each closing the connection it came on."""
        with self._lock:
            self._to_cut += n

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self._socks += [client, server]
            for src, dst, replies in ((client, server, False), (server, client, True)):
                threading.Thread(target=self._relay, args=(src, dst, replies), daemon=True).start()

    def _relay(self, src: socket.socket, dst: socket.socket, replies: bool) -> None:
        try:
            while data := src.recv(65536):
                if replies:
                    with self._lock:
                        if self._to_cut:
                            self._to_cut -= 1
                            self.cuts += 1
                            break
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def open_m(broker: Broker) -> tuple[Driver, int]:
    """A driver guest "g" granted map "m", and its rw handle to it."""
    driver = Driver(broker, "g", grants={"m": "rw"})
    err, handle = driver.open(b"m", RW)
    assert err == OK and handle is not None
    return driver, handle


class TestRedisResend:
    """A command that meets a broken connection is sent once more, and never counts twice."""

    def test_a_restart_between_calls_is_invisible(self, own_redis: RedisServer) -> None:
        """The broker's connection died with the old server: the next call still answers OK."""
        server = own_redis.start()
        with Broker(store=server.url) as broker:
            driver, handle = open_m(broker)
            assert driver.incr(handle, b"n", 1) == (OK, 1)
            server.kill()
            server.start()
            assert driver.incr(handle, b"n", 1) == (OK, 2)
            admin = redis.Redis(port=server.port)
            try:
                assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
            finally:
                admin.close()
            assert driver.incr(handle, b"n", 1) == (OK, 3)
            assert driver.get(handle, b"n") == (OK, i64(3))

    def test_a_lost_reply_does_not_apply_twice(self, redis_server: RedisServer) -> None:
        """incr and set_if whose reply is lost are resent: OK, and applied exactly once."""
        redis_server.flush()
        proxy = CuttingProxy(redis_server.port)
        try:
            with Broker(store=proxy.url) as broker:
                driver, handle = open_m(broker)
                assert driver.incr(handle, b"n", 1) == (OK, 1)  # its script is loaded now

                proxy.cut()
                assert driver.incr(handle, b"n", 1) == (OK, 2)
                assert proxy.cuts == 1
                assert driver.incr(handle, b"n", 0) == (OK, 2)

                assert driver.set_if(handle, b"n", b"!", 1 << 40) == CONFLICT  # its script loaded
                _, version = driver.version(handle, b"n")
                assert version is not None
                proxy.cut()
                assert driver.set_if(handle, b"n", i64(100), version) == OK  # not CONFLICT
                assert proxy.cuts == 2
                assert driver.get(handle, b"n") == (OK, i64(100))

                proxy.cut(2)  # the resend's reply is lost too: IO, though it was done once
                assert driver.incr(handle, b"n", 1) == (IO, None)
                assert proxy.cuts == 4
                assert driver.incr(handle, b"n", 0) == (OK, 101)

                assert driver.set_many(handle, [(b"a", b"0")]) == OK
                proxy.cut()
                assert driver.set_many(handle, [(b"a", b"1"), (b"b", b"2")]) == OK
                assert driver.list_keys(handle) == [b"n", b"a", b"b"]
                assert driver.get_many(handle, [b"a", b"b"]) == (OK, [b"1", b"2"])
        finally:
            proxy.close()


# --- 5. sqlite locks and unusable files --------------------------------------

# Another process: take the write lock, say so, and on "go" hold it a while longer.
HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


class TestSqliteFiles:
    """An sqlite store shares its file with other processes, and refuses files it cannot use."""

    HOLD_S = 0.5

    def test_a_write_waits_for_another_process_lock(self, tmp_path: Path) -> None:
        """While another process holds the write lock, reads answer at once and a write waits."""
        path = tmp_path / "maps.db"
        with Broker(store=f"sqlite:{path}") as broker:
            driver, handle = open_m(broker)
            assert driver.incr(handle, b"n", 1) == (OK, 1)

            holder = subprocess.Popen(
                [sys.executable, "-c", HOLD_LOCK, str(path), str(self.HOLD_S)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert holder.stdin is not None and holder.stdout is not None
                assert holder.stdout.readline() == "locked\n"
                holder.stdin.write("go\n")
                holder.stdin.flush()
                start = time.monotonic()  # the lock is released HOLD_S after this, or later
                assert driver.get(handle, b"n") == (OK, i64(1))  # WAL: readers never wait
                assert time.monotonic() - start < self.HOLD_S / 2
                assert driver.incr(handle, b"n", 1) == (OK, 2)
                waited = time.monotonic() - start
                assert holder.wait(timeout=10) == 0
            finally:
                if holder.poll() is None:
                    holder.kill()
                    holder.wait()
                for pipe in (holder.stdin, holder.stdout):
                    if pipe is not None:
                        pipe.close()
            assert self.HOLD_S <= waited < 5.0, f"the write took {waited:.2f} s"
            assert driver.value(handle, b"n") == i64(2)

    def test_a_file_in_a_missing_directory(self, tmp_path: Path) -> None:
        """ConfigError naming the file when the broker is made; no directory is created."""
        path = tmp_path / "missing" / "maps.db"
        with pytest.raises(ConfigError, match=re.escape(str(path))):
            Broker(store=f"sqlite:{path}")
        assert not path.parent.exists()

    def test_a_missing_directory_in_a_manifest(self, tmp_path: Path) -> None:
        """A manifest's relative sqlite path is named as resolved against its directory."""
        app = tmp_path / "app.toml"
        app.write_text(
            '[store]\nurl = "sqlite:missing/maps.db"\n\n'
            f"[modules.g]\npath = {json.dumps(str(DRIVER))}\n"
        )
        with pytest.raises(ConfigError, match=re.escape(str(tmp_path / "missing" / "maps.db"))):
            Broker.from_manifest(app)

    def test_a_file_that_is_not_a_database(self, tmp_path: Path) -> None:
        """ConfigError naming the file; the file is left as it was."""
        path = tmp_path / "notes.txt"
        text = b"these are notes, not an sqlite database\n" * 100
        path.write_bytes(text)
        with pytest.raises(ConfigError, match=re.escape(str(path))):
            Broker(store=f"sqlite:{path}")
        assert path.read_bytes() == text


# --- 6. nothing half-written ----------------------------------------------------


def batch(n: int, tag: str) -> list[tuple[bytes, bytes]]:
    return [(f"{tag}:{i:03d}".encode(), f"{tag}/{i}".encode()) for i in range(n)]


class TestSetManyAllOrNothing:
    """A set_many that fails leaves none of its items behind."""

    def test_redis_down(self, own_redis: RedisServer) -> None:
        """Guest and host set_many while Redis is down: IO / StoreError, and afterwards nothing."""
        server = own_redis.start()
        with Broker(store=server.url) as broker:
            driver, handle = open_m(broker)
            assert driver.set(handle, b"before", b"1") == OK
            ref = broker.open("m")
            server.kill()

            guest_items, host_items = batch(50, "guest"), batch(50, "host")
            assert driver.set_many(handle, guest_items) == IO
            with pytest.raises(StoreError, match=re.escape(server.url)):
                ref.set_many(host_items)

            server.start()
            keys = [k for k, _ in guest_items + host_items]
            assert driver.get_many(handle, keys) == (OK, [None] * len(keys))
            assert list(ref) == [b"before"]

    def test_redis_killed_during_a_stream_of_set_many(self, own_redis: RedisServer) -> None:
        """Batches written while the server is killed are each whole or absent; acked ones whole."""
        server = own_redis.start()
        size = 100
        with Broker(store=server.url) as broker:
            driver, handle = open_m(broker)
            answers: list[int] = []
            halt = threading.Event()

            def stream() -> None:
                while not halt.is_set():
                    answers.append(driver.set_many(handle, batch(size, f"b{len(answers):04d}")))

            thread = threading.Thread(target=stream, daemon=True)
            thread.start()
            deadline = time.monotonic() + 20
            while answers.count(OK) < 10:
                assert time.monotonic() < deadline and thread.is_alive()
                time.sleep(0.002)
            server.kill()
            while answers.count(IO) < 3:
                assert time.monotonic() < deadline and thread.is_alive()
                time.sleep(0.002)
            halt.set()
            thread.join(timeout=30)
            assert not thread.is_alive()

            server.start()
            with broker.open("m", "r") as ref:
                for n, err in enumerate(answers):
                    keys = [k for k, _ in batch(size, f"b{n:04d}")]
                    present = sum(v is not None for v in ref.get_many(keys))
                    assert present in (0, size), f"batch {n} ({Errno(err).name}) half-written"
                    if err == OK:
                        assert present == size, f"acknowledged batch {n} lost"

    def test_redis_out_of_memory(self, own_redis: RedisServer) -> None:
        """A server refusing writes (maxmemory reached): IO, nothing written; reads go on."""
        server = own_redis.start()
        admin = redis.Redis(port=server.port)
        with Broker(store=server.url) as broker:
            driver, handle = open_m(broker)
            assert driver.set(handle, b"before", b"1") == OK
            items = batch(20, "oom")
            admin.config_set("maxmemory", 1)
            try:
                assert driver.set_many(handle, items) == IO
                assert driver.incr(handle, b"n", 1) == (IO, None)
                assert driver.value(handle, b"before") == b"1"
            finally:
                admin.config_set("maxmemory", 0)
                admin.close()
            assert driver.list_keys(handle) == [b"before"]
            assert driver.set_many(handle, items) == OK
            assert driver.list_keys(handle) == [b"before", *(k for k, _ in items)]

    def test_sqlite_failure_in_the_middle_of_a_batch(self, tmp_path: Path) -> None:
        """A row refused halfway through a set_many (a trigger) rolls back every item before it."""
        path = tmp_path / "maps.db"
        with Broker(store=f"sqlite:{path}") as broker:
            driver, handle = open_m(broker)
            assert driver.set(handle, b"keep", b"old") == OK
            err, old_version = driver.version(handle, b"keep")
            assert err == OK

            # The table of entries, as docs/stores.md documents it (sqlite: Layout).
            raw = sqlite3.connect(path)
            raw.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON wm_entries WHEN NEW.key = X'"
                + b"bad".hex()
                + "' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )
            raw.commit()
            items = [(b"keep", b"new"), *batch(10, "x"), (b"bad", b"!"), *batch(5, "y")]
            assert driver.set_many(handle, items) == IO
            with (
                broker.open("m") as ref,
                pytest.raises(StoreError, match="refused by the test") as info,
            ):
                ref.set_many(items)
            assert str(path) in str(info.value)
            raw.execute("DROP TRIGGER refuse")
            raw.commit()
            raw.close()

            assert driver.list_keys(handle) == [b"keep"]
            assert driver.value(handle, b"keep") == b"old"
            assert driver.version(handle, b"keep") == (OK, old_version)
            assert driver.set_many(handle, items) == OK
            assert driver.list_keys(handle) == [k for k, _ in items]
            assert driver.value(handle, b"keep") == b"new"
