"""ABI conformance: BADF and STALE everywhere, the order of checks, and no output unless OK."""

from __future__ import annotations

import pytest
from abi_table import CALLS, HANDLE_FUNCTIONS, KEYS, MKEY, State, prepared
from guest_driver import (
    ACCES,
    BADF,
    BUF,
    CURSOR,
    INVAL,
    KEY,
    NOENT,
    OK,
    OUT,
    OUT2,
    RANGE,
    RW,
    STALE,
    TOOBIG,
    TYPE,
    VAL,
    Driver,
    R,
    W,
)
from stores_fixtures import every_store

from broker import Broker

INDEX_BITS = 21
NEVER_ISSUED = (1 << INDEX_BITS) | 77  # generation 1 of a slot index never used

# Every out-pointer region a call may write: poisoned before, checked after.
OUT_REGIONS = [(OUT, 16), (BUF, 64), (CURSOR, 8)]


def poison_outputs(d: Driver) -> bytes:
    cursor = d.read(CURSOR, 8)
    d.poison(OUT, 16)
    d.poison(BUF, 64)
    return cursor


def outputs_untouched(d: Driver, cursor: bytes) -> bool:
    return d.untouched(OUT, 16) and d.untouched(BUF, 64) and d.read(CURSOR, 8) == cursor


def call_with_handle(s: State, fn: str, index: int, value: int) -> int:
    args = s.args(fn)
    args[index] = value
    cursor = poison_outputs(s.d)
    before = s.snapshot()
    err = s.d.call(fn, *args)
    assert outputs_untouched(s.d, cursor), f"{fn} wrote an output on errno {err}"
    assert s.snapshot() == before, f"{fn} changed the map on errno {err}"
    return int(err)


HANDLE_CASES = [(fn, i) for fn in HANDLE_FUNCTIONS for i in CALLS[fn].handle_args]


def handle_case_id(case: tuple[str, int]) -> str:
    fn, i = case
    return fn if i == 0 else f"{fn}-arg{i}"


class TestBadHandles:
    @pytest.mark.parametrize("case", HANDLE_CASES, ids=handle_case_id)
    @pytest.mark.parametrize("number", [0, NEVER_ISSUED, (5 << INDEX_BITS) | 0, 0xFFFFFFFF])
    def test_never_issued_is_badf(self, broker: Broker, case: tuple[str, int], number: int) -> None:
        """A handle number never issued to the module is BADF, with no output and no change."""
        fn, index = case
        s = prepared(broker)
        assert call_with_handle(s, fn, index, number) == BADF

    @pytest.mark.parametrize("case", HANDLE_CASES, ids=handle_case_id)
    def test_closed_is_stale(self, broker: Broker, case: tuple[str, int]) -> None:
        """A handle the module closed is STALE, with no output and no change."""
        fn, index = case
        s = prepared(broker)
        err, spare = s.d.clone(s.child if index else s.h, RW)
        assert err == OK and spare is not None
        assert s.d.close(spare) == OK
        assert call_with_handle(s, fn, index, spare) == STALE

    @pytest.mark.parametrize("case", HANDLE_CASES, ids=handle_case_id)
    def test_other_modules_handle_is_badf(self, broker: Broker, case: tuple[str, int]) -> None:
        """A handle issued to another module is BADF here (handles are per module)."""
        fn, index = case
        s = prepared(broker)
        other = Driver(broker, "b")
        for _ in range(5):
            theirs = other.new()
        assert call_with_handle(s, fn, index, theirs) == BADF


