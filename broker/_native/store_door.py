"""The store door: how the C core answers for named maps in a store.

native/store.c calls `wm_py_store` (an `extern "Python"` function) once per
operation on such a map, after every check the C core makes (FAULT, INVAL,
handle, rights, TOOBIG) and without its lock held.  Here the request
becomes one call of the `Store`, and the answer goes back into the
caller's buffer (guest memory for a guest).  A `StoreError` becomes IO,
and a `StoreFailure` says what failed: the door keeps the last one of any
thread (`Broker.last_store_failure`), and hands this thread's to the entry
into C that is running (failures.py), which raises a StoreError caused by
it or gives it to the trap of a guest's call (`GuestTrap.store_failure`).

A LevelDBStore is the exception: C answers its operations itself
(native/leveldb_store.c, leveldb_door.py), and Python runs only when one
fails, to record the failure here as the door records its own.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import abi
from ..errors import StoreError, StoreFailure
from ..stores.base import Store, redact_url
from .core import Native, ffi, lib
from .failures import record
from .leveldb_door import LevelDBUse

if TYPE_CHECKING:
    from .native_broker import NativeBroker

Errno = abi.Errno
log = logging.getLogger("wasi_map.store")
KEYS_PER_READ = 1024  # the most keys one `keys` page asks the store for


def _module_number(module_id: int) -> str:
    return "host" if module_id == 0 else f"module#{module_id}"


class StoreDoor:
    """A Store, as the C core's store function sees it."""

    def __init__(self, store: Store, name_of: Callable[[int], str] = _module_number) -> None:
        self.store = store
        self.url = redact_url(store.url)  # an app's own Store may not redact its own
        self._names: dict[int, str] = {}  # the C core's map number -> name
        self._name_of = name_of  # a module's name, by its id
        self._failures = itertools.count(1)
        self.last_failure: StoreFailure | None = None  # of any thread
        self.handle = ffi.new_handle(self)  # the C core's ctx: keep alive with the door
        self.c_store: Native = None  # the C store function's ctx, when C answers (LevelDB)

    def failed(self, req: Native, error: StoreError) -> int:
        """Record why `req` failed, for this thread and the broker; IO."""
        error.__traceback__ = None  # the message says why; its frames would hold the data
        failure = StoreFailure(
            error,
            self.url,
            self.name(req),
            OP_NAMES.get(req.op, f"operation {req.op}"),
            self._name_of(req.module),
            next(self._failures),
        )
        self.last_failure = failure
        record(failure)
        return int(Errno.IO)

    def name(self, req: Native) -> str:
        name = self._names.get(req.map)
        if name is None:
            name = self._names[req.map] = ffi.buffer(req.name, req.name_len)[:].decode()
        return name


def _key(req: Native) -> bytes:
    return ffi.buffer(req.key, req.key_len)[:] if req.key_len else b""


def _val(req: Native) -> bytes:
    return ffi.buffer(req.val, req.val_len)[:] if req.val_len else b""


def _records(req: Native, count: int) -> list[bytes]:
    """The `count` records of the batch at req.val (checked again, in C), as bytes."""
    pairs = ffi.new("uint32_t[]", 2 * count)
    if lib.wm_records_split(req, count, pairs) != Errno.OK:
        raise StoreError(f"a batch of {count} records does not fit its {req.val_len} bytes")
    raw = ffi.buffer(req.val, req.val_len)[:]
    at = iter(ffi.unpack(pairs, 2 * count))
    return [raw[offset : offset + length] for offset, length in zip(at, at, strict=True)]


def _answer(req: Native, data: bytes) -> int:
    """Write `data` into the caller's buffer, or RANGE with the size needed.

    Every write into the caller's buffer (guest memory) goes through C,
    which checks the capacity before it writes."""
    return int(lib.wm_store_answer(req, data, len(data)))


def _get(door: StoreDoor, req: Native) -> int:
    value = door.store.get(door.name(req), _key(req))
    return Errno.NOENT if value is None else _answer(req, value)


def _set(door: StoreDoor, req: Native) -> int:
    door.store.set(door.name(req), _key(req), _val(req))
    return Errno.OK


def _delete(door: StoreDoor, req: Native) -> int:
    door.store.delete(door.name(req), _key(req))
    return Errno.OK


def _exists(door: StoreDoor, req: Native) -> int:
    req.out = 1 if door.store.exists(door.name(req), _key(req)) else 0
    return Errno.OK


def _len(door: StoreDoor, req: Native) -> int:
    req.out = door.store.len(door.name(req))
    return Errno.OK


