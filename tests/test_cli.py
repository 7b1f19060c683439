"""The `wasi-map` command: output and exit codes of spec section 4."""

import subprocess
import sys
from pathlib import Path

import pytest

from broker.cli import main

GUESTS = Path(__file__).parent / "guests"


def app(tmp_path: Path, wat: str, extra: str = "") -> Path:
    (tmp_path / "m.wat").write_text(wat)
    path = tmp_path / "app.toml"
    path.write_text(f'[modules.m]\npath = "m.wat"\n{extra}')
    return path


ADD = (
    '(module (func (export "add") (param i32 i64) (result i64 i32) local.get 1 local.get 0)'
    ' (func (export "boom") unreachable) (func (export "nothing")))'
)


class TestRun:
    def test_prints_results_on_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Results are printed space-separated; negative and hex arguments are accepted."""
        assert main(["run", str(app(tmp_path, ADD)), "--call", "m.add", "-7", "0x10"]) == 0
        assert capsys.readouterr().out == "16 -7\n"

    def test_no_results_prints_an_empty_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An export without results prints an empty line and exits 0."""
        assert main(["run", str(app(tmp_path, ADD)), "--call", "m.nothing"]) == 0
        assert capsys.readouterr().out == "\n"

    def test_trap_exits_1_naming_module_and_export(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A trap prints one line naming module and export, and exits 1."""
        assert main(["run", str(app(tmp_path, ADD)), "--call", "m.boom"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "m.boom" in err and "unreachable" in err

    @pytest.mark.parametrize(
        "args,expected",
        [
            (["--call", "m.add", "1"], "takes 2 argument(s)"),
            (["--call", "m.add", "1", "x"], "not an integer"),
            (["--call", "m.missing"], "no exported function 'missing'"),
            (["--call", "nomodule.f"], "no module named 'nomodule'"),
            (["--call", "m"], "expected MODULE.EXPORT"),
            (["--call", "m.add", "1", str(1 << 64)], "must be an i64"),
        ],
    )
    def test_bad_call_exits_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
    ) -> None:
        """A call that cannot be made is a one-line error and exit 2."""
        assert main(["run", str(app(tmp_path, ADD)), *args]) == 2
        assert expected in capsys.readouterr().err

    def test_bad_manifest_exits_2(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A bad manifest exits 2 with a message naming the file."""
        path = app(tmp_path, ADD, extra="grants = 5\n")
        assert main(["run", str(path), "--call", "m.add", "1", "2"]) == 2
        assert f"{path}: modules.m.grants: must be a table" in capsys.readouterr().err

    def test_bad_module_exits_2(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A module that does not compile exits 2 with a message naming the file."""
        assert main(["run", str(app(tmp_path, "(module (func")), "--call", "m.f"]) == 2
        assert "m.wat: not a valid Wasm module" in capsys.readouterr().err

    def test_installed_command(self, tmp_path: Path) -> None:
        """The console script runs as a real process with the same exit codes."""
        path = app(tmp_path, ADD)
        ok = subprocess.run(
            [sys.executable, "-m", "broker.cli", "run", str(path), "--call", "m.add", "2", "3"],
            capture_output=True,
            text=True,
        )
        assert (ok.returncode, ok.stdout) == (0, "3 2\n")
        trap = subprocess.run(
            [sys.executable, "-m", "broker.cli", "run", str(path), "--call", "m.boom"],
            capture_output=True,
            text=True,
        )
        assert trap.returncode == 1


class TestCheck:
    def test_good_module_lists_imports(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Every wasi_map import is listed with its signature; exit 0."""
        assert main(["check", str(GUESTS / "hello.wat")]) == 0
        out = capsys.readouterr().out
        assert "wasi_map.get (i32, i32, i32, i32, i32, i32) -> (i32): ok" in out

    def test_bad_imports_exit_1(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown name or a wrong signature is reported; exit 1."""
        path = tmp_path / "bad.wat"
        path.write_text(
            '(module (import "wasi_map" "frob" (func (param i32) (result i32)))'
            ' (import "wasi_map" "len" (func (param i32) (result i32)))'
            ' (import "wasi_map" "watch_drop" (func (param i32 i64) (result i32)))'
            ' (memory (export "memory") 1))'
        )
        assert main(["check", str(path)]) == 1
        out = capsys.readouterr().out
        assert "wasi_map.frob (i32) -> (i32): ERROR: not in the WASI-Map v1 ABI" in out
        assert "wasi_map.len (i32) -> (i32): ERROR: signature" in out
        assert "wasi_map.watch_drop (i32, i64) -> (i32): ok" in out

    def test_missing_memory_exit_1(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A module with wasi_map imports but no exported memory is reported."""
        path = tmp_path / "nomem.wat"
        path.write_text('(module (import "wasi_map" "new" (func (param i32) (result i32))))')
        assert main(["check", str(path)]) == 1
        assert "memory: ERROR" in capsys.readouterr().out

    def test_unreadable_module_exits_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A file that is not a module exits 2."""
        path = tmp_path / "junk.wasm"
        path.write_bytes(b"\0asm\x07junk")
        assert main(["check", str(path)]) == 2
        assert "junk.wasm: not a valid Wasm module" in capsys.readouterr().err
