"""benchmarks/http_load.py loads a real server and counts what it sent (figures never asserted)."""

from __future__ import annotations

from pathlib import Path

from example_builds import script_module
from paths import ROOT
from serving import Served, counter_app

http_load = script_module(ROOT / "benchmarks" / "http_load.py", "http_load")


class TestLoad:
    def test_every_request_is_answered_and_counted(self, tmp_path: Path) -> None:
        """300 requests on 7 connections: 300 answers, no errors, and the guest counted 300."""
        with Served(counter_app(tmp_path), "web.handle") as served:
            result = http_load.load(served.url, "/load", requests=300, concurrency=7)
            assert (result.requests, result.errors) == (300, 0)
            assert result.rps > 0 and 0 < result.p50_ms <= result.p99_ms
            assert served.get("/load") == (200, b"301")
            assert served.stop() == 0
        assert len(served.requests()) == 301

    def test_the_script_prints_its_table(self, capsys: object) -> None:
        """`--quick` starts a server per instance count and prints a row per
        (instances, concurrency), the first of each concurrency at 1.00x; exits 0."""
        assert http_load.main(["--quick", "-c", "1", "8", "--instances", "1", "2"]) == 0
        out = capsys.readouterr().out  # type: ignore[attr-defined]
        rows = [line.split() for line in out.splitlines()[2:]]
        assert [row[:2] for row in rows] == [["1", "1"], ["1", "8"], ["2", "1"], ["2", "8"]]
        assert [row[3] for row in rows[:2]] == ["1.00x", "1.00x"]
        assert all(row[-1] == "0" for row in rows)
