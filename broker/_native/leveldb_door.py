"""LevelDB in C: the library plyvel carries, the databases the core opens, calls into them.

The LevelDB store answers every operation in C (native/leveldb_store.c),
through LevelDB's C API.  The entry points come from the libleveldb that
plyvel's wheel carries: loading plyvel's extension with ctypes and looking
each name up there finds it through the extension's dependencies, whatever
name auditwheel gave the library.  It is the very copy plyvel uses (two
copies would not share LevelDB's table of the directories this process has
open).  The names are the core's own list (native/leveldb_api.h), looked up
and checked once, at the first use of a `leveldb:` store.

- `library_problem()`: why plyvel's LevelDB cannot serve, or None;
- `LevelDB`: one open database of the process (wm_ldb);
- `LevelDBUse`: one store's use of it: the store's own calls (`call`) and
  the store function a broker gets (`attach`), both the same C function;
- `wm_py_store_failed`: how a failure in C reaches Python (only then does
  Python run), after the database's lock is given back.
"""

from __future__ import annotations

import ctypes
import enum
import logging
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import abi
from ..errors import ConfigError, StoreError
from .core import Native, ffi, lib

if TYPE_CHECKING:
    from .native_broker import NativeBroker

Errno = abi.Errno
log = logging.getLogger("wasi_map.store")
MIN_VERSION = (1, 20)  # the C API as native/leveldb_api.h restates it
INSTALL = "install a plyvel wheel that carries it: pip install --force-reinstall 'plyvel>=1.5'"
ERR_CAP = 1024  # bytes for wm_ldb_open's message
FIRST_CAP = 4096  # the answer buffer of a read; a bigger one when it needs more
MAX_CAP = 0xFFFF_FFFF


class StoreOp(enum.IntEnum):
    """The operations of a store function (WM_SOP_*)."""

    GET = lib.WM_SOP_GET
    SET = lib.WM_SOP_SET
    DELETE = lib.WM_SOP_DELETE
    EXISTS = lib.WM_SOP_EXISTS
    LEN = lib.WM_SOP_LEN
    KEYS = lib.WM_SOP_KEYS
    INCR = lib.WM_SOP_INCR
    VERSION = lib.WM_SOP_VERSION
    SET_IF = lib.WM_SOP_SET_IF
    GET_MANY = lib.WM_SOP_GET_MANY
    SET_MANY = lib.WM_SOP_SET_MANY


READS = {StoreOp.GET, StoreOp.KEYS, StoreOp.GET_MANY}  # answer into a buffer


class LevelDBRefused(Exception):
    """wm_ldb_open said no: LevelDB's message, or what is wrong with the layout."""


# --- the library ----------------------------------------------------------------


def _symbol(library: ctypes.CDLL, name: str) -> int | None:
    """The address of `name` in `library` or its dependencies, or None."""
    try:
        return ctypes.cast(getattr(library, name), ctypes.c_void_p).value
    except AttributeError:
        return None


def _find() -> Native | str:
    """The entry points, in the core's order, as the core takes them; or why not."""
    try:
        import plyvel._plyvel as extension
    except ImportError as exc:
        return f"plyvel's extension cannot be loaded ({exc}): {INSTALL}"
    library = ctypes.CDLL(extension.__file__)
    count = lib.wm_ldb_entry_count()
    names = ["leveldb_" + ffi.string(lib.wm_ldb_entry_name(i)).decode() for i in range(count)]
    looked_up = {name: _symbol(library, name) for name in names}
    found = {name: address for name, address in looked_up.items() if address}
    missing = [name for name in names if name not in found]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        return (
            f"plyvel's LevelDB library lacks {', '.join(missing[:3])}{more} of LevelDB's "
            f"C API, which the store calls: {INSTALL}"
        )
    version = tuple(
        ctypes.CFUNCTYPE(ctypes.c_int)(found[f"leveldb_{part}_version"])()
        for part in ("major", "minor")
    )
    if version < MIN_VERSION:
        return (
            f"plyvel's LevelDB is {version[0]}.{version[1]}, the store needs 1.20 or later: "
            f"{INSTALL}"
        )
    return ffi.new("void *[]", [ffi.cast("void *", found[name]) for name in names])


_found: Native | None = None  # the entry points, once found and checked
_found_lock = threading.Lock()


def library_problem() -> str | None:
    """Why plyvel's LevelDB cannot serve the store (one line), or None."""
    global _found
    with _found_lock:
        if _found is None:
            found = _find()
            if isinstance(found, str):
                return found
            _found = found
    return None


# --- databases and stores ---------------------------------------------------------


class LevelDB:
    """One open database of the process, opened by C: at most one per directory."""

    def __init__(self, path: str) -> None:
        """Open (create) the database at `path`; LevelDBRefused says why not."""
        problem = library_problem()
        if problem:
            raise ConfigError(problem)
        err = ffi.new("char[]", ERR_CAP)
        ptr = lib.wm_ldb_open(_found, os.fsencode(path), err, ERR_CAP)
        if ptr == ffi.NULL:
            raise LevelDBRefused(ffi.string(err).decode(errors="replace"))
        self.ptr: Native = ptr

    def close(self) -> None:
        """Close it now, once the calls in flight are done (C waits, the GIL let go)."""
        ptr, self.ptr = self.ptr, ffi.NULL
        if ptr != ffi.NULL:
            lib.wm_ldb_close(ptr)


