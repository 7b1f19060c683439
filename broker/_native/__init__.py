"""The one door to the C data plane (broker._wm).

Only this module imports the compiled extension.  At import it checks that
the installed wasmtime has the C layouts the core was built for, and hands
the core the addresses of the wasmtime entry points it calls.  Everything
else in the package calls the typed functions and classes here; errnos
come back as `broker.errors` exceptions.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import threading
from dataclasses import dataclass
from typing import Any

import wasmtime
from wasmtime import _ffi as wt

from .. import abi
from ..errors import (
    BufferTooSmallError,
    ConfigError,
    StoreFailure,
    WasmtimeMismatchError,
    error_for,
)
from ..limits import Limits

try:
    from .._wm import ffi as ffi  # re-exported for _store_calls
    from .._wm import lib as lib
except ImportError as exc:  # pragma: no cover - a broken install
    raise ImportError(
        f"wasi-map's C core (broker._wm) is not built: {exc}. Reinstall with `pip install .`."
    ) from exc

WASMTIME_PIN = "50.0.1"
WASMTIME_ENTRY_POINTS = {
    "caller_context": "wasmtime_caller_context",
    "caller_export_get": "wasmtime_caller_export_get",
    "memory_data": "wasmtime_memory_data",
    "memory_data_size": "wasmtime_memory_data_size",
    "linker_define_func_unchecked": "wasmtime_linker_define_func_unchecked",
    "func_call_unchecked": "wasmtime_func_call_unchecked",
    "trap_new": "wasmtime_trap_new",
    "error_message": "wasmtime_error_message",
    "error_delete": "wasmtime_error_delete",
    "byte_vec_delete": "wasm_byte_vec_delete",
    "error_new": "wasmtime_error_new",
    "context_set_epoch_deadline": "wasmtime_context_set_epoch_deadline",
    "store_epoch_deadline_callback": "wasmtime_store_epoch_deadline_callback",
    "engine_clone": "wasmtime_engine_clone",
    "engine_delete": "wasm_engine_delete",
    "engine_increment_epoch": "wasmtime_engine_increment_epoch",
}
Native = Any  # a cffi pointer; `lib` is untyped, types come back here


def _installed_wasmtime() -> str:
    try:
        return importlib.metadata.version("wasmtime")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def check_layouts() -> None:
    """Refuse to run when wasmtime's C layouts differ from the ones compiled in."""
    pairs = {
        "wasmtime_memory_t": (ctypes.sizeof(wt.wasmtime_memory_t), lib.wm_sizeof_wasmtime_memory()),
        "wasmtime_func_t": (ctypes.sizeof(wt.wasmtime_func_t), lib.wm_sizeof_wasmtime_func()),
        "wasmtime_val_raw_t": (
            ctypes.sizeof(wt.wasmtime_val_raw_t),
            lib.wm_sizeof_wasmtime_val_raw(),
        ),
        "wasmtime_extern_t": (ctypes.sizeof(wt.wasmtime_extern_t), lib.wm_sizeof_wasmtime_extern()),
    }
    bad = [
        f"{name} is {have} bytes, expected {want}"
        for name, (have, want) in pairs.items()
        if have != want
    ]
    missing = [sym for sym in WASMTIME_ENTRY_POINTS.values() if not hasattr(wt.dll, sym)]
    if bad or missing:
        problems = "; ".join(bad + [f"missing symbol {m}" for m in missing])
        raise WasmtimeMismatchError(
            f"wasi-map's C core was built for wasmtime {WASMTIME_PIN}, but wasmtime "
            f"{_installed_wasmtime()} is installed and its C layouts differ ({problems}). "
            f"Install wasmtime=={WASMTIME_PIN}."
        )
    names = {ffi.string(lib.wm_abi_name(i)).decode() for i in range(lib.wm_abi_count())}
    if names != abi.IMPLEMENTED:  # pragma: no cover - a stale build
        raise ImportError(f"broker._wm is stale: it implements {sorted(names)}; rebuild it")


