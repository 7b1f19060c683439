"""What only the LevelDB store does: one process per database, said in one
line; brokers of one process sharing it; a database that is not ours; no
acknowledged write lost when the writer is killed with SIGKILL; and the
C side (native/leveldb_store.c): its layout on disk, byte for byte, read
by plain plyvel and read from it; one lock for guests and host; closing
under calls in flight; the library check; failures told from C.

The conformance suite (`@every_store`) and the persistence tests of
test_store_processes.py run on LevelDB as on the other stores.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import plyvel
import pytest
from paths import SUPPORT
from store_ops import OK

from broker import Broker, ConfigError, Errno
from broker._native import leveldb_door
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
            assert "another process, or plyvel in this one, has the database open" in message
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

    def test_plyvel_in_this_process_is_named_too(self, tmp_path: Path) -> None:
        """The same process's plyvel holding the directory: the message says so."""
        path = tmp_path / "maps.ldb"
        db = plyvel.DB(str(path), create_if_missing=True)
        try:
            with pytest.raises(ConfigError) as info:
                leveldb_store.LevelDBStore(path)
        finally:
            db.close()
        message = str(info.value)
        assert "\n" not in message and str(path) in message
        assert "another process, or plyvel in this one, has the database open" in message

    def test_a_forked_child_is_refused_and_writes_nothing(self, tmp_path: Path) -> None:
        """A child forked while the parent has the database open may not use
        the parent's copy (it would write without LevelDB's lock): its Broker
        is refused in one line naming the path and the fork."""
        path = tmp_path / "maps.ldb"
        url = f"leveldb:{path}"
        with Broker(store=url) as parent:
            parent.open("m")[b"before"] = b"0"
            pid = os.fork()
            if pid == 0:  # the child: report through the exit code only
                signal.alarm(30)  # a hang ends the child, and fails the test
                code = 1
                try:
                    try:
                        child = Broker(store=url)
                    except ConfigError as exc:
                        message = str(exc)
                        told = "\n" not in message and str(path) in message
                        told = told and "before this process forked" in message
                        code = 0 if told and "one process per database" in message else 3
                    else:
                        child.open("m")[b"child"] = b"c"
                        code = 2  # opened, and wrote
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
            parent.open("m")[b"after"] = b"1"  # the parent's copy is untouched
        with Broker(store=url) as again:
            assert sorted(again.open("m").keys()) == [b"after", b"before"]

    def test_a_renamed_directory_is_the_same_database(self, tmp_path: Path) -> None:
        """Open, rename the directory, open at the new name: one database, no lost write."""
        first, moved = tmp_path / "a.ldb", tmp_path / "b.ldb"
        one = leveldb_store.LevelDBStore(first)
        one.set("m", b"k", b"1")
        first.rename(moved)
        two = leveldb_store.LevelDBStore(moved)
        try:
            two.set("m", b"k2", b"2")
            one.set("m", b"k3", b"3")
            assert one.get("m", b"k2") == b"2" and two.get("m", b"k3") == b"3"
            assert one.len("m") == two.len("m") == 3
            assert one.version("m", b"k3") == two.version("m", b"k3") == 3
        finally:
            one.close()
            two.close()
        again = leveldb_store.LevelDBStore(moved)
        try:
            assert sorted(k for _, k in again.keys("m", 0, 10)) == [b"k", b"k2", b"k3"]
        finally:
            again.close()


