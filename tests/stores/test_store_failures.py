"""A store that fails is reachable: what failed, where and why, for the host and in traps."""

from __future__ import annotations

import threading

import pytest
from flaky_store import FlakyStore

from broker import Broker, Errno, GuestTrap, ModuleError
from broker._native.failures import left_on_thread
from broker.errors import StoreError, StoreFailure

# put(): set "k" = "v" in map "m"; the errno.  put_or_trap(): the same, trapping on
# an errno.  boom(): a trap that has nothing to do with the store.
GUEST = b"""
(module
  (import "wasi_map" "open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "mkv")
  (func $put (export "put") (result i32)
    (local $err i32)
    (local.set $err (call $open (i32.const 0) (i32.const 1) (i32.const 3) (i32.const 16)))
    (if (local.get $err) (then (return (local.get $err))))
    (call $set (i32.load (i32.const 16)) (i32.const 1) (i32.const 1) (i32.const 2) (i32.const 1)))
  (func (export "put_or_trap")
    (if (call $put) (then unreachable)))
  (func (export "boom") unreachable))
"""

STARTS_WITH_A_PUT = GUEST.replace(
    b'(func (export "boom") unreachable)', b"(start $trap_on_io)"
).replace(b"(func $put", b"(func $trap_on_io (if (call $put) (then unreachable)))\n  (func $put")
# A start function that puts and handles the IO itself (it does not trap).
STARTS_WITH_A_HANDLED_PUT = GUEST.replace(
    b'(func (export "boom") unreachable)', b"(start $put_and_go_on)"
).replace(b"(func $put", b"(func $put_and_go_on (drop (call $put)))\n  (func $put")


@pytest.fixture
def flaky() -> FlakyStore:
    store = FlakyStore()
    store.fail = StoreError("flaky: the disk is gone")
    return store


