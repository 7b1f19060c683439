"""The Rust crate (guests/rust): the conformance checks through a real Rust guest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from guest_checks import CHECKS, CONFORMANCE_GRANTS, DROP_COOKIE
from language_builds import build_rust, rustc_output
from paths import GUESTS, ROOT

from broker import Broker

CONFORMANCE = GUESTS / "rust" / "conformance.rs"
CRATE = ROOT / "guests" / "rust"


@pytest.fixture(scope="module")
def wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The conformance guest, built once."""
    out = tmp_path_factory.mktemp("rust") / "conformance.wasm"
    build_rust(CONFORMANCE, out)
    return out


@pytest.fixture
def guest(wasm: Path) -> Iterator[Broker]:
    """A broker with the guest loaded as `rust`."""
    with Broker() as b:
        b.load("rust", wasm, grants=CONFORMANCE_GRANTS)
        yield b


class TestConformance:
    """Every check of tests/support/guest_checks.py holds through the crate."""

    @pytest.mark.parametrize("name", list(CHECKS))
    def test_check(self, guest: Broker, name: str) -> None:
        """The check's steps all hold, and it leaves no anonymous map behind."""
        step = guest.call(f"rust.check_{name}")
        assert step == 0, f"check_{name} failed at step {step}: {CHECKS[name]}"
        assert guest.stats()["maps"] == 0

    def test_drop_notice_after_the_call(self, guest: Broker) -> None:
        """wasi_map_on_drop, declared with export!, hears the cookie once the call returned."""
        assert guest.call("rust.check_drop_notice") == 0
        assert guest.call("rust.drops") == DROP_COOKIE


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