@dataclass(frozen=True)
class Answer:
    """What one call answered: its errno and outputs."""

    err: int
    out: int = 0
    data: bytes = b""  # a read's answer
    count: int = 0  # keys: how many in data
    cursor: int = 0  # keys: the next page's cursor (0: none left)


class _OwnFailures:
    """Where a store's own calls find the failure C told (one per thread)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._slot = threading.local()
        self.handle = ffi.new_handle(self)  # the failure callback's ctx

    def failed(self, req: Native, error: StoreError) -> int:
        self._slot.error = error
        return int(Errno.IO)

    def take(self) -> StoreError:
        error: StoreError | None = getattr(self._slot, "error", None)
        self._slot.error = None
        return error or StoreError(f"{self.url}: the store failed")


class LevelDBUse:
    """One store's use of an open database: its sync option, its calls, the
    store function a broker gets.  close() ends it; the database stays open
    for the store's other users."""

    def __init__(self, db: LevelDB, sync: bool, url: str) -> None:
        store = lib.wm_ldb_store_new(db.ptr, 1 if sync else 0)
        if store == ffi.NULL:
            raise MemoryError("wm_ldb_store_new")
        self._store = ffi.gc(store, lib.wm_ldb_store_free)
        self._failures = _OwnFailures(url)
        self._caller = self._new_caller(self._failures.handle)

    def _new_caller(self, failed_ctx: Native) -> Native:
        caller = lib.wm_ldb_caller_new(self._store, lib.wm_py_store_failed, failed_ctx)
        if caller == ffi.NULL:
            raise MemoryError("wm_ldb_caller_new")
        return ffi.gc(caller, lib.wm_ldb_caller_free)

    def attach(self, native_broker: NativeBroker, door_handle: Native) -> Native:
        """Answer `native_broker`'s named maps in C from now on; a failure goes to
        the StoreDoor whose handle is `door_handle`.  The store function's
        context: keep it alive with that door."""
        caller = self._new_caller(door_handle)
        lib.wm_broker_set_store(native_broker.ptr, lib.wm_ldb_call, caller)
        return caller

    def close(self) -> None:
        """Calls through this store (its own, its brokers') answer "closed" from now on."""
        lib.wm_ldb_store_close(self._store)

    def call(
        self,
        op: StoreOp,
        name: str,
        key: bytes = b"",
        val: bytes = b"",
        *,
        num: int = 0,
        count: int = 0,
        cursor: int = 0,
        numbered: bool = False,
    ) -> Answer:
        """One operation, as a broker's store function makes it; a failure is
        raised as the StoreError C told.  `numbered`: keys with their sequence
        numbers (wm_ldb_keys_numbered)."""
        raw_name = name.encode()
        held = [ffi.from_buffer("uint8_t[]", b) for b in (raw_name, key, val)]
        req = ffi.new("wm_store_req *")
        req.op, req.name, req.name_len = op, held[0], len(raw_name)
        req.key, req.key_len, req.val, req.val_len = held[1], len(key), held[2], len(val)
        req.num, req.count, req.cursor = num, count, cursor
        fn = lib.wm_ldb_keys_numbered if numbered else lib.wm_ldb_call
        cap = FIRST_CAP if op in READS else 0
        while True:
            buf = ffi.new("uint8_t[]", cap) if cap else ffi.NULL
            req.buf, req.buf_cap = buf, cap
            err = int(fn(self._caller, req))
            if err == Errno.IO:
                raise self._failures.take()
            if err != Errno.RANGE or req.out <= cap:  # done, or a RANGE no buffer cures
                break
            if req.out > MAX_CAP:
                raise StoreError(f"{self._failures.url}: an answer of {req.out} bytes")
            cap = max(int(req.out), 2 * cap)
        data = ffi.buffer(buf, req.out)[:] if err == Errno.OK and cap else b""
        return Answer(err, int(req.out), data, int(req.count), int(req.cursor))


# --- failures ------------------------------------------------------------------------


def _crashed(exc_type: Any, exc: BaseException, tb: Any) -> int:
    """A failure while telling a failure: IO, and a log line."""
    log.error("store failure callback failed", exc_info=(exc_type, exc, tb))
    return int(Errno.IO)


@ffi.def_extern(onerror=_crashed)  # type: ignore[untyped-decorator]
def wm_py_store_failed(ctx: Native, req: Native, message: Native) -> int:
    """A failure in C, told to whoever made the call: a broker's StoreDoor,
    which records it as it records its own, or a store's own calls."""
    target = ffi.from_handle(ctx)
    text = ffi.string(message).decode(errors="replace")
    return int(target.failed(req, StoreError(f"{target.url}: {text}")))
