"""docs/guest-c.md runs as written: its files, its clang commands, its wasi-map sessions
(tests/support/doc_session.py says how)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from doc_session import matches, page_files, run_session, session
from paths import ROOT

PAGE = ROOT / "docs" / "guest-c.md"


class TestPage:
    """What the page is made of."""

    def test_files(self) -> None:
        """The page shows the guest, its manifests, and the Python that drives it."""
        assert sorted(page_files(PAGE)) == [
            "tally/app.toml",
            "tally/bad.c",
            "tally/leaky.c",
            "tally/leaky.toml",
            "tally/nogrant.toml",
            "tally/size.py",
            "tally/tally.c",
            "tally/why.py",
        ]
        assert '#include "wasi_map.h"' in page_files(PAGE)["tally/tally.c"]

    def test_the_build_command_comes_first(self) -> None:
        """The first command is the clang command line for the minimal guest."""
        first = session(PAGE)[0].command
        assert first.startswith("clang --target=wasm32-wasi ")
        assert first.endswith("-I guests/include -o tally/tally.wasm tally/tally.c")
        commands = "\n".join(step.command for step in session(PAGE))
        for debugging in ("wasi-map check", "--trace", "wasi-map leaks"):
            assert debugging in commands

    def test_matches(self) -> None:
        """`...` stands for any text within a line; line counts must agree."""
        assert matches(["    0: ... - check"], "    0:     0xda - check\n")
        assert not matches(["a"], "a\nb")
        assert not matches(["a ... c"], "a b d")


@pytest.mark.skipif(shutil.which("clang") is None, reason="no clang to build the guest")
class TestSession:
    """Every command on the page, run in order."""

    def test_every_command(self, tmp_path: Path) -> None:
        """Each command prints what the page shows; `echo $?` the status before it."""
        run_session(PAGE, tmp_path)
