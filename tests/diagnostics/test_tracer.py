"""The ownership tracer (broker/tracer.py): every ownership event, who, where, and from where.

Runs the held-back apps tests/apps/leaky (a -> b: own, borrow, clone, a
named map, a garbage cycle) and tests/apps/atlas (loader -> index, sink:
share, an own result, borrow:r), and the xmod guests for the host's side.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from paths import APPS, GUESTS
from structlog.testing import capture_logs

from broker import Borrow, Broker, GuestTrap, Share
from broker.cli import main
from broker.tracer import Event

LEAKY = APPS / "leaky" / "app.toml"
ATLAS = APPS / "atlas" / "app.toml"

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


def h(index: int, gen: int = 1) -> int:
    """A handle number: slot index in the low 21 bits, generation above (docs/abi.md)."""
    return gen << 21 | index


@pytest.fixture(autouse=True)
def fresh_structlog() -> Iterator[None]:
    """structlog's global configuration as a library finds it (capture_logs leaves it set)."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture
def atlas() -> Iterator[Broker]:
    """The atlas app after loader.main, traced."""
    with Broker.from_manifest(ATLAS, trace=True) as b:
        assert b.call("loader.main") == 0
        yield b


def events(b: Broker, kind: str, **match: Any) -> list[dict[str, Any]]:
    """The broker's events of one kind whose fields include `match`, as dicts."""
    assert b.tracer is not None
    out = []
    for e in b.tracer.recent:
        d = e.as_dict()
        if d["event"] == kind and all(d.get(k) == v for k, v in match.items()):
            out.append(d)
    return out


def one(b: Broker, kind: str, **match: Any) -> dict[str, Any]:
    (found,) = events(b, kind, **match)
    return found


def without_seq(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != "seq"}


def at(*path: str) -> dict[str, Any]:
    """The export and path fields of an event inside the call `path`."""
    return {"export": path[-1], "path": list(path)}


