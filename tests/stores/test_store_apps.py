"""Stores under apps: `wasi-map run` with a `[store]` table, threads on one store map,
an app's own store object, and store code running inside a guest's call.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from flaky_store import FlakyStore
from guest_driver import (
    NOENT,
    OK,
    RANGE,
    RW,
    Driver,
    driver_fixture,
)
from paths import GUESTS
from stores_fixtures import backing_stores, unique_name

from broker import Borrow, Broker, ConfigError
from broker.abi import Errno
from broker.cli import main
from broker.errors import StoreError

d = driver_fixture()
IO = Errno.IO


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
