"""docs/guest-cpp.md runs as written: its files, its clang++ commands, its wasi-map sessions
(tests/support/doc_session.py says how)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from doc_session import page_files, run_session, session
from paths import ROOT

PAGE = ROOT / "docs" / "guest-cpp.md"


class TestPage:
    """What the page is made of."""

    def test_the_guest_uses_the_header(self) -> None:
        """The page's guest includes wasi_map.hpp, and its first command builds it."""
        assert '#include "wasi_map.hpp"' in page_files(PAGE)["tally/tally.cpp"]
        first = session(PAGE)[0].command
        assert first.startswith("clang++ --target=wasm32-wasi ")
        assert "-nostdlib++ -mexec-model=reactor" in first


@pytest.mark.skipif(shutil.which("clang++") is None, reason="no clang++ to build the guest")
class TestSession:
    """Every command on the page, run in order."""

    def test_every_command(self, tmp_path: Path) -> None:
        """Each command prints what the page shows; `echo $?` the status before it."""
        run_session(PAGE, tmp_path)
