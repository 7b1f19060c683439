"""The image pipeline: its C, Rust and C++ guests, built here, compute what Python does."""

from __future__ import annotations

import importlib.util
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from example_builds import compiler_env
from paths import ROOT

from broker import Broker, Own, StaleHandleError, cli

PIPELINE = ROOT / "examples" / "image-pipeline"
APP = PIPELINE / "app.toml"
# 1: width a multiple of the tile size; 12: height one; -7: a negative i32.
SEEDS = (1, 12, -7)


def _load(name: str) -> ModuleType:
    """A script of the example as a module (its directory name is no package name)."""
    spec = importlib.util.spec_from_file_location(f"image_pipeline_{name}", PIPELINE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while it loads
    spec.loader.exec_module(module)
    return module


reference = _load("reference")
build = _load("build")


@pytest.fixture(scope="module", autouse=True)
def guests() -> list[Path]:
    """Build the guests once; skip only when a compiler (clang, clang++, rustc) is missing."""
    missing = build.toolchain_missing()
    if missing:
        pytest.skip(f"cannot build the guests: {missing}")
    paths: list[Path] = build.build(compiler_env())
    return paths


@pytest.fixture
def app() -> Iterator[Broker]:
    """The app, loaded from its manifest."""
    with Broker.from_manifest(APP) as b:
        yield b


def u64(value: bytes) -> int:
    return int(struct.unpack("<Q", value)[0])


class TestCli:
    def test_check_accepts_every_guest(
        self, guests: list[Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`wasi-map check` finds only ABI imports and an exported memory in each module."""
        for path in guests:
            assert cli.main(["check", str(path)]) == 0, capsys.readouterr().out

    @pytest.mark.parametrize("seed", SEEDS)
    def test_run_prints_the_python_checksum_and_count(self, seed: int) -> None:
        """`wasi-map run app.toml --call loader.main SEED` prints reference.run(SEED)."""
        wasi_map = [sys.executable, "-m", "broker.cli"]  # the `wasi-map` entry point
        done = subprocess.run(
            [*wasi_map, "run", str(APP), "--call", "loader.main", str(seed)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert tuple(int(x) for x in done.stdout.split()) == reference.run(seed)


class TestBroker:
    def test_no_anonymous_map_survives_and_results_hold_the_figures(self, app: Broker) -> None:
        """After a run only the named maps are alive, no module holds a handle, and
        "results" holds what the sink returned."""
        checksum, above = app.call("loader.main", 42)
        assert (checksum, above) == reference.run(42)
        assert app.stats() == {
            "maps": 0,
            "named": 2,
            "handles": {"loader": 0, "grayscale": 0, "edges": 0, "sink": 0},
        }
        img = reference.synthetic_image(42)
        with app.open("results", rights="r") as results:
            assert {k: u64(v) for k, v in results.items()} == {
                b"checksum": checksum,
                b"above": above,
                b"threshold": reference.DEFAULT_THRESHOLD,
                b"width": img.width,
                b"height": img.height,
                b"runs": 1,
            }
        with app.open("config", rights="r") as config:
            assert dict(config) == {b"threshold": struct.pack("<I", reference.DEFAULT_THRESHOLD)}
        assert app.stats()["maps"] == 0

    def test_a_threshold_set_by_the_host_is_kept(self, app: Broker) -> None:
        """The loader writes the default threshold only when config has none
        (set_if), so the host can choose another; each run counts in "results"."""
        with app.open("config") as config:
            config[b"threshold"] = struct.pack("<I", 40)
        for seed in SEEDS:
            assert app.call("loader.main", seed) == reference.run(seed, 40)
        with app.open("results", rights="r") as results:
            assert u64(results[b"threshold"]) == 40
            assert u64(results[b"runs"]) == len(SEEDS)
        assert app.stats()["maps"] == 0

    def test_each_stage_runs_alone_on_a_host_map(self, app: Broker) -> None:
        """grayscale.run and edges.run take a map the host made, by own, and give
        back the tiles Python computes; the host's moved MapRef is dead."""
        rgb = reference.synthetic_image(7)
        gray = reference.grayscale(rgb)
        edge = reference.edges(gray)
        m = app.new_map()
        for key, value in {
            b"width": rgb.width,
            b"height": rgb.height,
            b"tile": reference.TILE,
            b"channels": 3,
        }.items():
            m[key] = struct.pack("<I", value)
        m.update(rgb.tiles())
        with app.call("grayscale.run", Own(m)) as out:
            with pytest.raises(StaleHandleError):
                len(m)
            assert {k: out[k] for k in gray.tiles()} == gray.tiles()
            assert out[b"channels"] == struct.pack("<I", 1)
            with app.call("edges.run", Own(out)) as result:
                assert app.stats()["maps"] == 1  # the gray map went when edges closed it
                assert {k: result[k] for k in edge.tiles()} == edge.tiles()
                assert len(result) == 4 + len(edge.tiles())
        assert app.stats()["maps"] == 0
