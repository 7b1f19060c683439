"""The ownership tracer: every ownership event, who caused it, and from where.

The C core records events while tracing (native/trace.c); the broker takes
them after each operation and the tracer turns them into `Event`s: module
names instead of ids, and the call path (which export, called from where)
rebuilt from the core's call and return events.  Each event is emitted as it
comes, as a structlog event on the logger "wasi_map.trace" and, given a
file, as a JSON line there, whatever structlog's global configuration.

In memory the tracer keeps only what the leak report needs, each part
bounded (`Bounds`): a short history per live anonymous map, forgotten when
the map is reclaimed; the first borrows the broker had to end; a count per
kind; and the last events, for debugging.  A traced broker's memory does
not grow with the number of events.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import structlog

from ._native import EVENT_FLAGS, EVENT_KINDS, NativeBroker, RawEvent

# Events the core buffers between two takes (native/trace.c): 56 bytes each,
# 7 MiB.  One guest call's events wait there until it returns; beyond this
# they are dropped and counted (`Tracer.dropped`).
DEFAULT_LIMIT = 1 << 17
TAKE_BATCH = 4096
RECLAIMS = ("reclaim", "cycle_reclaim")


@dataclass(frozen=True, slots=True)
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
        """The maps the event names, each once (a map set into itself is one)."""
        if self.other_map and self.other_map != self.map:
            return (self.map, self.other_map) if self.map else (self.other_map,)
        return (self.map,) if self.map else ()


@dataclass(frozen=True)
class Bounds:
    """The most the tracer keeps in memory (docs/abi.md, "The ownership tracer")."""

    core: int = DEFAULT_LIMIT  # events the C core buffers between two takes
    head: int = 8  # a map's first events kept: its creation and first passes
    tail: int = 24  # a map's latest events kept
    histories: int = 1 << 16  # events kept in all maps' histories together
    borrows: int = 256  # unreleased borrows listed; the rest only counted
    recent: int = 1024  # the last events, for debugging and tests
    depth: int = 1024  # steps of the call path kept; deeper calls only counted

    def __post_init__(self) -> None:
        # A history always has room for its creation, and one full history fits.
        if self.core < 1 or self.head < 1 or self.tail < 0 or self.depth < 1:
            raise ValueError(f"tracer bounds out of range: {self}")
        if self.histories < self.head + self.tail or self.borrows < 0 or self.recent < 0:
            raise ValueError(f"tracer bounds out of range: {self}")


class History:
    """One map's kept events: the first `head`, the latest `tail`, a count of those between."""

    __slots__ = ("events", "skipped", "skipped_after")

    def __init__(self, first: Event) -> None:
        self.events = [first]
        self.skipped = 0
        self.skipped_after = 0  # seq of the last head event, once some are skipped

    def add(self, event: Event, head: int, tail: int) -> int:
        """Keep `event`; how many more events this history holds (0 or 1)."""
        if len(self.events) < head + tail:
            self.events.append(event)
            return 1
        if not self.skipped:
            self.skipped_after = self.events[head - 1].seq
        self.skipped += 1
        if tail:
            del self.events[head]  # the oldest of the tail: at most head + tail moved
            self.events.append(event)
        return 0


