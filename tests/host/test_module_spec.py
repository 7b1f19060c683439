"""A module's spec is checked once (broker/module_spec.py), for `Broker.load` and the manifest.

Both refuse a bad spec with the same words; each puts its own context in
front: `Broker.load` the module and the part (a ConfigError), the manifest
its file and key (a ManifestError).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from paths import GUESTS

from broker import Broker, Rights
from broker import module_spec as spec_module
from broker.errors import ConfigError, ManifestError
from broker.gc import MAX_THRESHOLD
from broker.manifest import load_manifest

HELLO = GUESTS / "hello.wat"
LONG = "x" * 1100  # a map name over 1024 bytes


def manifest(tmp_path: Path, lines: str) -> Path:
    (tmp_path / "hello.wat").write_text(HELLO.read_text())
    path = tmp_path / "app.toml"
    path.write_text(f'[modules.a]\npath = "hello.wat"\n{lines}\n')
    return path


# (Broker.load keyword arguments, the same as manifest lines, the words both
#  say, where Broker.load says it is, the manifest key)
BAD: list[tuple[dict[str, Any], str, str, str, str]] = [
    (
        {"grants": {"cfg": "x"}},
        'grants = { cfg = "x" }',
        "rights must be 'r', 'w' or 'rw', not 'x'",
        "grant 'cfg'",
        "modules.a.grants.cfg",
    ),
    (
        {"grants": {LONG: "r"}},
        f'grants = {{ {LONG} = "r" }}',
        "a map name must be 1..1024 bytes of UTF-8",
        f"grant '{'x' * 36}...",  # a long name is cut short
        "modules.a.grants.",
    ),
    ({"grants": 5}, "grants = 5", "must be a table, not int", "grants", "modules.a.grants"),
    (
        {"limits": {"handels": 3}},
        "limits = { handels = 3 }",
        "unknown limit 'handels' (known: ",
        "limits",
        "modules.a.limits",
    ),
    (
        {"limits": {"handles": -1}},
        "limits = { handles = -1 }",
        "limit handles must be an integer in 0..",
        "limits",
        "modules.a.limits",
    ),
    (
        {"limits": {"on_quota": "explode"}},
        'limits = { on_quota = "explode" }',
        "limit on_quota must be one of ('error', 'trap'), got 'explode'",
        "limits",
        "modules.a.limits",
    ),
    (
        {"exports": {"f": {"results": ["borrow"]}}},
        'exports.f = { results = ["borrow"] }',
        "a result may be 'own' or 'share', never 'borrow'",
        "export 'f' results",
        "modules.a.exports.f.results",
    ),
    (
        {"exports": {"f": {"params": ["own:w"]}}},
        'exports.f = { params = ["own:w"] }',
        "unknown kind 'own:w'",
        "export 'f' params",
        "modules.a.exports.f.params",
    ),
    (
        {"exports": {"f": {"parms": ["i32"]}}},
        'exports.f = { parms = ["i32"] }',
        "unknown key (allowed: params, results)",
        "export 'f' parms",
        "modules.a.exports.f.parms",
    ),
    (
        {"exports": {"f": {"params": "own"}}},
        'exports.f = { params = "own" }',
        "must be a list of kinds",
        "export 'f' params",
        "modules.a.exports.f.params",
    ),
    (
        {"exports": {"f": 3}},
        "exports.f = 3",
        "must be a table, not int",
        "export 'f'",
        "modules.a.exports.f",
    ),
]


class TestSameWords:
    @pytest.mark.parametrize(
        ("kwargs", "lines", "words", "place", "key"),
        BAD,
        ids=[
            "rights",
            "long-name",
            "grants-not-a-table",
            "unknown-limit",
            "negative-limit",
            "on-quota",
            "borrow-result",
            "unknown-kind",
            "unknown-declaration-key",
            "kinds-not-a-list",
            "declaration-not-a-table",
        ],
    )
    def test_load_and_manifest_refuse_alike(
        self,
        broker: Broker,
        tmp_path: Path,
        kwargs: dict[str, Any],
        lines: str,
        words: str,
        place: str,
        key: str,
    ) -> None:
        """The same bad spec: the same problem, after each one's own context
        (before: Broker.load took an unknown declaration key, a string of
        kinds or a non-table declaration without a word, or with another)."""
        with pytest.raises(ConfigError) as loaded:
            broker.load("a", HELLO, **kwargs)
        path = manifest(tmp_path, lines)
        with pytest.raises(ManifestError) as read:
            load_manifest(path)
        by_load, by_manifest = str(loaded.value), str(read.value)
        assert by_load.startswith(f"module 'a' {place}: ")
        assert by_manifest.startswith(f"{path}: {key}")
        problem = by_load.split(": ", 1)[1]
        assert words in problem
        assert by_manifest.split(": ", 2)[2] == problem
        assert broker.modules() == []

    def test_a_bad_module_name(self, broker: Broker, tmp_path: Path) -> None:
        """A module name with a '.': the same words from both."""
        with pytest.raises(ConfigError) as loaded:
            broker.load("a.b", HELLO)
        path = tmp_path / "app.toml"
        path.write_text('[modules."a.b"]\npath = "hello.wat"\n')
        with pytest.raises(ManifestError) as read:
            load_manifest(path)
        problem = "a module name must have no '.' and no unprintable characters"
        assert str(loaded.value) == f"module name 'a.b': {problem}"
        assert str(read.value) == f'{path}: modules."a.b": {problem}'

    def test_a_bad_gc_threshold(self, tmp_path: Path) -> None:
        """Broker(gc_threshold=...) and the manifest's broker.gc_threshold: the same words."""
        with pytest.raises(ConfigError) as made:
            Broker(gc_threshold=-1)
        path = manifest(tmp_path, "")
        path.write_text("[broker]\ngc_threshold = -1\n" + path.read_text())
        with pytest.raises(ManifestError) as read:
            load_manifest(path)
        words = f"must be an integer from 0 to {MAX_THRESHOLD}, not -1"
        assert str(made.value) == f"the collector threshold {words}"
        assert str(read.value) == f"{path}: broker.gc_threshold: {words}"


