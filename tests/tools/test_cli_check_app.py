"""`wasi-map check APP.toml`: every problem of a whole app, one line each."""

from __future__ import annotations

from pathlib import Path

import pytest
from paths import ROOT

from broker.check_app import check_app
from broker.cli import main
from broker.manifest import load_manifest

ATLAS = ROOT / "tests" / "apps" / "atlas" / "app.toml"
WORDFREQ = ROOT / "examples" / "wordfreq" / "app.toml"

MEM = '(memory (export "memory") 1)'
NEW = '(import "wasi_map" "new" (func (param i32) (result i32)))'
SINK = f'(module {NEW} {MEM} (func (export "ingest") (param i32 i32) (result i32) (local.get 1)))'
SOURCE = (
    f'(module {NEW} (import "sink" "ingest" (func (param i32 i32) (result i32))) {MEM}'
    ' (func (export "main") (result i32) (i32.const 0)))'
)
GOOD = """
[modules.sink]
path = "sink.wat"
grants = { hits = "rw", config = "r" }
exports.ingest = { params = ["own", "i32"], results = ["i32"] }

[modules.source]
path = "source.wat"
grants = { hits = "r" }
"""


def write_app(tmp_path: Path, manifest: str, **modules: str) -> Path:
    for name, wat in modules.items():
        (tmp_path / f"{name}.wat").write_text(wat)
    path = tmp_path / "app.toml"
    path.write_text(manifest)
    return path


class TestGoodApps:
    def test_ok_summary(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A good app prints one summary line and exits 0."""
        path = write_app(tmp_path, GOOD, sink=SINK, source=SOURCE)
        assert main(["check", str(path)]) == 0
        captured = capsys.readouterr()
        assert captured.out == (
            f"{path}: ok: 2 module(s), 1 link(s), 1 export declaration(s), 3 grant(s)\n"
        )
        assert captured.err == ""

    @pytest.mark.parametrize("manifest", [ATLAS, WORDFREQ], ids=["atlas", "wordfreq"])
    def test_project_apps_are_ok(self, manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """The apps the project ships and tests with check clean."""
        assert main(["check", str(manifest)]) == 0
        assert ": ok: " in capsys.readouterr().out

    def test_store_is_not_touched(self, tmp_path: Path) -> None:
        """check loads the app into the memory store: the app's sqlite file is not made."""
        path = write_app(
            tmp_path, '[store]\nurl = "sqlite:state.db"\n' + GOOD, sink=SINK, source=SOURCE
        )
        assert main(["check", str(path)]) == 0
        assert not (tmp_path / "state.db").exists()

    def test_module_check_unchanged(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A .wat argument is still checked as a module: its imports listed."""
        assert main(["check", str(ROOT / "tests" / "guests" / "hello.wat")]) == 0
        assert "wasi_map.get (i32, i32, i32, i32, i32, i32) -> (i32): ok" in capsys.readouterr().out


class TestProblems:
    def test_every_problem_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Problems in several modules are all reported, one line each, and exit 1."""
        manifest = """
[modules.sink]
path = "sink.wat"
exports.ingest = { params = ["own", "i64"] }
exports.absent = { params = ["i32"] }

[modules.source]
path = "source.wat"

[modules.bad]
path = "bad.wat"

[modules.gone]
path = "gone.wat"
"""
        bad = (
            '(module (import "wasi_map" "frob" (func (param i32) (result i32)))'
            ' (import "sink" "ingest" (func (param i64)))'
            ' (import "sink" "nothing" (func))'
            ' (import "ghost" "f" (func)))'
        )
        path = write_app(tmp_path, manifest, sink=SINK, source=SOURCE, bad=bad)
        assert main(["check", str(path)]) == 1
        captured = capsys.readouterr()
        assert captured.out.splitlines() == [
            f"{path}: modules.sink.exports.ingest: params[1] is declared i64, but is i32",
            f"{path}: modules.sink.exports.absent: declared in exports, but not an "
            "exported function",
            f"{path}: modules.bad: import wasi_map.frob: not in the WASI-Map v1 ABI",
            f"{path}: modules.bad: imports wasi_map but does not export its linear memory "
            "as `memory`",
            f"{path}: modules.gone.path: no such file: {tmp_path / 'gone.wat'}",
            f"{path}: modules.bad: imports sink.ingest as (i64) -> (), "
            "but 'sink' exports it as (i32, i32) -> (i32)",
            f"{path}: modules.bad: imports sink.nothing, but 'sink' exports no function 'nothing'",
            f"{path}: modules.bad: imports ghost.f, but the app has no module 'ghost'",
        ]
        assert captured.err == f"{path}: 8 problem(s)\n"

    def test_module_that_does_not_compile(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A module that does not compile is its key's line; its importers are not blamed."""
        path = write_app(tmp_path, GOOD, sink="(module (func", source=SOURCE)
        assert main(["check", str(path)]) == 1
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 1
        assert lines[0].startswith(
            f"{path}: modules.sink: {tmp_path / 'sink.wat'}: not a valid Wasm module: "
        )

    def test_what_only_loading_shows(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A start function that traps is found by loading the app, after the static checks."""
        path = write_app(
            tmp_path,
            '[modules.s]\npath = "s.wat"\n',
            s="(module (func $boom unreachable) (start $boom))",
        )
        assert main(["check", str(path)]) == 1
        assert capsys.readouterr().out == (
            f"{path}: loading the app: {tmp_path / 's.wat'}: trapped while starting: "
            "wasm `unreachable` instruction executed\n"
        )

    def test_memory_over_its_limit(self, tmp_path: Path) -> None:
        """A linear memory over the module's limit is a problem of the app."""
        path = write_app(
            tmp_path,
            '[modules.s]\npath = "s.wat"\nlimits = { linear_memory = 65536 }\n',
            s=f'(module {NEW} (memory (export "memory") 2))',
        )
        report = check_app(load_manifest(path))
        assert len(report.problems) == 1
        assert "its linear memory needs more than its limit of 65536 bytes" in report.problems[0]

    def test_bad_manifest_exits_2(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A manifest that cannot be read as an app is one line and exit 2, as for run."""
        path = write_app(tmp_path, '[modules.s]\npath = "s.wat"\ngrants = { m = "x" }\n')
        assert main(["check", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"wasi-map: {path}: modules.s.grants.m: ")
        assert err.count("\n") == 1
