"""The http-counter example: its C guest, built by build.sh, served by `wasi-map serve`."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from example_builds import build_guest
from paths import ROOT
from serving import Served

EXAMPLE = ROOT / "examples" / "http-counter"
WASM = EXAMPLE / "counter.wasm"


@pytest.fixture(scope="module", autouse=True)
def guest() -> Path:
    """Build counter.wasm once (build.sh); skip only when there is no clang to build it."""
    build_guest(EXAMPLE)
    return WASM


def app(tmp_path: Path, store: str | None = None) -> Path:
    """The example's manifest in tmp_path, with an absolute path to counter.wasm
    (and a [store] table when given)."""
    text = (EXAMPLE / "app.toml").read_text()
    assert 'path = "counter.wasm"' in text
    text = text.replace('path = "counter.wasm"', f"path = {json.dumps(str(WASM))}")
    if store is not None:
        text = f"[store]\nurl = {json.dumps(store)}\n\n{text}"
    path = tmp_path / "app.toml"
    path.write_text(text)
    return path


class TestServed:
    def test_the_readme_session(self, tmp_path: Path) -> None:
        """/home twice and /about once: 1, 2, 1, as the README shows; then exit 0."""
        with Served(app(tmp_path), "counter.handle") as served:
            got = [served.get(p) for p in ["/home", "/home", "/about"]]
            assert got == [(200, b"1\n"), (200, b"2\n"), (200, b"1\n")]
            assert served.stop() == 0
        assert [e["module"] for e in served.requests()] == ["counter"] * 3

    def test_only_get_counts(self, tmp_path: Path) -> None:
        """POST is a 405 with allow: GET; a path over 1 KiB a 414; neither counts."""
        with Served(app(tmp_path), "counter.handle") as served:
            conn = served.connection()
            conn.request("POST", "/home", body=b"x")
            response = conn.getresponse()
            assert (response.status, response.getheader("allow")) == (405, "GET")
            response.read()
            assert served.get("/" + "a" * 1100)[0] == 414
            assert served.get("/home") == (200, b"1\n")

    def test_counts_outlive_the_server_in_sqlite(self, tmp_path: Path) -> None:
        """With a [store] in sqlite, a second server counts on from the first."""
        manifest = app(tmp_path, store=f"sqlite:{tmp_path / 'hits.db'}")
        for expected in (b"1\n", b"2\n"):
            with Served(manifest, "counter.handle") as served:
                assert served.get("/home") == (200, expected)
                assert served.stop() == 0

    def test_many_clients_at_once_lose_no_hit(self, tmp_path: Path) -> None:
        """8 threads x 25 requests on their own connections: the count is 200 after."""
        with Served(app(tmp_path), "counter.handle") as served:

            def client(_: int) -> list[int]:
                conn = served.connection()
                statuses = []
                for _ in range(25):
                    conn.request("GET", "/many")
                    response = conn.getresponse()
                    response.read()
                    statuses.append(response.status)
                conn.close()
                return statuses

            with ThreadPoolExecutor(8) as pool:
                statuses = [s for batch in pool.map(client, range(8)) for s in batch]
            assert statuses == [200] * 200
            assert served.get("/many") == (200, b"201\n")
