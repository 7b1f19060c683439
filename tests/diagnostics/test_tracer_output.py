"""Where the tracer's events go: the event stream as a whole, structlog's logger
"wasi_map.trace", and a file of one JSON object per event.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from held_back_apps import ATLAS, LEAKY, events, h, without_seq
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from broker import Broker
from broker._native import EVENT_KINDS
from broker.cli import main
from broker.trace_events import PATHS_KEPT, JsonLines, Record, event_of
from broker.tracer import Event

# The ownership events the issue names, as the tracer spells them.
ISSUE_KINDS = {
    "new",
    "open",
    "clone",
    "close",
    "move",
    "borrow",
    "borrow_end",
    "share",
    "set_map",
    "reclaim",
    "cycle_reclaim",
    "teardown",
}
# ... and the rest docs/abi.md lists.
ALL_KINDS = ISSUE_KINDS | {"get_map", "unset_map", "call", "return"}


class TestStream:
    """The event stream as a whole."""

    def test_taken_after_each_host_operation(self) -> None:
        """docs/abi.md: "The broker takes the events after each operation" - host ones too."""
        with Broker(trace=True) as b:
            assert b.tracer is not None
            m = b.new_map()
            assert [e.kind for e in b.tracer.recent] == ["new"]
            m[b"k"] = b"v"
            m.close()
            assert [e.kind for e in b.tracer.recent] == ["new", "close", "reclaim"]

    def test_taken_after_calls_and_collections(self, leaky: Broker) -> None:
        """After a call or a collection the tracer has seen every event so far."""
        assert leaky.tracer is not None
        assert leaky.tracer.recent[-1].kind == "cycle_reclaim"
        n = leaky.tracer.total
        assert n == leaky.tracer.recent[-1].seq
        leaky.collect()
        assert leaky.tracer.total == n

    def test_every_issue_kind_occurs(self, leaky: Broker) -> None:
        """One leaky run, a share and an unload produce every kind the issue names."""
        leaky.unload("b")
        assert leaky.tracer is not None
        kinds = set(leaky.tracer.counts)
        with Broker.from_manifest(ATLAS, trace=True) as other:
            other.call("loader.main")
            assert other.tracer is not None
            kinds |= set(other.tracer.counts)
        assert kinds >= ISSUE_KINDS
        assert kinds <= ALL_KINDS

    def test_seq_increases(self, leaky: Broker) -> None:
        """Events come in order, numbered 1, 2, 3, ... with none dropped."""
        assert leaky.tracer is not None
        seqs = [e.seq for e in leaky.tracer.recent]
        assert seqs == list(range(1, leaky.tracer.total + 1))
        assert leaky.tracer.dropped == 0

    def test_export_is_the_innermost_step(self, leaky: Broker) -> None:
        """Inside a call, export is the last step of the path; outside, both are empty."""
        assert leaky.tracer is not None
        for e in leaky.tracer.recent:
            assert e.export == (e.path[-1] if e.path else None)

    def test_call_path_nests(self, leaky: Broker) -> None:
        """call / return bracket each call through a link; paths nest outermost first."""
        assert leaky.tracer is not None
        calls = [(e.kind, e.path) for e in leaky.tracer.recent if e.kind in ("call", "return")]
        assert calls[:4] == [
            ("call", ("a.main",)),
            ("call", ("a.main", "b.take")),
            ("return", ("a.main", "b.take")),
            ("call", ("a.main", "b.peek")),
        ]
        assert calls[-1] == ("return", ("a.main",))
        first = leaky.tracer.recent[0].as_dict()
        assert without_seq(first) == {
            "event": "call",
            "module": "host",
            "to_module": "a",
            "export": "a.main",
            "path": ["a.main"],
        }

    def test_history_by_map(self, leaky: Broker) -> None:
        """history(map) is every event naming a live anonymous map, as parent or child too."""
        assert leaky.tracer is not None
        assert [e.kind for e in leaky.tracer.history(6)] == ["new", "set_map", "close"]
        assert [e.kind for e in leaky.tracer.history(1)] == ["new", "move"]

    def test_history_forgotten_at_reclaim(self, leaky: Broker) -> None:
        """A reclaimed map's history goes with it (map 2 by counting, 3 and 4 by the collector)."""
        assert leaky.tracer is not None
        assert leaky.tracer.history(2) == leaky.tracer.history(3) == []
        assert sorted(leaky.tracer.histories) == [1, 6, 7]

    def test_named_maps_have_no_history(self, leaky: Broker) -> None:
        """Named maps are never leaks: the tracer keeps no history for map 5."""
        assert leaky.tracer is not None
        assert leaky.tracer.history(5) == []
        assert leaky.tracer.count("open") == 1

    def test_count_by_kind(self, leaky: Broker) -> None:
        """count(kind) counts every event seen, kept or not."""
        assert leaky.tracer is not None
        assert leaky.tracer.count("cycle_reclaim") == 2
        assert leaky.tracer.count("borrow") == len(events(leaky, "borrow"))
        assert sum(leaky.tracer.counts.values()) == leaky.tracer.total

    def test_event_as_dict(self) -> None:
        """Only the fields that apply are written; flags are true-valued keys."""
        e = Event(seq=3, kind="close", module="m", handle=5, map=2, flags=frozenset({"teardown"}))
        assert e.as_dict() == {
            "seq": 3,
            "event": "close",
            "module": "m",
            "handle": 5,
            "map": 2,
            "teardown": True,
        }


