"""get_many's answer is bounded by the caller's buffer, not by its key list.

A guest may ask for one big key many times with a buffer too small for
even one value: the store must answer RANGE with the size needed without
first building every copy on the host (native/leveldb_store.c op_get_many
for LevelDB, broker/_native/store_door.py for the Python stores).  Peak
memory is measured in a subprocess of its own (ru_maxrss is a high-water
mark: this process's history would hide it); memory is the reference.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from guest_driver import Driver
from paths import SUPPORT
from sanitizer import SANITIZED

from broker import Broker, Errno

MIB = 1 << 20
COPIES = 300
STORES = ["memory", "sqlite", "leveldb"]

# One guest get_many of COPIES copies of the key "" (1 MiB under it) into a
# zero-byte buffer; prints errno, needed size and peak RSS growth (bytes).
AMPLIFY = """
import json, resource, sys
sys.path[:0] = [{support!r}]  # not the checkout: broker is the installed one
from guest_driver import Driver, BUF, OUT
from broker import Broker

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

url, copies, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
broker = Broker(store=url) if url != "memory" else Broker()
d = Driver(broker)
h = d.map()
d.grow(size // 65536 + (4 * copies) // 65536 + 2)
value_at = 0x20000
d.fill(value_at, 0x41, size)
assert d.call("set", h, 0x1000, 0, value_at, size) == 0
keys_at = value_at + size
d.fill(keys_at, 0, 4 * copies)  # `copies` records of length 0: the key ""
before = peak()
err = d.call("get_many", h, keys_at, 4 * copies, BUF, 0, OUT)
grown = peak() - before
print(json.dumps({{"err": err, "needed": d.u32(OUT), "grown": grown}}))
broker.close()
"""


def store_url(kind: str, tmp_path: Path) -> str:
    return {
        "memory": "memory",
        "sqlite": f"sqlite:{tmp_path / 'maps.sqlite'}",
        "leveldb": f"leveldb:{tmp_path / 'maps.ldb'}",
    }[kind]


@pytest.fixture(params=STORES)
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    url = store_url(request.param, tmp_path)
    with Broker(store=url) if url != "memory" else Broker() as b:
        yield b


class TestOneBigKeyManyTimes:
    @pytest.mark.parametrize("kind", STORES)
    def test_range_without_building_every_copy(self, kind: str, tmp_path: Path) -> None:
        """RANGE with the exact size needed, and peak memory far below the copies' total."""
        script = AMPLIFY.format(support=str(SUPPORT))
        done = subprocess.run(
            [sys.executable, "-c", script, store_url(kind, tmp_path), str(COPIES), str(MIB)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout.splitlines()[-1])
        assert answer["err"] == Errno.RANGE
        assert answer["needed"] == COPIES * (4 + MIB)
        assert SANITIZED or answer["grown"] < 32 * MIB, f"peak RSS grew {answer['grown']} bytes"


class TestRepeatedKeysStillAnswer:
    def test_an_exact_buffer_holds_every_copy(self, broker: Broker) -> None:
        """Repeated, absent and empty keys: each value in order, in a buffer of just that size."""
        d = Driver(broker)
        h = d.map()
        assert d.set(h, b"big", b"x" * 300) == Errno.OK
        assert d.set(h, b"empty", b"") == Errno.OK
        keys = [b"big", b"gone", b"big", b"empty", b"big"]
        need = 5 * 4 + 3 * 300
        err, values = d.get_many(h, keys, cap=need)
        assert err == Errno.OK
        assert values == [b"x" * 300, None, b"x" * 300, b"", b"x" * 300]

    def test_one_byte_short_is_range_with_the_size(self, broker: Broker) -> None:
        """A buffer one byte short of the copies' total: RANGE, and the total."""
        d = Driver(broker)
        h = d.map()
        assert d.set(h, b"big", b"x" * 300) == Errno.OK
        need = 4 * (4 + 300) + 4
        assert d.get_many(h, [b"big", b"big", b"none", b"big", b"big"], cap=need - 1) == (
            Errno.RANGE,
            need,
        )
