"""Bad files and store URLs: each a one-line ConfigError naming the file, never a hang or traceback.

A FIFO or /dev/zero would block or fill memory without the fix, so those
run under a deadline (SIGALRM) or in a child process with little memory.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from paths import GUESTS
from sanitizer import SANITIZED

from broker import Broker, input_file, toml_guard
from broker.cli import main
from broker.errors import ConfigError, ManifestError, ModuleError
from broker.manifest import load_manifest
from broker.runtime import compile_module
from broker.stores import open_store

HELLO = GUESTS / "hello.wat"
APP = '[modules.a]\npath = "hello.wat"\n'
DEADLINE_S = 20


@pytest.fixture
def deadline() -> Iterator[None]:
    """Fail the test (rather than hang) if it runs past DEADLINE_S."""

    def expired(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"still running after {DEADLINE_S} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(DEADLINE_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def in_child(code: str) -> str:
    """What `code` prints, run in a child process limited to 1 GiB of memory."""

    def limit() -> None:
        if not SANITIZED:  # ASan's shadow memory needs far more address space
            resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
    )
    return done.stdout + done.stderr


def one_line(exc: BaseException, *parts: str) -> str:
    """The exception's message, checked to be one line that contains every part."""
    message = str(exc)
    assert "\n" not in message
    for part in parts:
        assert part in message
    return message


def fifo(path: Path) -> Path:
    """A new FIFO (named pipe) at `path`, no writer attached."""
    os.mkfifo(path)
    return path


def manifest(tmp_path: Path, text: str) -> Path:
    """An app.toml of `text` next to a copy of hello.wat."""
    (tmp_path / "hello.wat").write_text(HELLO.read_text())
    path = tmp_path / "app.toml"
    path.write_text(text)
    return path