check_layouts()


# What the `bytes` quota charges beyond keys and values (native/wm.h).
ENTRY_COST: int = lib.WM_ENTRY_COST
MAP_COST: int = lib.WM_MAP_COST

# The tracer's event kinds and flags (native/wm.h), by value.
EVENT_KINDS: dict[int, str] = {
    getattr(lib, name): name[len("WM_EV_") :].lower()
    for name in dir(lib)
    if name.startswith("WM_EV_")
}
EVENT_FLAGS: dict[int, str] = {
    getattr(lib, name): name[len("WM_EVF_") :].lower()
    for name in dir(lib)
    if name.startswith("WM_EVF_")
}


@dataclass(frozen=True)
class RawEvent:
    """One event as the core recorded it (ids, not names)."""

    seq: int
    kind: int
    module: int
    handle: int
    map: int
    other_module: int
    other_handle: int
    other_map: int
    link: int
    flags: int


def _record(c: Any) -> dict[str, Any]:
    """A snapshot record as a dict of Python values (names and keys as bytes)."""
    out: dict[str, Any] = {}
    for name in dir(c):
        if name == "unused":
            continue
        value = getattr(c, name)
        if name == "name":
            value = bytes(ffi.buffer(value, c.name_len)) if value != ffi.NULL else None
        elif name == "key":
            value = bytes(ffi.buffer(value, min(c.key_len, len(value))))
        out[name] = value
    return out


def _address(ptr: Any) -> Native:
    """A ctypes pointer (or address) as a cffi void*."""
    value = ptr if isinstance(ptr, int) else ctypes.cast(ptr, ctypes.c_void_p).value
    return ffi.cast("void *", value or 0)


def _ctypes_pointer(p: Native, ctype: Any) -> Any:
    return ctypes.cast(int(ffi.cast("uintptr_t", p)), ctypes.POINTER(ctype))


def _wasmtime_api() -> Native:
    api = ffi.new("wm_wasmtime_api *")
    for field, symbol in WASMTIME_ENTRY_POINTS.items():
        setattr(api, field, _address(ctypes.cast(getattr(wt.dll, symbol), ctypes.c_void_p).value))
    return api


_API = _wasmtime_api()


def _c_limits(limits: Limits) -> Native:
    c = ffi.new("wm_limits *")
    c.key_size = limits.key_size
    c.value_size = limits.value_size
    c.handles = limits.handles
    c.bytes = limits.bytes
    c.entries = limits.entries
    c.watches = limits.watches
    c.trap_on_quota = 1 if limits.on_quota == "trap" else 0
    c.time_ms = limits.time_ms
    return c


# .last: the StoreFailure of this thread's last store call that answered IO,
# until it is taken (set by _store_calls).
store_failure = threading.local()


def take_store_failure() -> StoreFailure | None:
    """This thread's store failure not yet reported, and forget it."""
    failure: StoreFailure | None = getattr(store_failure, "last", None)
    store_failure.last = None
    return failure


def _check(err: int, what: str) -> None:
    if err:
        cause = take_store_failure() if err == abi.Errno.IO else None
        if err == abi.Errno.IO:
            what = f"{what}: {cause.message if cause else 'the store failed'}"
        raise error_for(err, what) from (cause.error if cause else None)


def wasmtime_error(ptr: Native) -> wasmtime.WasmtimeError:
    """Wrap (and take ownership of) a wasmtime_error_t* returned by the core."""
    return wasmtime.WasmtimeError._from_ptr(_ctypes_pointer(ptr, wt.wasmtime_error_t))


def trap_message(ptr: Native) -> str:
    """The message of (and ownership of) a wasm_trap_t* returned by the core."""
    trap = wasmtime.Trap._from_ptr(_ctypes_pointer(ptr, wt.wasm_trap_t))
    return str(trap.message)


