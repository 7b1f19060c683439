"""Shared fixtures: a fresh broker, the directory of test guests, a real redis-server
and a real Redis Cluster (three masters, three replicas).

The stores a test runs on (`store_url`, `@every_store`) are in stores_fixtures.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from paths import APPS, GUESTS
from redis_cluster import RedisCluster
from redis_server import RedisServer
from stores_fixtures import fresh_store, store_url

from broker import Broker
from broker._native.failures import left_on_thread

__all__ = ["fresh_store", "store_url"]  # fixtures: every test module sees them

LEAKY = APPS / "leaky" / "app.toml"


@pytest.fixture(scope="session", autouse=True)
def outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The session runs in a directory of its own, which child processes inherit.

    `python -m broker.cli` and `python -c` put their working directory first
    on sys.path: from the checkout's root, its broker/ (with no compiled core
    when wasi-map was installed with `pip install .`) would be imported
    instead of the installed package.  Tests name files by absolute path."""
    before = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(before)


@pytest.fixture(autouse=True)
def no_store_failure_left() -> Iterator[None]:
    """Every test ends with no store failure waiting on its thread: each entry
    into C takes the one it met (broker/_native/failures.py)."""
    yield
    assert left_on_thread() is None


@pytest.fixture
def guests() -> Path:
    """The directory of WAT test guests."""
    return GUESTS


@pytest.fixture
def broker(store_url: str) -> Iterator[Broker]:
    """A fresh broker on the store under test (memory unless @every_store), closed after."""
    with Broker(store_url) as b:
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


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """One real Redis Cluster for the whole session (started when first asked for)."""
    cluster = RedisCluster(tmp_path_factory.mktemp("cluster"), durable=False).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_cluster_url(redis_cluster: RedisCluster) -> str:
    """The session's Redis Cluster, emptied for this test."""
    redis_cluster.flush()
    return redis_cluster.url


@pytest.fixture
def leaky() -> Iterator[Broker]:
    """tests/apps/leaky after a.main and a collection, traced: as `wasi-map leaks` runs it."""
    with Broker.from_manifest(LEAKY, trace=True) as b:
        assert b.call("a.main") == 0
        assert b.collect() == 2
        yield b
