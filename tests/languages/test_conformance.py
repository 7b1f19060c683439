"""The conformance checks of tests/support/guest_checks.py, through each language's bindings:
tests/guests/rust/conformance.rs (the guests/rust crate) and
tests/guests/cpp/conformance.cpp (guests/include/wasi_map.hpp)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from guest_checks import CHECKS, CONFORMANCE_GRANTS, DROP_COOKIE
from language_builds import build_cpp, build_rust
from paths import GUESTS

from broker import Broker

# Each language's conformance guest, and how it is built.
GUEST_SOURCES: dict[str, tuple[Path, Callable[[Path, Path], Path]]] = {
    "rust": (GUESTS / "rust" / "conformance.rs", build_rust),
    "cpp": (GUESTS / "cpp" / "conformance.cpp", build_cpp),
}


@pytest.fixture(scope="module", params=list(GUEST_SOURCES))
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    """(language, its conformance guest), built once for this file."""
    lang: str = request.param
    source, build = GUEST_SOURCES[lang]
    return lang, build(source, tmp_path_factory.mktemp(lang) / "conformance.wasm")


@pytest.fixture
def guest(broker: Broker, built: tuple[str, Path]) -> Iterator[tuple[Broker, str]]:
    """A broker with the guest loaded under its language's name, granted CONFORMANCE_GRANTS."""
    lang, wasm = built
    broker.load(lang, wasm, grants=CONFORMANCE_GRANTS)
    yield broker, lang


class TestConformance:
    """Every check of guest_checks.CHECKS holds through each language's bindings."""

    @pytest.mark.parametrize("check", list(CHECKS))
    def test_check(self, guest: tuple[Broker, str], check: str) -> None:
        """Every step of the check holds, and it leaves no anonymous map behind."""
        b, lang = guest
        step = b.call(f"{lang}.check_{check}")
        assert step == 0, f"{lang} check_{check}: step {step} failed: {CHECKS[check]}"
        assert b.stats()["maps"] == 0, f"{lang} check_{check} left anonymous maps alive"

    def test_drop_notice_arrives_after_the_call(self, guest: tuple[Broker, str]) -> None:
        """wasi_map_on_drop hears the cookie once check_drop_notice has returned."""
        b, lang = guest
        assert b.call(f"{lang}.check_drop_notice") == 0
        assert b.call(f"{lang}.drops") == DROP_COOKIE

    def test_no_maps_leaked_after_every_check(self, guest: tuple[Broker, str]) -> None:
        """After all the checks in one instance no anonymous map and no handle is left."""
        b, lang = guest
        for check in CHECKS:
            assert b.call(f"{lang}.check_{check}") == 0, f"{lang} check_{check}: {CHECKS[check]}"
        stats = b.stats()
        assert stats["maps"] == 0
        assert stats["handles"][lang] == 0
