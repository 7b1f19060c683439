"""A `wasi-map serve` child process on a free port, for the serve tests and the example's."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from paths import GUESTS

WASI_MAP = [sys.executable, "-m", "broker.cli"]  # the `wasi-map` entry point
COUNTER = GUESTS / "http_counter.wat"


def counter_app(tmp_path: Path, export: str = 'params = ["borrow"], results = ["i32"]') -> Path:
    """An app of the http_counter guest as module `web`, its handle export declared."""
    app = tmp_path / "app.toml"
    app.write_text(
        f"[modules.web]\npath = {json.dumps(str(COUNTER))}\n"
        'grants = { hits = "rw" }\n'
        f"exports.handle = {{ {export} }}\n"
    )
    return app


class Served:
    """`wasi-map serve APP --call TARGET --port 0`, running; stopped by `stop()`."""

    def __init__(self, app: Path, target: str, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [*WASI_MAP, "serve", str(app), "--call", target, "--port", "0", *extra],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stderr is not None
        self.lines: list[str] = []
        first = self.proc.stderr.readline()
        self.lines.append(first)
        started = json.loads(first)
        assert started["event"] == "serving", first
        self.url: str = started["url"]
        self.host, port = self.url.removeprefix("http://").rsplit(":", 1)
        self.port = int(port)

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def get(self, path: str, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
        """One request on a new connection: (status, body)."""
        conn = self.connection()
        try:
            conn.request(method, path, body=body)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self, sig: int | None = signal.SIGTERM, timeout: float = 30) -> int:
        """Send `sig` (None: none, it was sent), wait for the exit; its code.
        The log lines are in `lines` then."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        assert self.proc.stderr is not None
        self.lines += self.proc.stderr.readlines()
        return code

    def log(self) -> list[dict[str, Any]]:
        """The JSON lines logged so far (after `stop`: all of them)."""
        return [json.loads(line) for line in self.lines if line.strip()]

    def requests(self) -> list[dict[str, Any]]:
        return [e for e in self.log() if e["event"] == "request"]

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
