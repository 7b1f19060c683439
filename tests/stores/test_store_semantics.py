"""What a backing store (sqlite, Redis) means for the ABI: bytes only, versions, sizes, quotas.

docs/stores.md, "What differs from memory": a store-backed named map holds
bytes only (set_map TYPE, get_map TYPE/NOENT), versions come from a clock
per map, and named maps outlive the broker.  Everything else must be what
memory does; tests that hold for memory too run on it as well.
"""

from __future__ import annotations

import os

import pytest
from guest_driver import (
    ACCES,
    BADF,
    CONFLICT,
    KEY,
    NOENT,
    OK,
    OUT,
    QUOTA,
    RANGE,
    RW,
    STALE,
    TOOBIG,
    TYPE,
    Driver,
    R,
    driver_fixture,
)
from stores_fixtures import backing_stores, every_store, store_map, unique_name

from broker import Broker
from broker._native import MAP_COST
from broker.errors import NotFoundError, TooBigError, ValueTypeError

d = driver_fixture()


MIB = 1 << 20
PAGE = 65536


class TestBytesOnly:
    """A map in a backing store holds bytes: no map references in or out."""

    @backing_stores
    def test_set_map_is_type_and_writes_nothing(self, d: Driver, broker: Broker) -> None:
        """set_map on a store map is TYPE: no entry, no overwrite, no version, no reference."""
        h, child = d.map(), d.new()
        assert d.set(child, b"inner", b"v") == OK
        assert d.set(h, b"k", b"bytes") == OK
        _, before = d.version(h, b"k")
        assert d.set_map(h, b"m", child) == TYPE
        assert d.set_map(h, b"k", child) == TYPE
        assert d.exists(h, b"m") == (OK, 0)
        assert d.len(h) == (OK, 1)
        assert d.value(h, b"k") == b"bytes"
        assert d.version(h, b"k") == (OK, before)
        assert d.close(child) == OK
        assert broker.stats()["maps"] == 0  # the store map took no reference to the child

    @backing_stores
    def test_set_map_checks_come_first(self, d: Driver) -> None:
        """The usual checks (BADF, STALE, ACCES, TOOBIG) answer before the store's TYPE."""
        h, child = d.map(), d.new()
        _, ro = d.clone(h, R)
        _, closed = d.clone(child, RW)
        d.close(closed)
        assert d.set_map(h, b"m", 0) == BADF
        assert d.set_map(h, b"m", closed) == STALE
        assert d.set_map(ro, b"m", child) == ACCES
        assert d.set_map(h, b"k" * 4097, child) == TOOBIG
        assert d.set_map(h, b"m", child) == TYPE

    @backing_stores
    def test_get_map_is_type_or_noent(self, d: Driver, broker: Broker) -> None:
        """get_map on a store map: TYPE for a present key, NOENT for an absent one, no handle."""
        h = d.map()
        assert d.set(h, b"k", b"v") == OK
        assert d.set(h, b"empty", b"") == OK
        handles = broker.stats()["handles"]["a"]
        assert d.get_map(h, b"k") == (TYPE, None)
        assert d.get_map(h, b"empty") == (TYPE, None)
        assert d.get_map(h, b"absent") == (NOENT, None)
        assert broker.stats()["handles"]["a"] == handles

    @backing_stores
    def test_host_map_references(self, broker: Broker) -> None:
        """Through a MapRef: set_map and get_map of a present key are ValueTypeError."""
        m, child = store_map(broker), broker.new_map()
        m[b"k"] = b"v"
        with pytest.raises(ValueTypeError):
            m.set_map(b"c", child)
        with pytest.raises(ValueTypeError):
            m.get_map(b"k")
        with pytest.raises(NotFoundError):
            m.get_map(b"c")
        assert list(m) == [b"k"]

    @every_store
    def test_anonymous_map_may_reference_a_store_map(self, d: Driver) -> None:
        """An anonymous map can hold a reference to a named map of any store."""
        named, parent = d.map(), d.new()
        assert d.set(named, b"k", b"in the store") == OK
        assert d.set_map(parent, b"n", named) == OK
        err, again = d.get_map(parent, b"n")
        assert err == OK and again is not None
        assert d.value(again, b"k") == b"in the store"
        assert d.set(again, b"k2", b"through the reference") == OK
        assert d.value(named, b"k2") == b"through the reference"


