"""The C++ binding, guests/include/wasi_map.hpp, as a user's build sees it: warning-free,
and what it must refuse (its conformance checks: test_conformance.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from language_builds import build_cpp, compile_with

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
