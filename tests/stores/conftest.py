"""Fixtures of the store tests: a redis-server of a test's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_server import RedisServer


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A durable redis-server of this test's own (append-only file, fsync always), not started."""
    server = RedisServer(tmp_path / "redis", durable=True)
    server.dir.mkdir()
    try:
        yield server
    finally:
        server.stop()