class NativeBroker:
    """One C broker: the refcount table, the maps and every module's handles."""

    def __init__(self, host_limits: Limits) -> None:
        seed = int.from_bytes(os.urandom(8), "little")
        ptr = lib.wm_broker_new(_API, seed, _c_limits(host_limits))
        if ptr == ffi.NULL:
            raise MemoryError("wm_broker_new failed")
        self._ptr = ffi.gc(ptr, lib.wm_broker_free)
        self.closed = False
        self.host = NativeModule(self, lib.wm_broker_host(ptr))
        self.link_labels: dict[int, str] = {}  # link id -> "module.export" it calls
        self.retired_links: list[int] = []  # freed links: labels to drop once drained
        # Host handles whose MapRef was garbage-collected: closed at the next
        # operation, never from a finalizer (which may run after the C
        # broker itself has been freed, in the same collection).
        self.released: list[int] = []
        self._events: Any = None  # the buffer take_events reuses

    @property
    def ptr(self) -> Native:
        if self.closed:
            raise ConfigError("the broker is closed")
        return self._ptr

    def drop_retired_links(self) -> None:
        """Forget the labels of freed links (after the tracer took their events)."""
        for link_id in self.retired_links:
            self.link_labels.pop(link_id, None)
        self.retired_links.clear()

    def close_released(self) -> None:
        """Close the host handles of garbage-collected MapRefs."""
        while self.released and not self.closed:
            lib.wm_op_close(self.host._ptr, self.released.pop())  # STALE if moved: fine

    def close(self) -> None:
        """Free every map and handle now; later use raises ConfigError.

        The C struct itself goes with the last Python reference, so an
        operation racing with close (another thread's MapRef) finds empty
        tables instead of freed memory."""
        if not self.closed:
            self.closed = True
            lib.wm_broker_close(self._ptr)

    def set_engine(self, engine: wasmtime.Engine) -> None:
        """Tick `engine`'s epoch while calls run (it enforces time limits)."""
        _check(lib.wm_broker_set_engine(self.ptr, _address(engine.ptr())), "the ticker")

    def new_module(self, limits: Limits, name: str) -> NativeModule:
        ptr = lib.wm_module_new(self.ptr, _c_limits(limits), name.encode())
        if ptr == ffi.NULL:
            raise MemoryError("too many modules in one broker (65535)")
        return NativeModule(self, ptr)

    def stats(self) -> dict[str, int]:
        out = ffi.new("wm_stats *")
        lib.wm_broker_stats(self.ptr, out)
        return {
            "maps": out.maps,
            "named": out.named,
            "entries": out.entries,
            "unreleased_borrows": out.unreleased_borrows,
            "reclaimed": out.reclaimed,
            "cycles_reclaimed": out.cycles_reclaimed,
            "collections": out.collections,
            "modules": out.modules,
            "links": out.links,
        }

    def collect(self) -> int:
        """Run the cycle collector now; the number of maps reclaimed."""
        return int(lib.wm_broker_collect(self.ptr))

    def set_gc_threshold(self, threshold: int) -> None:
        lib.wm_broker_set_gc_threshold(self.ptr, threshold)

    def check(self) -> int:
        """Recount every reference; the number of refcount rows that disagree (0)."""
        return int(lib.wm_broker_check(self.ptr))

    def trace(self, limit: int) -> None:
        """Record up to `limit` events between takes (0: stop tracing)."""
        lib.wm_broker_trace(self.ptr, limit)

    def take_events(self, cap: int) -> list[RawEvent]:
        out = self._events
        if out is None or len(out) < cap:
            out = self._events = ffi.new("wm_event[]", cap)
        n = lib.wm_broker_take_events(self.ptr, out, cap)
        return [
            RawEvent(
                e.seq,
                e.kind,
                e.module,
                e.handle,
                e.map,
                e.other_module,
                e.other_handle,
                e.other_map,
                e.link,
                e.flags,
            )
            for e in (out[i] for i in range(n))
        ]

    def events_dropped(self) -> int:
        return int(lib.wm_broker_events_dropped(self.ptr))

    def snapshot(self) -> tuple[list[Any], list[Any], list[Any]]:
        """(handles, maps, edges) as cffi records copied out of the core."""
        return (
            self._snapshot("wm_handle_info", lib.wm_snapshot_handles),
            self._snapshot("wm_map_info", lib.wm_snapshot_maps),
            self._snapshot("wm_edge_info", lib.wm_snapshot_edges),
        )

    def _snapshot(self, ctype: str, fill: Any) -> list[Any]:
        cap = 256
        while True:
            out = ffi.new(f"{ctype}[]", cap)
            n = fill(self.ptr, out, cap)
            if n <= cap:
                return [_record(out[i]) for i in range(n)]
            cap = n + 64

    def set_strict_borrows(self, strict: bool) -> None:
        lib.wm_broker_set_strict_borrows(self.ptr, 1 if strict else 0)

    def take_trap_origin(self) -> int | None:
        """The id of the module where the last call's trap began, or None."""
        origin = int(lib.wm_broker_take_trap_origin(self.ptr))
        return origin - 1 if origin else None

    def has_notices(self) -> bool:
        return bool(lib.wm_broker_has_notices(self.ptr))

    def take_notices(self, cap: int = 64) -> list[tuple[int, int]]:
        """Queued drop notices: (module id, cookie) pairs, oldest first."""
        modules, cookies = ffi.new("uint32_t[]", cap), ffi.new("int64_t[]", cap)
        n = lib.wm_broker_take_notices(self.ptr, modules, cookies, cap)
        return [(int(modules[i]), int(cookies[i])) for i in range(n)]

    def unreleased_borrows(self) -> int:
        return int(self.stats()["unreleased_borrows"])


