"""The Rust crate (guests/rust) itself: warning-free, and the ownership mistakes it refuses
to compile (its conformance checks: test_conformance.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from language_builds import build_rust, rustc_output
from paths import ROOT

CRATE = ROOT / "guests" / "rust"


class TestCrate:
    """The crate itself: warning-free, and its generated half up to date."""

    def test_builds_without_warnings(self, tmp_path: Path) -> None:
        """The crate compiles as an rlib with every warning an error."""
        rustc_output(
            "--crate-type", "rlib", "--crate-name", "wasi_map", "-D", "warnings",
            "-o", str(tmp_path / "libwasi_map.rlib"), str(CRATE / "src" / "lib.rs"),
        )  # fmt: skip

    @pytest.mark.parametrize(
        ("mistake", "source", "error"),
        [
            (  # the broker would answer STALE
                "a Map used after it moved into an `own` call",
                'wasi_map::import! { from "b" { fn take(m: Map); } }\n'
                "wasi_map::export! { fn f() -> u32 {\n"
                "    let m = Map::new().unwrap(); take(m); m.len().unwrap()\n"
                "} }\n",
                "borrow of moved value",
            ),
            (  # ACCES: a borrowed handle is not the holder's to give
                "a Borrowed<Map> passed as own",
                'wasi_map::import! { from "b" { fn take(m: Map); } }\n'
                "wasi_map::export! { fn f(m: Borrowed<Map>) { take(m) } }\n",
                "mismatched types",
            ),
            (  # ACCES: no WRITE right
                "a write through a ReadMap (`:r`)",
                'wasi_map::export! { fn f(m: ReadMap) { let _ = m.set(b"k", b"v"); } }\n',
                "no method named `set`",
            ),
            (  # ACCES: a map reference needs a READ|WRITE child
                "a ReadMap stored with set_map",
                'wasi_map::export! { fn f(m: Map, c: ReadMap) { let _ = m.set_map(b"k", &c); } }\n',
                "mismatched types",
            ),
            (  # a second owner of one handle: export! functions are not callable
                "an export called from Rust with a handle number",
                "wasi_map::export! { fn take(m: Map) {} fn f(m: Map) { take(m.handle()) } }\n",
                "cannot find function `take`",
            ),
        ],
    )
    def test_ownership_mistakes_do_not_compile(
        self, tmp_path: Path, mistake: str, source: str, error: str
    ) -> None:
        """What the broker refuses at run time, the compiler refuses here."""
        src = tmp_path / "mistake.rs"
        src.write_text(
            "#![allow(unused_imports)]\nuse wasi_map::{Borrowed, Map, ReadMap};\n" + source
        )
        with pytest.raises(AssertionError, match=error):
            build_rust(src, tmp_path / "mistake.wasm")
