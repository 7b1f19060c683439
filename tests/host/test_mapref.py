"""MapRef, the host's handle to a map (docs/abi.md "The host's maps")."""

from __future__ import annotations

import gc
from collections.abc import MutableMapping

import pytest
from stores_fixtures import every_store, store_map
from xmod import CALLEE

from broker import AccessError, Broker, ConfigError, Errno, MapRef, StaleHandleError
from broker.errors import (
    ConflictError,
    NotFoundError,
    TooBigError,
    ValueTypeError,
)


@pytest.fixture
def m(broker: Broker) -> MapRef:
    """A new host-owned map of the store under test (anonymous on memory)."""
    return store_map(broker)


@every_store
class TestMutableMapping:
    def test_is_a_mutable_mapping(self, m: MapRef) -> None:
        """A MapRef is a MutableMapping[bytes, bytes]."""
        assert isinstance(m, MutableMapping)

    def test_set_get_and_len(self, m: MapRef) -> None:
        """Items set are read back; len counts entries."""
        m[b"a"] = b"1"
        m[b"b"] = b""
        m[b""] = b"empty key"
        assert (m[b"a"], m[b"b"], m[b""]) == (b"1", b"", b"empty key")
        assert len(m) == 3

    def test_overwrite(self, m: MapRef) -> None:
        """Setting an existing key replaces its value without adding an entry."""
        m[b"a"] = b"1"
        m[b"a"] = b"2"
        assert m[b"a"] == b"2" and len(m) == 1

    def test_missing_key_is_key_error(self, m: MapRef) -> None:
        """Reading an absent key raises KeyError (NotFoundError, errno NOENT)."""
        with pytest.raises(KeyError):
            m[b"nope"]
        with pytest.raises(NotFoundError):
            m[b"nope"]

    def test_delitem(self, m: MapRef) -> None:
        """del removes a key; deleting an absent key is KeyError."""
        m[b"a"] = b"1"
        del m[b"a"]
        assert b"a" not in m and len(m) == 0
        with pytest.raises(KeyError):
            del m[b"a"]

    def test_contains(self, m: MapRef) -> None:
        """`in` is True for present bytes keys, False for absent ones and non-bytes."""
        m[b"a"] = b"1"
        assert b"a" in m
        assert bytearray(b"a") in m
        assert b"b" not in m
        assert "a" not in m  # type: ignore[comparison-overlap]
        assert 1 not in m  # type: ignore[comparison-overlap]

    def test_iteration_in_insertion_order(self, m: MapRef) -> None:
        """Iteration and keys() list keys in insertion order."""
        for k in (b"c", b"a", b"b"):
            m[k] = k.upper()
        assert list(m) == [b"c", b"a", b"b"]
        assert list(m.keys()) == [b"c", b"a", b"b"]

    def test_items_values_and_dict(self, m: MapRef) -> None:
        """items(), values() and dict() see every entry."""
        m[b"x"] = b"1"
        m[b"y"] = b"2"
        assert list(m.items()) == [(b"x", b"1"), (b"y", b"2")]
        assert list(m.values()) == [b"1", b"2"]
        assert dict(m) == {b"x": b"1", b"y": b"2"}

    def test_update_pop_get_setdefault_clear(self, m: MapRef) -> None:
        """The MutableMapping mixins (update, pop, get, setdefault, popitem, clear) work."""
        m.update({b"a": b"1", b"b": b"2"})
        m.update([(b"z", b"9")])
        assert dict(m) == {b"a": b"1", b"b": b"2", b"z": b"9"}
        assert m.pop(b"a") == b"1"
        assert m.pop(b"a", b"default") == b"default"
        with pytest.raises(KeyError):
            m.pop(b"a")
        assert m.get(b"b") == b"2" and m.get(b"zz") is None
        assert m.setdefault(b"c", b"3") == b"3"
        assert m.setdefault(b"c", b"4") == b"3"
        assert m.popitem() == (b"b", b"2")
        m.clear()
        assert len(m) == 0 and list(m) == []

    def test_keys_and_values_must_be_bytes(self, m: MapRef) -> None:
        """Keys and values are bytes; str is a TypeError, bytearray is accepted."""
        with pytest.raises(TypeError):
            m["k"] = b"v"  # type: ignore[index]
        with pytest.raises(TypeError):
            m[b"k"] = "v"  # type: ignore[assignment]
        m[bytearray(b"k")] = bytearray(b"v")  # type: ignore[index,assignment]
        assert m[b"k"] == b"v"

    def test_identity_equality(self, broker: Broker, m: MapRef) -> None:
        """MapRefs compare by identity, not by content, and are hashable."""
        other = broker.new_map()
        assert m != other and m == m
        assert len({m, other}) == 2

    def test_size_limits(self, broker: Broker, m: MapRef) -> None:
        """A key over the broker's key_size limit is TooBigError."""
        with pytest.raises(TooBigError):
            m[b"k" * (broker.limits.key_size + 1)] = b"v"


