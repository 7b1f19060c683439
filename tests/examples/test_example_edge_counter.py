"""The edge-counter example: one C guest counts hits in sqlite and Redis, across processes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from example_builds import build_guest, script_module
from paths import ROOT
from redis_server import free_port

from broker import Broker, GuestTrap, cli

EXAMPLE = ROOT / "examples" / "edge-counter"
WASM = EXAMPLE / "counter.wasm"
WASI_MAP = [sys.executable, "-m", "broker.cli"]  # the `wasi-map` entry point
STORE_FAILED = -13
SUMMARY = re.compile(
    r"^swarm: (?P<url>\S+): (?P<p>\d+) processes x (?P<n>\d+) hits on (?P<pages>\d+) pages: "
    r"total (?P<total>\d+), report (?P<report>\d+), (?P<failures>\d+) store failures, "
    r"leader (?P<leader>\d+); [\d.]+ s, [\d,]+ hits/s: OK$"
)


swarm = script_module(EXAMPLE / "swarm.py", "edge_counter_swarm")


@pytest.fixture(scope="module", autouse=True)
def guest() -> Path:
    """Build counter.wasm once (build.sh); skip only when there is no clang to build it."""
    build_guest(EXAMPLE)
    return WASM


def manifest(tmp_path: Path, name: str = "app.toml", url: str | None = None) -> Path:
    """The example's manifest, copied into tmp_path with an absolute path to counter.wasm,
    so its relative sqlite file lands in tmp_path and the example directory stays clean."""
    text = (EXAMPLE / name).read_text()
    assert 'path = "counter.wasm"' in text
    text = text.replace('path = "counter.wasm"', f"path = {json.dumps(str(WASM))}")
    if url is not None:
        text, n = re.subn(r'^url = ".*"', f"url = {json.dumps(url)}", text, flags=re.M)
        assert n == 1
    path = tmp_path / name
    path.write_text(text)
    return path


def run(app: Path, export: str, *args: int) -> str:
    """`wasi-map run APP --call counter.EXPORT ARGS` in a new process; its output line."""
    done = subprocess.run(
        [*WASI_MAP, "run", str(app), "--call", f"counter.{export}", *map(str, args)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def run_swarm(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE / "swarm.py"), url, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store the guest runs on unchanged; sqlite in a file of its own."""
    if request.param == "memory":
        return "memory:"
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'hits.db'}"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def counter(store_url: str) -> Iterator[Broker]:
    """A broker on store_url with counter.wasm loaded, as swarm.py loads it."""
    with swarm.counter(store_url) as b:
        yield b


