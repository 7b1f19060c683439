"""Named maps in a LevelDB database (plyvel): the embedded ordered store.

LevelDB keeps sorted keys in one directory, and one process at a time may
open it.  The maps share that key space, each under its name's prefix
P(NAME) = the name's UTF-8 length (4 bytes, big-endian) and bytes, so no
name is a prefix of another's keys:

    e P(NAME) KEY        -> version (8 bytes BE), sequence number (8 BE), value
    s P(NAME) SEQ (8 BE) -> KEY       (the keys in insertion order, for `keys`)
    c P(NAME)            -> the map's clock (8 BE: versions, sequence numbers)
    n P(NAME)            -> how many keys the map holds (8 BE, for `len`)
    !wasi-map            -> the layout's version: a database without it and
                            not empty is someone else's, and refused

A write is one write batch, applied atomically; a read-then-write (`incr`,
`set_if`, and every write, which reads the clock) runs under one lock per
database, which every store of this process on that database shares (two
brokers in one process may open it; another process may not).  With
`sync=full` (the default) every batch is synced to disk before it is
acknowledged; `?sync=normal` leaves it to the OS: a write survives a crash
of the process, not of the machine.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from .. import input_file
from ..errors import ConfigError, StoreError
from .base import Store, i64_bytes, wrap_i64

try:
    import plyvel
except ImportError:  # pragma: no cover - the leveldb extra not installed
    plyvel = None

T = TypeVar("T")
LAYOUT_KEY, LAYOUT = b"!wasi-map", b"1"
U64 = (1 << 64) - 1
INSTALL = "pip install 'wasi-map[leveldb]' (plyvel)"


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def _prefix(name: str) -> bytes:
    raw = name.encode()
    return len(raw).to_bytes(4, "big") + raw


class _Shared:
    """One open database of this process: the plyvel handle, its lock, and
    how many stores use it."""

    def __init__(self, db: Any, real: str) -> None:
        self.db = db
        self.real = real  # its key in _open
        self.lock = threading.Lock()
        self.users = 1


_open: dict[str, _Shared] = {}  # by the database directory's real path
_open_lock = threading.Lock()


def _problem(path: Path) -> str | None:
    """Why `path` can never be a LevelDB directory, or None."""
    try:
        mode = os.stat(path).st_mode
    except ValueError:
        return "the path contains a NUL byte"
    except OSError:
        return None  # absent (LevelDB makes it) or unreadable: its own message says
    if stat.S_ISDIR(mode):
        return None
    kind = input_file.kind_problem(mode)  # "is a FIFO, not a regular file", ...
    return f"it {kind.partition(',')[0]}" if kind else "it is a file, not a directory"


def _opened(path: Path, url: str) -> _Shared:
    """The process's open database at `path`, opened now if need be."""
    if plyvel is None:
        raise ConfigError(f"store {url!r}: the LevelDB store needs plyvel: {INSTALL}")
    problem = _problem(path)
    if problem:
        raise ConfigError(f"{path}: cannot use it as a LevelDB store: {problem}")
    real = os.path.realpath(path)
    with _open_lock:
        shared = _open.get(real)
        if shared is not None:
            shared.users += 1
            return shared
        try:
            db = plyvel.DB(real, create_if_missing=True)
        except plyvel.Error as exc:
            raise ConfigError(f"{path}: cannot use it as a LevelDB store: {_why(exc)}") from None
        try:
            layout = db.get(LAYOUT_KEY)
            if layout is None and next(db.iterator(include_value=False), None) is not None:
                raise ConfigError(
                    f"{path}: cannot use it as a LevelDB store: it holds another program's "
                    "data (no wasi-map layout key)"
                )
            if layout is not None and layout != LAYOUT:
                raise ConfigError(
                    f"{path}: cannot use it as a LevelDB store: its layout is version "
                    f"{layout.decode(errors='replace')}, this wasi-map reads {LAYOUT.decode()}"
                )
            if layout is None:
                db.put(LAYOUT_KEY, LAYOUT, sync=True)
        except BaseException:
            db.close()
            raise
        shared = _open[real] = _Shared(db, real)
        return shared


def _why(exc: BaseException) -> str:
    """plyvel's message, said for people; one process per database said plainly."""
    text = exc.args[0] if exc.args else exc
    message = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    if "lock " in message and "/LOCK" in message:
        return (
            "another process has the database open (LevelDB allows one process per "
            "database: give each process its own, or share maps through sqlite or Redis)"
        )
    return message


