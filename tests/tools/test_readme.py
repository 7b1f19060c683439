"""README.md runs as written: its module, manifests, commands and Python snippet.

The README's own `counter.wat` and `app.toml` snippets are written into a
temporary directory; every `console` command runs there and must print
what the README shows, the Python snippet runs there and must print the
`text` block after it, and each `toml` snippet loads.  The layout table
must name real files, and every module of broker/ and native/.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from paths import ROOT

from broker.manifest import load_manifest

README = ROOT / "README.md"
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```\n", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Snippet:
    lang: str
    body: str
    after: Snippet | None  # the block right after it, if only a few words lie between


def snippets() -> list[Snippet]:
    text = README.read_text()
    found = list(_FENCE.finditer(text))
    out: list[Snippet | None] = [None] * len(found)
    for i in reversed(range(len(found))):
        m = found[i]
        nxt = found[i + 1] if i + 1 < len(found) else None
        close = nxt is not None and len(text[m.end() : nxt.start()].split()) <= 2
        out[i] = Snippet(m.group(1), m.group(2), out[i + 1] if close else None)
    return [s for s in out if s is not None]


def named(lang: str, first_line: str) -> Snippet:
    (snippet,) = [s for s in snippets() if s.lang == lang and s.body.startswith(first_line)]
    return snippet


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A directory holding the README's counter.wat and app.toml."""
    (tmp_path / "counter.wat").write_text(named("wat", ";; counter.wat\n").body)
    (tmp_path / "app.toml").write_text(named("toml", "# app.toml\n").body)
    return tmp_path


def wasi_map(words: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    assert words[0] == "wasi-map"
    cmd = [sys.executable, "-m", "broker.cli", *words[1:]]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


def sessions() -> list[tuple[str, list[str]]]:
    """Every `$ command` of the console blocks, with the lines shown after it."""
    out: list[tuple[str, list[str]]] = []
    for s in snippets():
        if s.lang != "console":
            continue
        for line in s.body.splitlines():
            if line.startswith("$ "):
                out.append((line[2:], []))
            else:
                out[-1][1].append(line)
    return out


class TestSnippets:
    def test_the_readme_has_what_these_tests_run(self) -> None:
        langs = [s.lang for s in snippets()]
        assert {"wat", "toml", "console", "python"} <= set(langs)
        assert sessions()

    @pytest.mark.parametrize("session", sessions(), ids=lambda s: s[0])
    def test_console_commands_print_what_is_shown(
        self, app: Path, session: tuple[str, list[str]]
    ) -> None:
        command, shown = session
        done = wasi_map(shlex.split(command, comments=True), app)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == shown

    @pytest.mark.parametrize(
        "snippet", [s for s in snippets() if s.lang == "python"], ids=lambda s: "python"
    )
    def test_python_snippets_run_and_print_what_is_shown(self, app: Path, snippet: Snippet) -> None:
        (app / "snippet.py").write_text(snippet.body)
        done = subprocess.run(
            [sys.executable, "snippet.py"], cwd=app, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        if snippet.after is not None and snippet.after.lang == "text":
            assert done.stdout == snippet.after.body

    def test_the_manifest_loads(self, app: Path) -> None:
        manifest = load_manifest(app / "app.toml")
        assert set(manifest.modules) == {"counter"}
        assert manifest.modules["counter"].limits.handles == 1000

    def test_the_store_table_makes_counts_persist(self, app: Path) -> None:
        """The `[store]` snippet, added to app.toml: the count survives the process."""
        store = named("toml", "# app.toml, added\n").body
        with (app / "app.toml").open("a") as f:
            f.write("\n" + store)
        assert load_manifest(app / "app.toml").store_url.startswith("sqlite:")
        command = shlex.split(sessions()[0][0])
        assert [wasi_map(command, app).stdout for _ in range(2)] == ["1\n", "2\n"]
        assert (app / "state.db").exists()


def layout_paths() -> list[str]:
    text = README.read_text().split("## Layout\n", 1)[1]
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    return [p for row in rows for p in re.findall(r"`([^`]+)`", row.split("|")[1])]


class TestLayout:
    def test_every_path_in_the_layout_exists(self) -> None:
        paths = layout_paths()
        assert paths
        missing = [p for p in paths if not (ROOT / p).exists()]
        assert not missing

    def test_every_module_is_in_the_layout(self) -> None:
        """A new module of broker/ or native/ must be named in the README's layout."""
        named_paths = set(layout_paths())
        broker = ROOT / "broker"
        modules = [p for p in broker.glob("*.py") if p.name != "__init__.py"]
        packages = [p for p in broker.iterdir() if (p / "__init__.py").exists()]
        sources = [*modules, *(ROOT / "native").glob("*.c")]
        expected = {str(p.relative_to(ROOT)) for p in sources}
        expected |= {f"{p.relative_to(ROOT)}/" for p in packages}
        assert sorted(expected - named_paths) == []
