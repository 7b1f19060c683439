"""Stores across processes: named maps in a real sqlite file, LevelDB directory,
redis-server and Redis Cluster.

Every process is a real broker with a real guest (tests/support/store_worker.py run
with `sys.executable`, or the test process itself): what one writes another
reads back (LevelDB: one process after another); `incr` and `set_if` stay
atomic between processes at once (sqlite, Redis, Redis Cluster).
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from paths import GUESTS, SUPPORT
from store_ops import CONFLICT, OK, i64
from store_worker import Worker

from broker import Broker

WORKER = SUPPORT / "store_worker.py"
WORKER_WAT = GUESTS / "worker.wat"  # run(n): n incr's of tally["hits"]


REPLY_WAIT_S = 60.0  # the longest a worker may take to answer before the test fails


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


def _fresh_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:{tmp_path / 'maps.db'}"
    if kind == "leveldb":
        return f"leveldb:{tmp_path / 'maps.ldb'}"
    url: str = request.getfixturevalue("redis_cluster_url" if kind == "cluster" else "redis_url")
    return url


@pytest.fixture(params=["sqlite", "redis", "cluster"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store that processes share at once: an sqlite file of its own,
    or the session's redis-server or Redis Cluster emptied."""
    return _fresh_url(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "leveldb", "redis", "cluster"])
def any_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same, or a LevelDB directory: for processes that take turns
    (LevelDB admits one process at a time)."""
    return _fresh_url(request.param, request, tmp_path)


def h(data: bytes) -> str:
    return data.hex()


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

    def test_another_process_reads_what_one_wrote(self, any_store_url: str, spawn: Spawn) -> None:
        """A writes and exits; B (another process) and this one read the same entries, versions."""
        reqs, expected = writes()
        (a,) = spawn(any_store_url, "shared", "other")
        replies = a.ask("batch", requests=reqs)["replies"]
        assert [r["errno"] for r in replies] == [OK] * len(reqs)
        assert [r["value"] for r in replies if "value" in r] == [3, 6, 9, 12, 15, -7]
        written = a.ask("dump", map="shared")["entries"]
        check_dump(written, expected)
        assert a.exit() == 0

        (b,) = spawn(any_store_url, "shared", "other")
        assert b.ask("dump", map="shared")["entries"] == written
        assert b.ask("dump", map="other")["entries"] == []  # maps are kept apart by name
        assert b.exit() == 0

        with Broker(store=any_store_url) as broker, broker.open("shared", "r") as ref:
            assert list(ref) == list(expected)
            assert dict(ref.items()) == expected
            assert [ref.version(k) for k in ref] == [ver for _, _, ver in written]
            assert len(ref) == len(expected)

    def test_the_store_outlives_a_broker(self, any_store_url: str) -> None:
        """Close the broker, open a new one on the same store: same entries; the clock goes on."""
        reqs, expected = writes()
        first = Worker(any_store_url, ["shared"])
        try:
            assert [first.answer(r)["errno"] for r in reqs] == [OK] * len(reqs)
            written = first.answer({"op": "dump", "map": "shared"})["entries"]
        finally:
            first.broker.close()
        check_dump(written, expected)

        second = Worker(any_store_url, ["shared"])
        try:
            assert second.answer({"op": "dump", "map": "shared"})["entries"] == written
            counter = {"map": "shared", "key": h(b"counter")}
            assert second.answer({"op": "incr", "delta": 1, **counter})["value"] == 16
            after = second.answer({"op": "version", **counter})["version"]
            assert after > max(ver for _, _, ver in written)
        finally:
            second.broker.close()


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
