"""The leak report: maps still alive that no name explains, and who holds them.

`report()` builds what `wasi-map leaks --json` prints (docs/abi.md, "The
ownership tracer, leaks and the graph") from a snapshot of the refcount
table (broker/refs.py) and the tracer's events:

    {"leaks": [{"map": ID, "holders": [{"module": NAME, "handle": H}],
                "referenced_by": [...], "entries": N, "events": [...]}],
     "unreleased_borrows": [...], "reclaimed": N, "cycles_reclaimed": N}

The tracer keeps a bounded history per map (broker/tracer.py, `Bounds`):
where it had to leave events out, a leak also has "events_skipped":
{"count": N, "after_seq": SEQ} (the events between its first and latest
ones), and the report "not_kept": {"events_dropped": N, "histories": N,
"unreleased_borrows": N} (events the core dropped, live maps whose history
was let go, borrows only counted).  Within the bounds neither key appears.

A holder that is the host names the Python objects keeping its `MapRef`
alive (objgraph back-references), so a host-side leak points at code.
"""

from __future__ import annotations

import gc as python_gc
import types
from collections.abc import Callable
from typing import Any, NotRequired, TypedDict

from .refs import Snapshot
from .tracer import Event, Tracer

HOST = "host"

#: One event of a map's history: `Event.as_dict()` (only the fields that apply).
EventRecord = dict[str, Any]


class Holder(TypedDict):
    """A module's handle on a leaked map."""

    module: str
    handle: int
    kind: NotRequired[str]  # absent for own; "borrow" or "share"
    python: NotRequired[list[str]]  # the host's: who keeps its MapRef alive


class Referrer(TypedDict):
    """A map that holds the leaked map under a key."""

    map: int
    key: str


class EventsSkipped(TypedDict):
    """Events of a map's history the tracer did not keep."""

    count: int
    after_seq: int


class Leak(TypedDict):
    """A live map that no name explains."""

    map: int
    holders: list[Holder]
    referenced_by: list[Referrer]
    entries: int
    events: list[EventRecord]
    events_skipped: NotRequired[EventsSkipped]


class UnreleasedBorrow(TypedDict):
    """A borrow the broker ended itself: its borrower returned with it open.

    None where the tracer could not tell (a map already gone, a call path
    whose events were dropped)."""

    map: int | None
    lender: str
    handle: int | None
    borrower: str
    borrowed_handle: int | None
    export: str | None
    path: list[str]
    seq: int


class NotKept(TypedDict):
    """What the tracer's bounds left out of the report."""

    events_dropped: int
    histories: int
    unreleased_borrows: int


class LeakReport(TypedDict):
    """What `Broker.leaks()` returns and `wasi-map leaks --json` prints."""

    leaks: list[Leak]
    unreleased_borrows: list[UnreleasedBorrow]
    reclaimed: int
    cycles_reclaimed: int
    not_kept: NotRequired[NotKept]


def report(
    snapshot: Snapshot,
    tracer: Tracer | None,
    stats: dict[str, int],
    mapref_owners: dict[int, list[str]] | None = None,
) -> LeakReport:
    """The leak report as JSON-ready data."""
    leaks: list[Leak] = []
    for row in snapshot.anonymous():
        holders: list[Holder] = []
        for h in snapshot.holders(row.id):
            holder = Holder(module=h.module, handle=h.handle)
            if h.kind != "own":
                holder["kind"] = h.kind
            if h.module == HOST and mapref_owners:
                holder["python"] = mapref_owners.get(h.handle, [])
            holders.append(holder)
        entry = Leak(
            map=row.id,
            holders=holders,
            referenced_by=[
                Referrer(map=e.parent, key=e.key_text) for e in snapshot.referrers(row.id)
            ],
            entries=row.entries,
            events=[e.as_dict() for e in tracer.history(row.id)] if tracer else [],
        )
        skipped, after = tracer.skipped(row.id) if tracer else (0, 0)
        if skipped:
            entry["events_skipped"] = EventsSkipped(count=skipped, after_seq=after)
        leaks.append(entry)
    data = LeakReport(
        leaks=leaks,
        unreleased_borrows=[_borrow(e) for e in tracer.unreleased] if tracer else [],
        reclaimed=stats["reclaimed"] - stats["cycles_reclaimed"],
        cycles_reclaimed=stats["cycles_reclaimed"],
    )
    if tracer is not None:
        not_kept = NotKept(
            events_dropped=tracer.dropped,
            histories=tracer.histories_forgotten,
            unreleased_borrows=tracer.unreleased_skipped,
        )
        if any(not_kept.values()):
            data["not_kept"] = not_kept
    return data


def _borrow(e: Event) -> UnreleasedBorrow:
    """A borrow the broker ended itself (a borrow_end event flagged left_open)."""
    return UnreleasedBorrow(
        map=e.map,
        lender=e.module or "",  # a borrow_end always names both (broker/tracer.py)
        handle=e.handle,
        borrower=e.to_module or "",
        borrowed_handle=e.to_handle,
        export=e.export,
        path=list(e.path),
        seq=e.seq,
    )


