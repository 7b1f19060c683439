"""Guests in different languages pass maps to each other: the peer protocol of
tests/support/guest_checks.py between the C peer and a peer in another language.

`peers(lang)` builds the pair, `lang`'s peer as module `lang` and the C peer
(built to call `lang`) as module `c`, and loads them from one manifest.  A
class per pair sets LANG and inherits every test from PeerPair.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from guest_checks import LANGUAGES, PEER_EXPORTS
from language_builds import build_c, build_cpp, build_rust
from paths import GUESTS

from broker import Borrow, Broker, MapRef

C_PEER = GUESTS / "c" / "peer.c"
#: Each language's peer and how it is built (the C peer is the other side of every pair).
PEER_SOURCES: dict[str, tuple[Path, Callable[[Path, Path], Path]]] = {
    "cpp": (GUESTS / "cpp" / "peer.cpp", build_cpp),
    "rust": (GUESTS / "rust" / "peer.rs", build_rust),
}


def manifest(modules: dict[str, Path]) -> str:
    """An app manifest loading each module with PEER_EXPORTS declared."""
    lines: list[str] = []
    for name, path in modules.items():
        lines += [f"[modules.{name}]", f"path = {json.dumps(str(path))}"]
        for export, decl in PEER_EXPORTS.items():
            kinds = ", ".join(f"{key} = {json.dumps(value)}" for key, value in decl.items())
            lines.append(f"exports.{export} = {{ {kinds} }}")
        lines.append("")
    return "\n".join(lines)


def peers(lang: str, where: Path) -> Broker:
    """A broker with `lang`'s peer as module `lang` and the C peer calling it as `c`."""
    src, build = PEER_SOURCES[lang]
    other = build(src, where / f"peer_{lang}.wasm")
    c = build_c(C_PEER, where / "peer_c.wasm", {"PEER_MODULE": json.dumps(lang)})
    app = where / "app.toml"
    app.write_text(manifest({lang: other, "c": c}))
    return Broker.from_manifest(app)


def entries(ref: MapRef) -> dict[bytes, bytes]:
    """Every entry of a host map."""
    return dict(ref.items())


def sent(n: int) -> dict[bytes, bytes]:
    """What a sender's map holds: 'k0'..'k<n-1>', all 'v'."""
    return {f"k{i}".encode(): b"v" for i in range(n)}


class PeerPair:
    """The peer protocol between the C peer and LANG's, in both directions."""

    LANG: str

    @pytest.fixture(scope="class")
    @classmethod
    def built(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """The pair's modules and manifest, built (and loaded once) for the class."""
        where = tmp_path_factory.mktemp(f"peers-{cls.LANG}")
        peers(cls.LANG, where).close()
        return where

    @pytest.fixture
    def pair(self, built: Path) -> Iterator[Broker]:
        """A fresh broker on the pair, strict: a callee that left a borrow open traps."""
        with Broker.from_manifest(built / "app.toml") as b:
            b.strict_borrows = True
            yield b

    @pytest.fixture(params=["lang-to-c", "c-to-lang"])
    def ends(self, request: pytest.FixtureRequest) -> tuple[str, str]:
        """(sender, receiver): LANG calls c, then c calls LANG."""
        return (self.LANG, "c") if request.param == "lang-to-c" else ("c", self.LANG)

    def no_maps_left(self, b: Broker) -> None:
        """No anonymous map alive, no handle held by either peer."""
        stats = b.stats()
        assert stats["maps"] == 0, stats
        assert set(stats["handles"].values()) == {0}, stats

    def test_send_own_moves_the_map(self, pair: Broker, ends: tuple[str, str]) -> None:
        """take gets the map by own and keeps it; the sender's number turns STALE."""
        sender, receiver = ends
        assert pair.call(f"{sender}.send_own", 3) == 3
        assert pair.stats()["handles"] == {sender: 0, receiver: 1}
        assert pair.call(f"{sender}.fetch") == 4  # the same map back, with 'fetched'
        self.no_maps_left(pair)

    def test_send_borrow_lends_the_map(self, pair: Broker, ends: tuple[str, str]) -> None:
        """look reads the lent map and writes its language under 'seen'; the sender keeps it."""
        sender, _ = ends
        assert pair.call(f"{sender}.send_borrow", 2) == 2  # the sender checked 'seen'
        self.no_maps_left(pair)

    def test_send_share_gives_a_second_owner(self, pair: Broker, ends: tuple[str, str]) -> None:
        """After the sender closed its handle, the map shared with keep lives on in the
        receiver, with what the sender wrote after the call; give hands it to the host."""
        sender, receiver = ends
        assert pair.call(f"{sender}.send_share", 4) == 4
        assert pair.stats()["handles"] == {sender: 0, receiver: 1}
        given = pair.call(f"{receiver}.give")
        assert isinstance(given, MapRef)
        assert entries(given) == {**sent(4), b"after": b"1"}
        given.close()
        self.no_maps_left(pair)

    def test_fetch_takes_what_give_returns(self, pair: Broker, ends: tuple[str, str]) -> None:
        """With nothing kept, give returns a new empty map by own; fetch writes to it."""
        sender, _ = ends
        assert pair.call(f"{sender}.fetch") == 1
        self.no_maps_left(pair)

    def test_look_writes_its_language(self, pair: Broker, ends: tuple[str, str]) -> None:
        """A map the host lends to look comes back with 'seen' = the receiver's language."""
        _, receiver = ends
        m = pair.new_map()
        m[b"x"] = b"1"
        assert pair.call(f"{receiver}.look", Borrow(m)) == 1
        assert m[b"seen"] == LANGUAGES[receiver].encode()
        m.close()
        self.no_maps_left(pair)


class TestCppAndC(PeerPair):
    """C++ (wasi_map.hpp) and C (wasi_map.h) guests pass maps to each other."""

    LANG = "cpp"


class TestRustAndC(PeerPair):
    """Rust (the guests/rust crate) and C (wasi_map.h) guests pass maps to each other."""

    LANG = "rust"
