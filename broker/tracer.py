"""The ownership tracer: every ownership event, who caused it, and from where.

The C core records events while tracing (native/trace.c); the broker takes
them after each operation and the tracer resolves them: module names
instead of ids, and the call path (which export, called from where)
rebuilt from the core's call and return events.  Each event is emitted, a
batch at a time after each operation, as a structlog event on the logger
"wasi_map.trace" when the application has configured structlog and, given
a file, as a JSON line there.

In memory the tracer keeps only what the leak report needs, each part
bounded (`Bounds`): a short history per live anonymous map, forgotten when
the map is reclaimed; the first borrows the broker had to end; a count per
kind; and the last events, for debugging.  A traced broker's memory does
not grow with the number of events.

Tracing a real app must stay cheap (at most 1 µs an event; benchmarks/bench_gc.py
part 3 measures it): a batch of events comes out of C as plain tuples, each
is kept as a compact record (broker/trace_events.py), and an `Event` is made
only for the few someone asks for.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import structlog

from ._native import EVENT_FLAGS, EVENT_KINDS, NativeBroker
from .trace_events import (
    KIND_NAMES,
    RECEIVER_KINDS,
    RECLAIM_KINDS,
    Event,
    EventView,
    JsonLines,
    Memo,
    Record,
    event_of,
)

__all__ = ["DEFAULT_LIMIT", "TAKE_BATCH", "Bounds", "Event", "History", "Tracer"]

# Events the core buffers between two takes (native/trace.c): 56 bytes each,
# 7 MiB.  One guest call's events wait there until it returns; beyond this
# they are dropped and counted (`Tracer.dropped`).
DEFAULT_LIMIT = 1 << 17
TAKE_BATCH = 4096  # events decoded at once (a 224 KiB buffer)

# The kinds the hot loop tells apart, by code.
_CODES = {name: code for code, name in EVENT_KINDS.items()}
_NEW, _CALL, _RETURN, _BORROW_END = (_CODES[k] for k in ("new", "call", "return", "borrow_end"))
_RECLAIMS = frozenset(_CODES[k] for k in RECLAIM_KINDS)
_RECEIVERS = frozenset(_CODES[k] for k in RECEIVER_KINDS)
_LEFT_OPEN = next(bit for bit, name in EVENT_FLAGS.items() if name == "left_open")


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

    def __init__(self, first: Record) -> None:
        self.events = [first]
        self.skipped = 0
        self.skipped_after = 0  # seq of the last head event, once some are skipped

    def add(self, record: Record, head: int, tail: int) -> int:
        """Keep `record`; how many more events this history holds (0 or 1)."""
        if len(self.events) < head + tail:
            self.events.append(record)
            return 1
        if not self.skipped:
            self.skipped_after = self.events[head - 1][0]
        self.skipped += 1
        if tail:
            del self.events[head]  # the oldest of the tail: at most head + tail moved
            self.events.append(record)
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
    _unreleased: list[Record] = field(init=False, default_factory=list)  # left_open borrow_ends
    unreleased_skipped: int = field(init=False, default=0)
    total: int = field(init=False, default=0)  # events seen
    _counts: list[int] = field(init=False)  # by kind code
    _recent: deque[Record] = field(init=False)
    # The call path, rebuilt from call and return events.
    # (link, the path down to its call): a return goes back to the caller's
    # path object, so one call's events share one tuple (and its JSON text).
    _stack: list[tuple[int, tuple[str, ...]]] = field(init=False, default_factory=list)
    _deeper: int = field(init=False, default=0)  # calls in progress beyond bounds.depth
    _path: tuple[str, ...] = field(init=False, default=())  # the innermost call's path
    _last_seq: int = field(init=False, default=0)
    _lost: bool = field(init=False, default=False)  # events dropped since the path was right

    def __post_init__(self) -> None:
        self._counts = [0] * (max(KIND_NAMES) + 1)
        self._recent = deque(maxlen=self.bounds.recent)
        self._host = self.native.host.id
        # A library does not print by default: the global structlog logger is
        # used only when the application has configured structlog.
        self._log = structlog.get_logger("wasi_map.trace") if structlog.is_configured() else None
        self._lines = JsonLines(self.file) if self.file is not None else None
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
            records = self._take(batch)
            if self._log is not None:
                for record in records:
                    fields = event_of(record).as_dict()
                    self._log.info(fields.pop("event"), **fields)
            if self._lines is not None:
                self._lines.write(records)

    @property
    def dropped(self) -> int:
        """Events the core could not keep (more than `bounds.core` between takes)."""
        return self.native.events_dropped()

    @property
    def counts(self) -> Counter[str]:
        """How many events of each kind the tracer has seen."""
        return Counter({KIND_NAMES[code]: n for code, n in enumerate(self._counts) if n})

    @property
    def recent(self) -> EventView:
        """The last `bounds.recent` events, oldest first."""
        return EventView(self._recent)

    @property
    def unreleased(self) -> list[Event]:
        """The first `bounds.borrows` borrows the broker ended itself (left_open borrow_ends)."""
        return [event_of(record) for record in self._unreleased]

    def _take(self, batch: list[tuple[int, ...]]) -> list[Record]:
        """Record and keep one batch of core events (RawEvent's fields); their records.

        The hot loop of tracing: what it touches most is a local, and an
        event is one tuple; an Event is made only for structlog, when configured."""
        # Names are looked up once a batch: ids are given to new modules only
        # between operations, and a batch is taken after one.
        names: Memo[int, str] = Memo(self.module_name)
        labels: Memo[int, str] = Memo(self.link_label)  # links, likewise
        counts, histories = self._counts, self.histories
        head, tail, limit = self.bounds.head, self.bounds.tail, self.bounds.histories
        records: list[Record] = []
        expected, path, kept = self._last_seq + 1, self._path, self.kept
        for seq, map_id, other_map, kind, module, handle, other, other_handle, link, flags in batch:
            if seq != expected:
                self._lost = True  # the core numbers the events it drops: a gap is a loss
            expected = seq + 1
            counts[kind] += 1
            if kind == _CALL:
                path = self._call(module, link, labels[link])
            record: Record = (
                seq,
                kind,
                None if kind in _RECLAIMS else names[module],
                handle,
                map_id,
                names[other] if kind in _RECEIVERS else None,
                other_handle,
                other_map,
                path,
                flags,
            )
            records.append(record)
            if kind == _RETURN:
                path = self._leave(link)
            # The histories of the live anonymous maps the event names.
            if kind == _NEW:
                if map_id:
                    # Only `new` makes an anonymous map: named maps are never leaks,
                    # and a map whose `new` the core dropped has no history to keep.
                    old = histories.pop(map_id, None)  # an id reused after a lost reclaim
                    kept += 1 - (len(old.events) if old else 0)
                    histories[map_id] = History(record)
            elif kind in _RECLAIMS:
                # Nothing names a map after its reclaim: its history goes.
                gone = histories.pop(map_id, None)
                kept -= len(gone.events) if gone else 0
                continue
            else:
                if kind == _BORROW_END and flags & _LEFT_OPEN:
                    self._left_open(record)
                if map_id and (history := histories.get(map_id)) is not None:
                    kept += history.add(record, head, tail)
                if (
                    other_map
                    and other_map != map_id
                    and (history := histories.get(other_map)) is not None
                ):
                    kept += history.add(record, head, tail)
            if kept > limit:
                kept = self._forget(kept)
        self._recent.extend(records)
        self.total += len(batch)
        self._last_seq, self.kept = expected - 1, kept
        return records

    def _call(self, module: int, link: int, label: str) -> tuple[str, ...]:
        """Enter a call through `link`; the path of the events inside it."""
        stack = self._stack
        if self._lost and module == self._host and (stack or self._deeper):
            # A call from the host while the path is not empty: the calls on
            # it returned with their return events dropped.
            stack.clear()
            self._path, self._deeper = (), 0
        if len(stack) >= self.bounds.depth:
            self._deeper += 1  # its events show the path down to the bound
            return self._path
        self._path = path = (*self._path, label)
        stack.append((link, path))
        return path

    def _leave(self, link: int) -> tuple[str, ...]:
        """Return from a call through `link`; the path after it."""
        if self._deeper:
            self._deeper -= 1
            return self._path
        # Pop down to this link's call (the innermost, but for losses): calls
        # above it whose return the core dropped (over its bound) end here
        # too.  A return whose call was dropped matches nothing, pops nothing.
        stack = self._stack
        depth = len(stack) - 1
        while depth >= 0 and stack[depth][0] != link:
            depth -= 1
        if depth >= 0:
            del stack[depth:]
            self._path = stack[-1][1] if stack else ()
        if not stack:
            self._lost = False
        return self._path

    def _left_open(self, record: Record) -> None:
        """A borrow the broker ended itself: the report lists the first `bounds.borrows`."""
        if len(self._unreleased) < self.bounds.borrows:
            self._unreleased.append(record)
        else:
            self.unreleased_skipped += 1

    def _forget(self, kept: int) -> int:
        """Over the bound: the oldest live maps' histories go first; what stays kept."""
        while kept > self.bounds.histories:
            oldest = next(iter(self.histories))
            kept -= len(self.histories.pop(oldest).events)
            self.histories_forgotten += 1
        return kept

    def history(self, map_id: int) -> list[Event]:
        """The kept events of a live anonymous map (first and latest; see `skipped`)."""
        history = self.histories.get(map_id)
        return [event_of(r) for r in history.events] if history else []

    def skipped(self, map_id: int) -> tuple[int, int]:
        """(how many of the map's events were not kept, the seq they came after)."""
        history = self.histories.get(map_id)
        return (history.skipped, history.skipped_after) if history else (0, 0)

    def count(self, kind: str) -> int:
        """How many events of this kind the tracer has seen."""
        code = _CODES.get(kind)
        return self._counts[code] if code is not None else 0

    def kept_events(self) -> Iterator[Event]:
        """Every event held in memory (histories, borrows, recent), each once."""
        seen: set[int] = set()
        for records in (
            *(h.events for h in self.histories.values()),
            self._unreleased,
            self._recent,
        ):
            for record in records:
                if id(record) not in seen:
                    seen.add(id(record))
                    yield event_of(record)

    def clear(self) -> None:
        """Forget everything kept (histories, borrows, counts, recent events)."""
        self.histories.clear()
        self.kept = self.histories_forgotten = 0
        self._unreleased.clear()
        self.unreleased_skipped = 0
        self._counts = [0] * len(self._counts)
        self.total = 0
        self._recent.clear()

    def close(self) -> None:
        """Take the last events, stop tracing, and close the trace file if it is ours."""
        self.drain()
        self.native.trace(0)
        if self.file is not None and not self.file.closed:
            self.file.flush()
            if self.owns_file:
                self.file.close()
