"""Named maps in an sqlite file (stdlib sqlite3): the embedded persistent store.

One table of entries keyed by (map name, key), with the value, its version
and its insertion sequence number; one row per map holds the map's clock,
from which versions and sequence numbers are drawn.  WAL mode, full sync by
default: a write is on disk before it is acknowledged (`?sync=normal`: it
survives a crash of the process, not of the machine, and costs no fsync).
Every write runs in a `BEGIN IMMEDIATE` transaction, so a read-then-write
(`incr`, `set_if`) or a batch is atomic also against other processes using
the same file.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from .. import input_file
from ..errors import ConfigError, StoreError
from .base import Store, i64_bytes, wrap_i64

T = TypeVar("T")
BUSY_TIMEOUT_S = 5.0  # wait this long for another process's write lock, then IO
BUSY_SLEEP_S = 0.001  # the longest sleep between two tries for the lock
BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
SQLITE_INT_MAX = (1 << 63) - 1
IN_CHUNK = 500  # keys per `IN (...)` list in get_many

SCHEMA = """
CREATE TABLE IF NOT EXISTS wm_entries (
    map TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    version INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (map, key)
);
CREATE INDEX IF NOT EXISTS wm_entries_by_seq ON wm_entries (map, seq);
CREATE TABLE IF NOT EXISTS wm_clocks (
    map TEXT PRIMARY KEY,
    clock INTEGER NOT NULL
);
"""

UPSERT = (
    "INSERT INTO wm_entries (map, key, value, version, seq) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (map, key) DO UPDATE SET value = excluded.value, version = excluded.version"
)


def _file_problem(path: Path) -> str | None:
    """Why `path` can never be an sqlite file (sqlite would say "disk I/O
    error" for a FIFO or a device, and ValueError for a NUL), or None."""
    try:
        return input_file.kind_problem(os.stat(path).st_mode)
    except ValueError:
        return "the file name contains a NUL byte"
    except OSError:
        return None  # absent (sqlite creates it) or unreadable: sqlite's own message says


class SqliteStore(Store):
    def __init__(self, path: str | Path, *, sync: str = "full") -> None:
        """`sync`: "full" (a write is on disk before it returns) or "normal"
        (a write survives a crash of the process, not of the machine)."""
        self.path = Path(path)
        self.url = f"sqlite:{self.path}" + ("" if sync == "full" else f"?sync={sync}")
        problem = _file_problem(self.path)
        if problem:
            raise ConfigError(f"{self.path}: cannot use it as an sqlite store: {problem}")
        try:
            self._db = sqlite3.connect(
                self.path, timeout=0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise ConfigError(f"{self.path}: cannot use it as an sqlite store: {exc}") from None
        self._lock = threading.Lock()  # one connection, shared by the broker's threads
        pragma = f"PRAGMA synchronous = {'NORMAL' if sync == 'normal' else 'FULL'}"

        def prepare(db: sqlite3.Connection) -> None:
            db.execute("PRAGMA journal_mode = WAL")  # a moment of exclusive lock
            db.execute(pragma)
            db.executescript(SCHEMA)

        try:
            self._run(prepare)  # waits like any write while others hold the file
        except StoreError as exc:
            self._db.close()
            reason = str(exc).removeprefix(f"IO: {self.url}: ")
            raise ConfigError(f"{self.path}: cannot use it as an sqlite store: {reason}") from None

    # --- plumbing ----------------------------------------------------------

    def _run(self, what: Callable[[sqlite3.Connection], T]) -> T:
        """Run `what` (which leaves no transaction open when it fails); while
        another process holds the lock, try again after a short random sleep,
        for up to BUSY_TIMEOUT_S.  (sqlite's own busy handler sleeps ever
        longer, up to 100 ms, so under steady contention a waiter can miss
        every moment the lock is free and time out.)"""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        with self._lock:
            while True:
                try:
                    return what(self._db)
                except sqlite3.OperationalError as exc:
                    busy = exc.sqlite_errorcode & 0xFF in BUSY_CODES
                    if not busy or time.monotonic() > deadline:
                        raise StoreError(f"{self.url}: {exc}") from None
                except sqlite3.Error as exc:
                    raise StoreError(f"{self.url}: {exc}") from None
                time.sleep(random.uniform(BUSY_SLEEP_S / 4, BUSY_SLEEP_S))

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the file's write lock from the start."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @staticmethod
    def _tick(db: sqlite3.Connection, name: str, n: int = 1) -> int:
        """Advance the map's clock by n; the last of the n values taken."""
        row = db.execute(
            "INSERT INTO wm_clocks (map, clock) VALUES (?, ?) "
            "ON CONFLICT (map) DO UPDATE SET clock = clock + excluded.clock RETURNING clock",
            (name, n),
        ).fetchone()
        return int(row[0])

    def _put(self, db: sqlite3.Connection, name: str, key: bytes, value: bytes) -> None:
        clock = self._tick(db, name)
        db.execute(UPSERT, (name, key, value, clock, clock))

    def _one(self, sql: str, *args: object) -> Any:
        """The first row of a query (a tuple), or None."""
        return self._run(lambda db: db.execute(sql, args).fetchone())

    # --- the operations ----------------------------------------------------

    def get(self, name: str, key: bytes) -> bytes | None:
        row = self._one("SELECT value FROM wm_entries WHERE map = ? AND key = ?", name, key)
        return bytes(row[0]) if row else None

    def set(self, name: str, key: bytes, value: bytes) -> None:
        def run(db: sqlite3.Connection) -> None:
            with self._write():
                self._put(db, name, key, value)

        self._run(run)

    def delete(self, name: str, key: bytes) -> None:
        self._run(
            lambda db: db.execute("DELETE FROM wm_entries WHERE map = ? AND key = ?", (name, key))
        )

    def exists(self, name: str, key: bytes) -> bool:
        return (
            self._one("SELECT 1 FROM wm_entries WHERE map = ? AND key = ?", name, key) is not None
        )

    def len(self, name: str) -> int:
        row = self._one("SELECT count(*) FROM wm_entries WHERE map = ?", name)
        return int(row[0]) if row else 0

    def keys(self, name: str, cursor: int, limit: int) -> list[tuple[int, bytes]]:
        if cursor > SQLITE_INT_MAX:  # past every sequence number (sqlite's are i64)
            return []
        rows = self._run(
            lambda db: db.execute(
                "SELECT seq, key FROM wm_entries WHERE map = ? AND seq >= ? ORDER BY seq LIMIT ?",
                (name, cursor, limit),
            ).fetchall()
        )
        return [(int(seq), bytes(key)) for seq, key in rows]

    def incr(self, name: str, key: bytes, delta: int) -> int | None:
        def run(db: sqlite3.Connection) -> int | None:
            with self._write():
                row = db.execute(
                    "SELECT value FROM wm_entries WHERE map = ? AND key = ?", (name, key)
                ).fetchone()
                old = bytes(row[0]) if row else bytes(8)
                if len(old) != 8:
                    return None
                value = wrap_i64(int.from_bytes(old, "little", signed=True) + delta)
                self._put(db, name, key, i64_bytes(value))
                return value

        return self._run(run)

    def version(self, name: str, key: bytes) -> int:
        row = self._one("SELECT version FROM wm_entries WHERE map = ? AND key = ?", name, key)
        return int(row[0]) if row else 0

    def set_if(self, name: str, key: bytes, value: bytes, expected: int) -> bool:
        def run(db: sqlite3.Connection) -> bool:
            with self._write():
                row = db.execute(
                    "SELECT version FROM wm_entries WHERE map = ? AND key = ?", (name, key)
                ).fetchone()
                if (int(row[0]) if row else 0) != expected:
                    return False
                self._put(db, name, key, value)
                return True

        return self._run(run)

    def get_many(self, name: str, keys: Sequence[bytes]) -> list[bytes | None]:
        def run(db: sqlite3.Connection) -> dict[bytes, bytes]:
            found: dict[bytes, bytes] = {}
            db.execute("BEGIN")  # one snapshot for every chunk
            try:
                for at in range(0, len(keys), IN_CHUNK):
                    chunk = keys[at : at + IN_CHUNK]
                    marks = ",".join("?" * len(chunk))
                    for key, value in db.execute(
                        f"SELECT key, value FROM wm_entries WHERE map = ? AND key IN ({marks})",
                        (name, *chunk),
                    ):
                        found[bytes(key)] = bytes(value)
            finally:
                db.execute("COMMIT")
            return found

        found = self._run(run) if keys else {}
        return [found.get(k) for k in keys]

    def set_many(self, name: str, items: Sequence[tuple[bytes, bytes]]) -> None:
        if not items:
            return

        def run(db: sqlite3.Connection) -> None:
            with self._write():
                last = self._tick(db, name, len(items))
                first = last - len(items) + 1
                db.executemany(
                    UPSERT, ((name, k, v, first + i, first + i) for i, (k, v) in enumerate(items))
                )

        self._run(run)

    def close(self) -> None:
        with self._lock:
            self._db.close()
