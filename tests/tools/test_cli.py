"""The `wasi-map` command: its output, exit codes, option order and messages."""

import argparse
import re
import shutil
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from paths import GUESTS, ROOT

from broker._native import WASMTIME_PIN
from broker.cli import build_parser, main


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


class TestVersion:
    def test_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--version prints the installed version and the pinned wasmtime, and exits 0."""
        with pytest.raises(SystemExit) as info:
            main(["--version"])
        assert info.value.code == 0
        expected = f"wasi-map {metadata.version('wasi-map')} (wasmtime {WASMTIME_PIN})\n"
        assert capsys.readouterr().out == expected

    def test_version_of_the_installed_command(self) -> None:
        """The console script answers --version too."""
        done = subprocess.run(
            [sys.executable, "-m", "broker.cli", "--version"], capture_output=True, text=True
        )
        assert (done.returncode, done.stdout) == (0, f"wasi-map 0.1.0 (wasmtime {WASMTIME_PIN})\n")


CHECKOUT_HEADER = ROOT / "guests" / "include" / "wasi_map.h"
MINIMAL_GUEST = """#include "wasi_map.h"
__attribute__((export_name("fresh"))) uint32_t fresh(void) {
    wm_handle_t h;
    return wm_new((uint32_t)(uintptr_t)&h) == WM_OK && wm_close(h) == WM_OK;
}
"""


class TestInclude:
    def test_prints_the_header_directory(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`wasi-map include` prints a directory holding the generated guest header.

        Installed from a wheel it is the package's copy (broker/include/); in a
        checkout, guests/include/: either way the same bytes."""
        assert main(["include"]) == 0
        where = Path(capsys.readouterr().out.strip())
        assert (where / "wasi_map.h").read_bytes() == CHECKOUT_HEADER.read_bytes()
        hpp = CHECKOUT_HEADER.with_name("wasi_map.hpp")
        assert (where / "wasi_map.hpp").read_bytes() == hpp.read_bytes()

    def test_rust_prints_the_crate_directory(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`wasi-map include --rust` prints the Rust crate's directory, the same files
        as guests/rust/ (docs/guest-rust.md builds src/lib.rs from there)."""
        assert main(["include", "--rust"]) == 0
        where = Path(capsys.readouterr().out.strip())
        for name in ("Cargo.toml", "src/lib.rs", "src/abi.rs"):
            assert (where / name).read_bytes() == (ROOT / "guests" / "rust" / name).read_bytes()

    @pytest.mark.skipif(shutil.which("clang") is None, reason="no clang to build a guest")
    def test_a_guest_builds_with_it(self, tmp_path: Path) -> None:
        """clang -I "$(wasi-map include)" builds a guest that runs (docs/guest-c.md)."""
        (tmp_path / "g.c").write_text(MINIMAL_GUEST)
        done = subprocess.run(
            "clang --target=wasm32-wasi -O2 -nostartfiles -Wl,--no-entry "
            f'-I "$("{sys.executable}" -m broker.cli include)" -o g.wasm g.c',
            shell=True,
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        path = tmp_path / "app.toml"
        path.write_text('[modules.g]\npath = "g.wasm"\n')
        assert main(["run", str(path), "--call", "g.fresh"]) == 0


class TestOptionOrder:
    @pytest.mark.parametrize(
        "words",
        [
            ["{app}", "--call", "m.add", "-7", "0x10"],
            ["--call", "m.add", "-7", "0x10", "{app}"],
            ["--call", "m.add", "-7", "0x10", "-v", "{app}"],
            ["-v", "{app}", "--call", "m.add", "-7", "0x10"],
            ["--call=m.add", "-7", "0x10", "{app}"],
            ["--trace", "{trace}", "--call", "m.add", "-7", "0x10", "{app}"],
            ["--call", "m.add", "-7", "0x10", "{app}", "--trace", "{trace}"],
        ],
    )
    def test_run_either_order(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], words: list[str]
    ) -> None:
        """The manifest may come before or after --call and the other options."""
        path, trace = app(tmp_path, ADD), tmp_path / "t.jsonl"
        argv = [w.format(app=path, trace=trace) for w in words]
        assert main(["run", *argv]) == 0
        assert capsys.readouterr().out == "16 -7\n"

    def test_negative_hex_argument(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A negative hex argument is an argument, not an option, before the manifest too."""
        assert main(["run", "--call", "m.add", "-0x10", "3", str(app(tmp_path, ADD))]) == 0
        assert capsys.readouterr().out == "3 -16\n"

    def test_leaks_and_graph_either_order(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """leaks and graph take the manifest after --call and its options too."""
        path, out = app(tmp_path, ADD), tmp_path / "g.dot"
        assert main(["leaks", "--call", "m.add", "1", "2", "--json", str(path)]) == 0
        assert '"leaks": []' in capsys.readouterr().out
        assert main(["graph", "-o", str(out), "--call", "m.add", "1", "2", str(path)]) == 0
        assert out.read_text().startswith("digraph")

    @pytest.mark.parametrize(
        "words,expected",
        [
            (["{app}", "--call", "m.add", "1", "x"], "argument 'x' is not an integer"),
            (["--call", "m.add", "1", "x", "2", "{app}"], "argument 'x' is not an integer"),
            (["--call", "m.add", "1", "2"], "the following arguments are required: APP.toml"),
            (["{app}", "--call"], "--call needs MODULE.EXPORT"),
            (
                ["{app}", "--call", "m.add", "1", "--call", "m.add"],
                "--call is given more than once",
            ),
            (["{app}", "--call", "m.add", "1", "2", "--bogus"], "unrecognized arguments: --bogus"),
        ],
    )
    def test_bad_order_exits_2(
        self,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        words: list[str],
        expected: str,
    ) -> None:
        """A word that is neither an integer nor the manifest, or no manifest, exits 2."""
        argv = [w.format(app=app(tmp_path, ADD)) for w in words]
        try:
            code = main(["run", *argv])
        except SystemExit as exc:  # argparse's own refusals
            code = int(str(exc.code))
        assert code == 2
        assert expected in capsys.readouterr().err


TRAP_OOB = (
    '(module (memory (export "memory") 1)'
    ' (func (export "f") (result i32) (i32.load (i32.const 70000))))'
)


class TestVerbose:
    def test_one_line_without_v(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Without -v a trap is one line."""
        assert main(["run", str(app(tmp_path, TRAP_OOB)), "--call", "m.f"]) == 1
        assert capsys.readouterr().err.count("\n") == 1

    @pytest.mark.parametrize("flag", ["-v", "--verbose"])
    def test_details_with_v(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
    ) -> None:
        """-v adds the trap's details: the faulting address, the memory size, the backtrace."""
        assert main(["run", flag, str(app(tmp_path, TRAP_OOB)), "--call", "m.f"]) == 1
        first, *rest = capsys.readouterr().err.splitlines()
        assert first.startswith("wasi-map: m.f: guest trapped") and "out of bounds" in first
        details = "\n".join(rest)
        assert all(line.startswith("  ") or not line for line in rest)
        assert "wasm backtrace" in details
        assert "memory fault at wasm address 0x11170 in linear memory of size 0x10000" in details

    def test_leaks_with_v(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """leaks -v prints the details of the trap before its report."""
        assert main(["leaks", "-v", str(app(tmp_path, TRAP_OOB)), "--call", "m.f"]) == 1
        assert "memory fault at wasm address" in capsys.readouterr().err


def closed_port() -> int:
    """A local TCP port nothing listens on (a connection is refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TestStoreFailure:
    @pytest.mark.parametrize("command", ["run", "leaks"])
    def test_store_reason_after_the_trap(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
    ) -> None:
        """A run that traps after a store failed prints the store's reason on stderr."""
        url = f"redis://127.0.0.1:{closed_port()}/0"
        path = tmp_path / "app.toml"
        path.write_text(
            f'[store]\nurl = "{url}"\n[modules.s]\npath = "{GUESTS / "store_trap.wat"}"\n'
            'grants = { hits = "rw" }\n'
        )
        assert main([command, str(path), "--call", "s.main"]) == 1
        err = capsys.readouterr().err.splitlines()
        trap = "wasi-map: s.main: guest trapped: wasm `unreachable` instruction executed"
        assert err[0].startswith(f"{trap} (the store failed during the call: ")
        assert f"map 'hits' from s: {url}: " in err[0] and "refused" in err[0]
        assert len(err) == 1

    def test_no_store_line_without_failure(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A trap with no store failure behind it is the trap's line alone."""
        path = tmp_path / "app.toml"
        path.write_text(f'[modules.s]\npath = "{GUESTS / "store_trap.wat"}"\n')  # no grant
        assert main(["run", str(path), "--call", "s.main"]) == 1
        assert capsys.readouterr().err.count("\n") == 1


HANDLES = (
    '(module (import "wasi_map" "new" (func $new (param i32) (result i32)))'
    ' (memory (export "memory") 1)'
    ' (func (export "ingest") (param i32 i32) (result i32) (local.get 1))'
    ' (func (export "give") (result i32 i32)'
    "   (drop (call $new (i32.const 0))) (i32.load (i32.const 0)) (i32.const 7)))"
)


class TestHandleParams:
    @pytest.mark.parametrize(
        "kind,wrapper", [("own", "Own(mapref)"), ("borrow:r", 'Borrow(mapref, rights="r")')]
    )
    def test_advice_for_a_shell_user(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, wrapper: str
    ) -> None:
        """Asking for a handle parameter from the shell says why not and what to do instead."""
        path = app(tmp_path, HANDLES, extra=f'exports.ingest = {{ params = ["{kind}", "i32"] }}\n')
        assert main(["run", str(path), "--call", "m.ingest", "1", "2"]) == 2
        err = capsys.readouterr().err
        assert err == (
            f"wasi-map: m.ingest: parameter 0 is a handle ({kind}); handle parameters can't "
            "be given on the command line (a number is no handle of the callee's): call an "
            "export that takes only i32/i64 parameters, or call this one from Python with "
            f"{wrapper}\n"
        )
        assert "pass Own" not in err

    def test_a_map_result_is_shown_as_a_handle(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A declared handle result prints as its map's number (as leaks shows it), not a repr."""
        path = app(tmp_path, HANDLES, extra='exports.give = { results = ["own", "i32"] }\n')
        assert main(["run", str(path), "--call", "m.give"]) == 0
        assert re.fullmatch(r"map \d+ 7\n", capsys.readouterr().out)


class TestParser:
    def test_every_option_has_help(self) -> None:
        """build_parser() gives every option and argument of every command a help text."""
        parser = build_parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        for name, command in sub.choices.items():
            for action in command._actions:
                assert action.help, f"{name} {action.option_strings or action.dest}"
        assert all(a.help for a in parser._actions)

    def test_missing_module_file_names_the_key(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A manifest naming a module file that is not there: key and resolved path, exit 2."""
        path = tmp_path / "app.toml"
        path.write_text('[modules.counter]\npath = "counter.wat"\n')
        assert main(["run", str(path), "--call", "counter.hit"]) == 2
        assert capsys.readouterr().err == (
            f"wasi-map: {path}: modules.counter.path: no such file: {tmp_path / 'counter.wat'}\n"
        )