class TestRights:
    def test_load_takes_rights_as_ints(self, broker: Broker) -> None:
        """From Python a grant's rights may be an int or Rights; bits beyond them may not."""
        broker.load("a", HELLO, grants={"r": Rights.READ, "rw": 3})
        with pytest.raises(ConfigError, match="not 8"):
            broker.load("b", HELLO, grants={"x": 8})

    def test_the_manifest_takes_rights_as_text(self, tmp_path: Path) -> None:
        """In a manifest rights are "r", "w" or "rw" (docs/reference/manifest.md)."""
        with pytest.raises(ManifestError, match=r"grants\.cfg: rights must be 'r', 'w' or 'rw'"):
            load_manifest(manifest(tmp_path, "grants = { cfg = 3 }"))

    def test_load_takes_a_declaration_as_written(self, broker: Broker) -> None:
        """An ExportDecl passes as it is; its kinds are checked all the same."""
        broker.load("a", HELLO, exports={"add": spec_module.ExportDecl(("i64", "i32"), ())})
        with pytest.raises(ConfigError, match="unknown kind 'lend'"):
            broker.load("b", HELLO, exports={"add": spec_module.ExportDecl(("lend",), ())})


class TestParsedOnce:
    def test_from_manifest_checks_each_module_once(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Broker.from_manifest loads the specs the manifest reader checked, without
        checking them again."""
        checked: list[object] = []
        real = spec_module.check_grants

        def counting(grants: object, **kwargs: Any) -> dict[str, Rights]:
            checked.append(grants)
            return real(grants, **kwargs)

        monkeypatch.setattr(spec_module, "check_grants", counting)
        path = manifest(tmp_path, 'grants = { cfg = "r" }\n[modules.b]\npath = "hello.wat"')
        with Broker.from_manifest(path) as b:
            assert b.modules() == ["a", "b"]
        assert checked == [{"cfg": "r"}, None]
