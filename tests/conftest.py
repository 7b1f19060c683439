"""Shared fixtures: a fresh broker, and the directory of test guests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from broker import Broker

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
