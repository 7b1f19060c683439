"""broker/http_app.py: the serving convention, in process, with the http_counter guest."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import counter_app

from broker import Broker, ConfigError
from broker.http1 import Request
from broker.http_app import CONTENT_TYPE, HttpApp, request_items, response_of


@pytest.fixture
def app(tmp_path: Path) -> Iterator[HttpApp]:
    manifest = counter_app(tmp_path)
    with Broker.from_manifest(manifest) as broker:
        yield HttpApp(broker, "web.handle")


def get(path: str, **headers: bytes) -> Request:
    return Request("GET", path, "", "HTTP/1.1", dict(headers))


class TestConvention:
    """Request in a map, the export's status and resp: keys out."""

    def test_request_items(self) -> None:
        """Method, path, query, body, and each header under req:header:NAME."""
        request = Request("PUT", "/p", "q=1", "HTTP/1.1", {"x-a": b"1"}, b"body")
        assert request_items(request) == [
            (b"req:method", b"PUT"),
            (b"req:path", b"/p"),
            (b"req:query", b"q=1"),
            (b"req:body", b"body"),
            (b"req:header:x-a", b"1"),
        ]

    def test_response_of(self) -> None:
        """resp:body is the body; resp:header:NAME a header; content-type defaults to text."""
        answer = response_of(201, {b"resp:body": b"made", b"resp:header:X-Id": b"7"})
        assert (answer.status, answer.body, answer.error) == (201, b"made", None)
        assert answer.headers == [(b"content-type", CONTENT_TYPE), (b"x-id", b"7")]
        typed = response_of(200, {b"resp:header:content-type": b"application/json"})
        assert typed.headers == [(b"content-type", b"application/json")]

    @pytest.mark.parametrize(
        ("status", "entries", "why"),
        [
            (99, {}, "not an HTTP status"),
            (600, {}, "not an HTTP status"),
            (200, {b"resp:header:connection": b"close"}, "the server's to set"),
            (200, {b"resp:header:transfer-encoding": b"chunked"}, "the server's to set"),
            (200, {b"resp:header:x": b"a\r\nb: c"}, "CR, LF or NUL"),
            (200, {b"resp:header:a b": b"v"}, "not a token"),
        ],
    )
    def test_what_is_replaced_by_500(
        self, status: int, entries: dict[bytes, bytes], why: str
    ) -> None:
        answer = response_of(status, entries)
        assert answer.status == 500 and answer.error is not None and why in answer.error

    def test_answers_and_no_map_left_behind(self, app: HttpApp) -> None:
        """Each request's map is closed after its answer: the broker ends with no anonymous map."""

        async def main() -> list[tuple[int, bytes]]:
            answers = await asyncio.gather(*(app.answer(get("/n")) for _ in range(50)))
            return [(a.status, a.body) for a in answers]

        assert sorted(asyncio.run(main()), key=lambda a: int(a[1])) == [
            (200, str(i).encode()) for i in range(1, 51)
        ]
        assert app.broker.stats()["maps"] == 0

    def test_requests_beside_a_trap_are_answered(self, app: HttpApp) -> None:
        """A trap among five requests in flight: it is a 500; the module is loaded again
        once and the five, which found it torn down, are called again and counted."""

        async def main() -> tuple[int, list[tuple[int, bytes]]]:
            await app.answer(get("/n"))
            trap, *rest = await asyncio.gather(
                app.answer(get("/trap")), *(app.answer(get("/n")) for _ in range(5))
            )
            return trap.status, sorted((a.status, a.body) for a in rest)

        trap, rest = asyncio.run(main())
        assert trap == 500
        assert rest == [(200, str(i).encode()) for i in range(2, 7)]
        assert app.broker.stats()["maps"] == 0

    def test_check_refuses_an_undeclared_export(self) -> None:
        """A (i32) -> i32 export is no handler: ConfigError naming the declaration to add."""
        with Broker() as broker:
            broker.load(
                "m", b'(module (func (export "h") (param i32) (result i32) (i32.const 200)))'
            )
            with pytest.raises(ConfigError, match=r"m\.h is \(i32\) -> \(i32\); serve calls"):
                HttpApp(broker, "m.h").check()
