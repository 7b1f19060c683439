"""Fixtures of the diagnostics tests: structlog as a library finds it, the atlas app traced."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog
from held_back_apps import ATLAS

from broker import Broker


@pytest.fixture(autouse=True)
def fresh_structlog() -> Iterator[None]:
    """structlog's global configuration as a library finds it (capture_logs leaves it set)."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture
def atlas() -> Iterator[Broker]:
    """The atlas app after loader.main, traced."""
    with Broker.from_manifest(ATLAS, trace=True) as b:
        assert b.call("loader.main") == 0
        yield b
