"""HTTP load on a `wasi-map serve` server over loopback: requests/s, p50, p99 (never asserts).

    python benchmarks/http_load.py --app examples/http-counter/app.toml --call counter.handle
    python benchmarks/http_load.py --quick       # the http_counter test guest, a short run
    python benchmarks/http_load.py --instances 1 2 4   # the test guest as 1, 2 and 4 instances

`serving(app, target)` starts the server as a child process on a free
port; `load(url, ...)` sends requests from this process on keep-alive
connections, `concurrency` of them at once, and returns the figures.  So
the server and the client never share a GIL.  Other scripts may use
both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_GUEST = ROOT / "tests" / "guests" / "http_counter.wat"


@dataclass(frozen=True)
class LoadResult:
    """What a load run measured: counts, wall time, throughput and latencies (ms)."""

    requests: int
    errors: int  # answers other than 2xx, and connections that failed
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float


@contextmanager
def serving(app: str | Path, target: str, host: str = "127.0.0.1") -> Iterator[str]:
    """`wasi-map serve APP --call TARGET --port 0` as a child process; its URL.

    Stopped by SIGTERM on leaving (its log, one line a request, is discarded)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "broker.cli", "serve", str(app), "--call", target]
        + ["--host", host, "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()
    try:
        url = str(json.loads(first)["url"])
    except (ValueError, KeyError):
        proc.kill()
        raise RuntimeError(f"wasi-map serve did not start: {first}{proc.stderr.read()}") from None
    # Read the log in the background: a full pipe would stall the server.
    drain = threading.Thread(target=proc.stderr.read, daemon=True)
    drain.start()
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        drain.join(10)


async def _client(host: str, port: int, request: bytes, count: int, latencies: list[float]) -> int:
    """`count` requests in turn on one connection; the number that failed."""
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    try:
        for _ in range(count):
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            errors += not head.startswith(b"HTTP/1.1 2")
    finally:
        writer.close()
    return errors


async def _load(host: str, port: int, path: str, requests: int, concurrency: int) -> LoadResult:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    latencies: list[float] = []
    shares = [requests // concurrency + (i < requests % concurrency) for i in range(concurrency)]
    start = time.perf_counter()
    outcomes = await asyncio.gather(
        *(_client(host, port, request, n, latencies) for n in shares if n),
        return_exceptions=True,
    )
    seconds = time.perf_counter() - start
    errors = sum(o if isinstance(o, int) else 1 for o in outcomes)
    ms = sorted(x * 1000 for x in latencies) or [0.0]
    p99 = statistics.quantiles(ms, n=100)[98] if len(ms) > 1 else ms[0]
    return LoadResult(
        len(latencies), errors, seconds, len(latencies) / seconds, ms[len(ms) // 2], p99
    )


def load(url: str, path: str = "/", *, requests: int = 2000, concurrency: int = 16) -> LoadResult:
    """Send `requests` GETs of `path` to the server at `url`, `concurrency` at a time."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return asyncio.run(_load(host, int(port), path, requests, concurrency))


def _test_app(directory: Path, instances: int) -> Path:
    app = directory / f"app-{instances}.toml"
    app.write_text(
        f"[modules.web]\npath = {json.dumps(str(TEST_GUEST))}\n"
        f"instances = {instances}\n"
        'grants = { hits = "rw" }\n'
        'exports.handle = { params = ["borrow"], results = ["i32"] }\n'
    )
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", help="the app manifest (default: the http_counter test guest)")
    parser.add_argument("--call", default="web.handle", help="its MODULE.EXPORT")
    parser.add_argument("--path", default="/bench", help="the path every request gets")
    parser.add_argument("-n", "--requests", type=int, default=5000)
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--quick", action="store_true", help="a short run: 300 requests")
    parser.add_argument(
        "--instances",
        type=int,
        nargs="+",
        default=[1, 2],
        help="serve the test guest as this many instances, one server each (not with --app)",
    )
    ns = parser.parse_args(argv)
    requests = 300 if ns.quick else ns.requests
    with tempfile.TemporaryDirectory() as tmp:
        if ns.app:
            servers = [(ns.app, ns.call, "as its manifest says")]
        else:
            servers = [(_test_app(Path(tmp), n), "web.handle", str(n)) for n in ns.instances]
        call = servers[0][1]
        print(f"wasi-map serve APP --call {call}; {requests} GET {ns.path} per row, loopback")
        print(
            f"{'instances':>20}  {'concurrency':>11}  {'requests/s':>10}  {'vs first':>8}  "
            f"{'p50 ms':>8}  {'p99 ms':>8}  errors"
        )
        first: dict[int, float] = {}
        for app, call, label in servers:
            with serving(app, call) as url:
                load(url, ns.path, requests=min(requests, 200), concurrency=4)  # warm-up
                for concurrency in ns.concurrency:
                    r = load(url, ns.path, requests=requests, concurrency=concurrency)
                    base = first.setdefault(concurrency, r.rps)
                    print(
                        f"{label:>20}  {concurrency:>11}  {r.rps:>10,.0f}  {r.rps / base:>7.2f}x  "
                        f"{r.p50_ms:>8.2f}  {r.p99_ms:>8.2f}  {r.errors}"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
