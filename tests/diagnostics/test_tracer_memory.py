"""The tracer's memory is bounded (broker/tracer.py `Bounds`, native/trace.c), however many events.

A traced broker used to keep every event forever (about 580 bytes each:
+524 MiB after 900k events).  Now events stream out as they come and the
tracer keeps, bounded, what the leak report needs: a history per live
anonymous map (its first and latest events), forgotten at its reclaim; the
first unreleased borrows; counts; the last events.  The core buffers at
most `Bounds.core` events between two takes and counts the rest as dropped.

Most tests drive a real broker with small bounds (a guest loops inside one
export, so thousands of events cost one call); the call-path tests feed the
tracer hand-made core events, to lose some on purpose.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sanitizer import SANITIZED
from trace_bounds import SMALL, held

from broker import Broker, leaks
from broker._native import EVENT_KINDS
from broker.trace_events import NAMES_KEPT, JsonLines, Record
from broker.tracer import DEFAULT_LIMIT, Bounds, History, Tracer

# churn n: new + close, n times (3 events each: new, close, reclaim).
# leak n: n new maps, every handle kept (one event each, n live maps).
# lend n: one new map kept, then clone + close of its handle n times (2n events on one map).
LOOPS_WAT = """
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "wasi_map" "clone" (func $clone (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "churn") (param $n i32) (result i32)
    (local $bad i32)
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $bad (i32.add (local.get $bad) (call $new (i32.const 0))))
        (local.set $bad (i32.add (local.get $bad) (call $close (i32.load (i32.const 0)))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $bad))
  (func (export "leak") (param $n i32) (result i32)
    (local $bad i32)
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $bad (i32.add (local.get $bad) (call $new (i32.const 8))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $bad))
  (func (export "lend") (param $n i32) (result i32)
    (local $h i32) (local $bad i32)
    (local.set $bad (call $new (i32.const 0)))
    (local.set $h (i32.load (i32.const 0)))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $bad (i32.add (local.get $bad)
          (call $clone (local.get $h) (i32.const 3) (i32.const 4))))
        (local.set $bad (i32.add (local.get $bad) (call $close (i32.load (i32.const 4)))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $bad)))
"""


CODE = {name: code for code, name in EVENT_KINDS.items()}


@pytest.fixture
def loops(tmp_path: Path) -> Path:
    """The looping guest, as a file."""
    path = tmp_path / "loops.wat"
    path.write_text(LOOPS_WAT)
    return path


def traced(guest: Path, bounds: Bounds) -> Broker:
    """A traced broker with the guest loaded as "g", its tracer kept within `bounds`."""
    b = Broker(trace=True)
    # Broker(trace=...) takes no bounds: put a tracer with ours in its place.
    b.tracer = Tracer(b._native, b._name_of, b._link_label, bounds=bounds)
    b.load("g", guest)
    return b


@pytest.fixture
def small(loops: Path) -> Iterator[Broker]:
    """A broker whose tracer keeps little (SMALL), with the looping guest loaded."""
    with traced(loops, SMALL) as b:
        yield b


class TestBounds:
    """Bounds: the documented defaults, and no bound a history cannot fit in."""

    def test_defaults(self) -> None:
        """The defaults docs/abi.md gives: 131,072 core events, 8 + 24 per map, 65,536 in all."""
        b = Bounds()
        assert (b.core, b.head, b.tail, b.histories) == (DEFAULT_LIMIT, 8, 24, 1 << 16)
        assert (b.borrows, b.recent, b.depth, DEFAULT_LIMIT) == (256, 1024, 1024, 131_072)

    @pytest.mark.parametrize(
        "fields", [{"head": 0}, {"histories": 31}, {"core": 0}, {"depth": 0}, {"tail": -1}]
    )
    def test_rejected(self, fields: dict[str, int]) -> None:
        """No creation kept, one history over the total, or nothing buffered: refused."""
        with pytest.raises(ValueError, match="tracer bounds"):
            Bounds(**fields)


def rec(seq: int, kind: str = "close", map_id: int = 1) -> Record:
    """A kept record of module m's `kind` on `map_id`."""
    return (seq, CODE[kind], "m", 0, map_id, None, 0, 0, (), 0)


class TestHistory:
    """One map's history: its first events, its latest, and a count of those between."""

    def test_first_and_latest(self) -> None:
        """Past head + tail, the oldest of the tail goes; the count and where they were stay."""
        h = History(rec(1, "new"))
        added = [h.add(rec(seq), head=2, tail=3) for seq in range(2, 11)]
        assert [record[0] for record in h.events] == [1, 2, 8, 9, 10]
        assert (h.skipped, h.skipped_after) == (5, 2)
        assert added == [1, 1, 1, 1, 0, 0, 0, 0, 0]

    def test_no_tail(self) -> None:
        """With no tail, only the first events are kept; the rest are counted."""
        h = History(rec(1, "new"))
        for seq in range(2, 6):
            h.add(rec(seq), head=2, tail=0)
        assert [record[0] for record in h.events] == [1, 2]
        assert h.skipped == 3


