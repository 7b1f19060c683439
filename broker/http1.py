"""HTTP/1.1 on asyncio streams, as much as `wasi-map serve` needs: read a request, write a response.

Deliberately small (docs/serving.md): origin-form targets, `Content-Length`
bodies (no transfer codings: 501), `Expect: 100-continue`, persistent
connections, bounded sizes and times.  A request that breaks a rule is a
`BadRequest` carrying the status to answer with; the connection is closed
after answering it.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from http import HTTPStatus

MAX_LINE = 8192  # bytes of the request line or of one header line
MAX_HEADERS = 100
READ_SECONDS = 10.0  # for the rest of a request, once its first byte came
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(rb"HTTP/1\.[01]")
_FORBIDDEN_IN_VALUE = re.compile(rb"[\x00\r\n]")


class BadRequest(Exception):
    """A request that cannot be served: the status to answer with, and why."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


@dataclass
class Request:
    """One request as read: method and path as sent, headers by lowercase name."""

    method: str
    path: str  # the target up to '?', not percent-decoded
    query: str  # after '?', "" when none
    version: str
    headers: dict[str, bytes] = field(default_factory=dict)
    body: bytes = b""

    @property
    def keep_alive(self) -> bool:
        """The client wants the connection kept: HTTP/1.1 unless `close`, 1.0 if `keep-alive`."""
        tokens = {t.strip().lower() for t in self.headers.get("connection", b"").split(b",")}
        if self.version == "HTTP/1.1":
            return b"close" not in tokens
        return b"keep-alive" in tokens


async def _line(reader: asyncio.StreamReader) -> bytes:
    """One line without its CRLF (or LF); BadRequest if longer than MAX_LINE.

    IncompleteReadError when the connection ends first."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise BadRequest(431, f"a line longer than {MAX_LINE} bytes") from None
    if len(line) > MAX_LINE:
        raise BadRequest(431, f"a line longer than {MAX_LINE} bytes")
    return line.rstrip(b"\r\n") if line.endswith(b"\r\n") else line[:-1]


def _request_line(line: bytes) -> tuple[str, str, str, str]:
    parts = line.split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]):
        raise BadRequest(400, "the request line is not METHOD TARGET HTTP/1.x")
    method, target, version = parts
    if not _VERSION.fullmatch(version):
        if version.startswith(b"HTTP/"):
            raise BadRequest(505, f"version {version.decode('latin-1')!r} is not HTTP/1.0 or 1.1")
        raise BadRequest(400, "the request line is not METHOD TARGET HTTP/1.x")
    if not target.startswith(b"/") or any(b <= 0x20 or b >= 0x7F for b in target):
        raise BadRequest(400, "the target is not a path starting with '/'")
    path, _, query = target.decode("ascii").partition("?")
    return method.decode("ascii"), path, query, version.decode("ascii")


async def _headers(reader: asyncio.StreamReader) -> dict[str, bytes]:
    headers: dict[str, bytes] = {}
    for _ in range(MAX_HEADERS + 1):
        line = await _line(reader)
        if not line:
            return headers
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise BadRequest(400, "a header line is not NAME: VALUE")
        value = value.strip(b" \t")
        if _FORBIDDEN_IN_VALUE.search(value):
            raise BadRequest(400, "a header value holds a control character")
        key = name.decode("ascii").lower()
        headers[key] = headers[key] + b", " + value if key in headers else value
    raise BadRequest(431, f"more than {MAX_HEADERS} headers")


def _content_length(headers: dict[str, bytes], max_body: int) -> int:
    if "transfer-encoding" in headers:
        if "content-length" in headers:
            raise BadRequest(400, "both Transfer-Encoding and Content-Length")
        raise BadRequest(501, "transfer codings (chunked bodies) are not supported")
    raw = headers.get("content-length")
    if raw is None:
        return 0
    values = {v.strip() for v in raw.split(b",")}
    if len(values) != 1 or not next(iter(values)).isdigit():
        raise BadRequest(400, "Content-Length is not one decimal number")
    length = int(next(iter(values)))
    if length > max_body:
        raise BadRequest(413, f"a body of {length} bytes; at most {max_body}")
    return length


async def first_line(reader: asyncio.StreamReader) -> bytes | None:
    """The next request's first line; None when the client closed the connection
    between requests.  Waits as long as the caller lets it (an idle connection)."""
    line = b""
    while not line:  # robustness (RFC 9112 2.2): empty lines before a request
        try:
            line = await _line(reader)
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise ConnectionResetError("the client closed the connection mid-request") from exc
            return None
    return line


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: bytes, max_body: int
) -> Request:
    """The rest of the request that `line` began, read in at most READ_SECONDS."""
    method, path, query, version = _request_line(line)
    try:
        async with asyncio.timeout(READ_SECONDS):
            headers = await _headers(reader)
            length = _content_length(headers, max_body)
            if length and headers.get("expect", b"").lower() == b"100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await reader.readexactly(length) if length else b""
    except asyncio.IncompleteReadError as exc:
        raise ConnectionResetError("the client closed the connection mid-request") from exc
    except TimeoutError:
        raise BadRequest(408, f"the request took over {READ_SECONDS:g} s to arrive") from None
    return Request(method, path, query, version, headers, body)


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def header_problem(name: bytes, value: bytes) -> str | None:
    """Why a response header cannot be sent as given; None when it can."""
    if not _TOKEN.fullmatch(name):
        return f"header name {name!r} is not a token"
    if _FORBIDDEN_IN_VALUE.search(value):
        return f"header {name.decode()!r} has a CR, LF or NUL in its value"
    return None


def response_bytes(
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
    *,
    keep_alive: bool,
    head: bool = False,
) -> bytes:
    """A whole response: status line, the framing headers, `headers`, then the body."""
    lines = [
        f"HTTP/1.1 {status} {reason(status)}".encode(),
        b"content-length: " + str(len(body)).encode(),
        b"connection: " + (b"keep-alive" if keep_alive else b"close"),
    ]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + (b"" if head else body)