class TestModuleFiles:
    def test_fifo_is_refused_without_blocking(self, tmp_path: Path, deadline: None) -> None:
        """A FIFO named as a module is refused at once, not read (which waits for a writer)."""
        path = fifo(tmp_path / "m.wasm")
        with pytest.raises(ModuleError) as info:
            compile_module(path)
        one_line(info.value, str(path), "cannot read module: is a FIFO, not a regular file")

    def test_symlink_to_dev_zero_is_refused(self, tmp_path: Path) -> None:
        """A symlink to /dev/zero is refused (reading it would never end)."""
        path = tmp_path / "m.wasm"
        path.symlink_to("/dev/zero")
        out = in_child(
            "from broker.runtime import compile_module\n"
            f"try: compile_module({str(path)!r})\n"
            "except Exception as e: print(type(e).__name__, e)\n"
        )
        refused = "cannot read module: is a character device, not a regular file"
        assert out == f"ModuleError {path}: {refused}\n"

    def test_character_device_is_refused(self, tmp_path: Path) -> None:
        """/dev/null (empty, but not a file) is refused as a device, by its own name."""
        path = tmp_path / "null.wat"
        path.symlink_to("/dev/null")
        with pytest.raises(ModuleError) as info:
            compile_module(path)
        one_line(info.value, str(path), "is a character device, not a regular file")

    def test_directory_is_refused(self, tmp_path: Path) -> None:
        """A directory named like a module says so."""
        path = tmp_path / "dir.wasm"
        path.mkdir()
        with pytest.raises(ModuleError) as info:
            compile_module(path)
        one_line(info.value, f"{path}: cannot read module: is a directory")

    @pytest.mark.parametrize("name", ["empty.wasm", "empty.wat"])
    def test_empty_file_names_the_file(self, tmp_path: Path, name: str) -> None:
        """A 0-byte module file is a ModuleError naming it, not wasmtime's bare TypeError."""
        path = tmp_path / name
        path.write_bytes(b"")
        with pytest.raises(ModuleError) as info:
            compile_module(path)
        one_line(info.value, f"{path}: not a valid Wasm module: the file is empty")

    def test_empty_bytes_name_the_module(self, broker: Broker) -> None:
        """Loading b"" is a ModuleError naming the module."""
        with pytest.raises(ModuleError) as info:
            broker.load("m", b"")
        one_line(info.value, "module 'm': not a valid Wasm module: no bytes given")

    def test_file_over_the_cap_is_refused(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A module file larger than MAX_MODULE_SIZE is refused before it is read."""
        monkeypatch.setattr(input_file, "MAX_MODULE_SIZE", 1024)
        path = tmp_path / "big.wat"
        path.write_text("(module)" + " " * 2000)
        with pytest.raises(ModuleError) as info:
            compile_module(path)
        one_line(info.value, str(path), "it has 2008 bytes; the most is 1 KiB")

    def test_the_cap_is_256_mib(self) -> None:
        """The documented cap: 256 MiB, far above any real module."""
        assert input_file.MAX_MODULE_SIZE == 256 << 20

    def test_non_utf8_wat_says_where(self, tmp_path: Path) -> None:
        """A file that is neither Wasm nor UTF-8 text says which byte and where."""
        path = tmp_path / "bad.wat"
        path.write_bytes(b"(module)\xff")
        with pytest.raises(ModuleError) as info:
            compile_module(path)
        one_line(info.value, str(path), "nor UTF-8 WAT text (byte 0xff at offset 8)")

    def test_nul_in_path(self) -> None:
        """A path with a NUL byte is a ModuleError, not ValueError."""
        with pytest.raises(ModuleError) as info:
            compile_module("a\0b.wat")
        one_line(info.value, "cannot read module: the path contains a NUL byte")

    @pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
    def test_unreadable_file(self, tmp_path: Path) -> None:
        """A file without read permission says so."""
        path = tmp_path / "secret.wat"
        path.write_text("(module)")
        path.chmod(0)
        with pytest.raises(ModuleError) as info:
            compile_module(path)
        one_line(info.value, f"{path}: cannot read module: Permission denied")


class TestManifestFiles:
    def test_fifo_manifest(self, tmp_path: Path, deadline: None) -> None:
        """A FIFO named as the manifest is refused at once."""
        path = fifo(tmp_path / "app.toml")
        with pytest.raises(ManifestError) as info:
            load_manifest(path)
        one_line(info.value, f"{path}: cannot read manifest: is a FIFO, not a regular file")

    def test_dev_zero_manifest(self, tmp_path: Path) -> None:
        """A manifest that is a symlink to /dev/zero is refused, not read until memory runs out."""
        path = tmp_path / "app.toml"
        path.symlink_to("/dev/zero")
        out = in_child(
            "from broker.manifest import load_manifest\n"
            f"try: load_manifest({str(path)!r})\n"
            "except Exception as e: print(type(e).__name__, e)\n"
        )
        assert "ManifestError" in out and "is a character device, not a regular file" in out

    def test_manifest_over_the_cap(self, tmp_path: Path) -> None:
        """A manifest larger than 1 MiB is refused before it is parsed."""
        path = manifest(tmp_path, APP + "#" * input_file.MAX_MANIFEST_SIZE)
        with pytest.raises(ManifestError) as info:
            load_manifest(path)
        one_line(info.value, str(path), "cannot read manifest: it has", "the most is 1 MiB")

    def test_not_utf8(self, tmp_path: Path) -> None:
        """A manifest that is not UTF-8 says which byte."""
        path = tmp_path / "app.toml"
        path.write_bytes(APP.encode() + b"# \xfe\n")
        with pytest.raises(ManifestError) as info:
            load_manifest(path)
        one_line(
            info.value, str(path), f"invalid TOML: not UTF-8 (byte 0xfe at offset {len(APP) + 2})"
        )

    @pytest.mark.parametrize(
        "value",
        ["[" * 100_000 + "]" * 100_000, "{b = " * 100_000 + "1" + "}" * 100_000],
        ids=["arrays", "inline-tables"],
    )
    def test_deep_nesting(self, tmp_path: Path, value: str) -> None:
        """100,000 nested arrays or inline tables are a ManifestError, not RecursionError."""
        path = manifest(tmp_path, f"a = {value}\n{APP}")
        with pytest.raises(ManifestError) as info:
            load_manifest(path)
        one_line(info.value, str(path), "invalid TOML: arrays or inline tables nested too deeply")

    @pytest.mark.parametrize(
        "line",
        [
            "a" + ".a" * 100_000 + " = 1",
            "[modules.a.grants" + ".g" * 100_000 + "]",
            'x = """s""""\n' + "a" + ".a" * 100_000 + " = 1",  # after a string ending in a quote
        ],
        ids=["key", "table-header", "after-a-string"],
    )
    def test_long_dotted_keys(self, tmp_path: Path, line: str, deadline: None) -> None:
        """A key of 100,000 dotted parts is refused at once (tomllib takes minutes on it)."""
        path = manifest(tmp_path, f"{APP}{line}\n")
        with pytest.raises(ManifestError) as info:
            load_manifest(path)
        one_line(info.value, str(path), "invalid TOML: line", "a dotted key of more than 32 parts")

    def test_dots_in_strings_are_not_keys(self, tmp_path: Path) -> None:
        """Dots inside strings and comments do not count as key parts."""
        dots = "." * 1000
        text = f'{APP}# {dots}\n[modules.b]\npath = "{dots}hello.wat"\n'
        assert load_manifest(manifest(tmp_path, text)).modules["b"].path.name == f"{dots}hello.wat"

    def test_a_key_of_32_parts_is_read(self) -> None:
        """The limit is exact: 32 parts are read, 33 are refused."""
        assert toml_guard.long_key_problem(".".join("k" * 32) + " = 1\n") is None
        assert toml_guard.long_key_problem(".".join("k" * 33) + " = 1\n") is not None

    def test_integer_of_too_many_digits(self, tmp_path: Path) -> None:
        """An integer literal past Python's digit limit is a ManifestError, not ValueError."""
        path = manifest(tmp_path, f"[broker]\ngc_threshold = 1{'0' * 5000}\n{APP}")
        with pytest.raises(ManifestError) as info:
            load_manifest(path)
        one_line(info.value, str(path), "invalid TOML: Exceeds the limit")


class TestStoreUrls:
    @pytest.mark.parametrize(
        "url,expected",
        [
            ("redis://[::1", "an IPv6 host goes in brackets"),
            ("redis://h:1/²", "must be a number from 0 to 2147483647"),
            ("redis://h:1/99999999999", "must be a number from 0 to 2147483647"),
            ("sqlite:/tmp/a\0b", "the file name contains a NUL byte"),
        ],
    )
    def test_broker_refuses_with_config_error(self, url: str, expected: str) -> None:
        """Broker(store=URL) with an unusable URL is a one-line ConfigError."""
        with pytest.raises(ConfigError) as info:
            Broker(store=url)
        one_line(info.value, expected)

    def test_store_of_wrong_type(self) -> None:
        """A store that is neither a URL nor a Store is a ConfigError."""
        with pytest.raises(ConfigError, match="a store is a URL string or a Store, not int"):
            open_store(5)

    @pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
    def test_sqlite_file_must_be_regular(self, tmp_path: Path, kind: str, deadline: None) -> None:
        """An sqlite store on a FIFO, directory or device says what it is (not "disk I/O error")."""
        path = tmp_path / "maps.db"
        if kind == "fifo":
            fifo(path)
        elif kind == "directory":
            path.mkdir()
        else:
            path.symlink_to("/dev/null")
        with pytest.raises(ConfigError) as info:
            Broker(store=f"sqlite:{path}")
        one_line(info.value, f"{path}: cannot use it as an sqlite store: ", "is a")


class TestCommandLine:
    def test_fifo_module_exits_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], deadline: None
    ) -> None:
        """`wasi-map check` on a FIFO exits 2 naming it."""
        path = fifo(tmp_path / "m.wasm")
        assert main(["check", str(path)]) == 2
        assert (
            capsys.readouterr().err
            == f"wasi-map: {path}: cannot read module: is a FIFO, not a regular file\n"
        )

    def test_empty_module_exits_2(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """`wasi-map run` with an empty module file exits 2 naming it."""
        (tmp_path / "hello.wat").write_bytes(b"")
        path = tmp_path / "app.toml"
        path.write_text(APP)
        assert main(["run", str(path), "--call", "a.main"]) == 2
        err = capsys.readouterr().err
        assert (
            err
            == f"wasi-map: {tmp_path / 'hello.wat'}: not a valid Wasm module: the file is empty\n"
        )

    def test_deep_manifest_exits_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`wasi-map run` on a deeply nested manifest exits 2 with one line."""
        path = manifest(tmp_path, "a = " + "[" * 100_000 + "]" * 100_000 + "\n" + APP)
        assert main(["run", str(path), "--call", "a.main"]) == 2
        assert capsys.readouterr().err.count("\n") == 1

    def test_big_gc_threshold_exits_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """gc_threshold = 2**64 exits 2 naming the key and the range (not OverflowError)."""
        path = manifest(tmp_path, f"[broker]\ngc_threshold = {2**64}\n{APP}")
        assert main(["run", str(path), "--call", "a.main"]) == 2
        err = capsys.readouterr().err
        assert f"broker.gc_threshold: must be an integer from 0 to {2**64 - 1}" in err

    def test_trace_into_a_directory_exits_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A --trace file that cannot be opened exits 2 naming it, without a traceback."""
        path = manifest(tmp_path, APP)
        assert main(["run", str(path), "--call", "a.main", "--trace", str(tmp_path)]) == 2
        assert capsys.readouterr().err == f"wasi-map: {tmp_path}: Is a directory\n"

    def test_graph_into_a_missing_directory_exits_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A graph -o file in a directory that does not exist exits 2 naming it."""
        path = manifest(tmp_path, APP)
        out = tmp_path / "missing" / "g.dot"
        assert main(["graph", str(path), "--call", "a.main", "-o", str(out)]) == 2
        assert capsys.readouterr().err == f"wasi-map: {out}: No such file or directory\n"
