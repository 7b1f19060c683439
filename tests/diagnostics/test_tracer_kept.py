"""What the tracer keeps of the core events it is fed, and its call path when the core
drops call or return events (hand-made events, to lose some on purpose).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from trace_bounds import SMALL, held

from broker._native import EVENT_FLAGS, EVENT_KINDS, RawEvent
from broker.tracer import Event, Tracer


class FakeCore:
    """Stands in for the C core: hands the tracer the raw events a test made."""

    def __init__(self) -> None:
        self.host = type("Host", (), {"id": 0})()
        self.pending: list[RawEvent] = []
        self.limit = 0

    def trace(self, limit: int) -> None:
        self.limit = limit

    def take_events(self, cap: int) -> list[tuple[int, ...]]:
        batch, self.pending = self.pending[:cap], self.pending[cap:]
        return batch

    def events_dropped(self) -> int:
        return 0


KIND = {name: code for code, name in EVENT_KINDS.items()}
FLAG = {name: bit for bit, name in EVENT_FLAGS.items()}


def raw(
    seq: int,
    kind: str,
    *,
    module: int = 1,
    map_id: int = 0,
    other_map: int = 0,
    link: int = 0,
    flags: str = "",
) -> RawEvent:
    """A core event as the C core hands it over (ids, not names)."""
    bits = FLAG[flags] if flags else 0
    return RawEvent(
        seq=seq,
        map=map_id,
        other_map=other_map,
        kind=KIND[kind],
        module=module,
        handle=7,
        other_module=2,
        other_handle=9,
        link=link,
        flags=bits,
    )


@pytest.fixture
def fed() -> Iterator[tuple[FakeCore, Tracer]]:
    """A tracer with SMALL bounds over a fake core."""
    core = FakeCore()
    tracer = Tracer(core, lambda m: f"m{m}", lambda link: f"m{link}.f", bounds=SMALL)  # type: ignore[arg-type]
    yield core, tracer


def feed(fed: tuple[FakeCore, Tracer], *events: RawEvent) -> Tracer:
    core, tracer = fed
    core.pending += events
    tracer.drain()
    return tracer


class TestKept:
    """What the tracer keeps of the events it is fed, and what it lets go."""

    def test_reclaim_forgets(self, fed: tuple[FakeCore, Tracer]) -> None:
        """A map's history goes at its reclaim (by counting or by the collector)."""
        t = feed(fed, raw(1, "new", map_id=1), raw(2, "new", map_id=2), raw(3, "close", map_id=1))
        assert [e.kind for e in t.history(1)] == ["new", "close"] and t.kept == 3
        feed(fed, raw(4, "reclaim", map_id=1), raw(5, "cycle_reclaim", map_id=2))
        assert t.histories == {} and t.kept == 0
        assert t.count("new") == 2 and t.total == 5

    def test_event_of_two_maps(self, fed: tuple[FakeCore, Tracer]) -> None:
        """set_map and get_map go to the parent's and the child's history; a self-set, once."""
        t = feed(
            fed,
            raw(1, "new", map_id=1),
            raw(2, "new", map_id=2),
            raw(3, "set_map", map_id=1, other_map=2),
            raw(4, "get_map", map_id=2, other_map=1),
            raw(5, "set_map", map_id=1, other_map=1),
        )
        assert [e.seq for e in t.history(1)] == [1, 3, 4, 5]
        assert [e.seq for e in t.history(2)] == [2, 3, 4]
        assert t.kept == 7

    def test_reclaimed_map_not_brought_back(self, fed: tuple[FakeCore, Tracer]) -> None:
        """An event naming a reclaimed map (or a named one) starts no history for it."""
        t = feed(
            fed,
            raw(1, "new", map_id=1),
            raw(2, "new", map_id=2),
            raw(3, "set_map", map_id=1, other_map=2),
            raw(4, "reclaim", map_id=1),
            raw(5, "unset_map", map_id=1, other_map=2),
            raw(6, "open", map_id=3),
        )
        assert sorted(t.histories) == [2]
        assert [e.seq for e in t.history(2)] == [2, 3, 5]

    def test_oldest_histories_go_first(self, fed: tuple[FakeCore, Tracer]) -> None:
        """Over `histories` events in all, the oldest live maps' histories are let go."""
        t = feed(fed, *(raw(seq, "new", map_id=seq) for seq in range(1, 3001)))
        assert t.kept == len(t.histories) == SMALL.histories
        assert min(t.histories) == 3001 - SMALL.histories
        assert t.histories_forgotten == 3000 - SMALL.histories

    def test_unreleased_borrows_bounded(self, fed: tuple[FakeCore, Tracer]) -> None:
        """The first `borrows` borrows the broker ended are listed; the rest are counted."""
        ends = [raw(seq, "borrow_end", map_id=1, flags="left_open") for seq in range(1, 11)]
        t = feed(fed, *ends, raw(11, "borrow_end", map_id=1))
        assert [e.seq for e in t.unreleased] == [1, 2, 3, 4]
        assert t.unreleased_skipped == 6

    def test_recent_and_clear(self, fed: tuple[FakeCore, Tracer]) -> None:
        """recent is the last `recent` events; clear() forgets everything kept."""
        t = feed(fed, *(raw(seq, "new", map_id=seq) for seq in range(1, 1001)))
        assert [e.seq for e in t.recent] == list(range(745, 1001))
        t.clear()
        assert (t.total, t.kept, held(t), len(t.counts)) == (0, 0, 0, 0)


