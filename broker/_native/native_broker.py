"""One C broker (native/broker.c): its lifetime, statistics, collector, tracer and notices."""

from __future__ import annotations

import os
import struct
from typing import Any, NamedTuple

import wasmtime

from .. import abi
from ..errors import ConfigError
from ..limits import Limits
from .core import Native, ffi, lib
from .failures import check
from .hostmap_door import new_door
from .module import NativeModule
from .wasmtime_layouts import API, pointer

# What the `bytes` quota charges beyond keys and values (declared in broker/abi/).
ENTRY_COST: int = abi.ENTRY_COST
MAP_COST: int = abi.MAP_COST

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


class RawEvent(NamedTuple):
    """One event as the core recorded it (ids, not names), fields in wm_event's order."""

    seq: int
    map: int
    other_map: int
    kind: int
    module: int
    handle: int
    other_module: int
    other_handle: int
    link: int
    flags: int


def _event_layout() -> struct.Struct:
    """wm_event as a struct format, read from the cffi type (wm.h), padding skipped.

    take_events decodes a whole batch with it in one call: a cffi record
    read field by field costs more than the rest of the tracer."""
    codes = {"uint64_t": "Q", "uint32_t": "I"}
    fmt, names, at = "=", [], 0
    for name, field in sorted(ffi.typeof("wm_event").fields, key=lambda f: f[1].offset):
        size = ffi.sizeof(field.type)
        fmt += "x" * (field.offset - at)  # padding the compiler put in
        if name == "unused":
            fmt += "x" * size
        else:
            fmt += codes[field.type.cname]
            names.append(name)
        at = field.offset + size
    fmt += "x" * (ffi.sizeof("wm_event") - at)
    layout = struct.Struct(fmt)
    if layout.size != ffi.sizeof("wm_event") or tuple(names) != RawEvent._fields:
        raise ImportError(f"wm_event ({names}) does not match RawEvent {RawEvent._fields}")
    return layout


EVENT_LAYOUT = _event_layout()


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


class NativeBroker:
    """One C broker: the refcount table, the maps and every module's handles."""

    def __init__(self, host_limits: Limits) -> None:
        seed = int.from_bytes(os.urandom(8), "little")
        ptr = lib.wm_broker_new(API, seed, _c_limits(host_limits))
        if ptr == ffi.NULL:
            raise MemoryError("wm_broker_new failed")
        self._ptr = ffi.gc(ptr, lib.wm_broker_free)
        self.closed = False
        self.host = NativeModule(self, lib.wm_broker_host(ptr), host=True)
        self.link_labels: dict[int, str] = {}  # link id -> "module.export" it calls
        self.retired_links: list[int] = []  # freed links: labels to drop once drained
        # Host handles whose MapRef was garbage-collected: closed at the next
        # operation, never from a finalizer (which may run after the C
        # broker itself has been freed, in the same collection).
        self.released: list[int] = []
        # MapRefs' hot path to the host module (native/hostmap.c), shut with the broker.
        self.door = new_door(self._ptr, self.host._ptr, self.released)
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
            self.door.close()
            lib.wm_broker_close(self._ptr)

    def set_engine(self, engine: wasmtime.Engine) -> None:
        """Tick `engine`'s epoch while calls run (it enforces time limits)."""
        check(lib.wm_broker_set_engine(self.ptr, pointer(engine)), "the ticker", None)

    def new_module(self, limits: Limits, name: str) -> NativeModule:
        ptr = lib.wm_module_new(self.ptr, _c_limits(limits), name.encode())
        if ptr == ffi.NULL:
            raise MemoryError(f"too many modules in one broker ({abi.MAX_MODULES})")
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
            "gc_work_bytes": out.gc_work_bytes,
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

    def take_events(self, cap: int) -> list[tuple[int, ...]]:
        """Up to `cap` of the core's events, oldest first, each a tuple in RawEvent's order."""
        out = self._events
        if out is None or len(out) < cap:
            out = self._events = ffi.new("wm_event[]", cap)
        n = lib.wm_broker_take_events(self.ptr, out, cap)
        return list(EVENT_LAYOUT.iter_unpack(ffi.buffer(out, n * EVENT_LAYOUT.size)))

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
