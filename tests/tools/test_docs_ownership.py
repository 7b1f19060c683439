"""docs/ownership.md: its pictures are current, and its excerpts and claims are the runs'.

docs/pictures/make.py draws each picture from a real run of
docs/pictures/app.toml.  The graphviz source (.dot) is compared with a
fresh run, not the .svg bytes, which differ between graphviz versions; the
.svg is checked to be a rendering of that source (same nodes, same text).
"""

from __future__ import annotations

import html
import importlib.util
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from paths import ROOT

PAGE = ROOT / "docs" / "ownership.md"
PICTURES = ROOT / "docs" / "pictures"
SOURCES = {"wat": ["a.wat", "b.wat"], "toml": ["app.toml"]}

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is missing")


def load_make() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_pictures", PICTURES / "make.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def scenes() -> dict[str, Any]:
    """Every scene of make.py, run once: name -> Scene."""
    return {s.name: s for s in load_make().scenes()}


def blocks(language: str) -> list[str]:
    """The page's fenced code blocks in `language`."""
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), re.DOTALL)


def code(line: str) -> str:
    """A line without its trailing comment, whitespace collapsed."""
    line = re.sub(r"\s+(#|;;)\s.*$", "", line.strip())
    return " ".join(line.split())


def labels(dot: str) -> Counter[str]:
    """Every line of every label in graphviz source (what an SVG shows as text)."""
    found = re.findall(r'label=("(?:[^"\\]|\\.)*"|[^ \]]+)', dot)
    lines = (part for text in found for part in text.strip('"').split("\\n"))
    return Counter(line for line in lines if line)


class TestPictures:
    """Each scene's picture is current, and its .svg is a rendering of its .dot."""

    def test_dot_is_current(self, scenes: dict[str, Any]) -> None:
        """A fresh run draws the same graphviz source as the checked-in .dot."""
        for name, scene in scenes.items():
            checked_in = (PICTURES / f"{name}.dot").read_text()
            assert scene.draw().source == checked_in, (
                f"docs/pictures/{name}.dot is stale: run python docs/pictures/make.py"
            )

    def test_no_other_pictures(self, scenes: dict[str, Any]) -> None:
        """Every .dot and .svg in docs/pictures belongs to a scene."""
        files = sorted(p.name for p in PICTURES.iterdir() if p.suffix in (".dot", ".svg"))
        assert files == sorted(f"{n}{s}" for n in scenes for s in (".dot", ".svg"))

    def test_svg_renders_the_dot(self, scenes: dict[str, Any]) -> None:
        """The .svg has the .dot's nodes and shows its labels' text, line by line."""
        for name in scenes:
            dot = (PICTURES / f"{name}.dot").read_text()
            svg = (PICTURES / f"{name}.svg").read_text()
            nodes = set(re.findall(r'^\t+"(f\d+ (?:module|map) [^"]+)" \[', dot, re.M))
            drawn = re.findall(r'<g id="node\d+" class="node">\n<title>(.*?)</title>', svg)
            assert set(map(html.unescape, drawn)) == nodes, name
            texts = Counter(html.unescape(t) for t in re.findall(r"<text [^>]*>(.*?)</text>", svg))
            assert texts == labels(dot), name

    @needs_dot
    def test_make_py_as_a_script(self, tmp_path: Path) -> None:
        """python docs/pictures/make.py OUTDIR writes every .dot and .svg; the .dot files match."""
        done = subprocess.run(
            [sys.executable, str(PICTURES / "make.py"), str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        written = sorted(p.name for p in tmp_path.iterdir())
        assert len(done.stdout.splitlines()) == len(written) == 20
        for dot in tmp_path.glob("*.dot"):
            assert dot.read_text() == (PICTURES / dot.name).read_text()
        assert (tmp_path / "own.svg").read_text().lstrip().startswith("<?xml")


class TestPage:
    """What the page shows is what the app declares and what the runs did."""

    def test_every_picture_is_shown(self, scenes: dict[str, Any]) -> None:
        """The page shows each scene's .svg, in the order make.py draws them."""
        shown = re.findall(r"!\[[^\]]*\]\(pictures/([\w-]+)\.svg\)", PAGE.read_text())
        assert shown == list(scenes)

    def test_excerpts_come_from_the_app(self) -> None:
        """Every line of every wat / toml excerpt is a line of a.wat, b.wat or app.toml."""
        for language, files in SOURCES.items():
            source = {code(line) for f in files for line in (PICTURES / f).read_text().splitlines()}
            excerpts = blocks(language)
            assert excerpts, language
            for excerpt in excerpts:
                for line in excerpt.splitlines():
                    assert code(line) in source, f"{language} excerpt line not in the app: {line}"

    def test_runs_did_what_the_page_says(self, scenes: dict[str, Any]) -> None:
        """The page's claims that the pictures cannot show, checked against the runs."""
        page = PAGE.read_text()
        assert scenes["own"].facts == {"errno": "STALE"}
        assert scenes["share"].facts == {"errno": "OK"}  # a's handle still works
        assert scenes["borrow"].facts == {"unreleased_borrows": 0}
        assert scenes["lending"].facts == {"unreleased_borrows": 1}
        teardown = scenes["teardown"].facts
        assert teardown["origin"] == "b" and teardown["maps_left"] == 0
        assert f"```\n{teardown['trap']}\n```" in page
        assert scenes["notices"].facts == {"notice": 7}
        assert scenes["cycle"].facts == {"collected": 2, "maps_left": 0}

    def test_python_blocks_run(self, tmp_path: Path) -> None:
        """The page's Python runs from the repository root and does what it says."""
        (tmp_path / "docs").symlink_to(ROOT / "docs")
        host, drawing = blocks("python")
        done = subprocess.run(
            [sys.executable, "-c", host], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert (done.returncode, done.stdout, done.stderr) == (0, "m has moved to b\n", "")
        if shutil.which("dot") is not None:
            subprocess.run([sys.executable, "-c", drawing], cwd=tmp_path, check=True, timeout=120)
            assert "<svg" in (tmp_path / "own.svg").read_text()
