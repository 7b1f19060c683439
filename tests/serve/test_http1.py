"""broker/http1.py: reading a request off a stream, and the response's bytes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from broker import http1
from broker.http1 import BadRequest, Request


class _Writer:
    """What read_request writes back (only `100 Continue`)."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data


def read(raw: bytes, max_body: int = 1 << 20) -> tuple[Request | None, bytes]:
    """The request `raw` holds (None: nothing but a closed connection), and what was written."""

    async def main() -> tuple[Request | None, bytes]:
        reader = asyncio.StreamReader(limit=http1.MAX_LINE)
        reader.feed_data(raw)
        reader.feed_eof()
        writer: Any = _Writer()
        line = await http1.first_line(reader)
        if line is None:
            return None, writer.data
        return await http1.read_request(reader, writer, line, max_body), writer.data

    return asyncio.run(main())


def status_of(raw: bytes, max_body: int = 1 << 20) -> int:
    with pytest.raises(BadRequest) as caught:
        read(raw, max_body)
    return caught.value.status


class TestReading:
    """A request as sent becomes a Request."""

    def test_line_headers_and_body(self) -> None:
        """Method, path and query split; header names lowercase; the body by Content-Length."""
        request, _ = read(
            b"POST /a/b?x=1 HTTP/1.1\r\nHost: h\r\nX-Two: 1\r\nx-two: 2\r\n"
            b"Content-Length: 5\r\n\r\nhello"
        )
        assert request == Request(
            "POST",
            "/a/b",
            "x=1",
            "HTTP/1.1",
            {"host": b"h", "x-two": b"1, 2", "content-length": b"5"},
            b"hello",
        )

    def test_bare_lf_and_leading_empty_lines(self) -> None:
        """LF alone ends a line; empty lines before the request line are skipped."""
        request, _ = read(b"\r\n\nGET / HTTP/1.0\nA: b\n\n")
        assert request is not None and (request.method, request.path, request.headers) == (
            "GET",
            "/",
            {"a": b"b"},
        )

    def test_a_closed_connection_is_none(self) -> None:
        """EOF before any request: None, not an error."""
        assert read(b"") == (None, b"")

    def test_100_continue(self) -> None:
        """Expect: 100-continue is answered before the body is read."""
        _, written = read(b"PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx")
        assert written == b"HTTP/1.1 100 Continue\r\n\r\n"

    @pytest.mark.parametrize(
        ("version", "connection", "kept"),
        [
            ("HTTP/1.1", None, True),
            ("HTTP/1.1", "close", False),
            ("HTTP/1.0", None, False),
            ("HTTP/1.0", "Keep-Alive", True),
        ],
    )
    def test_keep_alive(self, version: str, connection: str | None, kept: bool) -> None:
        """1.1 keeps the connection unless `close`; 1.0 only with `keep-alive`."""
        headers = {"connection": connection.encode()} if connection else {}
        assert Request("GET", "/", "", version, headers).keep_alive is kept


class TestRefused:
    """A request that breaks a rule is a BadRequest with the status to answer."""

    @pytest.mark.parametrize(
        "raw",
        [
            b"garbage\r\n\r\n",
            b"GET /a HTTP/1.1 extra\r\n\r\n",
            b"GET http://x/ HTTP/1.1\r\n\r\n",
            b"GET /a b HTTP/1.1\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / HTTP/1.1\r\n folded: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: \x00\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        ],
    )
    def test_malformed_is_400(self, raw: bytes) -> None:
        assert status_of(raw) == 400

    def test_other_versions_are_505(self) -> None:
        assert status_of(b"GET / HTTP/2.0\r\n\r\n") == 505

    def test_chunked_bodies_are_501(self) -> None:
        assert status_of(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") == 501

    def test_a_body_over_the_limit_is_413(self) -> None:
        assert status_of(b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", max_body=10) == 413

    def test_long_lines_and_many_headers_are_431(self) -> None:
        assert status_of(b"GET /" + b"a" * http1.MAX_LINE + b" HTTP/1.1\r\n\r\n") == 431
        many = b"".join(b"h%d: v\r\n" % i for i in range(http1.MAX_HEADERS + 1))
        assert status_of(b"GET / HTTP/1.1\r\n" + many + b"\r\n") == 431

    def test_a_body_cut_short_is_a_closed_connection(self) -> None:
        """Fewer body bytes than Content-Length, then EOF: the client went away."""
        with pytest.raises(ConnectionResetError):
            read(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")


class TestResponse:
    def test_bytes_of_a_response(self) -> None:
        """Status line with its reason, framing headers first, then the app's, then the body."""
        raw = http1.response_bytes(404, b"no", [(b"x-a", b"1")], keep_alive=False)
        assert raw == (
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\nconnection: close\r\nx-a: 1\r\n\r\nno"
        )

    def test_head_has_the_length_but_no_body(self) -> None:
        raw = http1.response_bytes(200, b"abc", [], keep_alive=True, head=True)
        assert raw.endswith(b"content-length: 3\r\nconnection: keep-alive\r\n\r\n")

    @pytest.mark.parametrize(
        ("name", "value"), [(b"a b", b"v"), (b"", b"v"), (b"x", b"a\r\nb"), (b"x", b"\n")]
    )
    def test_header_problems(self, name: bytes, value: bytes) -> None:
        assert http1.header_problem(name, value) is not None
