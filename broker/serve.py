"""`wasi-map serve`: an app's export answers HTTP requests, one log line each (docs/serving.md).

The server is asyncio streams and broker/http1.py; each request goes to
the export through broker/http_app.py and `Broker.call_async`, so the
event loop keeps reading and writing while guests run on the broker's
worker threads.  SIGINT or SIGTERM stops it gracefully: no new
connections, idle ones closed, requests in flight answered (with
`connection: close`), then the broker closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import structlog

from . import http1
from .errors import ConfigError
from .host import Broker
from .http_app import Answer, HttpApp, elapsed_ms

IDLE_SECONDS = 5.0  # a kept-alive connection with no new request is closed after this
DEFAULT_MAX_BODY = 1 << 20  # bytes of a request body; the host's value_size by default


def json_log(stream: TextIO = sys.stderr) -> Any:
    """The access log: one JSON object a line, with level and time, on `stream`.

    A logger of its own, not structlog's global configuration, so that an
    app's configuration is neither needed nor changed."""
    return structlog.wrap_logger(
        structlog.PrintLogger(stream),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
    )


class Server:
    """Connections in, requests to the app, answers out; stops when told."""

    def __init__(self, app: HttpApp, log: Any, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.log = log
        self.max_body = max_body
        self.stopping = False
        self._idle: set[asyncio.Task[Any]] = set()  # waiting for a request: cancelled on stop
        self._connections: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; the address bound (port 0: one the system picked)."""
        try:
            self._server = await asyncio.start_server(
                self._connection, host, port, limit=http1.MAX_LINE
            )
        except OSError as exc:
            # asyncio's "error while attempting to bind on address (...): address already in use"
            why = (exc.strerror or str(exc)).rsplit(": ", 1)[-1]
            raise ConfigError(f"cannot listen on {host}:{port}: {why}") from None
        bound = self._server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    @property
    def connections(self) -> int:
        """Open connections, idle or not."""
        return len(self._connections)

    async def stop(self) -> None:
        """Stop accepting, close idle connections, wait for the requests in flight."""
        self.stopping = True
        if self._server is not None:
            self._server.close()
        for task in self._idle:
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while not self.stopping and await self._exchange(task, reader, writer):
                pass
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the server stopped while it was idle
        finally:
            self._connections.discard(task)
            self._idle.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _exchange(
        self, task: asyncio.Task[Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Read one request and answer it; whether the connection stays open."""
        self._idle.add(task)
        try:
            async with asyncio.timeout(IDLE_SECONDS):
                line = await http1.first_line(reader)
        except TimeoutError:
            return False
        except http1.BadRequest as exc:
            await self._refuse(writer, exc, time.perf_counter())
            return False
        finally:
            self._idle.discard(task)
        if line is None:
            return False
        start = time.perf_counter()
        try:
            request = await http1.read_request(reader, writer, line, self.max_body)
        except http1.BadRequest as exc:
            await self._refuse(writer, exc, start, line)
            return False
        answer = await self.app.answer(request)
        keep = request.keep_alive and not self.stopping
        writer.write(
            http1.response_bytes(
                answer.status,
                answer.body or _reason_body(answer.status, answer),
                answer.headers,
                keep_alive=keep,
                head=request.method == "HEAD",
            )
        )
        await writer.drain()
        self._log(request.method, request.path, answer.status, start, answer.error, True)
        return keep

    async def _refuse(
        self, writer: asyncio.StreamWriter, exc: http1.BadRequest, start: float, line: bytes = b""
    ) -> None:
        """Answer a request that broke a rule, and say why (the connection closes after)."""
        body = f"{http1.reason(exc.status)}: {exc}\n".encode()
        writer.write(http1.response_bytes(exc.status, body, [], keep_alive=False))
        await writer.drain()
        method, _, rest = line.partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0]
        shown = method.decode("latin-1") or "-", path.decode("latin-1") or "-"
        self._log(*shown, exc.status, start, str(exc), False)

    def _log(
        self, method: str, path: str, status: int, start: float, error: str | None, called: bool
    ) -> None:
        fields: dict[str, Any] = {"method": method, "path": path, "status": status}
        fields["ms"] = elapsed_ms(start)
        fields["module"] = self.app.module if called else None
        if error is not None:
            fields["error"] = error
        (self.log.error if status >= 500 else self.log.info)("request", **fields)


def _reason_body(status: int, answer: Answer) -> bytes:
    """The body of an answer the guest did not write: the reason phrase (never the error)."""
    return f"{http1.reason(status)}\n".encode() if answer.error is not None else b""


async def _serve(server: Server, host: str, port: int, ready: Callable[[str], None]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        bound_host, bound_port = await server.start(host, port)
        url = f"http://{bound_host}:{bound_port}"
        server.log.info("serving", url=url, call=server.app.target)
        ready(url)
        await stop.wait()
        server.log.info("stopping", connections=server.connections)
        await server.stop()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def serve(
    app_path: str,
    target: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    max_body: int = DEFAULT_MAX_BODY,
    log: Any = None,
    ready: Callable[[str], None] = lambda url: None,
) -> None:
    """Load the app, check the target, serve until SIGINT or SIGTERM, close the broker.

    ConfigError (a bad manifest, target or address) before anything is served."""
    log = log if log is not None else json_log()
    broker = Broker.from_manifest(app_path)
    try:
        app = HttpApp(broker, target)
        app.check()
        asyncio.run(_serve(Server(app, log, max_body), host, port, ready))
    finally:
        broker.close()
    log.info("stopped")
