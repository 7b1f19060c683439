"""Shared fixtures: a fresh broker, and the directory of test guests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from broker import Broker

from redis_server import RedisServer

GUESTS = Path(__file__).parent / "guests"


@pytest.fixture
def guests() -> Path:
    """The directory of WAT test guests."""
    return GUESTS


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A fresh in-memory broker, closed after the test."""
    with Broker() as b:
        yield b


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server (persistence off) for the whole session."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's redis-server, emptied for this test."""
    redis_server.flush()
    return redis_server.url