class LevelDBStore(Store):
    def __init__(self, path: str | Path, *, sync: str = "full") -> None:
        """`sync`: "full" (a write is on disk before it returns) or "normal"
        (a write survives a crash of the process, not of the machine)."""
        self.path = Path(path)
        self.url = f"leveldb:{self.path}" + ("" if sync == "full" else f"?sync={sync}")
        self._sync = sync == "full"
        self._shared: _Shared | None = _opened(self.path, self.url)
        self._db = self._shared.db
        self._lock = self._shared.lock

    # --- plumbing ----------------------------------------------------------

    def _run(self, what: Callable[[], T]) -> T:
        """Run `what`; a failure of the database (closed, I/O) is a StoreError."""
        if self._shared is None:
            raise StoreError(f"{self.url}: the store is closed")
        try:
            return what()
        except plyvel.Error as exc:
            raise StoreError(f"{self.url}: {_why(exc)}") from None
        except RuntimeError as exc:  # plyvel: "Database is closed"
            raise StoreError(f"{self.url}: {exc}") from None

    @contextmanager
    def _write(self) -> Iterator[Any]:
        """A write batch under the database's lock, applied (synced if asked) on exit."""
        with self._lock:
            batch = self._db.write_batch(sync=self._sync)
            yield batch
            batch.write()

    def _entry(self, name: str, key: bytes, db: Any = None) -> tuple[int, int, bytes] | None:
        """(version, sequence number, value) of `key`, or None."""
        raw = (db or self._db).get(b"e" + _prefix(name) + key)
        if raw is None:
            return None
        return int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:16], "big"), raw[16:]

    def _tick(self, batch: Any, name: str, n: int = 1) -> int:
        """Advance the map's clock by n (in `batch`); the last of the n values taken."""
        key = b"c" + _prefix(name)
        raw = self._db.get(key)
        clock = (int.from_bytes(raw, "big") if raw else 0) + n
        batch.put(key, _u64(clock))
        return clock

    def _count(self, name: str) -> int:
        raw = self._db.get(b"n" + _prefix(name))
        return int.from_bytes(raw, "big") if raw else 0

    def _writes(self, batch: Any, name: str, items: Sequence[tuple[bytes, bytes]]) -> None:
        """Write `items` into `batch` with versions from the map's clock; a new
        key takes its version as its sequence number (later items win)."""
        p = _prefix(name)
        last = self._tick(batch, name, len(items))
        seqs: dict[bytes, int] = {}  # keys of this batch: their sequence numbers
        added = 0
        for i, (key, value) in enumerate(items):
            version = last - len(items) + 1 + i
            seq = seqs.get(key)
            if seq is None:
                old = self._entry(name, key)
                seq = old[1] if old else version
                if old is None:
                    batch.put(b"s" + p + _u64(seq), key)
                    added += 1
                seqs[key] = seq
            batch.put(b"e" + p + key, _u64(version) + _u64(seq) + value)
        if added:
            batch.put(b"n" + p, _u64(self._count(name) + added))

    # --- the operations ----------------------------------------------------

    def get(self, name: str, key: bytes) -> bytes | None:
        entry = self._run(lambda: self._entry(name, key))
        return entry[2] if entry else None

    def set(self, name: str, key: bytes, value: bytes) -> None:
        def run() -> None:
            with self._write() as batch:
                self._writes(batch, name, [(key, value)])

        self._run(run)

    def delete(self, name: str, key: bytes) -> None:
        def run() -> None:
            with self._write() as batch:
                old = self._entry(name, key)
                if old is not None:
                    p = _prefix(name)
                    batch.delete(b"e" + p + key)
                    batch.delete(b"s" + p + _u64(old[1]))
                    batch.put(b"n" + p, _u64(self._count(name) - 1))

        self._run(run)

    def exists(self, name: str, key: bytes) -> bool:
        return self._run(lambda: self._entry(name, key)) is not None

    def len(self, name: str) -> int:
        return self._run(lambda: self._count(name))

    def keys(self, name: str, cursor: int, limit: int) -> list[tuple[int, bytes]]:
        if cursor > U64 or limit <= 0:
            return []
        p = b"s" + _prefix(name)

        def run() -> list[tuple[int, bytes]]:
            out = []
            for k, v in self._db.iterator(start=p + _u64(cursor), stop=p + b"\xff" * 9):
                out.append((int.from_bytes(k[len(p) :], "big"), v))
                if len(out) == limit:
                    break
            return out

        return self._run(run)

    def incr(self, name: str, key: bytes, delta: int) -> int | None:
        def run() -> int | None:
            with self._write() as batch:
                old = self._entry(name, key)
                raw = old[2] if old else bytes(8)
                if len(raw) != 8:
                    return None
                value = wrap_i64(int.from_bytes(raw, "little", signed=True) + delta)
                self._writes(batch, name, [(key, i64_bytes(value))])
                return value

        return self._run(run)

    def version(self, name: str, key: bytes) -> int:
        entry = self._run(lambda: self._entry(name, key))
        return entry[0] if entry else 0

    def set_if(self, name: str, key: bytes, value: bytes, expected: int) -> bool:
        def run() -> bool:
            with self._write() as batch:
                old = self._entry(name, key)
                if (old[0] if old else 0) != expected:
                    return False
                self._writes(batch, name, [(key, value)])
                return True

        return self._run(run)

    def get_many(self, name: str, keys: Sequence[bytes]) -> list[bytes | None]:
        def run() -> list[bytes | None]:
            snapshot = self._db.snapshot()  # one moment for every key
            try:
                return [
                    entry[2] if (entry := self._entry(name, k, snapshot)) else None for k in keys
                ]
            finally:
                snapshot.close()

        return self._run(run) if keys else []

    def set_many(self, name: str, items: Sequence[tuple[bytes, bytes]]) -> None:
        if not items:
            return

        def run() -> None:
            with self._write() as batch:
                self._writes(batch, name, items)

        self._run(run)

    def close(self) -> None:
        """Give this store's use of the database back; the last one closes it."""
        shared, self._shared = self._shared, None
        if shared is None:
            return
        with _open_lock:
            shared.users -= 1
            if shared.users == 0:
                _open.pop(shared.real, None)
                with shared.lock:
                    shared.db.close()
