"""The serving convention (docs/serving.md): a request into a map, one export, the response out.

For each request the host makes a new map holding the request under
`req:` keys, lends it to the export (declared `(borrow) -> i32`), takes
the export's result as the status and the map's `resp:` keys as the
response, then closes the map.  No guest allocator, no memory layout: the
guest reads and writes the map with the ABI it already uses.

A trap answers 500; the broker replaces the instance it tore down
(docs/instances.md), so one bad request does not end the service.  A
module declared `on_trap = "stop"` whose every instance trapped answers
503 until the server is restarted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import ConfigError, GuestTrap, MapError, ModuleError, TooBigError
from .host import Broker
from .http1 import Request, header_problem
from .ownership import Borrow

SIGNATURE = (("borrow",), ("i32",))
BODY_KEY = b"resp:body"
HEADER_PREFIX = b"resp:header:"
CONTENT_TYPE = b"text/plain; charset=utf-8"  # unless the guest sets resp:header:content-type
#: Framing is the server's: a guest may not set these.
FRAMING = {b"content-length", b"transfer-encoding", b"connection"}


def request_items(request: Request) -> list[tuple[bytes, bytes]]:
    """The request as the entries of the map the guest gets."""
    items = [
        (b"req:method", request.method.encode()),
        (b"req:path", request.path.encode()),
        (b"req:query", request.query.encode()),
        (b"req:body", request.body),
    ]
    items += [(b"req:header:" + k.encode(), v) for k, v in request.headers.items()]
    return items


@dataclass
class Answer:
    """What to send back, and what the log line says about it."""

    status: int
    body: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    error: str | None = None  # why the guest's answer was replaced (logged, never sent)


def _failed(status: int, error: str) -> Answer:
    return Answer(status, b"", [], error)


def response_of(status: int, entries: Mapping[bytes, bytes]) -> Answer:
    """The response the guest wrote: its status and `resp:` entries, checked."""
    if not 200 <= status <= 599:
        return _failed(500, f"the export returned {status}, not an HTTP status 200..599")
    headers = []
    for key, value in entries.items():
        if not key.startswith(HEADER_PREFIX):
            continue
        name = key[len(HEADER_PREFIX) :].lower()
        problem = header_problem(name, value)
        if problem is None and name in FRAMING:
            problem = f"header {name.decode()!r} is the server's to set"
        if problem is not None:
            return _failed(500, f"the guest's response: {problem}")
        headers.append((name, value))
    if not any(name == b"content-type" for name, _ in headers):
        headers.insert(0, (b"content-type", CONTENT_TYPE))
    return Answer(status, entries.get(BODY_KEY, b""), headers)


class HttpApp:
    """An export of a loaded app, answering requests by the convention above."""

    def __init__(self, broker: Broker, target: str) -> None:
        self.broker = broker
        self.target = target
        self.module = target.partition(".")[0]

    def check(self) -> None:
        """ConfigError unless the target exists and is declared `(borrow) -> i32`."""
        decl = self.broker.signature(self.target)
        if (decl.params, decl.results) != SIGNATURE:
            shown = f"({', '.join(decl.params)}) -> ({', '.join(decl.results)})"
            raise ConfigError(
                f"{self.target} is {shown}; serve calls an export (borrow) -> i32, "
                f"declared in the manifest: exports.{self.target.partition('.')[2]} = "
                '{ params = ["borrow"], results = ["i32"] } (docs/serving.md)'
            )

    async def answer(self, request: Request) -> Answer:
        """The guest's answer to one request; a 4xx/5xx with the reason when it has none."""
        try:
            req = self.broker.new_map()
        except MapError as exc:
            return _failed(503, f"no map for the request: {exc}")
        try:
            try:
                req.set_many(request_items(request))
            except TooBigError as exc:  # beyond the host's key_size / value_size
                return _failed(413, str(exc))
            status = await self.broker.call_async(self.target, Borrow(req))
            assert isinstance(status, int)  # declared i32
            keys = [k for k in req if k.startswith(b"resp:")]
            values = req.get_many(keys)
            return response_of(
                status, {k: v for k, v in zip(keys, values, strict=True) if v is not None}
            )
        except GuestTrap as trap:  # the broker replaces the instance it tore down
            return _failed(500, str(trap))
        except ModuleError as exc:  # on_trap = "stop", and every instance trapped
            return _failed(503, str(exc))
        except MapError as exc:
            return _failed(500, str(exc))
        finally:
            req.close()


def elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)
