"""What only the LevelDB store does: one process per database, said in one
line; brokers of one process sharing it; a database that is not ours; and
no acknowledged write lost when the writer is killed with SIGKILL.

The conformance suite (`@every_store`) and the persistence tests of
test_store_processes.py run on LevelDB as on the other stores.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import plyvel
import pytest
from paths import SUPPORT
from store_ops import OK

from broker import Broker, ConfigError
from broker.cli import main
from broker.errors import StoreError
from broker.stores import leveldb_store, open_store

WORKER = SUPPORT / "store_worker.py"
WAIT_S = 60.0


def worker(url: str, *maps: str) -> subprocess.Popen[str]:
    """tests/support/store_worker.py in a subprocess, ready (it holds the store)."""
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), url, *maps],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline())["ready"] == proc.pid
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(WAIT_S)
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()


class TestOneProcessPerDatabase:
    def test_a_second_process_is_told_in_one_line(self, tmp_path: Path) -> None:
        path = tmp_path / "maps.ldb"
        holder = worker(f"leveldb:{path}", "m")
        try:
            with pytest.raises(ConfigError) as info:
                Broker(store=f"leveldb:{path}")
            message = str(info.value)
            assert "\n" not in message and str(path) in message
            assert "another process has the database open" in message
            assert "one process per database" in message
        finally:
            stop(holder)
        with Broker(store=f"leveldb:{path}") as broker:  # free again once it exits
            assert broker.open("m").get(b"k") is None

    def test_the_command_line_says_so_and_exits(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = tmp_path / "maps.ldb"
        app = tmp_path / "app.toml"
        app.write_text(
            f'[store]\nurl = "leveldb:maps.ldb"\n\n[modules.w]\npath = "{SUPPORT.parent}'
            '/guests/worker.wat"\ngrants = { tally = "rw" }\n'
        )
        holder = worker(f"leveldb:{path}", "tally")
        try:
            assert main(["run", str(app), "--call", "w.run", "3"]) != 0
        finally:
            stop(holder)
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(path) in err and "another process" in err
        assert main(["run", str(app), "--call", "w.run", "3"]) == 0

    def test_brokers_of_one_process_share_it(self, tmp_path: Path) -> None:
        url = f"leveldb:{tmp_path / 'maps.ldb'}"
        with Broker(store=url) as one, Broker(store=url) as two:
            one.open("m")[b"k"] = b"from one"
            assert two.open("m")[b"k"] == b"from one"
            two.open("m").incr(b"n", 5)
            one.close()
            assert two.open("m").incr(b"n", 1) == 6  # still open for the other
        with Broker(store=url) as again:  # the last one closed it: it opens anew
            assert again.open("m")[b"k"] == b"from one"


class TestTheDirectory:
    def test_another_programs_database_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "theirs"
        db = plyvel.DB(str(path), create_if_missing=True)
        db.put(b"their-key", b"their value")
        db.close()
        with pytest.raises(ConfigError, match="holds another program's data"):
            open_store(f"leveldb:{path}")
        db = plyvel.DB(str(path))
        assert list(db) == [(b"their-key", b"their value")]  # untouched
        db.close()

    def test_a_file_is_not_a_directory(self, tmp_path: Path) -> None:
        path = tmp_path / "file"
        path.write_text("x")
        with pytest.raises(ConfigError, match=r"file: cannot use it as a LevelDB store: it is a"):
            open_store(f"leveldb:{path}")

    def test_a_missing_parent_directory(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"cannot use it as a LevelDB store: .*No such"):
            open_store(f"leveldb:{tmp_path / 'absent' / 'maps.ldb'}")

    @pytest.mark.parametrize(
        ("url", "problem"),
        [
            ("leveldb:", "names no directory: write leveldb:PATH"),
            ("leveldb:x?sync=sometimes", "the only option is sync=full|normal"),
        ],
    )
    def test_bad_urls(self, url: str, problem: str) -> None:
        with pytest.raises(ConfigError, match=problem.replace("|", r"\|")):
            open_store(url)

    def test_sync_normal_is_kept_in_the_url(self, tmp_path: Path) -> None:
        store = open_store(f"leveldb:{tmp_path / 'm'}?sync=normal")
        assert store is not None
        try:
            assert store.url.endswith("?sync=normal") and not store._sync  # type: ignore[attr-defined]
            store.set("m", b"k", b"v")
            assert store.get("m", b"k") == b"v"
        finally:
            store.close()

    def test_without_plyvel_it_says_what_to_install(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(leveldb_store, "plyvel", None)
        with pytest.raises(ConfigError, match=r"needs plyvel: pip install 'wasi-map\[leveldb\]'"):
            open_store(f"leveldb:{tmp_path / 'm'}")

    def test_a_closed_store_fails_with_store_error(self, tmp_path: Path) -> None:
        store = open_store(f"leveldb:{tmp_path / 'm'}")
        assert store is not None
        store.close()
        store.close()  # twice: nothing more
        with pytest.raises(StoreError, match="the store is closed"):
            store.get("m", b"k")


class TestKilledWriter:
    """kill -9 of a process writing with sync=full: every write it
    acknowledged is there when the database is opened again, whole."""

    N = 400

    def test_acknowledged_writes_survive(self, tmp_path: Path) -> None:
        path = tmp_path / "maps.ldb"
        proc = worker(f"leveldb:{path}", "m")
        assert proc.stdin is not None and proc.stdout is not None
        try:
            for i in range(self.N):  # all sent at once: some are in flight at the kill
                req = {"op": "set", "map": "m", "key": f"k{i}".encode().hex()}
                req["value"] = (f"value {i} " * 20).encode().hex()
                proc.stdin.write(json.dumps(req) + "\n")
            proc.stdin.flush()
            acked = 0
            while acked < self.N // 2:
                assert json.loads(proc.stdout.readline())["errno"] == OK
                acked += 1
            proc.kill()
        finally:
            stop(proc)
        with Broker(store=f"leveldb:{path}") as broker, broker.open("m", "r") as ref:
            present = len(ref)
            assert acked <= present <= self.N
            for i in range(present):  # a prefix of the writes, each whole
                assert ref[f"k{i}".encode()] == (f"value {i} " * 20).encode()
            assert list(ref) == [f"k{i}".encode() for i in range(present)]
