"""An ownership event: the compact record the tracer keeps, the `Event` and JSON line made of it.

The tracer sees every event but shows few: a `Record` is a plain tuple of
the core's numbers plus the names and call path the event had when it
came, and an `Event` is made from one only when someone asks (a history,
`recent`, the leak report, structlog).  The trace file's lines are written
from records directly, byte for byte what `json.dumps` makes of
`Event.as_dict()` with "event" last (as structlog's JSONRenderer wrote them).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, TypeVar, overload

from ._native import EVENT_FLAGS, EVENT_KINDS

# An event as the tracer keeps it, in Event's field order:
# (seq, kind code, module name, handle, map, to_module name, to_handle,
#  other_map, path, flag bits).  Ids and flags stay numbers (0: none) until
# an Event is made; module names cannot wait, for an unloaded module's id
# is given to the next one loaded.
Record = tuple[int, int, str | None, int, int, str | None, int, int, tuple[str, ...], int]

KIND_NAMES: dict[int, str] = dict(EVENT_KINDS)
RECEIVER_KINDS = frozenset(("move", "borrow", "share", "borrow_end", "call", "return"))
RECLAIM_KINDS = frozenset(("reclaim", "cycle_reclaim"))
PATHS_KEPT = 1024  # call paths whose JSON text a trace file keeps
NAMES_KEPT = 1024  # module names quoted for a trace file (an app may load many, renamed)
K = TypeVar("K")
V = TypeVar("V")


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


class EventView(Sequence[Event]):
    """Kept records seen as Events, each made when read (`Tracer.recent`)."""

    __slots__ = ("_records",)

    def __init__(self, records: Sequence[Record]) -> None:
        self._records = records

    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, index: int) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> list[Event]: ...
    def __getitem__(self, index: int | slice) -> Event | list[Event]:
        if isinstance(index, slice):
            return [event_of(r) for r in list(self._records)[index]]
        return event_of(self._records[index])

    def __iter__(self) -> Iterator[Event]:
        return map(event_of, list(self._records))

    def __reversed__(self) -> Iterator[Event]:
        return map(event_of, reversed(list(self._records)))


class Memo(dict[K, V]):
    """A dict that makes a missing value with `make`, once: for the few flag sets, names, kinds."""

    def __init__(self, make: Callable[[K], V]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key: K) -> V:
        value = self[key] = self.make(key)
        return value


FLAG_SETS: Memo[int, frozenset[str]] = Memo(
    lambda bits: frozenset(name for bit, name in EVENT_FLAGS.items() if bits & bit)
)


def event_of(record: Record) -> Event:
    """The Event a record stands for."""
    seq, kind, module, handle, map_id, to_module, to_handle, other_map, path, flags = record
    return Event(
        seq,
        KIND_NAMES[kind],
        module,
        handle or None,
        map_id or None,
        to_module,
        to_handle or None,
        other_map or None,
        path[-1] if path else None,
        path,
        FLAG_SETS[flags],
    )


class JsonLines:
    """Writes records to a file, one JSON object per line, as json.dumps would.

    json.dumps of a dict per event (let alone structlog's processors) costs
    more than the rest of tracing; here an event's line is a few cached
    pieces: a module's name, the path of the call under way, the flags."""

    def __init__(self, file: IO[str]) -> None:
        self.file = file
        self._quoted: Memo[str, str] = Memo(json.dumps)  # module names (NAMES_KEPT at most)
        # What ends a line: the flags (true-valued keys, sorted), then "event".
        self._flags: Memo[int, str] = Memo(
            lambda bits: "".join(f", {json.dumps(name)}: true" for name in sorted(FLAG_SETS[bits]))
        )
        self._kinds: Memo[int, str] = Memo(
            lambda code: f', "event": {json.dumps(KIND_NAMES[code])}}}\n'
        )
        # A path's "export" and "path" fields: calls repeat, their paths with them.
        self._paths: Memo[tuple[str, ...], str] = Memo(
            lambda path: f', "export": {json.dumps(path[-1])}, "path": {json.dumps(list(path))}'
        )
        self._path: tuple[str, ...] = ()  # the last path seen, and its text
        self._path_text = ""

    def write(self, records: list[Record]) -> None:
        """Write the records' lines and flush: a reader sees each operation's events after it."""
        self.file.write("".join(map(self._line, records)))
        self.file.flush()

    def _quote(self, name: str) -> str:
        if len(self._quoted) >= NAMES_KEPT and name not in self._quoted:
            self._quoted.clear()  # bounded, as every cache of the tracer
        return self._quoted[name]

    def _line(self, record: Record) -> str:
        seq, kind, module, handle, map_id, to_module, to_handle, other_map, path, flags = record
        line = f'{{"seq": {seq}'
        if module is not None:
            line += f', "module": {self._quote(module)}'
        if handle:
            line += f', "handle": {handle}'
        if map_id:
            line += f', "map": {map_id}'
        if to_module is not None:
            line += f', "to_module": {self._quote(to_module)}'
        if to_handle:
            line += f', "to_handle": {to_handle}'
        if other_map:
            line += f', "other_map": {other_map}'
        if path:
            if path is not self._path:  # events of one call share its path object
                if len(self._paths) >= PATHS_KEPT:
                    self._paths.clear()
                self._path, self._path_text = path, self._paths[path]
            line += self._path_text
        return line + self._flags[flags] + self._kinds[kind]