@every_store
class TestOpenInval:
    @pytest.mark.parametrize("rights", [4, 5, 8, 0x100, 0x80000000, 0xFFFFFFFF])
    def test_unknown_rights_bits(self, broker: Broker, rights: int) -> None:
        """open with any rights bit besides READ and WRITE is INVAL."""
        d = Driver(broker, grants={"cfg": "rw"})
        assert d.open(b"cfg", rights) == (INVAL, None)
        assert broker.stats()["named"] == 0

    def test_unknown_rights_before_access(self, broker: Broker) -> None:
        """INVAL (rights bits) comes before ACCES (name not granted)."""
        d = Driver(broker)
        assert d.open(b"not granted", 4) == (INVAL, None)

    @pytest.mark.parametrize(
        "name",
        [
            b"\xff",  # never valid in UTF-8
            b"cf\x80g",  # a stray continuation byte
            b"\xc0\x80",  # an overlong encoding of NUL
            b"\xe0\x80\xaf",  # an overlong 3-byte encoding
            b"\xed\xa0\x80",  # a UTF-16 surrogate
            b"\xf4\x90\x80\x80",  # above U+10FFFF
            b"\xe2\x82",  # a sequence cut short
            b"caf\xc3",  # cut short at the end
        ],
    )
    def test_name_not_utf8(self, broker: Broker, name: bytes) -> None:
        """A name that is not UTF-8 is INVAL (before the grant check)."""
        d = Driver(broker, grants={"cfg": "rw"})
        assert d.open(name, R) == (INVAL, None)

    def test_name_over_1024_bytes(self, broker: Broker) -> None:
        """A name of 1025 bytes is INVAL."""
        d = Driver(broker, grants={"x" * 1024: "rw"})
        assert d.open(b"x" * 1025, R) == (INVAL, None)

    def test_name_of_1024_bytes(self, broker: Broker) -> None:
        """A granted name of exactly 1024 bytes opens."""
        d = Driver(broker, grants={"x" * 1024: "rw"})
        assert d.open(b"x" * 1024, RW)[0] == OK


class TestOrderOfChecks:
    """docs/abi.md: FAULT, INVAL, BADF/STALE, ACCES, TOOBIG, then the operation's own."""

    def test_inval_before_badf_clone(self, broker: Broker) -> None:
        """clone with unknown rights on handle 0 is INVAL."""
        s = prepared(broker)
        assert s.d.call("clone", 0, 4, OUT) == INVAL

    @every_store
    def test_stale_before_access(self, broker: Broker) -> None:
        """A closed read-only handle used for a write is STALE, not ACCES."""
        s = prepared(broker)
        _, ro = s.d.clone(s.h, R)
        s.d.close(ro)
        assert s.d.set(ro, b"k", b"v") == STALE

    @every_store
    def test_access_before_noent(self, broker: Broker) -> None:
        """get of an absent key through a write-only handle is ACCES."""
        s = prepared(broker)
        _, wo = s.d.clone(s.h, W)
        assert s.d.get(wo, b"absent") == (ACCES, None)

    @every_store
    def test_access_before_type(self, broker: Broker) -> None:
        """get_map of a bytes entry through a write-only handle is ACCES."""
        s = prepared(broker)
        _, wo = s.d.clone(s.h, W)
        assert s.d.get_map(wo, b"k") == (ACCES, None)

    @every_store
    def test_set_map_child_stale_before_parent_access(self, broker: Broker) -> None:
        """set_map on a read-only parent with a closed child is STALE (step 3 before 4)."""
        s = prepared(broker)
        _, ro = s.d.clone(s.h, R)
        s.d.close(s.child)
        assert s.d.set_map(ro, b"m2", s.child) == STALE

    @every_store
    def test_set_map_child_badf_before_parent_access(self, broker: Broker) -> None:
        """set_map on a read-only parent with child 0 is BADF (step 3 before 4)."""
        s = prepared(broker)
        _, ro = s.d.clone(s.h, R)
        assert s.d.set_map(ro, b"m2", 0) == BADF

    @every_store
    def test_set_map_child_stale_before_toobig(self, broker: Broker) -> None:
        """set_map with an oversized key and a closed child is STALE (step 3 before 5)."""
        s = prepared(broker, limits={"key_size": 2})
        s.d.close(s.child)
        assert s.d.set_map(s.h, b"long key", s.child) == STALE

    @every_store
    def test_set_map_child_access_before_toobig(self, broker: Broker) -> None:
        """set_map with an oversized key and a read-only child is ACCES (step 4 before 5)."""
        s = prepared(broker, limits={"key_size": 2})
        _, ro_child = s.d.clone(s.child, R)
        assert s.d.set_map(s.h, b"long key", ro_child) == ACCES


