"""ABI conformance: keys, the paged listing with a u64 cursor."""

from __future__ import annotations

import pytest
from guest_driver import (
    ACCES,
    BUF,
    CURSOR,
    OK,
    OUT,
    OUT2,
    RANGE,
    STALE,
    Driver,
    W,
    driver_fixture,
)
from stores_fixtures import every_store

d = driver_fixture()


def record(key: bytes) -> bytes:
    return len(key).to_bytes(4, "little") + key


def fill(d: Driver, h: int, keys: list[bytes]) -> None:
    for k in keys:
        assert d.set(h, k, b"v") == OK


class TestKeysPage:
    @every_store
    @pytest.mark.parametrize("cap", [0, 64])
    def test_empty_map(self, d: Driver, cap: int) -> None:
        """An empty map: OK, no keys, cursor 0, whatever the capacity."""
        assert d.keys(d.map(), 0, cap) == (OK, [], 0)

    @every_store
    def test_whole_map_in_one_page(self, d: Driver) -> None:
        """With room for all, one page lists every key in insertion order and ends with 0."""
        h = d.map()
        keys = [b"one", b"two", b"three", b"", b"\x00\xff"]
        fill(d, h, keys)
        assert d.keys(h, 0, 4096) == (OK, keys, 0)

    @every_store
    def test_exact_page_layout(self, d: Driver) -> None:
        """out_used bytes hold out_count records of u32 length + bytes, back to back."""
        h = d.map()
        fill(d, h, [b"ab", b"c"])
        d.put_u64(CURSOR, 0)
        d.poison(BUF, 32)
        assert d.call("keys", h, CURSOR, BUF, 32, OUT, OUT2) == OK
        assert (d.u32(OUT), d.u32(OUT2), d.u64(CURSOR)) == (11, 2, 0)
        assert d.read(BUF, 12) == record(b"ab") + record(b"c") + b"\xaa"

    @every_store
    def test_page_holds_whole_keys_only(self, d: Driver) -> None:
        """A page stops before the first key that does not fit whole."""
        h = d.map()
        fill(d, h, [b"aaaa", b"bbbb", b"cccc"])  # 8 bytes each as records
        err, page, cursor = d.keys(h, 0, 20)
        assert (err, page) == (OK, [b"aaaa", b"bbbb"])
        assert cursor != 0
        assert d.keys(h, cursor, 20) == (OK, [b"cccc"], 0)

    @every_store
    def test_exact_fit_page(self, d: Driver) -> None:
        """A capacity exactly the size of the records is enough."""
        h = d.map()
        fill(d, h, [b"aaaa", b"bbbb"])
        assert d.keys(h, 0, 16) == (OK, [b"aaaa", b"bbbb"], 0)

    @every_store
    def test_small_pages_list_everything_once(self, d: Driver) -> None:
        """Paging with a one-key buffer lists every key exactly once, in order."""
        h = d.map()
        keys = [b"k%03d" % i for i in range(40)]
        fill(d, h, keys)
        assert d.list_keys(h, cap=8) == keys

    @every_store
    def test_first_key_too_big_is_range(self, d: Driver) -> None:
        """When not even the first key fits: RANGE, 4 + its length in out_used, cursor kept."""
        h = d.map()
        fill(d, h, [b"x" * 10, b"y"])
        assert d.keys(h, 0, 13) == (RANGE, 14, 0)
        assert d.keys(h, 0, 0) == (RANGE, 14, 0)
        assert d.keys(h, 0, 14)[:2] == (OK, [b"x" * 10])

    @every_store
    def test_range_mid_listing_keeps_cursor(self, d: Driver) -> None:
        """A big key later in the listing: RANGE at its page, cursor unchanged, retry works."""
        h = d.map()
        fill(d, h, [b"a", b"b" * 100, b"c"])
        err, page, cursor = d.keys(h, 0, 10)
        assert (err, page) == (OK, [b"a"])
        assert d.keys(h, cursor, 10) == (RANGE, 104, cursor)
        err, page, nxt = d.keys(h, cursor, 104)
        assert (err, page) == (OK, [b"b" * 100]) and nxt != 0
        assert d.keys(h, nxt, 10) == (OK, [b"c"], 0)

    @every_store
    def test_range_writes_only_out_used(self, d: Driver) -> None:
        """On RANGE the buffer, out_count and the cursor are untouched."""
        h = d.map()
        fill(d, h, [b"long key"])
        d.put_u64(CURSOR, 0)
        d.poison(OUT, 16)
        d.poison(BUF, 8)
        assert d.call("keys", h, CURSOR, BUF, 8, OUT, OUT2) == RANGE
        assert d.u32(OUT) == 12
        assert d.untouched(OUT + 4, 4) and d.untouched(OUT2, 4) and d.untouched(BUF, 8)
        assert d.u64(CURSOR) == 0

    @every_store
    @pytest.mark.parametrize("cursor", [10**6, 2**63, 2**64 - 1])
    def test_cursor_past_the_end_is_done(self, d: Driver, cursor: int) -> None:
        """Any cursor value is accepted; one past the end lists nothing and is done."""
        h = d.map()
        fill(d, h, [b"a", b"b"])
        assert d.keys(h, cursor, 64) == (OK, [], 0)

    def test_map_references_are_listed(self, d: Driver) -> None:
        """Map-reference entries are listed like bytes entries."""
        h = d.new()
        d.set(h, b"a", b"1")
        assert d.set_map(h, b"m", d.new()) == OK
        assert d.list_keys(h) == [b"a", b"m"]

    @every_store
    def test_needs_read(self, d: Driver) -> None:
        """keys through a WRITE-only handle is ACCES."""
        _, wo = d.clone(d.map(), W)
        assert d.keys(wo, 0, 64) == (ACCES, None, 0)

    @every_store
    def test_stale_handle(self, d: Driver) -> None:
        """keys on a closed handle is STALE and writes nothing."""
        h = d.map()
        d.close(h)
        assert d.keys(h, 0, 64) == (STALE, None, 0)