def pass_problem(err: int, code: int, handle: int, *, twice: bool = False) -> str:
    """Why `handle` could not pass as `code` (a WM_PASS_* parameter), and what
    to do: the words a guest's trap says (native/link.c)."""
    out = ffi.new("char[512]")
    lib.wm_pass_explain(out, len(out), err, code, lib.WM_WHY_TWICE if twice else 0, handle)
    return str(ffi.string(out).decode())


class NativeLink:
    """A caller's way to one export (native/link.c): a guest import's
    trampoline, or the host's way in.  Freed with the broker."""

    def __init__(
        self, caller: NativeModule, label: str, nparams: int, nresults: int, export: str
    ) -> None:
        ptr = lib.wm_link_new(caller.ptr, label.encode(), nparams, nresults)
        if ptr == ffi.NULL:
            raise MemoryError("wm_link_new failed")
        self.broker = caller.broker
        self.ptr = ptr
        self.id = int(lib.wm_link_id(ptr))
        self.broker.link_labels[self.id] = export
        self.nslots = max(nparams, nresults)
        self._trap = ffi.new("void **")
        self._bad = ffi.new("uint32_t *")

    def resolve(self, target: NativeModule, func: wasmtime.Func, how: list[int]) -> None:
        size = ctypes.sizeof(func._func)
        raw = ctypes.string_at(ctypes.addressof(func._func), size)
        lib.wm_link_resolve(self.ptr, target.ptr, raw, bytes(how))

    def unresolve(self) -> None:
        lib.wm_link_unresolve(self.ptr)

    def retire(self) -> None:
        """The link goes with its module: its label, once the tracer has its events."""
        self.broker.retired_links.append(self.id)

    def set_loading(self, loading: NativeModule | None) -> None:
        """A module of the target's name is instantiating (None: no longer)."""
        lib.wm_link_set_loading(self.ptr, loading.ptr if loading is not None else ffi.NULL)

    def define(
        self, linker: wasmtime.Linker, module: str, name: str, functype: wasmtime.FuncType
    ) -> None:
        error = lib.wm_link_define(
            self.ptr,
            _address(linker.ptr()),
            module.encode(),
            name.encode(),
            _address(functype.ptr()),
        )
        if error != ffi.NULL:
            raise wasmtime_error(error)

    def call(self, args: Native, masks: bytes | None) -> tuple[int, str | None]:
        """(errno, None) when handle parameter `bad_param` could not pass, else
        (OK, trap message or None)."""
        if self.broker.closed:
            raise ConfigError("the broker is closed")
        trap = self._trap
        err = lib.wm_link_call(
            self.ptr,
            args,
            self.nslots,
            masks if masks is not None else ffi.NULL,
            trap,
            self._bad,
        )
        if err:
            return int(err), None
        if trap[0] != ffi.NULL:
            caught, trap[0] = trap[0], ffi.NULL
            return 0, trap_message(caught)
        return 0, None

    @property
    def bad_param(self) -> int:
        return int(self._bad[0])