class TestAbiMethods:
    @every_store
    def test_incr(self, m: MapRef) -> None:
        """incr adds to an 8-byte little-endian counter, starting from 0."""
        assert m.incr(b"n") == 1
        assert m.incr(b"n", 41) == 42
        assert m.incr(b"n", -50) == -8
        assert m[b"n"] == (-8).to_bytes(8, "little", signed=True)

    @every_store
    def test_incr_of_a_non_counter_is_type(self, m: MapRef) -> None:
        """incr on a value that is not 8 bytes is ValueTypeError (TYPE)."""
        m[b"s"] = b"abc"
        with pytest.raises(ValueTypeError):
            m.incr(b"s")

    @every_store
    def test_version(self, m: MapRef) -> None:
        """version is 0 when absent and grows on every write of the key."""
        assert m.version(b"k") == 0
        m[b"k"] = b"1"
        v1 = m.version(b"k")
        m[b"k"] = b"1"
        v2 = m.version(b"k")
        assert 0 < v1 < v2

    @every_store
    def test_set_if(self, m: MapRef) -> None:
        """set_if writes only when the version matches (0: absent), else ConflictError."""
        m.set_if(b"k", b"first", 0)
        with pytest.raises(ConflictError):
            m.set_if(b"k", b"again", 0)
        v = m.version(b"k")
        m.set_if(b"k", b"second", v)
        assert m[b"k"] == b"second"
        with pytest.raises(ConflictError):
            m.set_if(b"k", b"third", v)

    @every_store
    def test_get_many_and_set_many(self, m: MapRef) -> None:
        """set_many writes every item; get_many reads in order, None for absent."""
        m.set_many([(b"a", b"1"), (b"b", b"2"), (b"a", b"3")])
        assert m.get_many([b"a", b"zz", b"b"]) == [b"3", None, b"2"]
        assert m.get_many([]) == []

    def test_set_map_and_get_map(self, broker: Broker, m: MapRef) -> None:
        """set_map stores a reference that keeps the child alive; get_map reaches it."""
        child = broker.new_map()
        child[b"x"] = b"y"
        m.set_map(b"c", child)
        child.close()
        assert broker.stats()["maps"] == 2
        with m.get_map(b"c") as again:
            assert again[b"x"] == b"y"
        with pytest.raises(ValueTypeError):
            m[b"c"]
        del m[b"c"]
        assert broker.stats()["maps"] == 1

    def test_get_map_keeps_the_parents_rights(self, broker: Broker, m: MapRef) -> None:
        """get_map through a read-only MapRef gives a read-only MapRef."""
        m.set_map(b"c", broker.new_map())
        ro = m.clone("r")
        child = ro.get_map(b"c")
        with pytest.raises(AccessError):
            child[b"k"] = b"v"
        assert len(child) == 0

    @every_store
    def test_clone_with_rights(self, m: MapRef) -> None:
        """clone gives a second reference; "r" narrows to read-only, never widens."""
        m[b"k"] = b"v"
        ro = m.clone("r")
        assert ro[b"k"] == b"v"
        with pytest.raises(AccessError):
            ro[b"k"] = b"w"
        with pytest.raises(AccessError):
            ro.clone("rw")
        m.close()
        assert ro[b"k"] == b"v"  # the clone counts on its own