def mapref_owners(
    handles: set[int], handle_of: Callable[[object], int | None]
) -> dict[int, list[str]]:
    """For each host handle in `handles`, who in Python keeps its MapRef alive (best effort).

    `handle_of(obj)` is the handle of an open MapRef of the broker asked
    about, else None: handle numbers repeat across brokers, and MapRefs of
    other brokers are left out (broker/mapref.py, `live_handle`)."""
    try:
        import objgraph
    except ImportError:  # pragma: no cover - a declared dependency
        return {}
    owners: dict[int, list[str]] = {}
    for ref in objgraph.by_type("MapRef"):
        handle = handle_of(ref)
        if handle is None or handle not in handles:
            continue
        chain = objgraph.find_backref_chain(ref, objgraph.is_proper_module, max_depth=12)
        owners.setdefault(handle, []).append(
            _describe_chain(chain) if len(chain) > 1 else _describe_referrers(ref)
        )
    return owners


def _describe_chain(chain: list[Any]) -> str:
    """module → … → MapRef as a path, e.g. 'app.cache.users' or 'app.SESSION.ref'."""
    parts: list[str] = []
    for here, there in zip(chain, chain[1:], strict=False):
        if isinstance(here, types.ModuleType):
            parts.append(here.__name__)
        elif isinstance(here, dict):
            key = next((k for k, v in here.items() if v is there), None)
            if key is not None and not (parts and parts[-1].endswith("__dict__")):
                parts.append(
                    f".{key}" if isinstance(key, str) and key.isidentifier() else f"[{key!r}]"
                )
        elif isinstance(here, (list, tuple)):
            idx = next((i for i, v in enumerate(here) if v is there), None)
            parts.append(f"[{idx}]")
        elif hasattr(here, "__dict__") and here.__dict__ is there:
            continue
        elif hasattr(here, "__dict__"):  # 3.11+: instance attributes have no dict object here
            name = next((k for k, v in vars(here).items() if v is there), None)
            parts.append(f".{name}" if name else f"<{type(here).__name__}>")
        else:
            parts.append(f"<{type(here).__name__}>")
    return "".join(parts) or "<unknown>"


def _describe_referrers(ref: Any) -> str:
    kinds = sorted({type(r).__name__ for r in python_gc.get_referrers(ref)} - {"list", "frame"})
    return "referenced by " + (", ".join(kinds) if kinds else "a local variable")


def format_text(data: LeakReport) -> str:
    """The report for people."""
    leaks, borrows = data["leaks"], data["unreleased_borrows"]
    not_kept = data.get("not_kept")
    unlisted = not_kept["unreleased_borrows"] if not_kept else 0
    lines = [
        f"{len(leaks)} map(s) still alive that are not named maps; "
        f"{len(borrows) + unlisted} borrow(s) not released; "
        f"{data['reclaimed']} map(s) reclaimed, {data['cycles_reclaimed']} by the cycle collector"
    ]
    if not_kept:
        lines.append(
            f"(the tracer's memory is bounded: {not_kept['events_dropped']} event(s) dropped "
            f"by the core, {not_kept['histories']} live map(s) without their history, "
            f"{unlisted} unreleased borrow(s) not listed)"
        )
    for leak in leaks:
        lines.append("")
        n = leak["entries"]
        lines.append(f"map {leak['map']} ({n} {'entry' if n == 1 else 'entries'})")
        for h in leak["holders"]:
            kind = f" ({h['kind']})" if "kind" in h else ""
            python = f", kept alive by {', '.join(h['python'])}" if h.get("python") else ""
            lines.append(f"  held by {h['module']} handle {h['handle']}{kind}{python}")
        for r in leak["referenced_by"]:
            lines.append(f"  referenced by map {r['map']} under key {r['key']!r}")
        if leak["events"]:
            lines.append("  history:")
            skipped = leak.get("events_skipped")
            for e in leak["events"]:
                lines.append(f"    {describe(e)}")
                if skipped and e["seq"] == skipped["after_seq"]:
                    lines.append(f"    ... {skipped['count']} event(s) not kept ...")
    for b in borrows:
        lines.append("")
        lines.append(
            f"borrow not released: map {b['map']} lent by {b['lender']} handle "
            f"{b['handle']} to {b['borrower']} (handle {b['borrowed_handle']}) in "
            f"{b['export']}; the broker ended it"
        )
    return "\n".join(lines)


def describe(event: dict[str, Any] | Event) -> str:
    """One line for an event: '#12 move producer h3 -> consumer h5 in producer.main'."""
    e = event.as_dict() if isinstance(event, Event) else event
    who = f"{e.get('module', '')} h{e['handle']}" if "handle" in e else e.get("module", "")
    text = f"#{e['seq']} {e['event']:<13} {who}".rstrip()
    if "to_module" in e:
        text += f" -> {e['to_module']}" + (f" h{e['to_handle']}" if "to_handle" in e else "")
    if e["event"] in ("set_map", "unset_map") and "other_map" in e:
        text += f" map {e['map']} -> map {e['other_map']}"
    flags = [f for f in ("left_open", "trapped", "teardown", "borrowed") if e.get(f)]
    if flags:
        text += f" ({', '.join(flags)})"
    if e.get("path"):
        text += "   in " + " > ".join(e["path"])
    return text