def _keys(door: StoreDoor, req: Native) -> int:
    """One page: as many keys from the cursor on as fit, read from the store
    KEYS_PER_READ at a time; the cursor is the sequence number of the first
    key left out (0: none left)."""
    cap, cursor, name = req.buf_cap, req.cursor, door.name(req)
    parts: list[bytes] = []
    used = 0
    while True:
        limit = min(KEYS_PER_READ, (cap - used) // 4 + 1)
        rows = door.store.keys(name, cursor, limit)
        for seq, key in rows:
            need = 4 + len(key)
            if used + need > cap:
                if not parts:  # not even one key fits
                    req.out = need
                    return Errno.RANGE
                return _keys_page(req, parts, seq)
            parts.append(len(key).to_bytes(4, "little") + key)
            used += need
        if len(rows) < limit:  # the store has no more
            return _keys_page(req, parts, 0)
        cursor = rows[-1][0] + 1


def _keys_page(req: Native, parts: list[bytes], cursor: int) -> int:
    err = _answer(req, b"".join(parts))
    if err == Errno.OK:
        req.count, req.cursor = len(parts), cursor
    return err


def _incr(door: StoreDoor, req: Native) -> int:
    value = door.store.incr(door.name(req), _key(req), req.num)
    if value is None:
        return Errno.TYPE
    req.out = value & 0xFFFF_FFFF_FFFF_FFFF
    return Errno.OK


def _version(door: StoreDoor, req: Native) -> int:
    req.out = door.store.version(door.name(req), _key(req))
    return Errno.OK


def _set_if(door: StoreDoor, req: Native) -> int:
    done = door.store.set_if(door.name(req), _key(req), _val(req), req.num)
    return Errno.OK if done else Errno.CONFLICT


def _get_many(door: StoreDoor, req: Native) -> int:
    """The values of the key list, packed; RANGE with the size needed when they
    do not fit, found before anything is built: a list may name one big key
    many times, so the store is asked for each distinct key once."""
    count = req.count
    keys = _records(req, count)
    distinct = list(dict.fromkeys(keys))
    values = door.store.get_many(door.name(req), distinct)
    if len(values) != len(distinct):
        raise StoreError(f"{door.url}: {len(values)} values for {len(distinct)} keys")
    if any(v is not None and len(v) >= abi.ABSENT for v in values):
        raise StoreError(f"{door.url}: a value of 4 GiB or more")
    value_of = dict(zip(distinct, values, strict=True))
    answer = [value_of[key] for key in keys]  # the same objects: no copies
    need = 4 * count + sum(len(v) for v in answer if v)
    if need > req.buf_cap:
        req.out = need
        return Errno.RANGE
    lens = [abi.ABSENT if v is None else len(v) for v in answer]
    # Empty and absent values add no bytes: filter(None) drops both.
    blob = b"".join(filter(None, answer))
    return int(lib.wm_records_pack(req, lens, count, blob, len(blob)))


def _set_many(door: StoreDoor, req: Native) -> int:
    flat = _records(req, 2 * req.count)
    door.store.set_many(door.name(req), list(zip(flat[0::2], flat[1::2], strict=True)))
    return Errno.OK


OPS: dict[int, Callable[[StoreDoor, Native], int]] = {
    lib.WM_SOP_GET: _get,
    lib.WM_SOP_SET: _set,
    lib.WM_SOP_DELETE: _delete,
    lib.WM_SOP_EXISTS: _exists,
    lib.WM_SOP_LEN: _len,
    lib.WM_SOP_KEYS: _keys,
    lib.WM_SOP_INCR: _incr,
    lib.WM_SOP_VERSION: _version,
    lib.WM_SOP_SET_IF: _set_if,
    lib.WM_SOP_GET_MANY: _get_many,
    lib.WM_SOP_SET_MANY: _set_many,
}


OP_NAMES = {op: fn.__name__.lstrip("_") for op, fn in OPS.items()}


def _crashed(exc_type: Any, exc: BaseException, tb: Any) -> int:
    """A failure outside the store's own (recording it failed): IO, and a log line."""
    log.error("store call failed", exc_info=(exc_type, exc, tb))
    return int(Errno.IO)


@ffi.def_extern(onerror=_crashed)  # type: ignore[untyped-decorator]
def wm_py_store(ctx: Native, req: Native) -> int:
    door: StoreDoor = ffi.from_handle(ctx)
    try:
        return int(OPS[req.op](door, req))
    except StoreError as exc:
        return door.failed(req, exc)
    except Exception as exc:  # a bug in the store (not a StoreError): IO, and a log line
        log.error("store call failed", exc_info=True)
        exc.__traceback__ = None
        error = StoreError(f"{door.url}: internal error in the store: {exc!r}")
        error.__cause__ = exc
        return door.failed(req, error)


def attach(
    native_broker: NativeBroker, store: Store, name_of: Callable[[int], str] = _module_number
) -> StoreDoor:
    """Back `native_broker`'s named maps by `store` from now on; `name_of`
    names a module by its id in the failures the door records."""
    door = StoreDoor(store, name_of)
    leveldb = getattr(store, "native", None)  # a LevelDBStore's C side
    if isinstance(leveldb, LevelDBUse):  # answered in C: no Python per operation
        door.c_store = leveldb.attach(native_broker, door.handle)
    else:
        lib.wm_broker_set_store(native_broker.ptr, lib.wm_py_store, door.handle)
    return door
