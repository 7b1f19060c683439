"""Named maps in a LevelDB database: the embedded ordered store.

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
brokers in one process may open it, by any of its names; another process
may not, nor a child forked after it opened).  A store dropped without
close() gives its use back when it is collected.  With
`sync=full` (the default) every batch is synced to disk before it is
acknowledged; `?sync=normal` leaves it to the OS: a write survives a crash
of the process, not of the machine.

Every operation is answered in C (native/leveldb_store.c, the one
implementation of this layout), on a database the C core opened through
the LevelDB library plyvel's wheel carries (broker/_native/leveldb_door.py):
a broker's guests and host reach it with no Python in between, and this
class's methods make the same C call.  plyvel itself only carries the
library.
"""

from __future__ import annotations

import os
import stat
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path

from .. import _native, abi, input_file
from ..errors import ConfigError
from .base import Store, wrap_i64

try:
    import plyvel
except ImportError:  # pragma: no cover - the leveldb extra not installed
    plyvel = None

Op = _native.StoreOp
Errno = abi.Errno
U64 = (1 << 64) - 1
U32 = (1 << 32) - 1
INSTALL = "pip install 'wasi-map[leveldb]' (plyvel)"


class _Shared:
    """One open database of this process, and how many stores use it."""

    def __init__(self, db: _native.LevelDB, key: tuple[int, int], lock: tuple[int, int]) -> None:
        self.db = db
        self.key = key  # its directory's (st_dev, st_ino): its key in _open
        # Its LOCK file's: LevelDB holds the file open, so no other file takes
        # that number while it is open -- a directory's number may be reused
        # once the directory is deleted.
        self.lock = lock
        self.pid = os.getpid()  # a forked child inherits it, and may not use it
        self.users = 1


# By the directory's identity, not its path: a renamed or otherwise aliased
# directory is the same database (LevelDB's own in-process lock goes by the
# path, so it would let a second copy open it).
_open: dict[tuple[int, int], _Shared] = {}
_open_lock = threading.Lock()
_dropped: list[_Shared] = []  # uses given back, for whoever holds _open_lock


def _after_fork_in_child() -> None:
    global _open_lock
    _open_lock = threading.Lock()  # a thread the child does not have may have held it


os.register_at_fork(after_in_child=_after_fork_in_child)


