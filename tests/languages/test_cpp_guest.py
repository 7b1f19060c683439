"""The C++ binding, guests/include/wasi_map.hpp: the conformance checks of
tests/support/guest_checks.py run in a C++ guest, and the header compiles cleanly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from guest_checks import CHECKS, CONFORMANCE_GRANTS, DROP_COOKIE
from language_builds import build_cpp, compile_with
from paths import GUESTS

from broker import Broker

CONFORMANCE = GUESTS / "cpp" / "conformance.cpp"

# A guest that uses every kind of template the header has, so that -Werror
# sees their bodies too.
HEADER_USE = """\
#include "wasi_map.hpp"
namespace wm = wasi_map;
template class wm::result<int>;
template class wm::result<wm::bytes>;

WASI_MAP_IMPORT("peer", "look") uint32_t look(wm_handle_t m);

WASI_MAP_EXPORT("use") uint32_t use(wm_handle_t h)
{
    wm::borrowed_map lent{h};
    uint8_t page[64], batch[64], out[64];
    auto made = wm::map::make();
    if (!made)
        return static_cast<uint32_t>(made.error());
    wm::map m = wm::move(*made);
    for (wm::bytes key : lent->keys(page))
        (void)m.set(key, "v");
    wm::key_batch keys(batch);
    uint32_t absent = 0;
    if (auto values = lent->get_many(keys.add("a"), out))
        for (auto value : *values)
            absent += value.error() == wm::errc::noent;
    return look(m.handle()) + m.len().value_or(0) + absent + *wm::name(lent->len().error());
}
"""


@pytest.fixture(scope="module")
def conformance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """conformance.cpp, built once for this file."""
    return build_cpp(CONFORMANCE, tmp_path_factory.mktemp("cpp") / "conformance.wasm")


@pytest.fixture
def guest(broker: Broker, conformance: Path) -> Iterator[Broker]:
    """A broker with the conformance guest loaded as `cpp`, granted CONFORMANCE_GRANTS."""
    broker.load("cpp", conformance, grants=CONFORMANCE_GRANTS)
    yield broker


class TestConformance:
    """Every check of guest_checks.CHECKS, through the C++ API."""

    @pytest.mark.parametrize("check", list(CHECKS))
    def test_check(self, guest: Broker, check: str) -> None:
        """Every step of the check holds through the C++ API, and it leaves no map behind."""
        step = guest.call(f"cpp.check_{check}")
        assert step == 0, f"check_{check}: step {step} failed: {CHECKS[check]}"
        assert guest.stats()["maps"] == 0, f"check_{check} left anonymous maps alive"

    def test_drop_notice_arrives_after_the_call(self, guest: Broker) -> None:
        """The watched map's notice is delivered once check_drop_notice has returned."""
        assert guest.call("cpp.check_drop_notice") == 0
        assert guest.call("cpp.drops") == DROP_COOKIE

    def test_no_maps_leaked_after_every_check(self, guest: Broker) -> None:
        """After all the checks in one instance no anonymous map and no handle is left."""
        for check in CHECKS:
            assert guest.call(f"cpp.check_{check}") == 0, f"check_{check}: {CHECKS[check]}"
        stats = guest.stats()
        assert stats["maps"] == 0
        assert stats["handles"]["cpp"] == 0


class TestHeader:
    """The header itself, as a user's build sees it."""

    def test_keys_of_a_temporary_does_not_compile(self, tmp_path: Path) -> None:
        """A temporary map would close its handle before the loop: keys() of one is deleted."""
        src = tmp_path / "temp.cpp"
        src.write_text(
            '#include "wasi_map.hpp"\n'
            'WASI_MAP_EXPORT("f") uint32_t f() {\n'
            "    uint8_t page[64]; uint32_t n = 0;\n"
            '    for (auto k : wasi_map::map::open("x").value().keys(page)) n += k.size();\n'
            "    return n;\n}\n"
        )
        with pytest.raises(AssertionError, match="call to deleted member function 'keys'"):
            build_cpp(src, tmp_path / "temp.wasm")

    @pytest.mark.parametrize("std", ["c++17", "c++20"])
    def test_compiles_without_warnings(self, tmp_path: Path, std: str) -> None:
        """A guest using wasi_map.hpp builds with -Wall -Wextra -Werror -pedantic."""
        src = tmp_path / "use.cpp"
        src.write_text(HEADER_USE)
        compile_with(src, tmp_path / "use.wasm", f"-std={std}", "-Werror", "-pedantic")
