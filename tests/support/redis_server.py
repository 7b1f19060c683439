"""A real redis-server for tests: started on 127.0.0.1 on a free port, stopped after.

`RedisServer(dir)` runs Debian's redis-server with persistence off (the
default) or, with `durable=True`, with an append-only file synced on every
write, so that `kill()` + `start()` keeps every acknowledged write.  It can
also listen on a unix socket (`unixsocket=`), on a TLS port (`tls=` the
server's certificate files) and ask for a password (`password=`).
`throwaway()` runs one in a temporary directory while a block runs.

The one place redis-server is started: the tests' fixtures and the
benchmarks (benchmarks/bench_store.py puts this folder on sys.path) use it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

REDIS_SERVER = shutil.which("redis-server")
START_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    """A TLS server's certificate, its key, and the CA that signed it (PEM files)."""

    cert: Path
    key: Path
    ca: Path


class RedisServer:
    def __init__(
        self,
        directory: Path,
        *,
        durable: bool = False,
        unixsocket: Path | None = None,
        tls: TlsFiles | None = None,
        password: str | None = None,
    ) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError(
                "redis-server is not installed: run scripts/install-deps.sh (Debian redis-server)"
            )
        self.dir = directory
        self.port = free_port()
        self.durable = durable
        self.unixsocket, self.tls, self.password = unixsocket, tls, password
        self.tls_port = free_port() if tls else None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def args(self) -> list[str]:
        args = [str(REDIS_SERVER), "--bind", "127.0.0.1", "--port", str(self.port)]
        args += ["--dir", str(self.dir), "--save", ""]
        if self.durable:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        if self.unixsocket:
            args += ["--unixsocket", str(self.unixsocket), "--unixsocketperm", "700"]
        if self.tls:
            args += ["--tls-port", str(self.tls_port), "--tls-cert-file", str(self.tls.cert)]
            args += ["--tls-key-file", str(self.tls.key), "--tls-ca-cert-file", str(self.tls.ca)]
            args += ["--tls-auth-clients", "optional"]
        if self.password:
            args += ["--requirepass", self.password]
        return args

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(port=self.port, password=self.password, socket_connect_timeout=0.2)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(
                            f"redis-server on port {self.port} did not start"
                        ) from None
                    time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last save."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def flush(self) -> None:
        client = redis.Redis(port=self.port, password=self.password)
        client.flushall()
        client.close()


@contextmanager
def throwaway() -> Iterator[RedisServer]:
    """A RedisServer (persistence off) in a temporary directory while the block runs."""
    with tempfile.TemporaryDirectory(prefix="wm-redis-") as directory:
        server = RedisServer(Path(directory)).start()
        try:
            yield server
        finally:
            server.stop()
