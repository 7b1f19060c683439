"""A pytest plugin: brokers that fail the test when maps leak.

Installed with wasi-map (entry point `pytest11`), so pytest loads it into
every session of the environment: this module imports only pytest, and the
broker (wasmtime and the C core) loads inside the fixture, for the tests
that use it.

The fixture `wasi_map_broker` is a `Broker` with the ownership tracer on.
When the test function returns, the cycle collector runs and the test
fails if any map that is not a named map is still alive, or a borrow was
left for the broker to end; the failure's first line says how many.  When
other fixtures are built on `wasi_map_broker`, the check waits until they
are torn down (they may hold maps until then), and a leak is an error at
teardown.  Mark a test with `@pytest.mark.wasi_map_app("app.toml")` to get
that app's broker; a relative path is taken from the test file's directory.
docs/pytest.md says the same for users.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .host import Broker

FIXTURE = "wasi_map_broker"
MARKER = "wasi_map_app"
# The item's broker, and whether its leak check waits for the teardown.
_BROKER = pytest.StashKey["Broker"]()
_AT_TEARDOWN = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(path): the {FIXTURE} fixture loads this app manifest "
        "(relative to the test file's directory)",
    )


@pytest.fixture
def wasi_map_broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """A traced Broker; the test fails if it leaves maps or borrows behind."""
    from .host import Broker  # wasmtime and the C core: only for tests that use it

    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        broker = Broker(trace=True)
    else:
        broker = Broker.from_manifest(manifest_path(marker, request.path), trace=True)
    request.node.stash[_BROKER] = broker
    request.node.stash[_AT_TEARDOWN] = _has_dependents(request.node)
    try:
        yield broker
        if request.node.stash[_AT_TEARDOWN]:
            failure = leak_failure(broker)
            if failure:
                pytest.fail(failure, pytrace=False)
    finally:
        broker.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """Check the item's broker when the test function returns: a leak fails the test."""
    try:
        result = yield
    except BaseException:
        failure = _check(item)
        if failure:  # the test's own failure stays first; the leaks go beside it
            item.add_report_section("call", "wasi-map leaks", failure)
        raise
    failure = _check(item)
    if failure:
        pytest.fail(failure, pytrace=False)
    return result


def _check(item: pytest.Item) -> str:
    """The leak failure of the item's broker, when it is checked now ('' if none)."""
    broker = item.stash.get(_BROKER, None)
    if broker is None or item.stash.get(_AT_TEARDOWN, False):
        return ""
    return leak_failure(broker)


def manifest_path(marker: pytest.Mark, test_file: Path) -> Path:
    """The marker's manifest, a relative path taken from the test file's directory."""
    if len(marker.args) != 1 or marker.kwargs:
        raise pytest.UsageError(
            f"{test_file}: @pytest.mark.{MARKER} takes one argument, the app manifest's path "
            f"(got args {marker.args!r}, kwargs {marker.kwargs!r})"
        )
    return test_file.parent / Path(marker.args[0])


def leak_failure(broker: Broker) -> str:
    """The failure message for the maps and borrows `broker` was left with ('' if none)."""
    from .testing import leak_message

    return leak_message(broker)


def _has_dependents(item: pytest.Item) -> bool:
    """Whether another fixture of the item requests wasi_map_broker (it may hold maps
    until its own teardown).  Read from pytest's fixture closure of the item."""
    info = getattr(item, "_fixtureinfo", None)
    defs = getattr(info, "name2fixturedefs", {})
    return any(
        FIXTURE in fixturedef.argnames
        for name, fixturedefs in defs.items()
        if name != FIXTURE
        for fixturedef in fixturedefs[-1:]
    )
