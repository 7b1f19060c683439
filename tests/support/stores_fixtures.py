"""The stores the conformance tests run on, and how a test gets a map of the store under test.

A test marked `@every_store` runs once per store ("memory", "sqlite",
"leveldb", "redis", "redis_cluster"): its `store_url` (and so the `broker` fixture, and every driver
loaded into it) is that store's.  Unmarked tests run on memory only.  On
memory a "map of the store under test" is an anonymous map, as the tests
always used; on sqlite, LevelDB and Redis it is a named map with a name of its own,
so that every operation goes through the store (anonymous maps never do):
`Driver.map()` for a guest, `store_map(broker)` for the host.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from broker import Broker, MapRef

STORES = ("memory", "sqlite", "leveldb", "redis", "redis_cluster")

#: Run the test once per store: `store_url` (and `broker`) are that store's.
every_store = pytest.mark.parametrize("store_url", STORES, indirect=True)
#: The same, for tests about what only a backing store does.
backing_stores = pytest.mark.parametrize("store_url", STORES[1:], indirect=True)


def unique_name(prefix: str = "t") -> str:
    """A map name no other test (or hypothesis example) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def store_map(broker: Broker) -> MapRef:
    """A new, empty host MapRef of the broker's store: anonymous on memory, else named."""
    return broker.new_map() if broker.store is None else broker.open(unique_name())


def _url(kind: str, request: pytest.FixtureRequest, file: str) -> str:
    if kind == "memory":
        return "memory:"
    if kind in ("sqlite", "leveldb"):
        tmp: Path = request.getfixturevalue("tmp_path")
        return f"{kind}:{tmp / file}"
    if kind == "redis":
        return str(request.getfixturevalue("redis_url"))  # flushed for this test
    if kind == "redis_cluster":
        return str(request.getfixturevalue("redis_cluster_url"))  # flushed for this test
    raise ValueError(f"unknown store {kind!r}")


@pytest.fixture
def store_url(request: pytest.FixtureRequest) -> str:
    """The store under test: one of STORES with @every_store, else memory."""
    return _url(getattr(request, "param", "memory"), request, "maps.db")


@pytest.fixture
def fresh_store(store_url: str, request: pytest.FixtureRequest) -> Callable[[], str]:
    """Call it for the URL of an empty store of the kind under test (one per hypothesis example)."""
    counter = itertools.count()

    def fresh() -> str:
        if store_url.startswith(("sqlite:", "leveldb:")):
            kind = store_url.partition(":")[0]
            return _url(kind, request, f"maps-{next(counter)}.db")
        if store_url.startswith("redis://"):
            request.getfixturevalue("redis_server").flush()
        if store_url.startswith("redis+cluster://"):
            request.getfixturevalue("redis_cluster").flush()
        return store_url

    return fresh