class TestAStoreDroppedUnclosed:
    """A LevelDBStore dropped without close() gives its use back (a finalizer)."""

    def test_another_process_can_open_it_then(self, tmp_path: Path) -> None:
        path = tmp_path / "maps.ldb"
        store = leveldb_store.LevelDBStore(path)
        store.set("m", b"k", b"v")
        del store
        gc.collect()
        reader = (
            "import sys; from broker.stores.leveldb_store import LevelDBStore; "
            "s = LevelDBStore(sys.argv[1]); print(s.get('m', b'k').decode()); s.close()"
        )
        done = subprocess.run(
            [sys.executable, "-c", reader, str(path)], capture_output=True, text=True, check=False
        )
        assert (done.returncode, done.stdout.strip()) == (0, "v"), done.stderr

    def test_close_then_drop_gives_back_once(self, tmp_path: Path) -> None:
        """close() twice, then the finalizer: the other store's use is kept."""
        path = tmp_path / "maps.ldb"
        keeper = leveldb_store.LevelDBStore(path)
        try:
            victim = leveldb_store.LevelDBStore(path)
            victim.close()
            victim.close()
            del victim
            gc.collect()
            keeper.set("m", b"k", b"v")
            assert keeper.get("m", b"k") == b"v"
        finally:
            keeper.close()

    def test_two_threads_closing_one_store_give_back_once(self, tmp_path: Path) -> None:
        """Two threads close one store at once; the other store of the database keeps working."""
        path = tmp_path / "maps.ldb"
        keeper = leveldb_store.LevelDBStore(path)
        try:
            for _ in range(20):
                victim = leveldb_store.LevelDBStore(path)
                start = threading.Barrier(2)

                def close(
                    store: leveldb_store.LevelDBStore = victim, start: threading.Barrier = start
                ) -> None:
                    start.wait()
                    store.close()

                threads = [threading.Thread(target=close) for _ in range(2)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                keeper.set("m", b"k", b"v")  # raises "the store is closed" after a double give-back
        finally:
            keeper.close()


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


def prefixed(tag: bytes, name: str, tail: bytes = b"") -> bytes:
    """A key of the layout: tag, the name's length (4 BE) and bytes, tail."""
    raw = name.encode()
    return tag + len(raw).to_bytes(4, "big") + raw + tail


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def rows(path: Path) -> dict[bytes, bytes]:
    """Every row of the (closed) database at `path`, read by plain plyvel."""
    db = plyvel.DB(str(path))
    try:
        return dict(db)
    finally:
        db.close()


# sets(n): n sets of "g" = "v" in map "m"; how many were not OK.
# get(): the errno of a get of "k" in map "m".
SETTER = b"""
(module
  (import "wasi_map" "open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "get" (func $get (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "mgvk")
  (func $map (result i32)
    (drop (call $open (i32.const 0) (i32.const 1) (i32.const 3) (i32.const 16)))
    (i32.load (i32.const 16)))
  (func (export "sets") (param $n i32) (result i32)
    (local $h i32) (local $bad i32)
    (local.set $h (call $map))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (if (call $set (local.get $h) (i32.const 1) (i32.const 1) (i32.const 2) (i32.const 1))
          (then (local.set $bad (i32.add (local.get $bad) (i32.const 1)))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $bad))
  (func (export "get") (result i32)
    (call $get (call $map) (i32.const 3) (i32.const 1) (i32.const 64) (i32.const 64)
      (i32.const 20))))
"""


class TestTheLayoutOnDisk:
    """C writes the layout leveldb_store.py documents, byte for byte, and reads it."""

    def test_what_c_writes_plain_plyvel_reads(self, tmp_path: Path) -> None:
        """Rows written through the C path decode by hand after the store is closed."""
        path = tmp_path / "maps.ldb"
        with Broker(store=f"leveldb:{path}") as broker, broker.open("m") as ref:
            ref[b"a"] = b"one"  # version 1, sequence number 1
            ref[b"b"] = b"two"  # 2, 2
            ref[b"a"] = b"uno"  # 3, keeps 1
            assert ref.incr(b"n", -2) == -2  # 4, 4
            ref.set_many([(b"c", b"x"), (b"c", b"y")])  # 5 and 6, sequence number 5
            del ref[b"b"]
        got = rows(path)
        assert got.pop(b"!wasi-map") == b"1"
        assert got == {
            prefixed(b"c", "m"): u64(6),
            prefixed(b"n", "m"): u64(3),
            prefixed(b"e", "m", b"a"): u64(3) + u64(1) + b"uno",
            prefixed(b"e", "m", b"n"): u64(4) + u64(4) + (-2).to_bytes(8, "little", signed=True),
            prefixed(b"e", "m", b"c"): u64(6) + u64(5) + b"y",
            prefixed(b"s", "m", u64(1)): b"a",
            prefixed(b"s", "m", u64(4)): b"n",
            prefixed(b"s", "m", u64(5)): b"c",
        }

    def test_what_plain_plyvel_writes_c_reads(self, tmp_path: Path) -> None:
        """A database written by hand in the layout reads back, and C writes on from it."""
        path = tmp_path / "maps.ldb"
        db = plyvel.DB(str(path), create_if_missing=True)
        with db.write_batch() as batch:
            batch.put(b"!wasi-map", b"1")
            batch.put(prefixed(b"c", "m"), u64(10))
            batch.put(prefixed(b"n", "m"), u64(2))
            batch.put(prefixed(b"e", "m", b"late"), u64(9) + u64(7) + b"L")
            batch.put(prefixed(b"e", "m", b"early"), u64(10) + u64(3) + b"E")
            batch.put(prefixed(b"s", "m", u64(7)), b"late")
            batch.put(prefixed(b"s", "m", u64(3)), b"early")
        db.close()
        with Broker(store=f"leveldb:{path}") as broker, broker.open("m") as ref:
            assert (ref[b"late"], ref[b"early"], len(ref)) == (b"L", b"E", 2)
            assert list(ref) == [b"early", b"late"]  # by sequence number
            assert (ref.version(b"late"), ref.version(b"early")) == (9, 10)
            assert broker.store is not None
            assert broker.store.keys("m", 4, 10) == [(7, b"late")]
            ref[b"new"] = b"N"  # the clock goes on from 10
            assert ref.version(b"new") == 11
        got = rows(path)
        assert got[prefixed(b"s", "m", u64(11))] == b"new"
        assert got[prefixed(b"n", "m")] == u64(3)


class TestOneLockForGuestsAndHost:
    def test_no_clock_tick_is_lost(self, tmp_path: Path) -> None:
        """A guest's sets and the host's incrs on one map, from two threads at
        once: every write took its own tick of the map's clock."""
        sets, incrs = 4000, 1500
        path = tmp_path / "maps.ldb"
        broker = Broker(store=f"leveldb:{path}?sync=normal")
        bad: list[int] = []
        with broker:
            broker.load("w", SETTER, grants={"m": "rw"})
            ref = broker.open("m")
            start = threading.Barrier(2)

            def guest() -> None:
                start.wait()
                bad.append(broker.call("w.sets", sets))

            thread = threading.Thread(target=guest)
            thread.start()
            start.wait()
            for _ in range(incrs):
                ref.incr(b"n", 1)
            thread.join()
            assert bad == [0]
            assert int.from_bytes(ref[b"n"], "little") == incrs
            ref[b"last"] = b"!"
            assert ref.version(b"last") == sets + incrs + 1
            ref.close()
        got = rows(path)
        assert got[prefixed(b"c", "m")] == u64(sets + incrs + 1)
        assert got[prefixed(b"n", "m")] == u64(3)


class TestClosing:
    def test_the_other_broker_keeps_working(self, tmp_path: Path) -> None:
        """A store closed while another broker of the process uses the same
        database: the other's guests, host and store go on; the last one
        closed it."""
        url = f"leveldb:{tmp_path / 'maps.ldb'}"
        one, two = Broker(store=url), Broker(store=url)
        with two:
            two.load("w", SETTER, grants={"m": "rw"})
            with one:
                one.open("m")[b"k"] = b"from one"
            assert one.store is not None and two.store is not None
            with pytest.raises(StoreError, match="the store is closed"):
                one.store.get("m", b"k")
            assert two.call("w.sets", 3) == 0 and two.call("w.get") == OK
            with two.open("m") as ref:
                assert ref[b"g"] == b"v" and ref[b"k"] == b"from one"
            assert two.store.get("m", b"k") == b"from one"
        assert rows(tmp_path / "maps.ldb")[prefixed(b"e", "m", b"g")].endswith(b"v")

    def test_closing_under_a_running_guest(self, tmp_path: Path) -> None:
        """The store closed while a guest's sets are in flight: the database
        closes once the set in flight is done, the sets after it answer IO,
        and each OK set is on disk (the clock counts exactly those)."""
        path = tmp_path / "maps.ldb"
        store = leveldb_store.LevelDBStore(path, sync="normal")
        sets = 50_000
        bad: list[int] = []
        with Broker(store=store) as broker:
            broker.load("w", SETTER, grants={"m": "rw"})
            thread = threading.Thread(target=lambda: bad.append(broker.call("w.sets", sets)))
            thread.start()
            with broker.open("m", "r") as ref:
                while thread.is_alive() and ref.version(b"g") < 100:
                    pass  # until the guest is well under way
            store.close()
            thread.join()
            if bad[0]:
                assert broker.last_store_failure is not None
                assert "the store is closed" in str(broker.last_store_failure)
                assert broker.call("w.get") == Errno.IO
            assert rows(path)[prefixed(b"c", "m")] == u64(sets - bad[0])  # closed, free


class TestTheLibrary:
    """plyvel's LevelDB must export the C API the core calls, 1.20 or later."""

    @pytest.fixture(autouse=True)
    def look_again(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(leveldb_door, "_found", None)  # the check runs anew

    def test_a_missing_entry_point_is_a_config_error(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real = leveldb_door._symbol

        def lookup(library: ctypes.CDLL, name: str) -> int | None:
            return None if name == "leveldb_create_snapshot" else real(library, name)

        monkeypatch.setattr(leveldb_door, "_symbol", lookup)
        with pytest.raises(ConfigError) as info:
            open_store(f"leveldb:{tmp_path / 'm'}")
        message = str(info.value)
        assert "\n" not in message and "lacks leveldb_create_snapshot of LevelDB's C API" in message
        assert "pip install" in message and "plyvel" in message
        assert not (tmp_path / "m").exists()  # nothing opened

    def test_an_old_leveldb_is_a_config_error(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real = leveldb_door._symbol
        minor = ctypes.CFUNCTYPE(ctypes.c_int)(lambda: 19)

        def lookup(library: ctypes.CDLL, name: str) -> int | None:
            if name == "leveldb_minor_version":
                return ctypes.cast(minor, ctypes.c_void_p).value
            return real(library, name)

        monkeypatch.setattr(leveldb_door, "_symbol", lookup)
        with pytest.raises(ConfigError, match=r"LevelDB is 1\.19, the store needs 1\.20 or later"):
            open_store(f"leveldb:{tmp_path / 'm'}")


class TestFailuresFromC:
    def test_a_corrupt_entry_is_io_with_the_reason(self, tmp_path: Path) -> None:
        """A row that breaks the layout: the host's StoreError, the guest's IO,
        and the broker's record all say why."""
        path = tmp_path / "maps.ldb"
        db = plyvel.DB(str(path), create_if_missing=True)
        db.put(b"!wasi-map", b"1")
        db.put(prefixed(b"e", "m", b"k"), b"short")
        db.close()
        with Broker(store=f"leveldb:{path}") as broker:
            broker.load("w", SETTER, grants={"m": "rw"})
            with broker.open("m") as ref, pytest.raises(StoreError) as info:
                ref[b"k"]
            assert "an entry shorter than its 16-byte header" in str(info.value)
            failure = broker.last_store_failure
            assert failure is not None
            assert (failure.map, failure.op, failure.module) == ("m", "get", "host")
            assert broker.call("w.get") == Errno.IO
            failure = broker.last_store_failure
            assert failure is not None and (failure.op, failure.module) == ("get", "w")
            assert broker.store is not None
            with pytest.raises(StoreError, match="16-byte header"):
                broker.store.get("m", b"k")
