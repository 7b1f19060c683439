"""Drive the ABI from tests through a real guest: tests/guests/abi_driver.wat.

`Driver` wraps one loaded copy of the driver guest.  `call` reaches an ABI
function with exact raw arguments (the guest re-exports each one); `put`,
`read`, `u32`... lay out inputs and read outputs in its linear memory.  The
convenience methods (`get`, `keys`, ...) use a fixed layout and check, on
every call, the contract's rule that nothing is written to an out-pointer
unless the call returns OK (RANGE: only the needed size).

`map()` gives a fresh map of the broker's store (tests/support/stores_fixtures.py):
anonymous on memory; on sqlite or Redis one of the named maps the driver
was granted at load, so that the operations go through the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from paths import GUESTS
from stores_fixtures import unique_name

from broker import Broker
from broker.abi import Errno, pack_items, pack_keys, unpack_records

DRIVER = GUESTS / "abi_driver.wat"

OK, BADF, STALE, NOENT, ACCES, FAULT, RANGE, INVAL = (
    Errno.OK,
    Errno.BADF,
    Errno.STALE,
    Errno.NOENT,
    Errno.ACCES,
    Errno.FAULT,
    Errno.RANGE,
    Errno.INVAL,
)
BUSY, QUOTA, TOOBIG, CONFLICT, TYPE = (
    Errno.BUSY,
    Errno.QUOTA,
    Errno.TOOBIG,
    Errno.CONFLICT,
    Errno.TYPE,
)
R, W, RW = 1, 2, 3

# The fixed memory layout of the convenience methods (the guest starts with
# 2 pages = 0x20000 bytes).  Out-pointers first, then inputs, then buffers.
OUT = 0x100  # first out-pointer (u32/u64 results, out_len, out_used)
OUT2 = 0x108  # second out-pointer (keys: out_count)
CURSOR = 0x110  # keys: the u64 cursor
KEY = 0x1000  # key or name bytes (up to 8 KiB)
VAL = 0x3000  # value or batch bytes (up to 20 KiB)
BUF = 0x8000  # output buffers (up to 96 KiB)
SENTINEL = 0xAA  # poison byte: memory the ABI must not touch still holds it
MEM_END = 0x20000
STORE_MAPS = 8  # named maps a driver on a backing store is granted for map()


class Driver:
    """One loaded abi_driver guest: raw ABI calls and its linear memory."""

    def __init__(self, broker: Broker, name: str = "a", **load: Any) -> None:
        self.store_maps: list[bytes] = []  # names for map(), on a backing store
        if broker.store is not None:
            self.store_maps = [unique_name(name).encode() for _ in range(STORE_MAPS)]
            granted = {n.decode(): "rw" for n in self.store_maps}
            load["grants"] = {**granted, **load.get("grants", {})}
        broker.load(name, DRIVER, **load)
        self.broker, self.name = broker, name

    # --- raw access --------------------------------------------------------

    def call(self, fn: str, *args: int) -> Any:
        """Call the guest export `fn` (an ABI wrapper or a memory helper)."""
        return self.broker.call(f"{self.name}.{fn}", *args)

    def put(self, addr: int, data: bytes) -> None:
        """Write bytes into guest memory at `addr`."""
        whole = len(data) - len(data) % 8
        for i in range(0, whole, 8):
            self.call("store64", addr + i, int.from_bytes(data[i : i + 8], "little"))
        for i in range(whole, len(data)):
            self.call("store8", addr + i, data[i])

    def read(self, addr: int, n: int) -> bytes:
        """Read `n` bytes of guest memory at `addr`."""
        out = bytearray()
        whole = n - n % 8
        for i in range(0, whole, 8):
            out += (self.call("load64", addr + i) & (2**64 - 1)).to_bytes(8, "little")
        for i in range(whole, n):
            out.append(self.call("load8", addr + i))
        return bytes(out)

    def u32(self, addr: int) -> int:
        return int(self.call("load32", addr)) & 0xFFFFFFFF

    def u64(self, addr: int) -> int:
        return int(self.call("load64", addr)) & (2**64 - 1)

    def i64(self, addr: int) -> int:
        return int(self.call("load64", addr))

    def put_u32(self, addr: int, value: int) -> None:
        self.call("store32", addr, value & 0xFFFFFFFF)

    def put_u64(self, addr: int, value: int) -> None:
        self.call("store64", addr, value & (2**64 - 1))

    def fill(self, addr: int, byte: int, n: int) -> None:
        self.call("fill", addr, byte, n)

    def memsize(self) -> int:
        return int(self.call("memsize")) & 0xFFFFFFFF

    def grow(self, pages: int) -> int:
        return int(self.call("grow", pages))

    def poison(self, addr: int, n: int) -> None:
        """Fill with SENTINEL, to check afterwards that nothing was written."""
        self.fill(addr, SENTINEL, n)

    def untouched(self, addr: int, n: int) -> bool:
        """True when `n` bytes at `addr` still hold SENTINEL."""
        return self.read(addr, n) == bytes([SENTINEL]) * n

    # --- convenience: one ABI call with the fixed layout --------------------
    # Each poisons its outputs first and asserts the out-pointer rule.

    def _outputs(self, *spans: tuple[int, int]) -> None:
        for addr, n in spans:
            self.poison(addr, n)

    def _check_untouched(self, err: int, *spans: tuple[int, int]) -> None:
        for addr, n in spans:
            assert self.untouched(addr, n), f"errno {Errno(err).name} wrote to {addr:#x}"

    def _handle_out(self, fn: str, *args: int) -> tuple[int, int | None]:
        return self._u32_out(fn, *args)

    def new(self) -> int:
        """A new map's handle (the call must succeed)."""
        err, h = self._handle_out("new")
        assert err == OK and h is not None, f"new: {Errno(err).name}"
        return h

    def map(self) -> int:
        """A fresh, empty map of the store under test: `new` on memory, else a named map."""
        if self.broker.store is None:
            return self.new()
        assert self.store_maps, f"a test may take at most {STORE_MAPS} maps from map()"
        err, h = self.open(self.store_maps.pop(0), RW)
        assert err == OK and h is not None, f"open: {Errno(err).name}"
        return h

    def new_err(self) -> tuple[int, int | None]:
        return self._handle_out("new")

    def open(self, name: bytes, rights: int) -> tuple[int, int | None]:
        self.put(KEY, name)
        return self._handle_out("open", KEY, len(name), rights)

    def close(self, h: int) -> int:
        return int(self.call("close", h))

    def clone(self, h: int, rights: int) -> tuple[int, int | None]:
        return self._handle_out("clone", h, rights)

    def set(self, h: int, key: bytes, value: bytes) -> int:
        self.put(KEY, key)
        self.put(VAL, value)
        return int(self.call("set", h, KEY, len(key), VAL, len(value)))

    def get(self, h: int, key: bytes, cap: int = 0x1000) -> tuple[int, bytes | int | None]:
        """(OK, value), (RANGE, needed size) or (errno, None)."""
        self.put(KEY, key)
        self._outputs((OUT, 4), (BUF, cap))
        err = self.call("get", h, KEY, len(key), BUF, cap, OUT)
        if err == OK:
            n = self.u32(OUT)
            assert self.untouched(BUF + n, cap - n), "get wrote past the value"
            return err, self.read(BUF, n)
        self._check_untouched(err, (BUF, cap))
        if err == RANGE:
            return err, self.u32(OUT)
        self._check_untouched(err, (OUT, 4))
        return err, None

    def delete(self, h: int, key: bytes) -> int:
        self.put(KEY, key)
        return int(self.call("delete", h, KEY, len(key)))

    def exists(self, h: int, key: bytes) -> tuple[int, int | None]:
        self.put(KEY, key)
        return self._u32_out("exists", h, KEY, len(key))

    def len(self, h: int) -> tuple[int, int | None]:
        return self._u32_out("len", h)

    def _u32_out(self, fn: str, *args: int) -> tuple[int, int | None]:
        self._outputs((OUT, 4))
        err = self.call(fn, *args, OUT)
        if err != OK:
            self._check_untouched(err, (OUT, 4))
            return err, None
        return err, self.u32(OUT)

    def _u64_out(self, fn: str, *args: int, signed: bool = False) -> tuple[int, int | None]:
        self._outputs((OUT, 8))
        err = self.call(fn, *args, OUT)
        if err != OK:
            self._check_untouched(err, (OUT, 8))
            return err, None
        return err, self.i64(OUT) if signed else self.u64(OUT)

    def incr(self, h: int, key: bytes, delta: int) -> tuple[int, int | None]:
        self.put(KEY, key)
        return self._u64_out("incr", h, KEY, len(key), delta, signed=True)

    def version(self, h: int, key: bytes) -> tuple[int, int | None]:
        self.put(KEY, key)
        return self._u64_out("version", h, KEY, len(key))

    def set_if(self, h: int, key: bytes, value: bytes, expected: int) -> int:
        self.put(KEY, key)
        self.put(VAL, value)
        return int(self.call("set_if", h, KEY, len(key), VAL, len(value), expected))

    def keys(self, h: int, cursor: int, cap: int) -> tuple[int, list[bytes] | int | None, int]:
        """One page: (OK, keys, next cursor), (RANGE, needed, cursor) or (errno, None, cursor)."""
        self.put_u64(CURSOR, cursor)
        self._outputs((OUT, 4), (OUT2, 4), (BUF, cap))
        err = self.call("keys", h, CURSOR, BUF, cap, OUT, OUT2)
        if err == OK:
            used, count = self.u32(OUT), self.u32(OUT2)
            assert used <= cap
            assert self.untouched(BUF + used, cap - used), "keys wrote past out_used"
            page = unpack_records(self.read(BUF, used), count)
            return err, [k for k in page if k is not None], self.u64(CURSOR)
        assert self.u64(CURSOR) == cursor, "the cursor changed on an error"
        self._check_untouched(err, (OUT2, 4), (BUF, cap))
        if err == RANGE:
            return err, self.u32(OUT), cursor
        self._check_untouched(err, (OUT, 4))
        return err, None, cursor

    def list_keys(self, h: int, cap: int = 0x1000) -> list[bytes]:
        """Every key, page by page (each call must succeed)."""
        out: list[bytes] = []
        cursor = 0
        while True:
            err, page, cursor = self.keys(h, cursor, cap)
            assert err == OK and isinstance(page, list), f"keys: {Errno(err).name}"
            out += page
            if cursor == 0:
                return out

    def get_many(
        self, h: int, keys: Sequence[bytes], cap: int = 0x1000
    ) -> tuple[int, list[bytes | None] | int | None]:
        """(OK, values), (RANGE, needed size) or (errno, None)."""
        packed = pack_keys(keys)
        self.put(VAL, packed)
        self._outputs((OUT, 4), (BUF, cap))
        err = self.call("get_many", h, VAL, len(packed), BUF, cap, OUT)
        if err == OK:
            used = self.u32(OUT)
            assert self.untouched(BUF + used, cap - used), "get_many wrote past out_used"
            return err, unpack_records(self.read(BUF, used), len(keys))
        self._check_untouched(err, (BUF, cap))
        if err == RANGE:
            return err, self.u32(OUT)
        self._check_untouched(err, (OUT, 4))
        return err, None

    def set_many(self, h: int, items: Sequence[tuple[bytes, bytes]]) -> int:
        packed = pack_items(items)
        self.put(VAL, packed)
        return int(self.call("set_many", h, VAL, len(packed)))

    def set_map(self, h: int, key: bytes, child: int) -> int:
        self.put(KEY, key)
        return int(self.call("set_map", h, KEY, len(key), child))

    def get_map(self, h: int, key: bytes) -> tuple[int, int | None]:
        self.put(KEY, key)
        return self._handle_out("get_map", h, KEY, len(key))

    # --- checks used by many tests ----------------------------------------

    def value(self, h: int, key: bytes) -> bytes:
        """The value under `key` (the get must succeed)."""
        err, value = self.get(h, key, cap=0x8000)
        assert err == OK and isinstance(value, bytes), f"get {key!r}: {Errno(err).name}"
        return value


def driver_fixture(name: str = "a", **load: Any) -> Callable[..., Iterator[Driver]]:
    """A pytest fixture giving a Driver loaded as `name` into the `broker` fixture."""

    @pytest.fixture
    def fixture(broker: Broker) -> Iterator[Driver]:
        yield Driver(broker, name, **load)

    return fixture
