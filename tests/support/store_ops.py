"""Small helpers of the store tests (tests/stores/): errno numbers, a driver granted
map "m", counters as stored, batches of items.
"""

from __future__ import annotations

from guest_driver import RW, Driver

from broker import Broker
from broker.abi import Errno

OK, CONFLICT, IO = int(Errno.OK), int(Errno.CONFLICT), int(Errno.IO)


def i64(value: int) -> bytes:
    """An incr counter as stored: 8 bytes, little-endian."""
    return value.to_bytes(8, "little", signed=True)


def open_m(broker: Broker) -> tuple[Driver, int]:
    """A driver guest "g" granted map "m", and its rw handle to it."""
    driver = Driver(broker, "g", grants={"m": "rw"})
    err, handle = driver.open(b"m", RW)
    assert err == OK and handle is not None
    return driver, handle


def batch(n: int, tag: str) -> list[tuple[bytes, bytes]]:
    return [(f"{tag}:{i:03d}".encode(), f"{tag}/{i}".encode()) for i in range(n)]
