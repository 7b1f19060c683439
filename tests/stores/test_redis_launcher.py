"""The one redis-server launcher (tests/support/redis_server.py), used by tests and benchmarks."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis_server
from redis_server import RedisServer, throwaway


class TestLauncher:
    def test_a_server_that_never_answers_is_stopped(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Given up on at the deadline, the process is stopped, not left running."""
        monkeypatch.setattr(redis_server, "START_TIMEOUT_S", 0.3)
        server = RedisServer(tmp_path)
        monkeypatch.setattr(server, "args", lambda: ["sleep", "60"])  # runs, never listens
        started: list[subprocess.Popen[bytes]] = []
        real_popen = subprocess.Popen

        def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
            started.append(real_popen(*args, **kwargs))
            return started[-1]

        monkeypatch.setattr(redis_server.subprocess, "Popen", popen)
        with pytest.raises(
            RuntimeError, match=rf"redis-server on port {server.port} did not start"
        ):
            server.start()
        assert server.proc is None
        assert [p.poll() for p in started] == [-signal.SIGTERM]

    def test_throwaway_runs_while_the_block_runs(self) -> None:
        with throwaway() as server:
            assert server.proc is not None and server.proc.poll() is None
            proc = server.proc
            server.flush()
        assert server.proc is None and proc.poll() is not None