class TestStructlog:
    """Events go to structlog's logger "wasi_map.trace" when structlog is configured."""

    def test_captured_events(self) -> None:
        """Each event is one structlog event named by its kind, with the same fields."""
        with capture_logs() as logs, Broker.from_manifest(LEAKY, trace=True) as b:
            b.call("a.main")
            b.collect()
            assert b.tracer is not None
            kept = [e.as_dict() for e in b.tracer.recent]
        assert len(logs) == len(kept) > 0
        for log, event in zip(logs, kept, strict=True):
            assert log.pop("log_level") == "info"
            assert log == event
        move = next(log for log in logs if log["event"] == "move")
        assert (move["module"], move["handle"], move["map"], move["export"], move["path"]) == (
            "a",
            h(0),
            1,
            "b.take",
            ["a.main", "b.take"],
        )
        assert {log["event"] for log in logs} >= ISSUE_KINDS - {"share", "teardown"}

    def test_unconfigured_structlog_prints_nothing(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A library does not print: without structlog configured, trace=True only records."""
        assert not structlog.is_configured()
        with Broker.from_manifest(LEAKY, trace=True) as b:
            b.call("a.main")
            assert b.tracer is not None and b.tracer.total > 0
        assert capsys.readouterr() == ("", "")

    def test_tracer_off_records_nothing(self) -> None:
        """trace=False (the default): no tracer, nothing logged, no history in the report."""
        with capture_logs() as logs, Broker.from_manifest(LEAKY) as b:
            b.call("a.main")
            b.collect()
            assert b.tracer is None
            report = b.leaks()
        assert logs == []
        assert all(entry["events"] == [] for entry in report["leaks"])
        assert report["unreleased_borrows"] == []


class TestFile:
    """Given a file, the tracer writes one JSON object per event and line."""

    def test_path(self, tmp_path: Path) -> None:
        """Broker(trace="x.jsonl"): the file holds every event, closed with the broker."""
        path = tmp_path / "x.jsonl"
        with Broker.from_manifest(LEAKY, trace=path) as b:
            b.call("a.main")
            b.collect()
            assert b.tracer is not None
            kept = [e.as_dict() for e in b.tracer.recent]
        lines = path.read_text().splitlines()
        assert [json.loads(line) for line in lines] == kept
        move = json.loads(next(line for line in lines if '"move"' in line))
        assert {"event", "seq", "module", "handle", "map", "export", "path"} <= set(move)

    def test_lines_as_structlog_wrote_them(self, tmp_path: Path) -> None:
        """Each line is, byte for byte, what structlog's JSONRenderer made of the event."""
        path = tmp_path / "x.jsonl"
        with Broker.from_manifest(LEAKY, trace=path) as b:
            b.call("a.main")
            b.collect()
            b.unload("b")  # teardown flags
            assert b.tracer is not None
            kept = [e.as_dict() for e in b.tracer.recent]
        render = structlog.processors.JSONRenderer(sort_keys=False)
        wrote = []
        for fields in kept:
            kind = fields.pop("event")
            wrote.append(render(None, "info", {**fields, "event": kind}))
        assert path.read_text().splitlines() == wrote
        flags = {key for fields in kept for key, value in fields.items() if value is True}
        assert flags == {"left_open", "borrowed", "teardown"}

    def test_flushed_after_each_operation(self, tmp_path: Path) -> None:
        """A reader of the file sees an operation's events once it returns."""
        path = tmp_path / "x.jsonl"
        with Broker(trace=path) as b:
            m = b.new_map()
            assert [json.loads(line)["event"] for line in path.read_text().splitlines()] == ["new"]
            m.close()
            assert len(path.read_text().splitlines()) == 3

    def test_string_path(self, tmp_path: Path) -> None:
        """A str path works too."""
        path = tmp_path / "x.jsonl"
        with Broker(trace=str(path)) as b:
            b.new_map().close()
        assert [json.loads(line)["event"] for line in path.read_text().splitlines()] == [
            "new",
            "close",
            "reclaim",
        ]

    def test_open_file_is_left_open(self) -> None:
        """An open file is written and flushed, not closed: it belongs to the caller."""
        buf = io.StringIO()
        with Broker(trace=buf) as b:
            b.new_map().close()
        assert not buf.closed
        assert [json.loads(line)["event"] for line in buf.getvalue().splitlines()] == [
            "new",
            "close",
            "reclaim",
        ]

    def test_file_and_structlog_together(self, tmp_path: Path) -> None:
        """With structlog configured, the file still gets JSON lines."""
        path = tmp_path / "x.jsonl"
        with capture_logs() as logs, Broker(trace=path) as b:
            b.new_map().close()
        assert [log["event"] for log in logs] == ["new", "close", "reclaim"]
        assert len(path.read_text().splitlines()) == 3

    def test_cli_trace_process(self, tmp_path: Path) -> None:
        """`wasi-map run ... --trace FILE`: JSON lines with module, handle, map, export, path."""
        path = tmp_path / "run.jsonl"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "broker.cli",
                "run",
                str(LEAKY),
                "--call",
                "a.main",
                "--trace",
                str(path),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (done.returncode, done.stdout, done.stderr) == (0, "0\n", "")
        records = [json.loads(line) for line in path.read_text().splitlines()]
        assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
        move = next(r for r in records if r["event"] == "move")
        assert without_seq(move) == {
            "event": "move",
            "module": "a",
            "handle": h(0),
            "map": 1,
            "to_module": "b",
            "to_handle": h(0),
            "export": "b.take",
            "path": ["a.main", "b.take"],
        }
        kinds = {r["event"] for r in records}
        assert {"new", "open", "clone", "close", "move", "borrow", "borrow_end"} <= kinds
        assert {"set_map", "reclaim"} <= kinds

    def test_cli_leaks_trace(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """`wasi-map leaks --trace FILE` also writes the collection's cycle_reclaim events."""
        path = tmp_path / "leaks.jsonl"
        assert main(["leaks", str(LEAKY), "--call", "a.main", "--trace", str(path)]) == 1
        capsys.readouterr()
        records = [json.loads(line) for line in path.read_text().splitlines()]
        assert sorted(r["map"] for r in records if r["event"] == "cycle_reclaim") == [3, 4]

    def test_cli_writes_nothing_but_the_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The command line prints results only; the events go to the file."""
        path = tmp_path / "run.jsonl"
        assert main(["run", str(LEAKY), "--call", "a.main", "--trace", str(path)]) == 0
        assert capsys.readouterr() == ("0\n", "")
        assert path.read_text().count("\n") > 10


# A kept record (broker/trace_events.py `Record`) of any shape the core can make.
_names = st.one_of(st.none(), st.text(min_size=1, max_size=8))
_ids = st.one_of(st.just(0), st.integers(1, (1 << 64) - 1))
_handles = st.one_of(st.just(0), st.integers(1, (1 << 32) - 1))
records = st.tuples(
    st.integers(1, (1 << 64) - 1),
    st.sampled_from(sorted(EVENT_KINDS)),
    _names,
    _handles,
    _ids,
    _names,
    _handles,
    _ids,
    st.lists(st.text(min_size=1, max_size=12), max_size=4).map(tuple),
    st.integers(0, (1 << 4) - 1),
)


class TestJsonLines:
    """The trace file's lines are made from records, as json.dumps makes them from Events."""

    @given(st.lists(records, max_size=20))
    def test_as_json_dumps(self, batch: list[Record]) -> None:
        """Any record: its line is json.dumps of its Event's fields with "event" last."""
        buf = io.StringIO()
        JsonLines(buf).write(batch)
        want = []
        for record in batch:
            fields = event_of(record).as_dict()
            kind = fields.pop("event")
            want.append(json.dumps({**fields, "event": kind}) + "\n")
        assert buf.getvalue() == "".join(want)

    def test_many_paths(self) -> None:
        """More call paths than the writer keeps the text of: each line still right."""
        batch: list[Record] = [
            (seq, 1, "m", 0, 0, None, 0, 0, ("m.main", f"m.f{seq % (PATHS_KEPT + 7)}"), 0)
            for seq in range(1, 3 * PATHS_KEPT)
        ]
        buf = io.StringIO()
        JsonLines(buf).write(batch)
        lines = [json.loads(line) for line in buf.getvalue().splitlines()]
        assert [line["path"][-1] for line in lines] == [r[8][-1] for r in batch]
