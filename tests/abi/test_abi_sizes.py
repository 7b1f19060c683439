"""ABI conformance: the size limits on keys and values (TOOBIG)."""

from __future__ import annotations

import pytest
from guest_driver import (
    ACCES,
    BUF,
    KEY,
    NOENT,
    OK,
    OUT,
    RW,
    TOOBIG,
    TYPE,
    VAL,
    Driver,
    R,
    pack_items,
    pack_keys,
)
from stores_fixtures import every_store

from broker import Broker
from broker._native import MAP_COST as M

KEY_OPS = [
    "get",
    "set",
    "delete",
    "exists",
    "incr",
    "version",
    "set_if",
    "set_map",
    "get_map",
    "get_many",
    "set_many",
]


def key_call(d: Driver, fn: str, h: int, child: int, key: bytes) -> int:
    """Call `fn` with `key` as its (only) key; the errno."""
    d.put(KEY, key)
    n = len(key)
    if fn == "get":
        return int(d.call("get", h, KEY, n, BUF, 64, OUT))
    if fn == "set":
        return int(d.call("set", h, KEY, n, VAL, 1))
    if fn == "delete":
        return int(d.call("delete", h, KEY, n))
    if fn in ("exists", "version", "get_map"):
        return int(d.call(fn, h, KEY, n, OUT))
    if fn == "incr":
        return int(d.call("incr", h, KEY, n, 1, OUT))
    if fn == "set_if":
        return int(d.call("set_if", h, KEY, n, VAL, 1, 0))
    if fn == "set_map":
        return int(d.call("set_map", h, KEY, n, child))
    if fn == "get_many":
        packed = pack_keys([b"ok", key])
        d.put(VAL, packed)
        return int(d.call("get_many", h, VAL, len(packed), BUF, 64, OUT))
    packed = pack_items([(b"ok", b"v"), (key, b"v")])
    d.put(VAL, packed)
    return int(d.call("set_many", h, VAL, len(packed)))


class TestKeySize:
    @every_store
    @pytest.mark.parametrize("fn", KEY_OPS)
    def test_key_over_limit_is_toobig(self, broker: Broker, fn: str) -> None:
        """A key one byte over key_size is TOOBIG for every call, reads included."""
        d = Driver(broker, limits={"key_size": 4})
        h, child = d.map(), d.new()
        d.poison(OUT, 8)
        assert key_call(d, fn, h, child, b"12345") == TOOBIG
        assert d.untouched(OUT, 8)
        assert d.len(h) == (OK, 0)

    @pytest.mark.parametrize("fn", KEY_OPS)
    def test_key_at_limit_is_fine(self, broker: Broker, fn: str) -> None:
        """A key of exactly key_size bytes passes the size check."""
        d = Driver(broker, limits={"key_size": 4})
        h, child = d.new(), d.new()
        assert key_call(d, fn, h, child, b"1234") in (OK, NOENT)

    @every_store
    def test_toobig_after_access(self, broker: Broker) -> None:
        """An oversized key through a read-only handle is ACCES (rights are checked first)."""
        d = Driver(broker, limits={"key_size": 2})
        _, ro = d.clone(d.map(), R)
        assert d.set(ro, b"long", b"v") == ACCES

    @every_store
    def test_toobig_before_noent_and_type(self, broker: Broker) -> None:
        """TOOBIG comes before the operation's own NOENT and TYPE."""
        d = Driver(broker, limits={"key_size": 2})
        h = d.map()
        assert d.get(h, b"absent") == (TOOBIG, None)
        assert d.get_map(h, b"absent") == (TOOBIG, None)

    @every_store
    def test_toobig_before_conflict(self, broker: Broker) -> None:
        """set_if with an oversized value and a wrong version is TOOBIG."""
        d = Driver(broker, limits={"value_size": 2})
        assert d.set_if(d.map(), b"k", b"long", 12345) == TOOBIG

    @every_store
    def test_toobig_before_quota(self, broker: Broker) -> None:
        """An oversized write that would also pass the byte quota is TOOBIG."""
        d = Driver(broker, limits={"value_size": 2, "bytes": M + 1})
        assert d.set(d.map(), b"k", b"long") == TOOBIG

    def test_get_many_toobig_before_type(self, broker: Broker) -> None:
        """get_many with an oversized key and a map reference is TOOBIG."""
        d = Driver(broker, limits={"key_size": 2})
        h = d.new()
        d.set_map(h, b"m", d.new())
        assert d.get_many(h, [b"m", b"long"]) == (TOOBIG, None)


class TestValueSize:
    @every_store
    @pytest.mark.parametrize("size, errno", [(4, OK), (5, TOOBIG)])
    def test_set(self, broker: Broker, size: int, errno: int) -> None:
        """set of a value over value_size is TOOBIG; at the limit it is fine."""
        d = Driver(broker, limits={"value_size": 4})
        h = d.map()
        assert d.set(h, b"k", b"x" * size) == errno
        assert d.len(h) == (OK, 1 if errno == OK else 0)

    @every_store
    def test_set_if(self, broker: Broker) -> None:
        """set_if of a value over value_size is TOOBIG."""
        d = Driver(broker, limits={"value_size": 4})
        h = d.map()
        assert d.set_if(h, b"k", b"12345", 0) == TOOBIG
        assert d.set_if(h, b"k", b"1234", 0) == OK

    @every_store
    def test_set_many(self, broker: Broker) -> None:
        """One oversized value refuses the whole set_many batch."""
        d = Driver(broker, limits={"value_size": 4})
        h = d.map()
        assert d.set_many(h, [(b"a", b"1"), (b"b", b"12345")]) == TOOBIG
        assert d.len(h) == (OK, 0)

    @every_store
    def test_incr_writes_eight_bytes(self, broker: Broker) -> None:
        """incr writes an 8-byte value: under value_size 7 it is TOOBIG."""
        d = Driver(broker, limits={"value_size": 7})
        assert d.incr(d.map(), b"n", 1) == (TOOBIG, None)
        d8 = Driver(broker, "b", limits={"value_size": 8})
        assert d8.incr(d8.map(), b"n", 1) == (OK, 1)

    @every_store
    def test_reads_ignore_value_size(self, broker: Broker) -> None:
        """A value written by a module with a larger limit can be read by a smaller one."""
        big = Driver(broker, "big", grants={"cfg": "rw"})
        small = Driver(broker, "small", limits={"value_size": 2}, grants={"cfg": "r"})
        _, hb = big.open(b"cfg", RW)
        _, hs = small.open(b"cfg", R)
        assert big.set(hb, b"k", b"long value") == OK
        assert small.get(hs, b"k") == (OK, b"long value")
        assert small.get_many(hs, [b"k"]) == (OK, [b"long value"])

    @every_store
    def test_get_map_type_not_size(self, broker: Broker) -> None:
        """get_map on a bytes value under the limits is TYPE."""
        d = Driver(broker, limits={"value_size": 2})
        h = d.map()
        d.set(h, b"k", b"v")
        assert d.get_map(h, b"k") == (TYPE, None)