class TestNothingWrittenUnlessOk:
    """Outputs are written only on OK (RANGE: the needed size only): docs/abi.md."""

    @pytest.mark.parametrize(
        "fn, key, errno",
        [
            ("get", b"absent", NOENT),
            ("get", b"m", TYPE),
            ("get_map", b"absent", NOENT),
            ("get_map", b"k", TYPE),
            ("incr", b"m", TYPE),
        ],
    )
    def test_operation_errors_write_nothing(
        self, broker: Broker, fn: str, key: bytes, errno: int
    ) -> None:
        """NOENT and TYPE leave every output byte as it was."""
        s = prepared(broker)
        s.d.put(KEY, key)
        args = s.args(fn)
        args[1], args[2] = KEY, len(key)
        cursor = poison_outputs(s.d)
        assert s.d.call(fn, *args) == errno
        assert outputs_untouched(s.d, cursor)

    @every_store
    @pytest.mark.parametrize(
        "fn", ["get", "exists", "len", "keys", "version", "get_many", "get_map"]
    )
    def test_access_errors_write_nothing(self, broker: Broker, fn: str) -> None:
        """ACCES (a write-only handle reading) leaves every output byte as it was."""
        s = prepared(broker)
        _, wo = s.d.clone(s.h, W)
        args = s.args(fn)
        args[0] = wo
        cursor = poison_outputs(s.d)
        assert s.d.call(fn, *args) == ACCES
        assert outputs_untouched(s.d, cursor)

    @every_store
    @pytest.mark.parametrize("fn", ["get", "exists", "incr", "version", "get_map"])
    def test_toobig_writes_nothing(self, broker: Broker, fn: str) -> None:
        """TOOBIG (an oversized key on a read) leaves every output byte as it was."""
        s = prepared(broker, limits={"key_size": 1})
        s.d.put(KEY, b"kk")
        args = s.args(fn)
        args[1], args[2] = KEY, 2
        cursor = poison_outputs(s.d)
        assert s.d.call(fn, *args) == TOOBIG
        assert outputs_untouched(s.d, cursor)

    @every_store
    def test_get_range_writes_only_out_len(self, broker: Broker) -> None:
        """get's RANGE writes the needed size to out_len and not one byte of the buffer."""
        s = prepared(broker)
        poison_outputs(s.d)
        assert s.d.call("get", s.h, KEY, 1, BUF, 7, OUT) == RANGE
        assert s.d.u32(OUT) == 8
        assert s.d.untouched(OUT + 4, 12) and s.d.untouched(BUF, 64)

    @every_store
    def test_get_many_range_writes_only_out_used(self, broker: Broker) -> None:
        """get_many's RANGE writes the total needed to out_used and nothing to the buffer."""
        s = prepared(broker)
        poison_outputs(s.d)
        args = s.args("get_many")
        args[4] = 11
        assert s.d.call("get_many", *args) == RANGE
        assert s.d.u32(OUT) == 12
        assert s.d.untouched(OUT + 4, 12) and s.d.untouched(BUF, 64)

    @every_store
    def test_keys_range_writes_only_out_used(self, broker: Broker) -> None:
        """keys' RANGE writes the first key's size to out_used; count and cursor untouched."""
        s = prepared(broker)
        cursor = poison_outputs(s.d)
        assert s.d.call("keys", s.h, CURSOR, BUF, 4, OUT, OUT2) == RANGE
        assert s.d.u32(OUT) == 5
        assert s.d.untouched(OUT2, 4) and s.d.untouched(BUF, 64)
        assert s.d.read(CURSOR, 8) == cursor

    @every_store
    def test_inval_writes_nothing(self, broker: Broker) -> None:
        """INVAL (a malformed get_many key list) leaves every output byte as it was."""
        s = prepared(broker)
        s.d.put(VAL, b"\x07\x00\x00\x00k")
        cursor = poison_outputs(s.d)
        assert s.d.call("get_many", s.h, VAL, 5, BUF, 64, OUT) == INVAL
        assert outputs_untouched(s.d, cursor)
        assert s.d.read(KEYS, 4) != b"\xaa" * 4  # inputs were left alone too
        assert s.d.read(MKEY, 1) == b"m"