class TestHostOperations:
    def test_error_and_record(self, flaky: FlakyStore) -> None:
        """A host operation raises a StoreError caused by the store's; the broker keeps
        which operation, map and caller it was."""
        with Broker(store=flaky) as broker:
            assert broker.last_store_failure is None
            with broker.open("m") as ref, pytest.raises(StoreError) as info:
                ref[b"k"] = b"v"
            failure = broker.last_store_failure
        assert str(info.value) == "IO: set b'k': flaky: the disk is gone"
        assert isinstance(failure, StoreFailure)
        assert info.value.__cause__ is failure.error
        assert (failure.url, failure.map, failure.op, failure.module, failure.count) == (
            "flaky:",
            "m",
            "set",
            "host",
            1,
        )
        assert str(failure) == "set on map 'm' from host: flaky: the disk is gone"

    def test_taken_once(self, flaky: FlakyStore) -> None:
        """The host's error takes the thread's failure: nothing is left to blame later."""
        with Broker(store=flaky) as broker, broker.open("m") as ref:
            with pytest.raises(StoreError):
                ref[b"k"]
            assert left_on_thread() is None
            assert broker.last_store_failure is not None  # the broker's record stays

    def test_counted(self, flaky: FlakyStore) -> None:
        """Failures are counted across threads; the last one is kept."""
        with Broker(store=flaky) as broker, broker.open("m") as ref:

            def fail() -> None:
                with pytest.raises(StoreError):
                    ref[b"k"]

            threads = [threading.Thread(target=fail) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            fail()
            failure = broker.last_store_failure
            assert failure is not None and failure.count == 5 and failure.op == "get"

    def test_a_bug_in_the_store(self, flaky: FlakyStore) -> None:
        """An exception that is not a StoreError is recorded as an internal error,
        with the exception as its cause."""
        bug = RuntimeError("a bug in the store")
        flaky.fail = bug
        with Broker(store=flaky) as broker, broker.open("m") as ref:
            with pytest.raises(StoreError, match="internal error in the store"):
                ref[b"k"] = b"v"
            failure = broker.last_store_failure
        assert failure is not None and failure.error.__cause__ is bug
        assert failure.message == "flaky:: internal error in the store: " + repr(bug)

    def test_memory_has_none(self) -> None:
        """Without a store nothing can fail."""
        with Broker() as broker:
            assert broker.last_store_failure is None


class TestGuests:
    def test_trap_after_io_says_why(self, flaky: FlakyStore) -> None:
        """A guest that got IO and trapped: the trap says what the store said, and
        the store's error is its cause."""
        with Broker(store=flaky) as broker:
            broker.load("app", GUEST, grants={"m": "rw"})
            with pytest.raises(GuestTrap) as info:
                broker.call("app.put_or_trap")
        trap = info.value
        assert str(trap) == (
            "app.put_or_trap: guest trapped: wasm `unreachable` instruction executed "
            "(the store failed during the call: set on map 'm' from app: flaky: the disk is gone)"
        )
        assert trap.reason == "wasm `unreachable` instruction executed"
        assert trap.store_failure is not None and trap.__cause__ is trap.store_failure.error

    def test_io_returned_is_recorded(self, flaky: FlakyStore) -> None:
        """A guest that handles the IO itself: the broker still knows why, and a later
        trap of another call is not blamed on it."""
        with Broker(store=flaky) as broker:
            broker.load("app", GUEST, grants={"m": "rw"})
            assert broker.call("app.put") == Errno.IO
            failure = broker.last_store_failure
            assert failure is not None and (failure.module, failure.op) == ("app", "set")
            broker.load("other", GUEST)
            with pytest.raises(GuestTrap) as info:
                broker.call("other.boom")
        assert info.value.store_failure is None and info.value.__cause__ is None
        assert (
            str(info.value) == "other.boom: guest trapped: wasm `unreachable` instruction executed"
        )

    def test_start_that_traps_after_io(self, flaky: FlakyStore) -> None:
        """A start function that got IO and trapped: the load's error says why."""
        with Broker(store=flaky) as broker:
            with pytest.raises(ModuleError) as info:
                broker.load("app", STARTS_WITH_A_PUT, grants={"m": "rw"})
            assert broker.modules() == []
        assert str(info.value).endswith(
            "(the store failed during the start: set on map 'm' from app: flaky: the disk is gone)"
        )
        assert isinstance(info.value.__cause__, StoreError)

    def test_refused_login_on_redis(self, redis_url: str) -> None:
        """A real server that refuses the login: the guest's trap says so, password hidden."""
        url = redis_url.replace("redis://", "redis://nobody:s3cr3t@")
        with Broker(store=url) as broker:
            broker.load("app", GUEST, grants={"m": "rw"})
            with pytest.raises(GuestTrap) as info:
                broker.call("app.put_or_trap")
            failure = broker.last_store_failure
        assert failure is not None and failure.url == url.replace("s3cr3t", "***")
        assert "s3cr3t" not in str(info.value)
        assert f"from app: {failure.url}: " in str(info.value)
        assert "WRONGPASS" in str(info.value) or "invalid" in str(info.value)


class TestNothingLeftOnTheThread:
    """Every entry into C takes the store's failure it met: none waits on the thread."""

    def test_after_a_call_that_handled_io(self, flaky: FlakyStore) -> None:
        """A guest call that got IO and returned it: nothing left, and a later
        trap of another call has neither the failure nor its cause."""
        with Broker(store=flaky) as broker:
            broker.load("app", GUEST, grants={"m": "rw"})
            broker.load("other", GUEST)
            assert broker.call("app.put") == Errno.IO
            assert left_on_thread() is None
            with pytest.raises(GuestTrap) as info:
                broker.call("other.boom")
            assert left_on_thread() is None
            assert broker.last_store_failure is not None  # the broker's record stays
        assert info.value.store_failure is None and info.value.__cause__ is None

    def test_after_a_start_that_handled_io(self, flaky: FlakyStore) -> None:
        """A start function that got IO and went on: the load succeeds, nothing left."""
        with Broker(store=flaky) as broker:
            broker.load("app", STARTS_WITH_A_HANDLED_PUT, grants={"m": "rw"})
            assert left_on_thread() is None
            failure = broker.last_store_failure
            assert failure is not None and (failure.module, failure.op) == ("app", "set")

    def test_after_a_host_operation_that_raised(self, flaky: FlakyStore) -> None:
        """A MapRef operation that raised a StoreError: nothing left, and a later
        trap has neither the failure nor its cause."""
        with Broker(store=flaky) as broker, broker.open("m") as ref:
            broker.load("other", GUEST)
            with pytest.raises(StoreError) as raised:
                ref.get_many([b"a", b"b"])
            assert left_on_thread() is None
            with pytest.raises(GuestTrap) as info:
                broker.call("other.boom")
        assert raised.value.__cause__ is not None
        assert info.value.store_failure is None and info.value.__cause__ is None

    def test_after_a_trap_that_took_it(self, flaky: FlakyStore) -> None:
        """A trap after IO carries the failure; the thread keeps nothing of it."""
        with Broker(store=flaky) as broker:
            broker.load("app", GUEST, grants={"m": "rw"})
            with pytest.raises(GuestTrap) as info:
                broker.call("app.put_or_trap")
            assert left_on_thread() is None
        assert info.value.store_failure is not None

    def test_after_a_start_that_trapped(self, flaky: FlakyStore) -> None:
        """A start function that trapped after IO: its error has the cause, nothing left."""
        with Broker(store=flaky) as broker, pytest.raises(ModuleError) as info:
            broker.load("app", STARTS_WITH_A_PUT, grants={"m": "rw"})
        assert isinstance(info.value.__cause__, StoreError)
        assert left_on_thread() is None
