"""The leak report as people read it: `format_text`, and `wasi-map leaks` with its exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from held_back_apps import EXPECTED, LEAKY, WORDFREQ

from broker import Broker, leaks
from broker.cli import main

# What `wasi-map leaks tests/apps/leaky/app.toml --call a.main` prints.
EXPECTED_TEXT = """\
3 map(s) still alive that are not named maps; 1 borrow(s) not released; \
1 map(s) reclaimed, 2 by the cycle collector

map 1 (1 entry)
  held by b handle 2097152
  history:
    #2 new           a h2097152   in a.main
    #4 move          a h2097152 -> b h2097152   in a.main > b.take

map 6 (1 entry)
  referenced by map 5 under key 'child'
  history:
    #20 new           a h8388608   in a.main
    #21 set_map       a h4194305 map 5 -> map 6   in a.main
    #22 close         a h8388608   in a.main

map 7 (0 entries)
  held by b handle 2097154
  history:
    #24 new           a h6291457   in a.main
    #26 borrow        a h6291457 -> b h4194305   in a.main > b.stash
    #27 clone         b h2097154   in a.main > b.stash
    #28 close         b h4194305 (borrowed)   in a.main > b.stash
    #29 borrow_end    a h6291457 -> b h4194305   in a.main > b.stash
    #31 close         a h6291457   in a.main

borrow not released: map 2 lent by a handle 4194304 to b (handle 2097153) in b.peek; \
the broker ended it
"""


class TestText:
    """format_text: the report for people."""

    def test_leaky_text(self, leaky: Broker) -> None:
        """The human report of the leaky app, line by line."""
        assert leaks.format_text(leaky.leaks()) + "\n" == EXPECTED_TEXT

    def test_describe_event(self) -> None:
        """One event is one line: seq, kind, who, to whom, flags and path."""
        line = leaks.describe(EXPECTED["unreleased_borrows"][0] | {"event": "borrow_end"})
        assert line.startswith("#9 borrow_end")
        described = leaks.describe(EXPECTED["leaks"][0]["events"][1])
        assert described == "#4 move          a h2097152 -> b h2097152   in a.main > b.take"


def leaks_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broker.cli", "leaks", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


class TestCommand:
    """`wasi-map leaks`: the same report, and its exit codes."""

    def test_human_report_process(self) -> None:
        """As a process: the human report on stdout, exit 1 for the leaks."""
        done = leaks_cli(str(LEAKY), "--call", "a.main")
        assert (done.returncode, done.stdout, done.stderr) == (1, EXPECTED_TEXT, "")

    def test_json_report_process(self) -> None:
        """As a process: --json prints exactly one JSON object, the report."""
        done = leaks_cli(str(LEAKY), "--call", "a.main", "--json")
        assert done.returncode == 1
        assert json.loads(done.stdout) == EXPECTED

    def test_json_before_call(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--json may come before --call too."""
        assert main(["leaks", str(LEAKY), "--json", "--call", "a.main"]) == 1
        assert json.loads(capsys.readouterr().out) == EXPECTED

    def test_clean_app_exits_0(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Nothing left behind: a one-line summary and exit 0."""
        assert main(["leaks", str(WORDFREQ), "--call", "wordfreq.main"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(
            "0 map(s) still alive that are not named maps; 0 borrow(s) not released; "
        )
        assert out.count("\n") == 1

    def test_clean_app_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The clean report as JSON: empty lists."""
        assert main(["leaks", str(WORDFREQ), "--call", "wordfreq.main", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert (report["leaks"], report["unreleased_borrows"]) == ([], [])

    def test_trap_still_reports(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A trap exits 1 and names module and export on stderr; the report still prints."""
        (tmp_path / "t.wat").write_text(
            '(module (import "wasi_map" "new" (func $new (param i32) (result i32)))'
            ' (memory (export "memory") 1)'
            ' (func (export "main") (drop (call $new (i32.const 0))) unreachable))'
        )
        (tmp_path / "app.toml").write_text('[modules.t]\npath = "t.wat"\n')
        assert main(["leaks", str(tmp_path / "app.toml"), "--call", "t.main", "--json"]) == 1
        captured = capsys.readouterr()
        assert "t.main" in captured.err
        report = json.loads(captured.out)
        # the teardown closed the trapped module's handle: nothing leaks
        assert report == {
            "leaks": [],
            "unreleased_borrows": [],
            "reclaimed": 1,
            "cycles_reclaimed": 0,
        }

    @pytest.mark.parametrize(
        "args,message",
        [
            (["leaks", "missing.toml", "--call", "a.main"], "missing.toml"),
            (["leaks", str(LEAKY), "--call", "a"], "expected MODULE.EXPORT"),
            (["leaks", str(LEAKY), "--call", "a.main", "x"], "not an integer"),
            (["leaks", str(LEAKY), "--call", "nosuch.main"], "no module named 'nosuch'"),
        ],
    )
    def test_bad_input_exits_2(
        self, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A bad manifest or call exits 2 with a message, and prints no report."""
        assert main(args) == 2
        captured = capsys.readouterr()
        assert message in captured.err
        assert captured.out == ""
