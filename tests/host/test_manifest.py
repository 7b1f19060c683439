"""Manifest parsing: good apps load; every bad one is a one-line error naming file and key."""

from pathlib import Path

import pytest
from paths import GUESTS

from broker import Broker, Rights
from broker.errors import ManifestError, ModuleError
from broker.manifest import load_manifest

HELLO = GUESTS / "hello.wat"


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "hello.wat").write_text(HELLO.read_text())
    path = tmp_path / "app.toml"
    path.write_text(text)
    return path


class TestGoodManifests:
    def test_full_manifest(self, tmp_path: Path) -> None:
        """Every section of the manifest (docs/reference/manifest.md) is read into records."""
        path = write(
            tmp_path,
            """
[store]
url = "memory:"

[limits]
key_size = 512

[modules.producer]
path = "hello.wat"
grants = { config = "r", events = "rw" }
limits = { handles = 10000, bytes = 1048576 }

[modules.consumer]
path = "hello.wat"
exports.ingest = { params = ["own", "i32"], results = ["i32"] }
exports.peek = { params = ["borrow:r"], results = ["i64"] }
""",
        )
        m = load_manifest(path)
        assert m.store_url == "memory:"
        producer, consumer = m.modules["producer"], m.modules["consumer"]
        assert producer.path == tmp_path / "hello.wat"
        assert producer.grants == {"config": Rights.READ, "events": Rights.READ | Rights.WRITE}
        assert (producer.limits.handles, producer.limits.bytes) == (10000, 1048576)
        assert producer.limits.key_size == 512  # the top-level [limits] default
        assert consumer.exports["peek"].params == ("borrow:r",)
        assert consumer.exports["ingest"].results == ("i32",)

    def test_from_manifest_loads_modules(self, tmp_path: Path) -> None:
        """Broker.from_manifest loads every module, paths relative to the manifest."""
        path = write(tmp_path, '[modules.a]\npath = "hello.wat"\n')
        with Broker.from_manifest(path) as b:
            assert b.call("a.main") == 6


BAD = [
    ("[modules.a\n", "invalid TOML"),
    ("", "modules: an app needs at least one"),
    ("[modules.a]\ngrants = {}\n", "modules.a.path: required"),
    ('[modules.a]\npath = "hello.wat"\ngrants = { cfg = "x" }\n', "modules.a.grants.cfg: rights"),
    ('[modules.a]\npath = "hello.wat"\ngrants = { cfg = "rr" }\n', "modules.a.grants.cfg: rights"),
    (
        '[modules.a]\npath = "hello.wat"\nlimits = { handels = 3 }\n',
        "modules.a.limits: unknown limit",
    ),
    (
        '[modules.a]\npath = "hello.wat"\nlimits = { handles = -1 }\n',
        "modules.a.limits: limit handles",
    ),
    ('[modules.a]\npath = "hello.wat"\nlimits = { key_size = "big" }\n', "limit key_size"),
    ('[modules.a]\npath = "hello.wat"\nlimits = { on_quota = "explode" }\n', "on_quota"),
    (
        '[modules.a]\npath = "hello.wat"\nexports.f = { params = ["own:w"] }\n',
        "modules.a.exports.f.params",
    ),
    ('[modules.a]\npath = "hello.wat"\nexports.f = { results = ["borrow"] }\n', "never 'borrow'"),
    ('[modules.a]\npath = "hello.wat"\ncolour = 1\n', "modules.a.colour: unknown key"),
    ('[store]\nurl = "ftp://x"\n[modules.a]\npath = "hello.wat"\n', "store.url: must start"),
    ('[store]\nurl = "memory:x"\n[modules.a]\npath = "hello.wat"\n', "store.url: the memory"),
    ('[store]\nurl = "sqlite:"\n[modules.a]\npath = "hello.wat"\n', "store.url: names no file"),
    ('[store]\nurl = "sqlite:a.db?sync=yes"\n[modules.a]\npath = "hello.wat"\n', "sync=full"),
    ('[store]\nurl = "redis://h:port/0"\n[modules.a]\npath = "hello.wat"\n', "HOST:PORT/DB"),
    ('[store]\nurl = "redis://:1/0"\n[modules.a]\npath = "hello.wat"\n', "HOST:PORT/DB"),
    ('[store]\nurl = "redis://h:1/db"\n[modules.a]\npath = "hello.wat"\n', "must be a number"),
    ('[store]\nurl = "redis://h:1/0?a=b"\n[modules.a]\npath = "hello.wat"\n', "no options"),
    ('[store]\nurl = 5\n[modules.a]\npath = "hello.wat"\n', "store.url: must be a string"),
    ('[modules."a.b"]\npath = "hello.wat"\n', "no '.'"),
    ("modules = 3\n", "modules: must be a table"),
    ('[wat]\n[modules.a]\npath = "hello.wat"\n', "wat: unknown key"),
    (f'[broker]\ngc_threshold = {2**64}\n[modules.a]\npath = "hello.wat"\n', "0 to 1844674"),
    ('[broker]\ngc_threshold = -1\n[modules.a]\npath = "hello.wat"\n', "broker.gc_threshold"),
    ('[broker]\ngc_threshold = true\n[modules.a]\npath = "hello.wat"\n', "not True"),
    ('[broker]\ngc_threshold = 1.5\n[modules.a]\npath = "hello.wat"\n', "not 1.5"),
    (
        '[store]\nurl = "redis://[::1"\n[modules.a]\npath = "hello.wat"\n',
        "an IPv6 host goes in brackets",
    ),
    ('[store]\nurl = "redis://h:1/\u00b2"\n[modules.a]\npath = "hello.wat"\n', "from 0 to"),
    ('[store]\nurl = "sqlite:a\\u0000b"\n[modules.a]\npath = "hello.wat"\n', "store.url: the file"),
    ('[modules.a]\npath = "a\\u0000b.wat"\n', "modules.a.path: the file name contains a NUL"),
    ('[modules."a\\nb"]\npath = 5\n', 'modules."a\\nb": a module name must have no'),
    ('[modules.a]\npath = "hello.wat"\ngrants = { "c\\nd" = "x" }\n', 'grants."c\\nd": rights'),
    (
        '[modules.a]\npath = "hello.wat"\nexports."f\\u2028g" = { params = ["own:w"] }\n',
        'modules.a.exports."f\\u2028g".params',
    ),
    ('"x\\ny" = 1\n[modules.a]\npath = "hello.wat"\n', '"x\\ny": unknown key'),
]