class TestVersions:
    """Versions from the per-map clock: change on every write, never reused, 0 when absent."""

    @every_store
    def test_delete_and_reinsert_gives_a_new_version(self, d: Driver) -> None:
        """After delete + reinsert of the same bytes the version differs: set_if(old) conflicts."""
        h = d.map()
        assert d.set(h, b"k", b"same") == OK
        _, v1 = d.version(h, b"k")
        assert d.delete(h, b"k") == OK
        assert d.version(h, b"k") == (OK, 0)
        assert d.set(h, b"k", b"same") == OK
        _, v2 = d.version(h, b"k")
        assert v1 is not None and v2 is not None and v2 != v1 and v2 > v1
        assert d.set_if(h, b"k", b"new", v1) == CONFLICT
        assert d.set_if(h, b"k", b"new", v2) == OK

    @backing_stores
    def test_brokers_sharing_a_store_agree(self, broker: Broker, store_url: str) -> None:
        """Two brokers on one store see the same versions: set_if across them works."""
        with Broker(store_url) as other:
            name = unique_name()
            a, b = broker.open(name), other.open(name)
            a[b"k"] = b"from a"
            assert b.version(b"k") == a.version(b"k") > 0
            b.set_if(b"k", b"from b", a.version(b"k"))
            assert a[b"k"] == b"from b"
            assert a.version(b"k") == b.version(b"k")


