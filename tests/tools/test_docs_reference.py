"""The docs say what the code does: generated tables current, keys and options all there.

`python -m broker.docgen --check` must find nothing stale; then, for what
is declared by hand (the manifest's keys, the CLI's exit codes), the
declaration is checked against the code's behaviour.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest
from paths import ROOT

from broker import cli
from broker.docgen import BLOCKS, blocks, cli_ref, manifest_ref
from broker.docgen.__main__ import main as docgen_main
from broker.docgen.__main__ import pages
from broker.errors import ManifestError
from broker.limits import CEILINGS, DEFAULT_LIMITS, LIMIT_DOCS
from broker.manifest import Manifest, load_manifest

DOCS = ROOT / "docs"


class TestGenerated:
    def test_every_generated_block_is_current(self) -> None:
        """`python -m broker.docgen --check` finds nothing stale."""
        assert docgen_main(["--check", "--root", str(ROOT)]) == 0

    def test_a_tree_without_docs_is_refused(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Run elsewhere (as from an installed package), it says what to pass."""
        assert docgen_main(["--check", "--root", str(tmp_path)]) == 2
        assert "has no README.md and docs/: pass --root" in capsys.readouterr().err

    def test_every_block_is_on_a_page_and_every_page_block_is_known(self) -> None:
        used = [name for page in pages(ROOT) for name in blocks.names(page.read_text())]
        assert set(used) == set(BLOCKS)

    def test_refill_replaces_only_the_block(self) -> None:
        text = "a\n<!-- generated: x -->\nold\n<!-- /generated: x -->\nb\n"
        new = blocks.refill(text, {"x": lambda: "new\n"})
        assert new == "a\n<!-- generated: x -->\nnew\n<!-- /generated: x -->\nb\n"

    def test_every_limit_is_described(self) -> None:
        names = {f.name for f in fields(DEFAULT_LIMITS)}
        assert set(LIMIT_DOCS) == names
        assert set(CEILINGS) == names - {"on_quota"}
        page = (DOCS / "reference" / "limits.md").read_text()
        assert all(f"| `{n}` |" in page for n in names)


class TestCommandLine:
    def test_every_option_and_command_is_in_the_reference(self) -> None:
        page = (DOCS / "reference" / "cli.md").read_text()
        missing = [o for o in cli_ref.option_strings() if f"`{o}`" not in page and o not in page]
        assert not missing

    def test_every_exit_code_is_in_the_reference(self) -> None:
        page = (DOCS / "reference" / "cli.md").read_text()
        table = page.split("## Exit codes", 1)[1]
        codes = {int(c) for c in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)}
        assert codes == {cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_BAD_INPUT}


# --- the manifest: the declared keys against the reader ----------------------

MODULE_FILE = '[modules.m]\npath = "m.wat"\n'


def load(tmp_path: Path, text: str) -> Manifest:
    for name in ("m.wat", "a.wat", "counter.wat"):
        (tmp_path / name).write_text("(module)")
    path = tmp_path / "app.toml"
    path.write_text(text)
    return load_manifest(path)


def accepted(tmp_path: Path, text: str) -> set[str]:
    """The keys the reader lists as allowed, when given an unknown one."""
    with pytest.raises(ManifestError) as info:
        load(tmp_path, text)
    m = re.search(r"\((?:allowed|known): ([^)]*)\)", str(info.value))
    assert m, f"the reader no longer lists the allowed keys: {info.value}"
    return set(m.group(1).split(", "))


PROBES = {
    "": "zzz = 1\n" + MODULE_FILE,
    "store": "[store]\nzzz = 1\n" + MODULE_FILE,
    "broker": "[broker]\nzzz = 1\n" + MODULE_FILE,
    manifest_ref.MODULE: MODULE_FILE + "zzz = 1\n",
    manifest_ref.EXPORT: MODULE_FILE + "exports.f = { zzz = 1 }\n",
}


def with_example(key: manifest_ref.Key) -> str:
    """A manifest with `key` set to its example."""
    if key.table == "":
        return f"{key.name} = {key.example}\n" + (MODULE_FILE if key.name != "modules" else "")
    if key.table in ("store", "broker"):
        return f"[{key.table}]\n{key.name} = {key.example}\n" + MODULE_FILE
    if key.table == manifest_ref.MODULE:
        if key.name == "path":
            return f"[modules.m]\npath = {key.example}\n"
        return MODULE_FILE + f"{key.name} = {key.example}\n"
    return MODULE_FILE + f"exports.f = {{ {key.name} = {key.example} }}\n"


class TestManifest:
    @pytest.mark.parametrize("table", PROBES)
    def test_the_documented_keys_are_the_accepted_ones(self, tmp_path: Path, table: str) -> None:
        documented = {k.name for k in manifest_ref.KEYS if k.table == table}
        assert accepted(tmp_path, PROBES[table]) == documented

    def test_the_limits_table_takes_the_limits(self, tmp_path: Path) -> None:
        known = accepted(tmp_path, "[limits]\nzzz = 1\n" + MODULE_FILE)
        assert known == set(LIMIT_DOCS)

    @pytest.mark.parametrize("key", manifest_ref.KEYS, ids=lambda k: k.path)
    def test_every_example_loads(self, tmp_path: Path, key: manifest_ref.Key) -> None:
        load(tmp_path, with_example(key))

    def test_the_documented_defaults_are_the_readers(self, tmp_path: Path) -> None:
        manifest = load(tmp_path, MODULE_FILE)
        by_path = {k.path: k.default for k in manifest_ref.KEYS}
        value = {
            p: tomllib.loads(f"v = {by_path[p]}")["v"]
            for p in ("store.url", "broker.strict_borrows", "broker.gc_threshold")
        }
        assert value["store.url"] == manifest.store_url
        assert value["broker.strict_borrows"] == manifest.strict_borrows
        assert value["broker.gc_threshold"] == manifest.gc_threshold
        assert manifest.limits == DEFAULT_LIMITS


# --- links and the project's own words ---------------------------------------

_LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """A heading's anchor, as GitHub makes it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = path.read_text()
    return {slug(m) for m in re.findall(r"^#+ (.*)$", text, re.MULTILINE)}


def markdown_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


@pytest.mark.parametrize("page", markdown_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_local_link_resolves(page: Path) -> None:
    """Links between pages point at files (and headings) that exist."""
    broken = []
    for target in _LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists() or (anchor and dest.is_file() and anchor not in anchors(dest)):
            broken.append(target)
    assert not broken


FORBIDDEN = ("../" + "shared", "wasi-map-v1" + ".md")  # split: this file must pass itself
SKIP_DIRS = {".git", "__pycache__", "build", ".eggs"}


def test_nothing_points_outside_the_project() -> None:
    """No file of the project refers to a document outside it: the contract is docs/abi.md."""
    hits = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in filenames:
            path = Path(dirpath) / name
            try:
                text = path.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            hits += [f"{path.relative_to(ROOT)}: {f}" for f in FORBIDDEN if f in text]
    assert not hits
