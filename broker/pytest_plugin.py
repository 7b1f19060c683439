"""A pytest plugin: brokers that fail the test when maps leak.

Installed with wasi-map (entry point `pytest11`), it gives tests the fixture
`wasi_map_broker`: a `Broker` with the ownership tracer on.  At teardown
the fixture runs the cycle collector and fails the test with the leak
report if any map that is not a named map is still alive, or a borrow was
left for the broker to end.  Mark a test with
`@pytest.mark.wasi_map_app("path/to/app.toml")` to get the app's broker.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import leaks
from .host import Broker


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "wasi_map_app(path): the wasi_map_broker fixture loads this app manifest"
    )


@pytest.fixture
def wasi_map_broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """A traced Broker; the test fails if it leaves maps or borrows behind."""
    marker = request.node.get_closest_marker("wasi_map_app")
    if marker is not None:
        broker = Broker.from_manifest(marker.args[0], trace=True)
    else:
        broker = Broker(trace=True)
    yield broker
    if broker.closed:
        return
    try:
        broker.collect()
        report = broker.leaks()
    finally:
        broker.close()
    if report["leaks"] or report["unreleased_borrows"]:
        pytest.fail(
            "wasi-map: the test left maps behind\n" + leaks.format_text(report), pytrace=False
        )