class TestEdgeValues:
    """The smallest and the largest keys and values a map takes."""

    @every_store
    def test_empty_key_and_empty_value(self, d: Driver) -> None:
        """The empty key with the empty value round-trips through every call."""
        h = d.map()
        assert d.set(h, b"", b"") == OK
        assert d.get(h, b"", cap=0) == (OK, b"")
        assert d.exists(h, b"") == (OK, 1)
        assert d.len(h) == (OK, 1)
        assert d.list_keys(h) == [b""]
        assert d.get_many(h, [b"", b"x"]) == (OK, [b"", None])
        _, v = d.version(h, b"")
        assert v is not None and v > 0
        assert d.set_if(h, b"", b"", v) == OK
        assert d.set_many(h, [(b"", b"")]) == OK
        assert d.get(h, b"") == (OK, b"")
        assert d.delete(h, b"") == OK
        assert d.exists(h, b"") == (OK, 0)

    @every_store
    def test_empty_key_and_value_through_a_mapref(self, broker: Broker) -> None:
        """The same through the host's MapRef."""
        m = store_map(broker)
        m[b""] = b""
        assert m[b""] == b"" and list(m) == [b""] and len(m) == 1
        assert m.get_many([b""]) == [b""]

    @every_store
    def test_one_mib_value(self, d: Driver, broker: Broker) -> None:
        """A value of exactly 1 MiB (the default limit) round-trips; one byte more is TOOBIG."""
        h = d.map()
        src = d.grow(2 * MIB // PAGE) * PAGE  # the old end of memory: 2 MiB free from there
        dst = src + MIB
        for i in range(0, MIB, 4096):  # 256 stripes of different bytes
            d.fill(src + i, (i // 4096) % 251, 4096)
        expected = b"".join(bytes([(i // 4096) % 251]) * 4096 for i in range(0, MIB, 4096))
        d.put(KEY, b"big")
        assert d.call("set", h, KEY, 3, src, MIB) == OK
        assert broker.native_module("a").op_get(h, b"big") == expected
        assert d.call("get", h, KEY, 3, dst, MIB - 1, OUT) == RANGE
        assert d.u32(OUT) == MIB
        assert d.call("get", h, KEY, 3, dst, MIB, OUT) == OK
        assert d.u32(OUT) == MIB
        for at in (0, 4095, 4096, MIB // 2 + 7, MIB - 8):
            assert d.read(dst + at, 8) == expected[at : at + 8]
        assert d.call("set", h, KEY, 3, src, MIB + 1) == TOOBIG
        assert broker.native_module("a").op_get(h, b"big") == expected

    @every_store
    def test_one_mib_value_through_a_mapref(self, broker: Broker) -> None:
        """A random 1 MiB value round-trips through a MapRef; 1 MiB + 1 is TooBigError."""
        m = store_map(broker)
        value = os.urandom(MIB)
        m[b"big"] = value
        assert m[b"big"] == value
        assert m.get_many([b"big", b"none"]) == [value, None]
        with pytest.raises(TooBigError):
            m[b"big"] = value + b"!"
        assert m[b"big"] == value


class TestSetManyTooBig:
    """set_many is all or nothing: an oversized item refuses the batch in C, before the store."""

    @every_store
    @pytest.mark.parametrize("bad", ["value", "key"])
    def test_one_oversized_item_writes_nothing(self, broker: Broker, bad: str) -> None:
        """One item over key_size or value_size: TOOBIG, no item written, old values kept."""
        limits = {"key_size": 8, "value_size": 16}
        d = Driver(broker, "small", grants={"batch": "rw"}, limits=limits)
        err, h = d.open(b"batch", RW)
        assert err == OK and h is not None
        assert d.set(h, b"a", b"old") == OK
        _, version = d.version(h, b"a")
        big = (b"k" * 9, b"v") if bad == "key" else (b"b", b"v" * 17)
        assert d.set_many(h, [(b"a", b"new"), big, (b"c", b"3")]) == TOOBIG
        assert d.list_keys(h) == [b"a"]
        assert d.value(h, b"a") == b"old"
        assert d.version(h, b"a") == (OK, version)
        if broker.store is not None:  # the store itself never saw the batch
            assert broker.store.len("batch") == 1
            assert broker.store.get("batch", b"a") == b"old"


class TestQuotas:
    """Module quotas on bytes and entries bound memory in this process, not a store."""

    @every_store
    def test_store_writes_are_not_charged(self, broker: Broker) -> None:
        """Over the bytes and entries quotas: QUOTA on memory, OK on a backing store."""
        limits = {"bytes": MAP_COST + 10, "entries": 2}  # room for one anonymous map, no entry
        d = Driver(broker, "q", grants={"big": "rw"}, limits=limits)
        err, h = d.open(b"big", RW)
        assert err == OK and h is not None
        items = [(b"k%d" % i, b"v" * 100) for i in range(5)]
        expected = QUOTA if broker.store is None else OK
        assert d.set(h, b"one", b"v" * 100) == expected
        assert d.set_many(h, items) == expected
        if broker.store is not None:
            assert d.incr(h, b"n", 1) == (OK, 1)
            assert d.len(h) == (OK, 7)
            assert broker.native_module("q").usage() == (0, 0)
            anon = d.new()  # an anonymous map is charged as always
            assert d.set(anon, b"k", b"v" * 100) == QUOTA


class TestNamesAndSizes:
    """Map names as store keys, and batches and listings of many keys."""

    @every_store
    def test_map_names_are_kept_apart(self, broker: Broker) -> None:
        """Names that differ in any byte (NUL, braces, colons, non-ASCII) are different maps."""
        names = ["a", "a\x00", "a\x00b", "{a}", "a}", "a:b", "wasi-map:v:{a}", "ä", "x" * 1024]
        for i, name in enumerate(names):
            broker.open(name)[b"k"] = b"%d" % i
        for i, name in enumerate(names):
            assert dict(broker.open(name)) == {b"k": b"%d" % i}
        with Broker(broker.store_url) as again:  # the same store, seen by a new broker
            for i, name in enumerate(names):
                m = again.open(name)
                assert dict(m) == ({b"k": b"%d" % i} if broker.store is not None else {})

    @every_store
    def test_get_many_of_many_keys(self, broker: Broker) -> None:
        """get_many of 2,000 keys (present, absent, repeated) answers each in order."""
        m = store_map(broker)
        m.set_many([(b"k%04d" % i, b"%d" % i) for i in range(1200)])
        keys = [b"k%04d" % (i * 7 % 1300) for i in range(2000)]
        expected = [b"%d" % int(k[1:]) if int(k[1:]) < 1200 else None for k in keys]
        assert m.get_many(keys) == expected

    @every_store
    def test_page_holds_as_many_keys_as_fit(self, broker: Broker) -> None:
        """docs/abi.md: a keys page holds as many whole keys as fit, however many that is."""
        m = store_map(broker)
        m.set_many([(b"k%04d" % i, b"") for i in range(1500)])
        page, cursor = broker.host.op_keys_page(m.handle, 0, 64 * 1024)  # room for 7,281
        assert (len(page), cursor) == (1500, 0)