def _identity(path: str | Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


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
    problem = _native.leveldb_library_problem()
    if problem:
        raise ConfigError(f"store {url!r}: {problem}")
    real = os.path.realpath(path)  # LevelDB names its files by it: never relative
    with _open_lock:
        _give_back_dropped()
        key = _identity(real)
        shared = _open.get(key) if key else None
        if shared is not None and _identity(os.path.join(real, "LOCK")) != shared.lock:
            del _open[shared.key]  # a deleted directory's: its number names this one now
            shared = None
        if shared is not None:
            if shared.pid != os.getpid():
                raise ConfigError(
                    f"{path}: cannot use it as a LevelDB store: it was opened before this "
                    "process forked, and LevelDB allows one process per database (open it "
                    "in one process only)"
                )
            shared.users += 1
            return shared
        try:  # C checks the layout key too: written if empty, else ours or refused
            db = _native.LevelDB(real)
        except _native.LevelDBRefused as exc:
            raise ConfigError(f"{path}: cannot use it as a LevelDB store: {_why(exc)}") from None
        key, lock = _identity(real), _identity(os.path.join(real, "LOCK"))
        if key is None or lock is None:  # moved or deleted while it opened
            db.close()
            raise ConfigError(f"{path}: cannot use it as a LevelDB store: it vanished as it opened")
        shared = _open[key] = _Shared(db, key, lock)
        return shared


def _give_back(shared: _Shared, *, wait: bool) -> None:
    """Give one store's use of `shared` back; the last closes the database.

    A finalizer may run inside the collector, even in a thread that holds
    _open_lock (wait=False): it only queues the use, and gives it back now
    only if the lock is free; otherwise the lock's holder, or the next open
    or close, does."""
    _dropped.append(shared)
    if wait:
        _open_lock.acquire()
    elif not _open_lock.acquire(blocking=False):
        return
    try:
        _give_back_dropped()
    finally:
        _open_lock.release()


def _give_back_dropped() -> None:
    """Count the queued uses out (_open_lock held); close what no store uses."""
    while _dropped:
        shared = _dropped.pop()
        shared.users -= 1
        if shared.users:
            continue
        if _open.get(shared.key) is shared:
            del _open[shared.key]
        if shared.pid == os.getpid():  # a forked child leaves the parent's alone
            shared.db.close()


def _why(exc: BaseException) -> str:
    """LevelDB's message, said for people; one process per database said plainly."""
    message = str(exc)
    if "lock " in message and "/LOCK" in message:
        return (
            "another process, or plyvel in this one, has the database open (LevelDB allows "
            "one process per database: give each process its own, or share maps through "
            "sqlite or Redis)"
        )
    return message


def _numbered(raw: bytes) -> list[tuple[int, bytes]]:
    """A numbered keys page: u32 length, u64 sequence number, key per record."""
    out = []
    at = 0
    while at < len(raw):
        n = int.from_bytes(raw[at : at + 4], "little")
        seq = int.from_bytes(raw[at + 4 : at + 12], "little")
        out.append((seq, raw[at + 12 : at + 12 + n]))
        at += 12 + n
    return out


class LevelDBStore(Store):
    def __init__(self, path: str | Path, *, sync: str = "full") -> None:
        """`sync`: "full" (a write is on disk before it returns) or "normal"
        (a write survives a crash of the process, not of the machine)."""
        self.path = Path(path)
        self.url = f"leveldb:{self.path}" + ("" if sync == "full" else f"?sync={sync}")
        self._sync = sync == "full"
        self._shared = shared = _opened(self.path, self.url)
        # Dropped without close(): its use is given back all the same.
        self._use = weakref.finalize(self, _give_back, shared, wait=False)
        self._use.atexit = False  # at exit LevelDB needs no close: each write is logged
        try:
            # The C side of this store: Broker(store=...) answers through it too.
            self.native = _native.LevelDBUse(shared.db, self._sync, self.url)
        except BaseException:
            self._use.detach()
            _give_back(shared, wait=True)
            raise

    def get(self, name: str, key: bytes) -> bytes | None:
        answer = self.native.call(Op.GET, name, key)
        return None if answer.err == Errno.NOENT else answer.data

    def set(self, name: str, key: bytes, value: bytes) -> None:
        self.native.call(Op.SET, name, key, value)

    def delete(self, name: str, key: bytes) -> None:
        self.native.call(Op.DELETE, name, key)

    def exists(self, name: str, key: bytes) -> bool:
        return bool(self.native.call(Op.EXISTS, name, key).out)

    def len(self, name: str) -> int:
        return self.native.call(Op.LEN, name).out

    def keys(self, name: str, cursor: int, limit: int) -> list[tuple[int, bytes]]:
        if cursor > U64 or limit <= 0:
            return []
        out: list[tuple[int, bytes]] = []
        cursor = max(cursor, 0)
        while len(out) < limit:
            want = min(limit - len(out), U32)
            page = self.native.call(Op.KEYS, name, count=want, cursor=cursor, numbered=True)
            out += _numbered(page.data)
            if page.cursor == 0:
                break
            cursor = page.cursor
        return out

    def incr(self, name: str, key: bytes, delta: int) -> int | None:
        answer = self.native.call(Op.INCR, name, key, num=wrap_i64(delta))
        return None if answer.err == Errno.TYPE else wrap_i64(answer.out)

    def version(self, name: str, key: bytes) -> int:
        return self.native.call(Op.VERSION, name, key).out

    def set_if(self, name: str, key: bytes, value: bytes, expected: int) -> bool:
        if not 0 <= expected <= U64:  # no version is
            return False
        answer = self.native.call(Op.SET_IF, name, key, value, num=wrap_i64(expected))
        return answer.err != Errno.CONFLICT

    def get_many(self, name: str, keys: Sequence[bytes]) -> list[bytes | None]:
        if not keys:
            return []
        answer = self.native.call(Op.GET_MANY, name, val=abi.pack_keys(keys), count=len(keys))
        return abi.unpack_records(answer.data, len(keys))

    def set_many(self, name: str, items: Sequence[tuple[bytes, bytes]]) -> None:
        if items:
            self.native.call(Op.SET_MANY, name, val=abi.pack_items(items), count=len(items))

    def close(self) -> None:
        """Give this store's use of the database back; the last one closes it
        (once the calls in flight are done).  Calls through this store (its
        brokers' too) fail with "the store is closed" from now on."""
        if self._use.detach() is not None:  # once: the first close, or else the finalizer
            self.native.close()
            _give_back(self._shared, wait=True)