class TestBadManifests:
    @pytest.mark.parametrize("text,expected", BAD)
    def test_one_line_error_naming_file_and_key(
        self, tmp_path: Path, text: str, expected: str
    ) -> None:
        """A bad manifest raises ManifestError: one line, the file's path, the key."""
        path = write(tmp_path, text)
        with pytest.raises(ManifestError) as info:
            load_manifest(path)
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith(str(path))
        assert expected in message

    def test_a_huge_value_is_shown_short(self, tmp_path: Path) -> None:
        """A bad value of a million characters makes a message of a few hundred."""
        path = write(
            tmp_path, f'[modules.a]\npath = "hello.wat"\ngrants = {{ c = "{"x" * 10**6}" }}\n'
        )
        with pytest.raises(ManifestError) as info:
            load_manifest(path)
        assert "modules.a.grants.c: rights must be" in str(info.value)
        assert len(str(info.value)) < len(str(path)) + 400

    def test_largest_gc_threshold_reaches_the_broker(self, tmp_path: Path) -> None:
        """gc_threshold = 2**64 - 1, the most the C core's uint64 holds, loads."""
        path = write(
            tmp_path, f'[broker]\ngc_threshold = {2**64 - 1}\n[modules.a]\npath = "hello.wat"\n'
        )
        with Broker.from_manifest(path) as b:
            assert b.gc.threshold == 2**64 - 1

    def test_gc_threshold_past_uint64_is_refused_by_from_manifest(self, tmp_path: Path) -> None:
        """Broker.from_manifest with gc_threshold = 2**64 is a ManifestError, not OverflowError."""
        path = write(
            tmp_path, f'[broker]\ngc_threshold = {2**64}\n[modules.a]\npath = "hello.wat"\n'
        )
        with pytest.raises(
            ManifestError, match="must be an integer from 0 to 18446744073709551615"
        ):
            Broker.from_manifest(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        """A manifest that does not exist is named in the error."""
        with pytest.raises(ManifestError, match="cannot read manifest"):
            load_manifest(tmp_path / "nope.toml")

    def test_missing_module_file(self, tmp_path: Path) -> None:
        """A module path that names no file is one line: manifest, key, the path resolved."""
        path = write(tmp_path, '[modules.a]\npath = "gone.wat"\n')
        with pytest.raises(ModuleError) as info:
            Broker.from_manifest(path)
        assert str(info.value) == f"{path}: modules.a.path: no such file: {tmp_path / 'gone.wat'}"

    def test_missing_module_file_relative(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A relative path is resolved from the manifest's folder, and shown absolute."""
        (tmp_path / "app").mkdir()
        (tmp_path / "app" / "app.toml").write_text(
            '[modules."my mod"]\npath = "../mods/gone.wat"\n'
        )
        monkeypatch.chdir(tmp_path)
        with pytest.raises(ModuleError) as info:
            Broker.from_manifest("app/app.toml")
        gone = tmp_path / "mods" / "gone.wat"
        assert str(info.value) == f'app/app.toml: modules."my mod".path: no such file: {gone}'

    def test_unreadable_module_file(self, tmp_path: Path) -> None:
        """A module path that is there but cannot be read keeps the module's own error."""
        path = write(tmp_path, '[modules.a]\npath = "dir.wat"\n')
        (tmp_path / "dir.wat").mkdir()
        with pytest.raises(ModuleError, match="dir.wat: cannot read module: is a directory"):
            Broker.from_manifest(path)


MEM = '(memory (export "memory") 1)'


class TestBadModules:
    @pytest.mark.parametrize(
        "wat,expected",
        [
            ("(module", "not a valid Wasm module"),
            (
                f'(module (import "wasi_map" "nope" (func (param i32) (result i32))) {MEM})',
                "wasi_map.nope: not in the WASI-Map v1 ABI",
            ),
            (
                f'(module (import "wasi_map" "new" (func (param i64) (result i32))) {MEM})',
                "wasi_map.new: signature (i64) -> (i32) does not match",
            ),
            (
                '(module (import "wasi_map" "new" (func (param i32) (result i32))))',
                "does not export its linear memory",
            ),
            ('(module (import "other" "g" (global i32)))', "other.g, which is not a function"),
            (
                '(module (func (export "wasi_map_on_drop") (param i32)))',
                "exports wasi_map_on_drop as (i32) -> (), not (i64) -> ()",
            ),
            ("(module (func $s unreachable) (start $s))", "trapped while starting"),
        ],
    )
    def test_bad_module_is_one_clear_line(
        self, broker: Broker, tmp_path: Path, wat: str, expected: str
    ) -> None:
        """A module that cannot serve the ABI is refused with a one-line ModuleError."""
        path = tmp_path / "bad.wat"
        path.write_text(wat)
        with pytest.raises(ModuleError) as info:
            broker.load("bad", path)
        assert expected in str(info.value)
        assert "\n" not in str(info.value)
        assert str(path) in str(info.value)
