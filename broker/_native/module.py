"""One module's side of the C core (native/broker.c, ops.c): its handles and the ABI operations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import wasmtime

from .. import abi
from ..errors import BufferTooSmallError, BusyError, ConfigError, StoreFailure
from .core import Native, ffi, lib
from .failures import check, reach_store
from .wasmtime_layouts import context_of, memory_address, pointer, wasmtime_error

HOLD_WAIT_MS = 5000  # how long a host operation on an instance waits for a call running in it


class OwningBroker(Protocol):
    """What a module needs of its NativeBroker (native_broker.py imports this
    module, so it is named by what it does, not imported)."""

    @property
    def closed(self) -> bool: ...

    @property
    def ptr(self) -> Native: ...

    link_labels: dict[int, str]  # link id -> "module.export" it calls
    retired_links: list[int]  # freed links: labels to drop once drained


class NativeModule:
    """One module's side of the core: handle table, grants, limits, memory.

    The `op_*` methods are the ABI operations for host code and tests; they
    return values and raise `broker.errors` exceptions.
    """

    def __init__(self, broker: OwningBroker, ptr: Native, *, host: bool = False) -> None:
        self.broker = broker  # keeps the C broker alive
        self._ptr = ptr
        self._host = host  # the host's operations take the broker lock: no holding
        self.unloaded = False

    @property
    def ptr(self) -> Native:
        if self.broker.closed:
            raise ConfigError("the broker is closed")
        if self.unloaded:
            raise ConfigError("the module was unloaded")
        return self._ptr

    @property
    def id(self) -> int:
        return int(lib.wm_module_id(self.ptr))

    def handle_count(self) -> int:
        return int(lib.wm_module_handle_count(self.ptr))

    def usage(self) -> tuple[int, int]:
        """(bytes, entries) written by this module and still live."""
        return int(lib.wm_module_bytes_used(self.ptr)), int(lib.wm_module_entries_used(self.ptr))

    def grant(self, name: str, rights: int) -> None:
        raw = name.encode()
        check(lib.wm_module_grant(self.ptr, raw, len(raw), rights), f"grant {name!r}", None)

    def set_memory(self, memory: wasmtime.Memory) -> None:
        lib.wm_module_set_memory(self.ptr, memory_address(memory))

    def define_abi(self, linker: wasmtime.Linker, functypes: list[wasmtime.FuncType]) -> None:
        types = ffi.new("void *[]", [pointer(ft) for ft in functypes])
        error = lib.wm_define_abi(self.ptr, pointer(linker), types)
        if error != ffi.NULL:
            raise wasmtime_error(error)

    def set_store(self, store: wasmtime.Store) -> None:
        """The module's own store: calls into it run there, under its time limit."""
        lib.wm_module_set_store(self.ptr, pointer(store), context_of(store))

    def enter(self) -> None:
        """Host code is about to run in the module's store (its start function)."""
        lib.wm_module_enter(self.ptr)

    def leave(self) -> None:
        lib.wm_module_leave(self.ptr)

    def define_wasi_poll(self, linker: wasmtime.Linker, functype: wasmtime.FuncType) -> None:
        """WASI's poll_oneoff, its sleeps bounded by the time limit (over wasmtime's)."""
        error = lib.wm_define_wasi_poll(self.ptr, pointer(linker), pointer(functype))
        if error != ffi.NULL:
            raise wasmtime_error(error)

    def retire(self, wait_ms: int) -> bool:
        """Take this torn-down instance for good once no thread runs in it,
        waiting up to `wait_ms`; False when it stays busy or this very
        thread runs in it (native/pool.c)."""
        return int(lib.wm_pool_retire(self.ptr, wait_ms)) == 0

    def mark_dead(self) -> None:
        """No new call takes this instance; calls running in it go on."""
        lib.wm_module_mark_dead(self.ptr)

    def teardown(self) -> None:
        """Close every handle as if by `close`, once no other thread runs in
        it; calls into the module trap."""
        lib.wm_module_teardown(self.ptr)

    def unload(self) -> None:
        """Tear down and give back everything the module holds in the core
        (links, watches, table, name, id); this object is unusable after."""
        if not self.unloaded and not self.broker.closed:
            lib.wm_module_unload(self._ptr)
        self.unloaded = True

    def map_id(self, h: int) -> int:
        """The id of the map `h` reaches (0 when `h` is not live)."""
        return int(lib.wm_broker_map_id(self.broker.ptr, self.ptr, h & 0xFFFFFFFF))

    # --- the ABI operations ------------------------------------------------
    # Each may reach the store (a named map in sqlite or Redis): through
    # reach_store, so the store's failure comes back with the errno.

    def _reach(self, fn: Callable[..., int], *args: Any) -> tuple[int, StoreFailure | None]:
        """The ABI operation `fn` for this module: its errno and the store's
        failure.  A guest instance is held for this thread meanwhile, as a
        call into it would be (its own thread writes its handle table and
        quota counts without the broker lock): waiting up to HOLD_WAIT_MS
        for a call running in it on another thread, else BUSY."""
        ptr = self.ptr
        if self._host:
            return reach_store(fn, ptr, *args)
        held = int(lib.wm_module_hold(ptr, HOLD_WAIT_MS))
        if held == abi.Errno.BUSY:
            raise BusyError(
                f"instance {self.id} runs a call on another thread (waited {HOLD_WAIT_MS} ms) "
                "or is being replaced"
            )
        try:
            return reach_store(fn, ptr, *args)
        finally:
            if held == abi.Errno.OK:
                lib.wm_module_unhold(ptr)

    def _op(self, what: str, fn: Callable[..., int], *args: Any) -> None:
        """Run the ABI operation `fn` for this module; raise for its errno."""
        err, failure = self._reach(fn, *args)
        check(err, what, failure)

    def op_open(self, name: bytes, rights: int) -> int:
        out = ffi.new("uint32_t *")
        self._op(f"open {name!r}", lib.wm_op_open, name, len(name), rights, out)
        return int(out[0])

    def op_new(self) -> int:
        out = ffi.new("uint32_t *")
        self._op("new", lib.wm_op_new, out)
        return int(out[0])

    def op_close(self, h: int) -> None:
        self._op(f"close handle {h}", lib.wm_op_close, h)

    def op_clone(self, h: int, rights: int) -> int:
        out = ffi.new("uint32_t *")
        self._op(f"clone handle {h}", lib.wm_op_clone, h, rights, out)
        return int(out[0])

    def op_get(self, h: int, key: bytes) -> bytes:
        out = ffi.new("uint32_t *")
        size = 256
        while True:
            buf = ffi.new("uint8_t[]", size)
            err, failure = self._reach(lib.wm_op_get, h, key, len(key), buf, size, out)
            if err == abi.Errno.RANGE and out[0] > size:
                size = int(out[0])
                continue
            check(err, f"get {key!r}", failure)
            return bytes(ffi.buffer(buf, out[0]))

    def op_set(self, h: int, key: bytes, value: bytes) -> None:
        self._op(f"set {key!r}", lib.wm_op_set, h, key, len(key), value, len(value))

    def op_delete(self, h: int, key: bytes) -> None:
        self._op(f"delete {key!r}", lib.wm_op_delete, h, key, len(key))

    def op_exists(self, h: int, key: bytes) -> bool:
        out = ffi.new("uint32_t *")
        self._op(f"exists {key!r}", lib.wm_op_exists, h, key, len(key), out)
        return bool(out[0])

    def op_len(self, h: int) -> int:
        out = ffi.new("uint32_t *")
        self._op(f"len of handle {h}", lib.wm_op_len, h, out)
        return int(out[0])

    def op_keys_page(self, h: int, cursor: int, cap: int) -> tuple[list[bytes], int]:
        """One page of keys and the next cursor (0 = done)."""
        cur = ffi.new("uint64_t *", cursor)
        buf = ffi.new("uint8_t[]", max(cap, 1))
        used, count = ffi.new("uint32_t *"), ffi.new("uint32_t *")
        self._op(f"keys of handle {h}", lib.wm_op_keys, h, cur, buf, cap, used, count)
        records = abi.unpack_records(bytes(ffi.buffer(buf, used[0])), count[0])
        keys = [k for k in records if k is not None]
        return keys, int(cur[0])

    def op_keys(self, h: int) -> list[bytes]:
        keys: list[bytes] = []
        cursor, cap = 0, 64 * 1024
        while True:
            try:
                page, cursor = self.op_keys_page(h, cursor, cap)
            except BufferTooSmallError:  # one key bigger than the page: grow it
                cap *= 4
                continue
            keys += page
            if cursor == 0:
                return keys

    def op_incr(self, h: int, key: bytes, delta: int) -> int:
        out = ffi.new("int64_t *")
        self._op(f"incr {key!r}", lib.wm_op_incr, h, key, len(key), delta, out)
        return int(out[0])

    def op_version(self, h: int, key: bytes) -> int:
        out = ffi.new("uint64_t *")
        self._op(f"version {key!r}", lib.wm_op_version, h, key, len(key), out)
        return int(out[0])

    def op_set_if(self, h: int, key: bytes, value: bytes, expected: int) -> None:
        args = (h, key, len(key), value, len(value), expected)
        self._op(f"set_if {key!r}", lib.wm_op_set_if, *args)

    def op_get_many(self, h: int, keys: list[bytes]) -> list[bytes | None]:
        packed = abi.pack_keys(keys)
        out = ffi.new("uint32_t *")
        size = 4 * len(keys) + 256
        while True:
            buf = ffi.new("uint8_t[]", size)
            err, failure = self._reach(lib.wm_op_get_many, h, packed, len(packed), buf, size, out)
            if err == abi.Errno.RANGE and out[0] > size:
                size = int(out[0])
                continue
            check(err, "get_many", failure)
            break
        return abi.unpack_records(bytes(ffi.buffer(buf, out[0])), len(keys))

    def op_set_many(self, h: int, items: list[tuple[bytes, bytes]]) -> None:
        packed = abi.pack_items(items)
        self._op("set_many", lib.wm_op_set_many, h, packed, len(packed))

    def op_set_map(self, h: int, key: bytes, child: int) -> None:
        self._op(f"set_map {key!r}", lib.wm_op_set_map, h, key, len(key), child)

    def op_watch_drop(self, h: int, cookie: int) -> None:
        self._op(f"watch_drop handle {h}", lib.wm_op_watch_drop, h, cookie)

    def op_get_map(self, h: int, key: bytes) -> int:
        out = ffi.new("uint32_t *")
        self._op(f"get_map {key!r}", lib.wm_op_get_map, h, key, len(key), out)
        return int(out[0])
