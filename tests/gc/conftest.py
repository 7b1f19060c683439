"""The collector's tests' brokers (docs/abi.md "The cycle collector").

Most tests run with automatic collection off (`gc_threshold=0`, the `b`
fixture), so every collection is one the test asked for and the counts are
exact; the tests of the threshold, of teardown and of borrows turn it on.
Every broker is recounted (`testing.check_refcounts`) when its test ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from gc_shapes import MakeBroker

from broker import Broker, testing


@pytest.fixture
def make_broker() -> Iterator[MakeBroker]:
    """Brokers made with any options; each recounted (check() == 0) and closed at the end."""
    made: list[Broker] = []

    def make(**options: Any) -> Broker:
        b = Broker(**options)
        made.append(b)
        return b

    yield make
    try:
        for b in made:
            if not b.closed:
                testing.check_refcounts(b)
    finally:
        for b in made:
            b.close()


@pytest.fixture
def b(make_broker: MakeBroker) -> Broker:
    """A broker whose collector runs only when the test calls collect()."""
    return make_broker(gc_threshold=0)
