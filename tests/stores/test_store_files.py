"""sqlite files and all-or-nothing batches: an sqlite write waits out another
process's lock, a file that is not a store is refused untouched, and a failed
`set_many` leaves nothing behind.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from guest_driver import DRIVER
from redis_server import RedisServer
from store_ops import IO, OK, batch, i64, open_m

from broker import Broker
from broker.abi import Errno
from broker.errors import ConfigError, StoreError

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
