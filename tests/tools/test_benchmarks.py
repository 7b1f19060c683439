"""Benchmarks run to completion (a smoke run; figures are never asserted)."""

import subprocess
import sys

import pytest
from paths import ROOT

BENCHMARKS = ROOT / "benchmarks"


class TestBenchmarksRun:
    @pytest.mark.parametrize(
        "script",
        [
            "bench_abi.py",
            "bench_xmod.py",
            "bench_gc.py",
            "bench_store.py",
            "bench_quota.py",
            "bench_parallel.py",
            "bench_mapref.py",
        ],
    )
    def test_quick_run_exits_0(self, script: str) -> None:
        """`--quick` prints its table and exits 0."""
        done = subprocess.run(
            [sys.executable, str(BENCHMARKS / script), "--quick"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert "targets" in done.stdout