class TestBoundedBroker:
    """A real broker under many events: every part the tracer keeps stays within its bound."""

    def test_within_bounds(self, small: Broker) -> None:
        """Churn, leaked maps and one busy map: histories, recent and path stay bounded."""
        assert small.call("g.lend", 5_000) == 0  # map 1: 10,001 events
        for _ in range(20):
            assert small.call("g.churn", 1_000) == 0
        assert small.call("g.leak", 5_000) == 0
        t = small.tracer
        assert t is not None
        assert t.total == 5_000 * 2 + 1 + 20 * 3_000 + 5_000 + 22 * 2
        assert t.kept == sum(len(h.events) for h in t.histories.values()) <= SMALL.histories
        assert all(len(h.events) <= SMALL.head + SMALL.tail for h in t.histories.values())
        assert held(t) <= SMALL.histories + SMALL.borrows + SMALL.recent
        assert len(t.recent) == SMALL.recent and t._stack == []
        assert t.histories_forgotten > 0 and t.dropped == 0

    def test_busy_map_first_and_latest(self, small: Broker) -> None:
        """A map with thousands of events keeps its creation and its latest events."""
        assert small.call("g.lend", 5_000) == 0
        assert small.tracer is not None
        kinds = [e.kind for e in small.tracer.history(1)]
        assert kinds == ["new", "clone", "close", "clone"] + ["clone", "close"] * 4
        assert small.tracer.skipped(1) == (10_001 - 12, 5)

    def test_report_says_what_was_not_kept(self, small: Broker) -> None:
        """The leak report marks skipped events and let-go histories; the text says so too."""
        assert small.call("g.leak", 3_000) == 0  # maps 1..3000, one event each
        assert small.call("g.lend", 5_000) == 0  # map 3001: 10,001 events, seq 3004 on
        report = small.leaks()
        # 3,000 + 12 events kept in histories over 2,048: the 964 oldest maps' go.
        assert report["not_kept"] == {
            "events_dropped": 0,
            "histories": 964,
            "unreleased_borrows": 0,
        }
        assert [entry["events"] for entry in report["leaks"]].count([]) == 964
        busy = report["leaks"][-1]
        assert busy["map"] == 3001 and len(busy["events"]) == SMALL.head + SMALL.tail
        assert busy["events_skipped"] == {"count": 10_001 - 12, "after_seq": 3007}
        text = leaks.format_text(report)
        lines = text.splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("    #3007 clone"))
        assert lines[at + 1] == "    ... 9989 event(s) not kept ..."
        assert "(the tracer's memory is bounded: 0 event(s) dropped by the core, 964 live" in text
        json.dumps(report)


class TestMemory:
    """The regression: a traced broker's Python memory does not grow with its events."""

    def test_flat_after_90k_events(self, loops: Path) -> None:
        """90,060 more events (new, close, reclaim) leave the traced memory flat (was +47 MiB)."""
        with Broker(trace=True) as b:
            b.load("g", loops)
            for _ in range(5):  # fill what is bounded: recent, caches
                b.call("g.churn", 1_000)
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for _ in range(30):
                    b.call("g.churn", 1_000)
                grown = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
            assert b.tracer is not None and b.tracer.total == 35 * 3_002
        assert grown < 1 << 20, f"+{grown / 2**20:.1f} MiB"


# Runs in its own process, so that its peak memory is its own.
ONE_CALL = """
import json, sys
from broker import Broker
def peak_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
with Broker(trace=True) as b:
    b.load("g", sys.argv[1])
    b.call("g.churn", 1_000)
    before = peak_kib()
    b.call("g.churn", 400_000)
    print(json.dumps({"grown_kib": peak_kib() - before, "dropped": b.tracer.dropped,
                      "total": b.tracer.total, "last": b.tracer.recent[-1].seq}))
"""


class TestCoreBound:
    """One guest call that makes more events than the core keeps between two takes."""

    def test_dropped_and_counted(self, loops: Path) -> None:
        """Past `core` events in one call the rest are dropped, counted, and leave a seq gap."""
        with traced(loops, SMALL) as b:
            assert b.call("g.churn", 20_000) == 0
            t = b.tracer
            assert t is not None
            assert (t.total, t.dropped) == (SMALL.core, 60_002 - SMALL.core)
            assert [e.seq for e in t.recent][-1] == SMALL.core
            assert b.call("g.churn", 1) == 0  # the path is right again after the loss
            after = list(t.recent)[-5:]
            assert [e.seq for e in after] == list(range(60_003, 60_008))
            assert [e.path for e in after] == [("g.churn",)] * 5
            assert b.leaks()["not_kept"]["events_dropped"] == 60_002 - SMALL.core

    def test_peak_memory_of_one_call(self, loops: Path) -> None:
        """1.2M events in one call: the process grows by less than 40 MiB (was ~70 MiB in C)."""
        done = subprocess.run(
            [sys.executable, "-c", ONE_CALL, str(loops)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        out: dict[str, Any] = json.loads(done.stdout)
        assert out["dropped"] == 1_200_002 - DEFAULT_LIMIT
        assert out["total"] == 3_002 + DEFAULT_LIMIT and out["last"] == 3_002 + DEFAULT_LIMIT
        assert SANITIZED or out["grown_kib"] < 40 * 1024, out


class TestTraceFileCaches:
    def test_module_names_quoted_are_bounded(self) -> None:
        """A trace file keeps the JSON text of at most NAMES_KEPT module names, however
        many modules an app loads under new names, and writes every line right."""
        out = io.StringIO()
        lines = JsonLines(out)
        names = [f"m{i}" for i in range(3 * NAMES_KEPT)]
        new = next(code for code, kind in EVENT_KINDS.items() if kind == "new")
        lines.write([(i + 1, new, name, 1, 1, None, 0, 0, (), 0) for i, name in enumerate(names)])
        assert len(lines._quoted) <= NAMES_KEPT
        written = [json.loads(line)["module"] for line in out.getvalue().splitlines()]
        assert written == names


def test_unreleased_and_recent_read_as_before(small: Broker) -> None:
    """`unreleased` is a list of Events, `recent` a sequence that reverses in order."""
    tracer = small.tracer
    assert tracer is not None
    assert tracer.unreleased == []
    with small.new_map(), small.new_map():
        pass
    recent = tracer.recent
    assert [e.seq for e in reversed(recent)] == [e.seq for e in recent][::-1]
