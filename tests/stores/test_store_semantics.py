"""What a backing store (sqlite, Redis) means for the ABI: bytes only, versions, keys, persistence.

docs/stores.md, "What differs from memory": a store-backed named map holds
bytes only (set_map TYPE, get_map TYPE/NOENT), versions come from a clock
per map, and named maps outlive the broker.  Everything else must be what
memory does; tests that hold for memory too run on it as well.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from flaky_store import FlakyStore
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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paths import GUESTS
from stores_fixtures import backing_stores, every_store, store_map, unique_name

from broker import Borrow, Broker, ConfigError
from broker._native import MAP_COST
from broker.abi import Errno
from broker.cli import main
from broker.errors import ErrnoError, NotFoundError, StoreError, TooBigError, ValueTypeError

d = driver_fixture()
IO = Errno.IO

MIB = 1 << 20
PAGE = 65536


def le64(v: int) -> bytes:
    return (v & (2**64 - 1)).to_bytes(8, "little")


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


# --- keys: a key present for the whole listing appears exactly once ----------

#: What happens between two pages: (what, which key, fresh bytes), a few times.
changes = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "overwrite"]),
        st.integers(0, 63),
        st.binary(max_size=5),
    ),
    max_size=4,
)


class TestKeysCursor:
    """The keys cursor while the map changes between pages."""

    @every_store
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        stable=st.lists(st.binary(max_size=6), unique=True, max_size=12),
        volatile=st.lists(st.binary(min_size=7, max_size=8), unique=True, max_size=8),
        cap=st.integers(12, 40),
        between=st.lists(changes, max_size=30),
    )
    def test_key_present_throughout_appears_once(
        self,
        broker: Broker,
        stable: list[bytes],
        volatile: list[bytes],
        cap: int,
        between: list[list[tuple[str, int, bytes]]],
    ) -> None:
        """Keys never deleted appear exactly once while others come and go between pages."""
        host = broker.host
        h = host.op_new() if broker.store is None else host.op_open(unique_name().encode(), RW)
        # stable and volatile keys interleaved, so deletes land before and after the cursor
        for key in sorted(stable + volatile):
            host.op_set(h, key, b"v")
        deletable = list(volatile)
        ever = set(stable) | set(volatile)
        listed: list[bytes] = []
        cursor, pages = 0, 0
        while True:
            page, cursor = host.op_keys_page(h, cursor, cap)  # keys of <= 8 bytes always fit
            listed += page
            if cursor == 0:
                break
            for what, which, fresh in between[pages] if pages < len(between) else []:
                if what == "insert":
                    key = b"new" + fresh
                    host.op_set(h, key, b"inserted")
                    if key not in stable:
                        deletable.append(key)
                    ever.add(key)
                elif what == "delete" and deletable:
                    host.op_delete(h, deletable[which % len(deletable)])
                elif what == "overwrite" and stable + deletable:
                    pool = stable + deletable  # a deleted key comes back as a new insertion
                    host.op_set(h, pool[which % len(pool)], b"overwritten")
            pages += 1
            assert pages < 1000, "the listing does not end"
        for key in stable:
            assert listed.count(key) == 1, f"{key!r} listed {listed.count(key)} times"
        assert set(listed) <= ever
        host.op_close(h)


# --- a store answers as memory does ---------------------------------------------

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
KEYS = [b"", b"a", b"b", b"\x00", b"key " * 8]
some_keys = st.sampled_from(KEYS)
some_values = st.one_of(
    st.binary(max_size=12), st.integers(I64_MIN, I64_MAX).map(le64), st.just(le64(I64_MAX))
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("set"), some_keys, some_values),
        st.tuples(st.just("delete"), some_keys),
        st.tuples(st.just("get"), some_keys),
        st.tuples(st.just("exists"), some_keys),
        st.tuples(st.just("len")),
        st.tuples(st.just("incr"), some_keys, st.sampled_from([0, 1, -1, I64_MAX, I64_MIN])),
        st.tuples(st.just("version"), some_keys),
        st.tuples(
            st.just("set_if"),
            some_keys,
            some_values,
            st.sampled_from(["absent", "current", "earlier", "never"]),
        ),
        st.tuples(st.just("get_many"), st.lists(some_keys, max_size=5)),
        st.tuples(st.just("set_many"), st.lists(st.tuples(some_keys, some_values), max_size=4)),
        st.tuples(st.just("page"), st.integers(0, 40)),
    ),
    max_size=40,
)


class Side:
    """One map under test, and what the comparison needs to remember about it."""

    def __init__(self, broker: Broker) -> None:
        self.host = broker.host
        self.h = self.host.op_open(unique_name().encode(), RW)
        self.cursor = 0  # of the listing in progress
        self.seen: dict[bytes, list[int]] = {}  # versions read, per key
        self.order: dict[int, int] = {0: 0}  # version -> the order it was first seen in

    def version(self, key: bytes) -> int:
        v = self.host.op_version(self.h, key)
        self.seen.setdefault(key, []).append(v)
        return self.order.setdefault(v, len(self.order))

    def expected(self, key: bytes, which: str) -> int:
        if which == "current":
            self.version(key)
            return self.seen[key][-1]
        if which == "earlier" and self.seen.get(key):
            return self.seen[key][0]
        return 0 if which == "absent" else I64_MAX

    def state(self) -> list[tuple[bytes | None, int]]:
        """Per key of KEYS: its value (None: absent) and version (in the order first seen)."""
        values = self.host.op_get_many(self.h, KEYS)
        return [(value, self.version(k)) for k, value in zip(KEYS, values, strict=True)]

    def do(self, op: tuple[Any, ...]) -> Any:
        """The outcome of `op`: its result, or the errno it raised."""
        host, h = self.host, self.h
        what, *args = op
        try:
            if what == "page":
                page, self.cursor = host.op_keys_page(h, self.cursor, args[0])
                return page, self.cursor == 0
            if what == "version":
                return self.version(args[0])
            if what == "set_if":
                key, value, which = args
                return host.op_set_if(h, key, value, self.expected(key, which))
            return getattr(host, f"op_{what}")(h, *args)
        except ErrnoError as exc:
            return exc.errno


class TestSameAnswersAsMemory:
    """A backing store against memory, operation by operation."""

    @backing_stores
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(ops=operations)
    def test_random_operations(self, broker: Broker, ops: list[tuple[Any, ...]]) -> None:
        """Any sequence of operations answers on a store exactly as on memory.

        After each one every key's value and version are compared too.
        Versions differ in value (a clock per broker against one per map), so
        they are compared by the order in which they were first seen."""
        with Broker() as memory:
            mine, theirs = Side(memory), Side(broker)
            for i, op in enumerate(ops):
                assert theirs.do(op) == mine.do(op), f"operation {i}: {op}"
                assert theirs.state() == mine.state(), f"after operation {i}: {op}"
            everything = ("get_many", mine.host.op_keys(mine.h))
            assert theirs.do(everything) == mine.do(everything)
            assert theirs.do(("len",)) == mine.do(("len",))


# --- wasi-map run with a persistent store --------------------------------------


def counter_app(where: Path, url: str | int) -> Path:
    """An app of one module (store_counter.wat) granted the map "counter", on store `url`."""
    where.mkdir(parents=True, exist_ok=True)
    shutil.copy(GUESTS / "store_counter.wat", where / "counter.wat")
    manifest = where / "app.toml"
    value = f'"{url}"' if isinstance(url, str) else str(url)
    manifest.write_text(
        f"[store]\nurl = {value}\n\n"
        '[modules.counter]\npath = "counter.wat"\ngrants = { counter = "rw" }\n'
    )
    return manifest


class TestRunWithStore:
    """`wasi-map run` with a `[store]` table in the manifest."""

    def test_sqlite_counter_persists_between_runs(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """`wasi-map run` twice on a sqlite store: 1, then 2; the file sits beside the manifest."""
        app = counter_app(tmp_path / "app", "sqlite:data.db")
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)  # a relative sqlite path is relative to the manifest
        assert main(["run", str(app), "--call", "counter.main"]) == 0
        assert capsys.readouterr().out == "1\n"
        assert main(["run", str(app), "--call", "counter.main"]) == 0
        assert capsys.readouterr().out == "2\n"
        assert (tmp_path / "app" / "data.db").is_file()
        assert list(elsewhere.iterdir()) == []

    def test_memory_counter_starts_again(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The same app on memory: every run starts from nothing."""
        app = counter_app(tmp_path, "memory:")
        for _ in range(2):
            assert main(["run", str(app), "--call", "counter.main"]) == 0
            assert capsys.readouterr().out == "1\n"

    @backing_stores
    def test_counter_on_every_backing_store(
        self, store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The app runs unchanged on sqlite and Redis; the count survives the broker."""
        app = counter_app(tmp_path / "app", store_url)
        for expected in ("1\n", "2\n", "3\n"):
            assert main(["run", str(app), "--call", "counter.main"]) == 0
            assert capsys.readouterr().out == expected

    @pytest.mark.parametrize(
        "url, problem",
        [
            ("postgres://db/1", "store.url: must start with one of"),
            ("sqlite:", "store.url: names no file"),
            ("memory:x", "store.url: the memory store takes no argument"),
            (5, "store.url: must be a string"),
        ],
    )
    def test_bad_store_url_exits_2(
        self,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        url: str | int,
        problem: str,
    ) -> None:
        """A bad store URL: exit 2, one line naming the manifest and the problem."""
        app = counter_app(tmp_path, url)
        assert main(["run", str(app), "--call", "counter.main"]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.count("\n") == 1
        assert f"{app}: {problem}" in captured.err

    def test_unusable_sqlite_file_exits_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An sqlite path in a missing directory: exit 2, one line naming the file."""
        app = counter_app(tmp_path, "sqlite:no/such/dir/data.db")
        assert main(["run", str(app), "--call", "counter.main"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert str(tmp_path / "no" / "such" / "dir" / "data.db") in err


class TestThreads:
    """Guests and host code in several threads on one store map: the store call is made
    without the C lock and with the GIL taken back, so nothing deadlocks or is lost."""

    @backing_stores
    def test_host_threads_and_a_guest_add_up(self, broker: Broker, guests: Path) -> None:
        name = unique_name()
        broker.load("w", guests / "worker.wat", grants={"tally": "rw"})
        refs = [broker.open("tally") for _ in range(4)]
        errors: list[BaseException] = []

        def host(ref: Any) -> None:
            try:
                for _ in range(150):
                    ref.incr(b"hits", 1)
                    ref[name.encode()] = b"x"
                    assert len(ref) >= 1
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=host, args=(ref,)) for ref in refs]
        for t in threads:
            t.start()
        guest_total = broker.call("w.run", 300)  # the guest adds 300 meanwhile
        for t in threads:
            t.join(timeout=60)
        assert not errors and not any(t.is_alive() for t in threads)
        assert guest_total == 300 * 299 // 2
        assert refs[0].incr(b"hits", 0) == 4 * 150 + 300


class TestOwnStore:
    """Broker(store=Store instance): the app's own store behind the same ABI."""

    def test_an_own_store_answers_and_fails_as_io(self, caplog: pytest.LogCaptureFixture) -> None:
        store = FlakyStore()
        with Broker(store=store) as broker:
            assert broker.store is store and broker.store_url == "flaky:"
            d = Driver(broker, grants={"m": "rw"})
            _, h = d.open(b"m", RW)
            assert h is not None
            assert d.set(h, b"k", b"v") == OK and store.data == {b"k": b"v"}
            assert d.get(h, b"k") == (OK, b"v")
            store.fail = StoreError("flaky: the disk is gone")
            assert d.get(h, b"k") == (IO, None)
            with pytest.raises(StoreError, match="the disk is gone"):
                broker.open("m")[b"k"]
            store.fail = RuntimeError("a bug in the store")  # not a StoreError: IO, logged
            assert d.set(h, b"k", b"w") == IO
            assert "store call failed" in caplog.text and "a bug in the store" in caplog.text
            with pytest.raises(StoreError, match="internal error in the store"):
                broker.open("m")[b"k"] = b"x"
            store.fail = None
            assert d.get(h, b"k") == (OK, b"v")  # nothing was written by the failed calls
            assert d.call("incr", h, 0x1000, 1, 1, 0x100) == IO  # NotImplementedError: IO

    def test_answers_that_do_not_fit_write_nothing(self) -> None:
        """A value longer than the guest's buffer is RANGE with its size, and not a byte
        of guest memory is written (the capacity is checked in C before any write)."""
        store = FlakyStore()
        with Broker(store=store) as broker:
            d = Driver(broker, grants={"m": "rw"})
            _, h = d.open(b"m", RW)
            assert h is not None
            store.data[b"big"] = b"x" * 100
            assert d.get(h, b"big", cap=8) == (RANGE, 100)  # the driver checks the buffer
            assert d.get(h, b"big", cap=100) == (OK, b"x" * 100)


class HookStore(FlakyStore):
    """A store that runs app code inside each get (inside the guest's ABI call)."""

    url = "hook:"

    def __init__(self) -> None:
        super().__init__()
        self.hook: Any = None
        self.raised: list[BaseException] = []

    def get(self, name: str, key: bytes) -> bytes | None:
        if self.hook is not None:
            try:
                self.hook()
            except BaseException as exc:  # kept for the test
                self.raised.append(exc)
        return super().get(name, key)


# go(): open "shared", then one get on it (the store's hook runs inside it);
# returns get's errno, or $seen: 1 if a drop notice arrived during go.
HOOKED = b"""
(module
 (import "wasi_map" "open" (func $open (param i32 i32 i32 i32) (result i32)))
 (import "wasi_map" "get" (func $get (param i32 i32 i32 i32 i32 i32) (result i32)))
 (import "wasi_map" "watch_drop" (func $w (param i32 i64) (result i32)))
 (memory (export "memory") 1)
 (data (i32.const 16) "shared")
 (global $in_go (mut i32) (i32.const 0))
 (global $seen (mut i32) (i32.const 0))
 (func (export "watch") (param i32) (result i32) (call $w (local.get 0) (i64.const 1)))
 (func (export "go") (result i32)
   (local $e i32)
   (global.set $in_go (i32.const 1))
   (drop (call $open (i32.const 16) (i32.const 6) (i32.const 3) (i32.const 0)))
   (local.set $e (call $get (i32.load (i32.const 0)) (i32.const 16) (i32.const 1)
                           (i32.const 100) (i32.const 100) (i32.const 4)))
   (global.set $in_go (i32.const 0))
   (i32.add (local.get $e) (i32.mul (global.get $seen) (i32.const 100))))
 (func (export "ok") (result i32) (i32.const 5))
 (func (export "wasi_map_on_drop") (param i64) (global.set $seen (global.get $in_go))))
"""


class TestCodeInsideAGuestCall:
    """A store (or any callback) runs on the guest's thread, inside its call: it must not
    free what the guest is running on (before: a crash writing into unmapped memory)."""

    def test_unload_load_and_close_are_refused(self) -> None:
        store = HookStore()
        store.data[b"s"] = b"v"
        with Broker(store=store) as broker:
            broker.load("m", HOOKED, grants={"shared": "rw"})
            for hook in (
                lambda: broker.unload("m"),
                lambda: broker.close(),
                lambda: broker.load("x", b"(module)"),
            ):
                store.hook = hook
                assert broker.call("m.go") == OK  # the get itself went on
                assert isinstance(store.raised.pop(), ConfigError)
            store.hook = lambda: broker.call("m.ok")  # a nested call is fine
            assert broker.call("m.go") == OK and store.raised == []
            store.hook = None
            assert broker.modules() == ["m"] and not broker.closed
            broker.unload("m")  # afterwards, as usual

    def test_notices_wait_for_the_call_to_end(self) -> None:
        """A MapRef closed inside the guest's call: its drop notice comes after the call."""
        store = HookStore()
        with Broker(store=store) as broker:
            broker.load(
                "m", HOOKED, grants={"shared": "rw"}, exports={"watch": {"params": ["borrow"]}}
            )
            ref = broker.new_map()
            assert broker.call("m.watch", Borrow(ref)) == 0
            store.hook = ref.close
            assert broker.call("m.go") == NOENT  # $seen stayed 0: not inside go
            assert store.raised == []
            assert broker._modules["m"].torn_down is None