class TestEventKinds:
    """Each kind of event, with its module, handle, map, export and call path."""

    def test_new(self, leaky: Broker) -> None:
        """new: the module and the handle it got, in the export that ran."""
        assert without_seq(one(leaky, "new", map=1)) == {
            "event": "new",
            "module": "a",
            "handle": h(0),
            "map": 1,
            "export": "a.main",
            "path": ["a.main"],
        }

    def test_open(self, leaky: Broker) -> None:
        """open: a named map opened by a guest."""
        assert without_seq(one(leaky, "open")) == {
            "event": "open",
            "module": "a",
            "handle": h(1, 2),
            "map": 5,
            "export": "a.main",
            "path": ["a.main"],
        }

    def test_move(self, leaky: Broker) -> None:
        """move: from a's handle to b's, inside b.take called from a.main."""
        assert without_seq(one(leaky, "move")) == {
            "event": "move",
            "module": "a",
            "handle": h(0),
            "map": 1,
            "to_module": "b",
            "to_handle": h(0),
            "export": "b.take",
            "path": ["a.main", "b.take"],
        }

    def test_borrow_and_end(self, leaky: Broker) -> None:
        """borrow / borrow_end: the lender, the borrower's handle; left_open when not closed."""
        assert without_seq(one(leaky, "borrow", map=2)) == {
            "event": "borrow",
            "module": "a",
            "handle": h(0, 2),
            "map": 2,
            "to_module": "b",
            "to_handle": h(1),
            "export": "b.peek",
            "path": ["a.main", "b.peek"],
        }
        assert without_seq(one(leaky, "borrow_end", map=2)) == {
            "event": "borrow_end",
            "module": "a",
            "handle": h(0, 2),
            "map": 2,
            "to_module": "b",
            "to_handle": h(1),
            "export": "b.peek",
            "path": ["a.main", "b.peek"],
            "left_open": True,
        }
        closed_by_callee = one(leaky, "borrow_end", map=7)
        assert "left_open" not in closed_by_callee
        assert closed_by_callee["path"] == ["a.main", "b.stash"]

    def test_clone(self, leaky: Broker) -> None:
        """clone: the new handle, in the callee that keeps a borrowed map."""
        clone = one(leaky, "clone")
        assert (clone["module"], clone["handle"], clone["map"]) == ("b", h(2), 7)
        assert (clone["export"], clone["path"]) == ("b.stash", ["a.main", "b.stash"])

    def test_close(self, leaky: Broker) -> None:
        """close: an owning handle, and a borrowed one (flagged), each where it ran."""
        assert [without_seq(e) for e in events(leaky, "close", map=7)] == [
            {
                "event": "close",
                "module": "b",
                "handle": h(1, 2),
                "map": 7,
                "export": "b.stash",
                "path": ["a.main", "b.stash"],
                "borrowed": True,
            },
            {
                "event": "close",
                "module": "a",
                "handle": h(1, 3),
                "map": 7,
                "export": "a.main",
                "path": ["a.main"],
            },
        ]

    def test_set_map(self, leaky: Broker) -> None:
        """set_map: the parent (map) and the child (other_map), through the module's handle."""
        assert without_seq(one(leaky, "set_map", map=5)) == {
            "event": "set_map",
            "module": "a",
            "handle": h(1, 2),
            "map": 5,
            "other_map": 6,
            "export": "a.main",
            "path": ["a.main"],
        }

    def test_reclaim(self, leaky: Broker) -> None:
        """reclaim: the map, right after the close that dropped its count to zero."""
        reclaim = one(leaky, "reclaim", map=2)
        assert without_seq(reclaim) == {
            "event": "reclaim",
            "map": 2,
            "export": "a.main",
            "path": ["a.main"],
        }
        close = one(leaky, "close", map=2)
        assert reclaim["seq"] == close["seq"] + 1

    def test_cycle_reclaim(self, leaky: Broker) -> None:
        """cycle_reclaim: the maps of the garbage cycle, by the collector outside any call."""
        assert [without_seq(e) for e in events(leaky, "cycle_reclaim")] == [
            {"event": "cycle_reclaim", "map": 3},
            {"event": "cycle_reclaim", "map": 4},
        ] or [without_seq(e) for e in events(leaky, "cycle_reclaim")] == [
            {"event": "cycle_reclaim", "map": 4},
            {"event": "cycle_reclaim", "map": 3},
        ]

    def test_share(self, atlas: Broker) -> None:
        """share: loader keeps its handle, sink gets its own, inside sink.keep."""
        shares = events(atlas, "share")
        assert [without_seq(e) for e in shares] == [
            {
                "event": "share",
                "module": "loader",
                "handle": shares[0]["handle"],
                "map": 15,
                "to_module": "sink",
                "to_handle": h(0),
                "export": "sink.keep",
                "path": ["loader.main", "sink.keep"],
            },
            {
                "event": "share",
                "module": "loader",
                "handle": shares[1]["handle"],
                "map": 16,
                "to_module": "sink",
                "to_handle": h(1),
                "export": "sink.keep",
                "path": ["loader.main", "sink.keep"],
            },
        ]
        holders = {(x.module, x.map) for x in atlas.snapshot().handles}
        assert {("loader", 15), ("sink", 15), ("loader", 16), ("sink", 16)} <= holders

    def test_own_result(self, atlas: Broker) -> None:
        """An own result is a move from the callee back to the caller, in the callee's export."""
        move = one(atlas, "move", map=19)
        assert (move["module"], move["to_module"]) == ("index", "loader")
        assert move["path"] == ["loader.main", "index.fresh"]
        new = one(atlas, "new", map=19)
        assert (new["module"], new["path"]) == ("index", ["loader.main", "index.fresh"])

    def test_read_only_borrow(self, atlas: Broker) -> None:
        """borrow:r then clone: sink keeps a read-only handle to map 17."""
        borrow = one(atlas, "borrow", map=17)
        assert (borrow["module"], borrow["to_module"], borrow["path"]) == (
            "loader",
            "sink",
            ["loader.main", "sink.copy"],
        )
        (kept,) = [x for x in atlas.snapshot().handles if x.module == "sink" and x.map == 17]
        assert kept.rights_text == "r"

    def test_teardown(self, leaky: Broker) -> None:
        """Unloading b: teardown, then each of b's handles closed (flagged), then reclaims."""
        assert leaky.tracer is not None
        start = leaky.tracer.recent[-1].seq
        leaky.unload("b")
        tail = [without_seq(e.as_dict()) for e in leaky.tracer.recent if e.seq > start]
        assert tail[0] == {"event": "teardown", "module": "b"}
        assert sorted((e["event"], e.get("handle"), e.get("map")) for e in tail[1:]) == [
            ("close", h(0), 1),
            ("close", h(2), 7),
            ("reclaim", None, 1),
            ("reclaim", None, 7),
        ]
        assert all(e.get("teardown") for e in tail if e["event"] == "close")

    def test_teardown_after_trap(self) -> None:
        """A trap tears the callee down: the return is flagged, then teardown and closes."""
        with Broker(trace=True) as b:
            b.load("callee", GUESTS / "xmod_callee.wat", exports={"trap": {"params": ["own"]}})
            b.load("caller", GUESTS / "xmod_caller.wat")
            hc = b.call("caller.new")
            with pytest.raises(GuestTrap):
                b.call("caller.via_trap", hc)
        tracer = b.tracer
        assert tracer is not None
        move = one(b, "move")
        assert move["path"] == ["caller.via_trap", "callee.trap"]
        tail = [without_seq(e.as_dict()) for e in tracer.recent if e.seq > move["seq"]]
        assert tail == [
            {
                "event": "return",
                "module": "caller",
                "to_module": "callee",
                "trapped": True,
                **at("caller.via_trap", "callee.trap"),
            },
            {
                "event": "return",
                "module": "host",
                "to_module": "caller",
                "trapped": True,
                **at("caller.via_trap"),
            },
            {"event": "teardown", "module": "callee"},
            {
                "event": "close",
                "module": "callee",
                "handle": move["to_handle"],
                "map": 1,
                "teardown": True,
            },
            {"event": "reclaim", "map": 1},
        ]

    def test_host_events(self) -> None:
        """The host's own operations: module "host", no export, no path."""
        with Broker(trace=True) as b:
            parent, child = b.new_map(), b.new_map()
            cfg = b.open("config")
            parent.set_map(b"c", child)
            view = parent.get_map(b"c")
            parent[b"c"] = b"bytes now"  # replaces the reference: unset_map
            copy = cfg.clone("r")
            for ref in (child, view, cfg, copy, parent):
                ref.close()
        assert b.tracer is not None  # closing the broker took the last events
        seen = [without_seq(e.as_dict()) for e in b.tracer.recent]
        assert seen[:7] == [
            {"event": "new", "module": "host", "handle": h(0), "map": 1},
            {"event": "new", "module": "host", "handle": h(1), "map": 2},
            {"event": "open", "module": "host", "handle": h(2), "map": 3},
            {"event": "set_map", "module": "host", "handle": h(0), "map": 1, "other_map": 2},
            {"event": "get_map", "module": "host", "handle": h(3), "map": 2, "other_map": 1},
            {"event": "unset_map", "module": "host", "map": 1, "other_map": 2},
            {"event": "clone", "module": "host", "handle": h(4), "map": 3, "to_handle": h(2)},
        ]
        assert [e["event"] for e in seen[7:]] == [
            "close",  # child
            "close",  # view
            "reclaim",  # map 2: nothing references it any more
            "close",  # cfg
            "close",  # copy (map 3 is named: it stays)
            "close",  # parent
            "reclaim",
        ]

    def test_host_lends(self) -> None:
        """The host lends and shares MapRefs: the host is the lender, the path the export."""
        with Broker(trace=True) as b:
            b.load(
                "callee",
                GUESTS / "xmod_callee.wat",
                exports={
                    "end_borrow": {"params": ["borrow"]},
                    "poke": {"params": ["borrow"]},
                    "keep": {"params": ["share"]},
                },
            )
            b.load("caller", GUESTS / "xmod_caller.wat")
            m = b.new_map()
            assert b.call("callee.end_borrow", Borrow(m)) == 0
            assert b.call("callee.poke", Borrow(m)) == 0
            kept = b.call("callee.keep", Share(m, rights="r"))
            assert b.tracer is not None
            mine = [without_seq(e.as_dict()) for e in b.tracer.recent if e.map == m.map_id]
            m.close()
        lent = {"module": "host", "handle": h(0), "map": 1, "to_module": "callee"}
        assert mine == [
            {"event": "new", "module": "host", "handle": h(0), "map": 1},
            # end_borrow closes its borrowed handle during the call
            {"event": "borrow", **lent, "to_handle": h(0), **at("callee.end_borrow")},
            {
                "event": "close",
                "module": "callee",
                "handle": h(0),
                "map": 1,
                "borrowed": True,
                **at("callee.end_borrow"),
            },
            {"event": "borrow_end", **lent, "to_handle": h(0), **at("callee.end_borrow")},
            # poke leaves it open: the broker ends it
            {"event": "borrow", **lent, "to_handle": h(0, 2), **at("callee.poke")},
            {
                "event": "borrow_end",
                **lent,
                "to_handle": h(0, 2),
                "left_open": True,
                **at("callee.poke"),
            },
            {"event": "share", **lent, "to_handle": kept, **at("callee.keep")},
        ]


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