class TestCli:
    def test_check_accepts_the_guest(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`wasi-map check counter.wasm` finds only ABI imports."""
        assert cli.main(["check", str(WASM)]) == 0, capsys.readouterr().out

    def test_hits_persist_across_processes(self, tmp_path: Path) -> None:
        """Two runs of `wasi-map run app.toml --call counter.hit 3` print 1, then 2: the
        count lives in the sqlite file next to the manifest, not in the process."""
        app = manifest(tmp_path)
        assert [run(app, "hit", 3), run(app, "hit", 3)] == ["1", "2"]
        assert (tmp_path / "hits.db").exists()
        assert [run(app, "hits", 3), run(app, "total"), run(app, "report", 8)] == ["2"] * 3

    def test_the_redis_manifest_counts_on_the_server(self, tmp_path: Path, redis_url: str) -> None:
        """app-redis.toml, pointed at the test's redis-server, counts 1, then 2."""
        app = manifest(tmp_path, "app-redis.toml", url=redis_url)
        assert [run(app, "hit", 3), run(app, "hit", 3)] == ["1", "2"]

    def test_the_first_claim_wins_until_it_resigns(self, tmp_path: Path) -> None:
        """claim returns the leader: the first claimant, in every later process, until
        it resigns (a resign by anyone else does nothing)."""
        app = manifest(tmp_path)
        assert [run(app, "leader"), run(app, "claim", 7), run(app, "claim", 8)] == ["-1", "7", "7"]
        assert [run(app, "resign", 8), run(app, "leader")] == ["0", "7"]
        assert [run(app, "resign", 7), run(app, "leader")] == ["1", "-1"]
        assert [run(app, "claim", 8), run(app, "claim", 7)] == ["8", "8"]

    def test_a_page_out_of_range_traps(self, tmp_path: Path) -> None:
        """hit(4096) is a caller's bug: the guest traps, `run` exits 1 naming the export."""
        done = subprocess.run(
            [*WASI_MAP, "run", str(manifest(tmp_path)), "--call", "counter.hit", "4096"],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 1
        assert "counter.hit" in done.stderr


class TestGuest:
    def test_report_equals_total_on_every_store(self, counter: Broker) -> None:
        """The same guest counts alike on memory, sqlite and Redis: per page, in total,
        and in report's one get_many; handles are closed after every call."""
        pages = [0, 5, 5, 2, 5, 0, 4095]
        assert [counter.call("counter.hit", p) for p in pages] == [1, 1, 2, 1, 3, 2, 1]
        assert [counter.call("counter.hits", p) for p in (0, 1, 2, 5)] == [2, 0, 1, 3]
        assert counter.call("counter.report", 6) == 6
        assert counter.call("counter.report", 4096) == counter.call("counter.total") == 7
        assert counter.stats()["handles"] == {"counter": 0}

    def test_reset_zeroes_the_pages_and_vacates_the_leader(self, counter: Broker) -> None:
        """reset(npages) writes pages 0..npages-1, total and leader in one set_many."""
        for page in (1, 3, 3):
            counter.call("counter.hit", page)
        assert counter.call("counter.claim", 4) == 4
        assert counter.call("counter.reset", 4) == 0
        assert counter.call("counter.report", 4) == counter.call("counter.total") == 0
        assert counter.call("counter.leader") == -1
        assert counter.call("counter.claim", 9) == 9
        with counter.open("hits", rights="r") as hits:
            assert hits[b"page:3"] == bytes(8)
            assert hits[b"leader"] == (9).to_bytes(4, "little")

    def test_a_store_that_is_down_answers_minus_13(self) -> None:
        """With no redis-server at the URL every export returns -13 (IO) instead of
        trapping; the module stays loaded and holds no handle."""
        with swarm.counter(f"redis://127.0.0.1:{free_port()}/0") as b:
            results = [
                b.call("counter.hit", 1),
                b.call("counter.hits", 1),
                b.call("counter.total"),
                b.call("counter.report", 16),
                b.call("counter.claim", 1),
                b.call("counter.leader"),
                b.call("counter.resign", 1),
                b.call("counter.reset", 16),
            ]
            assert results == [STORE_FAILED] * len(results)
            assert b.stats()["handles"] == {"counter": 0}

    def test_a_value_that_is_no_counter_traps(self, tmp_path: Path) -> None:
        """A page key holding 3 bytes is not the guest's data: report traps (GuestTrap)."""
        with swarm.counter(f"sqlite:{tmp_path / 'hits.db'}") as b:
            with b.open("hits") as hits:
                hits[b"page:1"] = b"abc"
            with pytest.raises(GuestTrap, match="counter.report"):
                b.call("counter.report", 4)


class TestSwarm:
    @pytest.mark.parametrize("kind", ["sqlite", "redis"])
    def test_three_processes_add_up(
        self, kind: str, tmp_path: Path, request: pytest.FixtureRequest
    ) -> None:
        """swarm.py with 3 processes: report == total == 3 x N, exactly one leader; a
        fresh broker on the same store afterwards agrees."""
        url = (
            f"sqlite:{tmp_path / 'hits.db'}"
            if kind == "sqlite"
            else str(request.getfixturevalue("redis_url"))
        )
        done = run_swarm(url, "-p", "3", "-n", "40", "--pages", "8", "--seed", "7")
        assert done.returncode == 0, done.stdout + done.stderr
        summary = SUMMARY.match(done.stdout.strip())
        assert summary, done.stdout
        assert summary["total"] == summary["report"] == "120"
        assert summary["failures"] == "0"
        leader = int(summary["leader"])
        assert leader in (0, 1, 2)
        with swarm.counter(url) as b:
            assert b.call("counter.total") == b.call("counter.report", 8) == 120
            assert b.call("counter.leader") == leader

    def test_a_store_that_is_down_exits_1(self) -> None:
        """Against a URL with no redis-server, swarm.py says so and exits 1."""
        done = run_swarm(f"redis://127.0.0.1:{free_port()}/0", "-p", "2", "-n", "3")
        assert done.returncode == 1
        assert "the store failed (IO)" in done.stderr

    def test_check_finds_miscounts_and_two_leaders(self) -> None:
        """swarm.check reports a page the workers counted differently from the store,
        and more than one claimed winner."""
        with swarm.counter("memory:") as b:
            assert b.call("counter.reset", 2) == 0
            b.call("counter.hit", 0)
            assert b.call("counter.claim", 0) == 0
            honest = [swarm.WorkerResult(0, [1, 0], leader=0), swarm.WorkerResult(1, [0, 0])]
            assert swarm.check(b, honest, 2) == swarm.Verdict(1, 1, [])
            miscounted = [swarm.WorkerResult(0, [0, 1], leader=0)]
            assert any("miscounted" in p for p in swarm.check(b, miscounted, 2).problems)
            two = [swarm.WorkerResult(0, [1, 0], leader=0), swarm.WorkerResult(1, [0, 0], 0, 1)]
            assert any("winners [0, 1]" in p for p in swarm.check(b, two, 2).problems)