class TestLifetime:
    def test_close_is_idempotent(self, broker: Broker, m: MapRef) -> None:
        """close releases the map once; a second close does nothing."""
        m.close()
        m.close()
        assert broker.stats()["maps"] == 0
        assert m.closed

    def test_closed_mapref_is_stale(self, m: MapRef) -> None:
        """Every use of a closed MapRef raises StaleHandleError."""
        m.close()
        for use in (
            lambda: m[b"k"],
            lambda: m.__setitem__(b"k", b"v"),
            lambda: len(m),
            lambda: list(m),
            lambda: b"k" in m,
            lambda: m.incr(b"k"),
            lambda: m.clone(),
            lambda: m.handle,
        ):
            with pytest.raises(StaleHandleError):
                use()

    def test_with_closes(self, broker: Broker) -> None:
        """Leaving a `with` block closes the MapRef."""
        with broker.new_map() as m:
            m[b"k"] = b"v"
            assert broker.stats()["maps"] == 1
        assert broker.stats()["maps"] == 0
        assert m.closed

    def test_released_on_garbage_collection(self, broker: Broker) -> None:
        """A MapRef nobody references releases its map."""
        m = broker.new_map()
        m[b"k"] = b"v"
        assert broker.stats()["maps"] == 1
        del m
        gc.collect()
        assert broker.stats()["maps"] == 0

    def test_use_after_broker_close(self) -> None:
        """After the broker is closed a MapRef raises ConfigError; close does nothing."""
        b = Broker()
        m = b.new_map()
        b.close()
        with pytest.raises(ConfigError):
            m[b"k"] = b"v"
        m.close()


class TestBrokerMaps:
    def test_new_map_is_anonymous(self, broker: Broker) -> None:
        """new_map counts as an anonymous map."""
        m = broker.new_map()
        assert broker.stats() == {"maps": 1, "named": 0, "handles": {}}
        assert m.map_id > 0

    @every_store
    def test_open_creates_a_named_map(self, broker: Broker) -> None:
        """open creates a named map on first use; it outlives every MapRef."""
        with broker.open("cfg") as cfg:
            cfg[b"k"] = b"v"
        assert broker.stats() == {"maps": 0, "named": 1, "handles": {}}
        with broker.open("cfg") as again:
            assert again[b"k"] == b"v"

    @every_store
    def test_open_twice_is_one_map(self, broker: Broker) -> None:
        """Two opens of one name reach the same map."""
        a, b = broker.open("cfg"), broker.open("cfg")
        assert a.map_id == b.map_id
        a[b"k"] = b"v"
        assert b[b"k"] == b"v"

    @every_store
    def test_open_read_only(self, broker: Broker) -> None:
        """open(name, rights="r") reads but a write is AccessError."""
        broker.open("cfg")[b"k"] = b"v"
        ro = broker.open("cfg", rights="r")
        assert ro[b"k"] == b"v"
        with pytest.raises(AccessError):
            ro[b"k"] = b"w"
        with pytest.raises(AccessError):
            del ro[b"k"]
        assert ro[b"k"] == b"v"

    @every_store
    def test_open_bad_name(self, broker: Broker) -> None:
        """An empty map name is a ConfigError."""
        with pytest.raises(ConfigError):
            broker.open("")

    def test_stats_per_spec(self, broker: Broker) -> None:
        """stats() is {"maps": anonymous, "named": n, "handles": {module: n}}."""
        broker.load("callee", CALLEE)
        broker.call("callee.new")
        broker.call("callee.new")
        keep = [broker.new_map(), broker.new_map(), broker.new_map(), broker.open("a")]
        assert broker.stats() == {"maps": 5, "named": 1, "handles": {"callee": 2}}
        for ref in keep:
            ref.close()
        assert broker.stats() == {"maps": 2, "named": 1, "handles": {"callee": 2}}

    def test_host_handle_numbers_are_not_module_handles(self, broker: Broker) -> None:
        """A MapRef's handle number means nothing inside a module (BADF there)."""
        broker.load("callee", CALLEE)
        m = broker.new_map()
        assert broker.call("callee.count", m.handle) == -Errno.BADF