@every_store
class TestKeysOrder:
    def test_overwrite_keeps_position(self, d: Driver) -> None:
        """Re-setting a key keeps its place in the listing."""
        h = d.map()
        fill(d, h, [b"a", b"b", b"c"])
        d.set(h, b"a", b"new")
        assert d.list_keys(h) == [b"a", b"b", b"c"]

    def test_delete_and_readd_moves_to_end(self, d: Driver) -> None:
        """A deleted and re-added key is a new insertion: it comes last."""
        h = d.map()
        fill(d, h, [b"a", b"b", b"c"])
        d.delete(h, b"a")
        d.set(h, b"a", b"again")
        assert d.list_keys(h) == [b"b", b"c", b"a"]


@every_store
class TestKeysDuringChanges:
    def test_inserts_during_listing(self, d: Driver) -> None:
        """Keys present throughout appear exactly once; keys added mid-listing come after."""
        h = d.map()
        original = [b"k%02d" % i for i in range(10)]
        fill(d, h, original)
        seen: list[bytes] = []
        err, page, cursor = d.keys(h, 0, 14)  # 2 keys a page
        seen += page
        fill(d, h, [b"new1", b"new2"])
        while cursor:
            err, page, cursor = d.keys(h, cursor, 14)
            assert err == OK
            seen += page
        assert seen == original + [b"new1", b"new2"]

    def test_deletes_during_listing(self, d: Driver) -> None:
        """Deleting the next key and a listed one mid-listing: no repeats, no skipped survivors."""
        h = d.map()
        original = [b"k%02d" % i for i in range(10)]
        fill(d, h, original)
        err, page, cursor = d.keys(h, 0, 21)  # 3 keys a page
        assert page == original[:3]
        d.delete(h, b"k03")  # the key the cursor points at
        d.delete(h, b"k00")  # already listed
        d.delete(h, b"k07")  # not yet listed
        rest: list[bytes] = []
        while cursor:
            err, page, cursor = d.keys(h, cursor, 21)
            rest += page
        assert rest == [k for k in original[4:] if k != b"k07"]

    def test_resize_during_listing(self, d: Driver) -> None:
        """Table growth and compaction between pages keep the cursor valid."""
        h = d.map()
        original = [b"o%03d" % i for i in range(20)]
        fill(d, h, original)
        seen: list[bytes] = []
        err, page, cursor = d.keys(h, 0, 24)  # 3 keys a page
        seen += page
        grown = [b"g%03d" % i for i in range(100)]  # forces the table to grow
        assert d.set_many(h, [(k, b"x") for k in grown]) == OK
        step = 0
        while cursor:
            # churn: add a batch of keys and delete it again (compaction on the next growth)
            items = [(b"t%02d%02d" % (step, i), b"x") for i in range(50)]
            assert d.set_many(h, items) == OK
            for k, _ in items:
                assert d.delete(h, k) == OK
            step += 1
            err, page, cursor = d.keys(h, cursor, 24)
            assert err == OK
            seen += page
        assert seen == original + grown

    def test_each_key_once_under_overwrites(self, d: Driver) -> None:
        """Overwriting keys between pages never lists a key twice."""
        h = d.map()
        keys = [b"k%02d" % i for i in range(12)]
        fill(d, h, keys)
        seen: list[bytes] = []
        cursor, first = 0, True
        while first or cursor:
            first = False
            err, page, cursor = d.keys(h, cursor, 10)
            seen += page
            for k in keys:
                d.set(h, k, b"overwritten")
        assert seen == keys