@dataclass
class Tracer:
    """Emits the events of one broker and keeps, bounded, what the leak report needs."""

    native: NativeBroker
    module_name: Callable[[int], str]
    link_label: Callable[[int], str]
    file: IO[str] | None = None
    owns_file: bool = False
    bounds: Bounds = field(default_factory=Bounds)
    # What is kept, each part bounded by `bounds`; not constructor arguments.
    # Live anonymous maps' histories, oldest map first (created by `new`).
    histories: dict[int, History] = field(init=False, default_factory=dict)
    kept: int = field(init=False, default=0)  # events in all histories (one of two maps: twice)
    histories_forgotten: int = field(init=False, default=0)  # live maps' histories let go
    unreleased: list[Event] = field(init=False, default_factory=list)  # left_open borrow_ends
    unreleased_skipped: int = field(init=False, default=0)
    counts: Counter[str] = field(init=False, default_factory=Counter)
    total: int = field(init=False, default=0)  # events seen
    recent: deque[Event] = field(init=False)
    # The call path, rebuilt from call and return events.
    _stack: list[tuple[int, str]] = field(init=False, default_factory=list)  # (link, label)
    _deeper: int = field(init=False, default=0)  # calls in progress beyond bounds.depth
    _path: tuple[str, ...] = field(init=False, default=())  # _stack's labels, shared
    _last_seq: int = field(init=False, default=0)
    _lost: bool = field(init=False, default=False)  # events dropped since the path was right
    _flag_sets: dict[int, frozenset[str]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.recent = deque(maxlen=self.bounds.recent)
        self._host = self.native.host.id
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
        self.native.trace(self.bounds.core)

    @classmethod
    def open(
        cls,
        native: NativeBroker,
        target: bool | str | Path | IO[str],
        module_name: Callable[[int], str],
        link_label: Callable[[int], str],
        bounds: Bounds | None = None,
    ) -> Tracer:
        """A tracer writing to `target` (a path or file) or, for True, only to structlog."""
        bounds = bounds or Bounds()
        if isinstance(target, (str, Path)):
            file = open(target, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
            return cls(native, module_name, link_label, file, owns_file=True, bounds=bounds)
        if target is not True and hasattr(target, "write"):
            return cls(native, module_name, link_label, target, bounds=bounds)  # type: ignore[arg-type]
        return cls(native, module_name, link_label, bounds=bounds)

    def drain(self) -> None:
        """Take the core's events and emit them."""
        while batch := self.native.take_events(TAKE_BATCH):
            for raw in batch:
                self._record(self._event(raw))

    @property
    def dropped(self) -> int:
        """Events the core could not keep (more than `bounds.core` between takes)."""
        return self.native.events_dropped()

    def _event(self, raw: RawEvent) -> Event:
        kind = EVENT_KINDS[raw.kind]
        flags = self._flag_sets.get(raw.flags)
        if flags is None:
            flags = frozenset(name for bit, name in EVENT_FLAGS.items() if raw.flags & bit)
            self._flag_sets[raw.flags] = flags
        if raw.seq != self._last_seq + 1:
            self._lost = True  # the core numbers the events it drops: a gap is a loss
        self._last_seq = raw.seq
        if kind == "call":
            if self._lost and raw.module == self._host and (self._stack or self._deeper):
                # A call from the host while the path is not empty: the calls on
                # it returned with their return events dropped.
                self._stack.clear()
                self._path, self._deeper = (), 0
            self._enter(raw.link)
        path = self._path
        if kind == "return":
            self._leave(raw.link)
        has_receiver = kind in ("move", "borrow", "share", "borrow_end", "call", "return")
        acting = kind not in RECLAIMS
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

    def _enter(self, link: int) -> None:
        if len(self._stack) >= self.bounds.depth:
            self._deeper += 1  # its events show the path down to the bound
            return
        self._stack.append((link, self.link_label(link)))
        self._path = (*self._path, self._stack[-1][1])

    def _leave(self, link: int) -> None:
        if self._deeper:
            self._deeper -= 1
            return
        # Pop down to this link's call: calls above it whose return the core
        # dropped (over its bound) end here too.  A return whose call was
        # dropped matches nothing and pops nothing.
        for depth in range(len(self._stack) - 1, -1, -1):
            if self._stack[depth][0] == link:
                del self._stack[depth:]
                self._path = self._path[:depth]
                break
        if not self._stack:
            self._lost = False

    def _record(self, event: Event) -> None:
        self.total += 1
        self.counts[event.kind] += 1
        self.recent.append(event)
        self._keep(event)
        if self._log is None and self._file_log is None:
            return
        fields = event.as_dict()
        name = event.kind
        del fields["event"]
        if self._log is not None:
            self._log.info(name, **fields)
        if self._file_log is not None:
            self._file_log.info(name, **fields)

    def _keep(self, event: Event) -> None:
        """Add the event to the histories of the live anonymous maps it names."""
        if event.kind == "borrow_end" and "left_open" in event.flags:
            if len(self.unreleased) < self.bounds.borrows:
                self.unreleased.append(event)
            else:
                self.unreleased_skipped += 1
        if event.kind in RECLAIMS:
            # Nothing names a map after its reclaim: its history goes.
            gone = self.histories.pop(event.map or 0, None)
            self.kept -= len(gone.events) if gone else 0
            return
        if event.kind == "new" and event.map:
            # Only `new` makes an anonymous map: named maps are never leaks,
            # and a map whose `new` the core dropped has no history to keep.
            old = self.histories.pop(event.map, None)  # an id reused after a lost reclaim
            self.kept += 1 - (len(old.events) if old else 0)
            self.histories[event.map] = History(event)
        else:
            for map_id in event.maps():
                history = self.histories.get(map_id)
                if history is not None:
                    self.kept += history.add(event, self.bounds.head, self.bounds.tail)
        while self.kept > self.bounds.histories:
            # Over the bound: the oldest live maps' histories go first.
            oldest = next(iter(self.histories))
            self.kept -= len(self.histories.pop(oldest).events)
            self.histories_forgotten += 1

    def history(self, map_id: int) -> list[Event]:
        """The kept events of a live anonymous map (first and latest; see `skipped`)."""
        history = self.histories.get(map_id)
        return list(history.events) if history else []

    def skipped(self, map_id: int) -> tuple[int, int]:
        """(how many of the map's events were not kept, the seq they came after)."""
        history = self.histories.get(map_id)
        return (history.skipped, history.skipped_after) if history else (0, 0)

    def count(self, kind: str) -> int:
        """How many events of this kind the tracer has seen."""
        return self.counts[kind]

    def kept_events(self) -> Iterator[Event]:
        """Every event held in memory (histories, borrows, recent), each once."""
        seen: set[int] = set()
        for events in (
            *(h.events for h in self.histories.values()),
            self.unreleased,
            self.recent,
        ):
            for event in events:
                if id(event) not in seen:
                    seen.add(id(event))
                    yield event

    def clear(self) -> None:
        """Forget everything kept (histories, borrows, counts, recent events)."""
        self.histories.clear()
        self.kept = self.histories_forgotten = 0
        self.unreleased.clear()
        self.unreleased_skipped = 0
        self.counts.clear()
        self.total = 0
        self.recent.clear()

    def close(self) -> None:
        """Take the last events, stop tracing, and close the trace file if it is ours."""
        self.drain()
        self.native.trace(0)
        if self.file is not None and not self.file.closed:
            self.file.flush()
            if self.owns_file:
                self.file.close()