class NativeModule:
    """One module's side of the core: handle table, grants, limits, memory.

    The `op_*` methods are the ABI operations for host code and tests; they
    return values and raise `broker.errors` exceptions.
    """

    def __init__(self, broker: NativeBroker, ptr: Native) -> None:
        self.broker = broker  # keeps the C broker alive
        self._ptr = ptr
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
        _check(lib.wm_module_grant(self.ptr, raw, len(raw), rights), f"grant {name!r}")

    def set_memory(self, memory: wasmtime.Memory) -> None:
        lib.wm_module_set_memory(self.ptr, _address(ctypes.addressof(memory._memory)))

    def define_abi(self, linker: wasmtime.Linker, functypes: list[wasmtime.FuncType]) -> None:
        types = ffi.new("void *[]", [_address(ft.ptr()) for ft in functypes])
        error = lib.wm_define_abi(self.ptr, _address(linker.ptr()), types)
        if error != ffi.NULL:
            raise wasmtime_error(error)

    def set_store(self, store: wasmtime.Store) -> None:
        """The module's own store: calls into it run there, under its time limit."""
        lib.wm_module_set_store(self.ptr, _address(store.ptr()), context_of(store))

    def enter(self) -> None:
        """Host code is about to run in the module's store (its start function)."""
        lib.wm_module_enter(self.ptr)

    def leave(self) -> None:
        lib.wm_module_leave(self.ptr)

    def define_wasi_poll(self, linker: wasmtime.Linker, functype: wasmtime.FuncType) -> None:
        """WASI's poll_oneoff, its sleeps bounded by the time limit (over wasmtime's)."""
        error = lib.wm_define_wasi_poll(self.ptr, _address(linker.ptr()), _address(functype.ptr()))
        if error != ffi.NULL:
            raise wasmtime_error(error)

    def teardown(self) -> None:
        """Close every handle as if by `close`; calls into the module trap."""
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

    def op_open(self, name: bytes, rights: int) -> int:
        out = ffi.new("uint32_t *")
        _check(lib.wm_op_open(self.ptr, name, len(name), rights, out), f"open {name!r}")
        return int(out[0])

    def op_new(self) -> int:
        out = ffi.new("uint32_t *")
        _check(lib.wm_op_new(self.ptr, out), "new")
        return int(out[0])

    def op_close(self, h: int) -> None:
        _check(lib.wm_op_close(self.ptr, h), f"close handle {h}")

    def op_clone(self, h: int, rights: int) -> int:
        out = ffi.new("uint32_t *")
        _check(lib.wm_op_clone(self.ptr, h, rights, out), f"clone handle {h}")
        return int(out[0])

    def op_get(self, h: int, key: bytes) -> bytes:
        out = ffi.new("uint32_t *")
        size = 256
        while True:
            buf = ffi.new("uint8_t[]", size)
            err = lib.wm_op_get(self.ptr, h, key, len(key), buf, size, out)
            if err == abi.Errno.RANGE and out[0] > size:
                size = int(out[0])
                continue
            _check(err, f"get {key!r}")
            return bytes(ffi.buffer(buf, out[0]))

    def op_set(self, h: int, key: bytes, value: bytes) -> None:
        _check(lib.wm_op_set(self.ptr, h, key, len(key), value, len(value)), f"set {key!r}")

    def op_delete(self, h: int, key: bytes) -> None:
        _check(lib.wm_op_delete(self.ptr, h, key, len(key)), f"delete {key!r}")

    def op_exists(self, h: int, key: bytes) -> bool:
        out = ffi.new("uint32_t *")
        _check(lib.wm_op_exists(self.ptr, h, key, len(key), out), f"exists {key!r}")
        return bool(out[0])

    def op_len(self, h: int) -> int:
        out = ffi.new("uint32_t *")
        _check(lib.wm_op_len(self.ptr, h, out), f"len of handle {h}")
        return int(out[0])

    def op_keys_page(self, h: int, cursor: int, cap: int) -> tuple[list[bytes], int]:
        """One page of keys and the next cursor (0 = done)."""
        cur = ffi.new("uint64_t *", cursor)
        buf = ffi.new("uint8_t[]", max(cap, 1))
        used, count = ffi.new("uint32_t *"), ffi.new("uint32_t *")
        _check(lib.wm_op_keys(self.ptr, h, cur, buf, cap, used, count), f"keys of handle {h}")
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
        _check(lib.wm_op_incr(self.ptr, h, key, len(key), delta, out), f"incr {key!r}")
        return int(out[0])

    def op_version(self, h: int, key: bytes) -> int:
        out = ffi.new("uint64_t *")
        _check(lib.wm_op_version(self.ptr, h, key, len(key), out), f"version {key!r}")
        return int(out[0])

    def op_set_if(self, h: int, key: bytes, value: bytes, expected: int) -> None:
        err = lib.wm_op_set_if(self.ptr, h, key, len(key), value, len(value), expected)
        _check(err, f"set_if {key!r}")

    def op_get_many(self, h: int, keys: list[bytes]) -> list[bytes | None]:
        packed = abi.pack_keys(keys)
        out = ffi.new("uint32_t *")
        size = 4 * len(keys) + 256
        while True:
            buf = ffi.new("uint8_t[]", size)
            err = lib.wm_op_get_many(self.ptr, h, packed, len(packed), buf, size, out)
            if err == abi.Errno.RANGE and out[0] > size:
                size = int(out[0])
                continue
            _check(err, "get_many")
            break
        return abi.unpack_records(bytes(ffi.buffer(buf, out[0])), len(keys))

    def op_set_many(self, h: int, items: list[tuple[bytes, bytes]]) -> None:
        packed = abi.pack_items(items)
        _check(lib.wm_op_set_many(self.ptr, h, packed, len(packed)), "set_many")

    def op_set_map(self, h: int, key: bytes, child: int) -> None:
        _check(lib.wm_op_set_map(self.ptr, h, key, len(key), child), f"set_map {key!r}")

    def op_watch_drop(self, h: int, cookie: int) -> None:
        _check(lib.wm_op_watch_drop(self.ptr, h, cookie), f"watch_drop handle {h}")

    def op_get_map(self, h: int, key: bytes) -> int:
        out = ffi.new("uint32_t *")
        _check(lib.wm_op_get_map(self.ptr, h, key, len(key), out), f"get_map {key!r}")
        return int(out[0])


def trace_compiled() -> bool:
    """Whether this build of the core records events (not a -DWM_NO_TRACE build)."""
    return bool(lib.wm_trace_compiled())


def abi_function_names() -> list[str]:
    """The ABI functions in the order wm_define_abi expects their types."""
    return [ffi.string(lib.wm_abi_name(i)).decode() for i in range(lib.wm_abi_count())]


def new_args(n: int) -> Native:
    """A buffer of n wasmtime_val_raw_t slots for `NativeBroker.call`."""
    return ffi.new("wm_val_raw[]", max(n, 1))


def int64_view(args: Native) -> Native:
    """The same slots as an int64_t array (slot i's low half is element 2*i)."""
    return ffi.cast("int64_t *", args)


def context_of(store: wasmtime.Store) -> Native:
    return _address(store._context())


from . import store_door  # noqa: E402  (it imports ffi from here)

attach_store = store_door.attach
