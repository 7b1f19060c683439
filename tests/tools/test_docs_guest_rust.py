"""docs/guest-rust.md runs as written: its files, its rustc commands, its wasi-map sessions
(tests/support/doc_session.py says how)."""

from __future__ import annotations

from pathlib import Path

import pytest
from doc_session import page_files, run_session, session
from paths import ROOT

PAGE = ROOT / "docs" / "guest-rust.md"
RUSTC = Path("/usr/bin/rustc")  # Debian's, as the page calls it


class TestPage:
    """What the page is made of."""

    def test_files(self) -> None:
        """The page shows two guests, their manifest, and a guest that must not compile."""
        assert sorted(page_files(PAGE)) == [
            "tally/app.toml",
            "tally/caller.rs",
            "tally/moved.rs",
            "tally/tally.rs",
        ]

    def test_the_crate_is_built_first(self) -> None:
        """The first command builds the crate, with Debian's rustc by its full path."""
        first = session(PAGE)[0].command
        assert first.startswith("/usr/bin/rustc ")
        assert first.endswith("-o tally/libwasi_map.rlib guests/rust/src/lib.rs")


@pytest.mark.skipif(not RUSTC.exists(), reason="no /usr/bin/rustc (scripts/install-deps.sh)")
class TestSession:
    """Every command on the page, run in order."""

    def test_every_command(self, tmp_path: Path) -> None:
        """Each command prints what the page shows."""
        run_session(PAGE, tmp_path)