class TestRecords:
    """Events are kept as compact records; an Event is made only when someone reads one."""

    def test_names_as_they_were(self, fed: tuple[FakeCore, Tracer]) -> None:
        """A module id given to another module later: kept events keep the name of their time."""
        core, _ = fed
        names = {1: "a", 2: "b"}
        t = Tracer(core, names.__getitem__, lambda link: f"l{link}", bounds=SMALL)  # type: ignore[arg-type]
        feed((core, t), raw(1, "new", map_id=1))
        names[1] = "c"  # "a" unloaded, its id reused
        feed((core, t), raw(2, "close", map_id=1), raw(3, "move", map_id=1))
        assert [(e.module, e.to_module) for e in t.history(1)] == [
            ("a", None),
            ("c", None),
            ("c", "b"),
        ]

    def test_recent_is_a_view(self, fed: tuple[FakeCore, Tracer]) -> None:
        """recent reads as a sequence of Events, and follows what comes after it was read."""
        t = feed(fed, raw(1, "new", map_id=1))
        recent = t.recent
        feed(fed, raw(2, "close", map_id=1, flags="borrowed"))
        assert len(recent) == 2 and recent[-1].flags == frozenset({"borrowed"})
        assert [e.seq for e in recent[0:2]] == [1, 2] == [e.seq for e in recent]
        assert recent[0] == Event(seq=1, kind="new", module="m1", handle=7, map=1, to_handle=9)

    def test_each_kept_once(self, fed: tuple[FakeCore, Tracer]) -> None:
        """A borrow left open is in the map's history, the borrows and recent: held once."""
        t = feed(fed, raw(1, "new", map_id=1), raw(2, "borrow_end", map_id=1, flags="left_open"))
        (borrow,) = t.unreleased
        assert (borrow.seq, borrow.to_module, borrow.flags) == (2, "m2", frozenset({"left_open"}))
        assert [e.seq for e in t.history(1)] == [1, 2]
        assert sorted(e.seq for e in t.kept_events()) == [1, 2] and held(t) == 2

    def test_counts(self, fed: tuple[FakeCore, Tracer]) -> None:
        """counts by kind name, only the kinds seen; count() of a kind never seen is 0."""
        t = feed(fed, raw(1, "new", map_id=1), raw(2, "close", map_id=1), raw(3, "new"))
        assert t.counts == {"new": 2, "close": 1}
        assert (t.count("new"), t.count("share"), t.count("no such kind")) == (2, 0, 0)


class TestCallPath:
    """The call path stays bounded and right when the core drops call or return events."""

    def test_lost_return_ends_with_its_caller(self, fed: tuple[FakeCore, Tracer]) -> None:
        """A return whose inner calls' returns were dropped ends them too."""
        t = feed(fed, raw(1, "call", module=0, link=1), raw(2, "call", link=2))
        # seq 3, the return of link 2, was dropped
        feed(fed, raw(4, "return", module=0, link=1), raw(5, "new", map_id=1))
        assert t.history(1)[0].path == ()
        assert t._stack == []

    def test_host_call_after_a_loss_starts_afresh(self, fed: tuple[FakeCore, Tracer]) -> None:
        """A call from the host after dropped events starts from an empty path."""
        t = feed(fed, raw(1, "call", module=0, link=1), raw(2, "new", map_id=1))
        # seq 3..9 dropped, the return of link 1 among them
        feed(fed, raw(10, "call", module=0, link=1), raw(11, "new", map_id=2))
        assert t.history(2)[0].path == ("m1.f",)
        feed(fed, raw(12, "return", module=0, link=1))
        assert t._stack == []

    def test_depth_bounded(self, fed: tuple[FakeCore, Tracer]) -> None:
        """Past `depth` nested calls the path stops growing; the returns unwind it all."""
        calls = [raw(seq, "call", link=seq) for seq in range(1, 101)]
        t = feed(fed, *calls, raw(101, "new", map_id=1))
        assert t.history(1)[0].path == tuple(f"m{link}.f" for link in range(1, SMALL.depth + 1))
        feed(fed, *(raw(202 - link, "return", link=link) for link in range(100, 0, -1)))
        assert (t._stack, t._path, t._deeper) == ([], (), 0)
