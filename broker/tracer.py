"""The ownership tracer: every ownership event, who caused it, and from where.

The C core records events while tracing (native/trace.c); the broker takes
them after each operation and the tracer turns them into `Event`s: module
names instead of ids, and the call path (which export, called from where)
rebuilt from the core's call and return events.  Each event is kept (for
`Broker.leaks()` and the ownership graph) and emitted as a structlog event
on the logger "wasi_map.trace"; given a file, the tracer also writes them
there as JSON lines, whatever structlog's global configuration.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import structlog

from ._native import EVENT_FLAGS, EVENT_KINDS, NativeBroker, RawEvent

DEFAULT_LIMIT = 1 << 22  # events between two takes (native/trace.c)
TAKE_BATCH = 4096


@dataclass(frozen=True)
class Event:
    """One ownership event."""

    seq: int
    kind: str  # new, open, clone, get_map, close, move, borrow, borrow_end, share,
    # set_map, unset_map, reclaim, cycle_reclaim, teardown, call, return
    module: str | None = None
    handle: int | None = None
    map: int | None = None
    to_module: str | None = None
    to_handle: int | None = None
    other_map: int | None = None  # set_map/unset_map: the child; get_map: the parent
    export: str | None = None  # the export being executed ("module.export")
    path: tuple[str, ...] = ()  # the call path, outermost first
    flags: frozenset[str] = frozenset()  # left_open, trapped, teardown, borrowed

    def as_dict(self) -> dict[str, Any]:
        """The event as JSON-ready fields (only those that apply)."""
        out: dict[str, Any] = {"seq": self.seq, "event": self.kind}
        for name in ("module", "handle", "map", "to_module", "to_handle", "other_map", "export"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.path:
            out["path"] = list(self.path)
        for flag in sorted(self.flags):
            out[flag] = True
        return out

    def maps(self) -> tuple[int, ...]:
        return tuple(m for m in (self.map, self.other_map) if m)


@dataclass
class Tracer:
    """Keeps the events of one broker and emits them."""

    native: NativeBroker
    module_name: Callable[[int], str]
    link_label: Callable[[int], str]
    file: IO[str] | None = None
    owns_file: bool = False
    events: list[Event] = field(default_factory=list)
    by_map: dict[int, list[Event]] = field(default_factory=lambda: defaultdict(list))
    _stack: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # A library does not print by default: the global structlog logger is
        # used only when the application has configured structlog.
        self._log = structlog.get_logger("wasi_map.trace") if structlog.is_configured() else None
        self._file_log = (
            structlog.wrap_logger(
                structlog.PrintLogger(self.file),  # type: ignore[arg-type]
                processors=[structlog.processors.JSONRenderer(sort_keys=False)],
            )
            if self.file is not None
            else None
        )
        self.native.trace(DEFAULT_LIMIT)

    @classmethod
    def open(
        cls,
        native: NativeBroker,
        target: bool | str | Path | IO[str],
        module_name: Callable[[int], str],
        link_label: Callable[[int], str],
    ) -> Tracer:
        """A tracer writing to `target` (a path or file) or, for True, only to structlog."""
        if isinstance(target, (str, Path)):
            file = open(target, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
            return cls(native, module_name, link_label, file, owns_file=True)
        if target is not True and hasattr(target, "write"):
            return cls(native, module_name, link_label, target)  # type: ignore[arg-type]
        return cls(native, module_name, link_label)

    def drain(self) -> None:
        """Take the core's events and emit them."""
        while batch := self.native.take_events(TAKE_BATCH):
            for raw in batch:
                self._record(self._event(raw))

    @property
    def dropped(self) -> int:
        """Events the core could not keep (more than DEFAULT_LIMIT between takes)."""
        return self.native.events_dropped()

    def _event(self, raw: RawEvent) -> Event:
        kind = EVENT_KINDS[raw.kind]
        flags = frozenset(name for bit, name in EVENT_FLAGS.items() if raw.flags & bit)
        if kind == "call":
            self._stack.append(self.link_label(raw.link))
        path = tuple(self._stack)
        if kind == "return" and self._stack:
            self._stack.pop()
        has_receiver = kind in ("move", "borrow", "share", "borrow_end", "call", "return")
        acting = kind not in ("reclaim", "cycle_reclaim")
        return Event(
            seq=raw.seq,
            kind=kind,
            module=self.module_name(raw.module) if acting else None,
            handle=raw.handle or None,
            map=raw.map or None,
            to_module=self.module_name(raw.other_module) if has_receiver else None,
            to_handle=raw.other_handle or None,
            other_map=raw.other_map or None,
            export=path[-1] if path else None,
            path=path,
            flags=flags,
        )

    def _record(self, event: Event) -> None:
        self.events.append(event)
        for map_id in event.maps():
            self.by_map[map_id].append(event)
        if self._log is None and self._file_log is None:
            return
        fields = event.as_dict()
        name = fields.pop("event")
        if self._log is not None:
            self._log.info(name, **fields)
        if self._file_log is not None:
            self._file_log.info(name, **fields)

    def history(self, map_id: int) -> list[Event]:
        return list(self.by_map.get(map_id, ()))

    def count(self, kind: str) -> int:
        return sum(1 for e in self.events if e.kind == kind)

    def close(self) -> None:
        self.drain()
        self.native.trace(0)
        if self.file is not None and not self.file.closed:
            self.file.flush()
            if self.owns_file:
                self.file.close()
