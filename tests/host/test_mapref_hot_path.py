"""MapRef's hot path in C (native/hostmap.c): the same answers as the Python way.

`m[k]`, `m[k] = v`, `k in m` and `len(m)` answer the common case in C and
hand every other case back to MapRef's Python methods.  These tests drive
both ways and the edges between them: a value exactly the size of the
stack buffer, a value growing under a read, keys and values that are not
`bytes`, a closed, moved or read-only MapRef, finalized MapRefs' handles
waiting, a closed or forked broker, a failing store, a stale build, and
threads.
"""

from __future__ import annotations

import gc
import os
import re
import threading
import weakref
from collections.abc import Callable

import pytest
from flaky_store import FlakyStore
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from broker import AccessError, Broker, ConfigError, Errno, MapRef, StaleHandleError
from broker._native import MapCore, hostmap_door
from broker._native.failures import left_on_thread, record
from broker.errors import BadHandleError, NotFoundError, StaleCoreError, StoreError, StoreFailure

STACK_VALUE = 512  # native/hostmap.c: values up to this size are read into the stack

KEYS = st.sampled_from([b"", b"a", b"b", b"k" * 300])
SIZES = st.sampled_from([0, 1, STACK_VALUE - 1, STACK_VALUE, STACK_VALUE + 1, 70_000])
BYTES_LIKE = st.sampled_from([bytes, bytearray, memoryview])


def each_operation(m: MapRef) -> list[Callable[[], object]]:
    """`m[k]`, `m[k] = v`, `k in m` and `len(m)`, each as a call."""
    return [lambda: m[b"k"], lambda: m.__setitem__(b"k", b"v"), lambda: b"k" in m, lambda: len(m)]


class MapRefBesideADict(RuleBasedStateMachine):
    """A MapRef and a dict, driven side by side through both ways in."""

    def __init__(self) -> None:
        super().__init__()
        self.broker = Broker()
        self.ref = self.broker.new_map()
        self.model: dict[bytes, bytes] = {}
        self.serial = 0

    def teardown(self) -> None:
        self.broker.close()

    @rule(key=KEYS, size=SIZES, kind=BYTES_LIKE, key_kind=BYTES_LIKE)
    def set(self, key: bytes, size: int, kind: type, key_kind: type) -> None:
        self.serial += 1
        value = (b"%d:" % self.serial + b"v" * size)[: max(size, 1)]
        if key_kind is memoryview:  # keys are bytes or bytearray
            with pytest.raises(TypeError):
                self.ref[memoryview(key)] = value  # type: ignore[index]
            return
        self.ref[key_kind(key)] = kind(value)
        self.model[key] = value

    @rule(key=KEYS, as_bytearray=st.booleans())
    def get(self, key: bytes, as_bytearray: bool) -> None:
        asked = bytearray(key) if as_bytearray else key
        if key in self.model:
            assert self.ref[asked] == self.model[key]  # type: ignore[index]
        else:
            with pytest.raises(NotFoundError):
                self.ref[asked]  # type: ignore[index]

    @rule(key=KEYS)
    def delete(self, key: bytes) -> None:
        if key in self.model:
            del self.ref[key]
            del self.model[key]
        else:
            with pytest.raises(KeyError):
                del self.ref[key]

    @rule(key=KEYS, kind=st.sampled_from([bytes, bytearray, str]))
    def contains(self, key: bytes, kind: type) -> None:
        asked = key.decode() if kind is str else kind(key)
        assert (asked in self.ref) == (kind is not str and key in self.model)

    @precondition(lambda self: self.model)
    @rule()
    def read_only_clone(self) -> None:
        """A read-only MapRef reads by the hot path and is refused a write."""
        key = next(iter(self.model))
        with self.ref.clone("r") as view:
            assert view[key] == self.model[key] and len(view) == len(self.model)
            with pytest.raises(AccessError):
                view[key] = b"no"

    @invariant()
    def same_length(self) -> None:
        assert len(self.ref) == len(self.model)


TestMapRefBesideADict = MapRefBesideADict.TestCase
TestMapRefBesideADict.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)


class TestEdges:
    def test_values_around_the_stack_buffer(self, broker: Broker) -> None:
        """Values of the stack buffer's size, one byte either side, and far bigger."""
        with broker.new_map() as m:
            for size in (0, STACK_VALUE - 1, STACK_VALUE, STACK_VALUE + 1, 1 << 20):
                value = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
                m[b"k"] = value
                assert m[b"k"] == value

    def test_a_value_that_changes_size_under_reads(self, broker: Broker) -> None:
        """A read racing a writer that grows and shrinks the value returns one
        whole value, never a mix or a torn length."""
        values = [b"s" * 10, b"m" * (STACK_VALUE + 7), b"L" * 50_000, b""]
        m = broker.new_map()
        m[b"k"] = values[0]
        stop = threading.Event()

        def writer() -> None:
            i = 0
            while not stop.is_set():
                m[b"k"] = values[i % len(values)]
                i += 1

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            seen = {m[b"k"] for _ in range(20_000)}
        finally:
            stop.set()
            thread.join()
        assert seen <= set(values)

    def test_keys_and_values_must_be_bytes(self, broker: Broker) -> None:
        """The hot path takes exactly `bytes`; the rest is converted or refused as before."""
        m = broker.new_map()
        with pytest.raises(TypeError, match="keys are bytes, not str"):
            m["k"] = b"v"  # type: ignore[index]
        with pytest.raises(TypeError, match="values are bytes, not int"):
            m[b"k"] = 5  # type: ignore[assignment]
        with pytest.raises(TypeError, match="keys are bytes, not int"):
            m[5]  # type: ignore[index]
        assert 5 not in m and len(m) == 0

    def test_closed(self, broker: Broker) -> None:
        """A closed MapRef raises StaleHandleError for each operation, with the reason."""
        m = broker.new_map()
        m.close()
        for use in each_operation(m):
            with pytest.raises(StaleHandleError, match="closed"):
                use()

    def test_a_handle_number_set_by_hand_is_checked(self, broker: Broker) -> None:
        """`_h` is a plain attribute: a number that is no live handle is STALE or
        BADF from the core, never another map's entries."""
        m, other = broker.new_map(), broker.new_map()
        other[b"k"] = b"theirs"
        for wrong in (other.handle + (1 << 16), other.handle ^ 0xFF000000, 0xFFFFFFFF):
            m._h = wrong
            with pytest.raises((StaleHandleError, BadHandleError)):
                m[b"k"]
        m._h = 2**40  # not a handle number at all: the Python way refuses it
        with pytest.raises((StaleHandleError, OverflowError)):
            m[b"k"]
        m._h = other.handle  # the same broker's host handle: its map, rightly
        assert m[b"k"] == b"theirs"

    def test_the_door_is_its_brokers_for_good(self) -> None:
        """A MapRef reaches only its own broker's core: its door cannot be swapped for
        another broker's, nor given again."""
        with Broker() as b1, Broker() as b2:
            m1, m2 = b1.new_map(), b2.new_map()
            with pytest.raises(AttributeError):
                m1._door = m2._door  # type: ignore[misc]
            with pytest.raises(TypeError, match="given once"):
                MapCore.__init__(m1, m2._door, m2.handle)
            with pytest.raises(TypeError):
                MapCore.__init__(m1, object(), 1)  # type: ignore[arg-type]

    def test_a_door_keeps_its_c_broker(self) -> None:
        """The C broker is freed only once no door can reach it: a door outliving its
        Broker (a MapRef in a garbage cycle with it, say) never reaches freed memory."""
        b = Broker()
        m = b.new_map()
        native, c_broker = weakref.ref(b._native), weakref.ref(b._native._ptr)
        door = m._door
        del b, m
        gc.collect()
        assert native() is None and door.open
        assert c_broker() is not None  # what frees the C broker: kept by the door
        del door
        gc.collect()
        assert c_broker() is None

    def test_finalized_handles_close_before_the_next_operation(self, broker: Broker) -> None:
        """A MapRef dropped without close is closed at the next MapRef operation,
        even one the hot path could answer."""
        keep = broker.new_map()
        keep[b"k"] = b"v"
        dropped = broker.new_map()
        del dropped
        gc.collect()
        assert broker._native.released  # queued, not closed from the finalizer
        assert keep[b"k"] == b"v"
        assert not broker._native.released
        assert broker.stats()["maps"] == 1

    def test_after_the_broker_is_closed(self) -> None:
        """Every operation of a MapRef raises ConfigError once its broker is closed."""
        b = Broker()
        m = b.new_map()
        m[b"k"] = b"v"
        b.close()
        for use in each_operation(m):
            with pytest.raises(ConfigError, match="broker is closed"):
                use()

    def test_in_a_forked_child(self, broker: Broker) -> None:
        """The parent's MapRef in a forked child says so in one line, never reaches
        the parent's copy of the core."""
        m = broker.new_map()
        m[b"k"] = b"v"
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                try:
                    m[b"k"]
                except ConfigError as exc:
                    code = 0 if "before a fork" in str(exc) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert m[b"k"] == b"v"

    def test_a_set_that_reclaims_delivers_at_once(self, broker: Broker) -> None:
        """A set that drops the last reference to a map reclaims it, and the
        tracer's events and the stats say so right after the set returns."""
        with Broker(trace=True) as traced:
            parent = traced.new_map()
            with traced.new_map() as child:
                parent.set_map(b"c", child)
            assert traced.stats()["maps"] == 2
            before = traced.tracer.count("reclaim")  # type: ignore[union-attr]
            parent[b"c"] = b"plain now"
            assert traced.stats()["maps"] == 1
            assert traced.tracer.count("reclaim") == before + 1  # type: ignore[union-attr]


class TestFailures:
    def test_a_failing_store(self) -> None:
        """The store's failure is the raised error's cause, and nothing of it is left
        on the thread, by either way in."""
        flaky = FlakyStore()
        with Broker(store=flaky) as broker, broker.open("m") as ref:
            ref[b"k"] = b"v"
            flaky.fail = StoreError("flaky: the disk is gone")
            for use in (lambda: ref[b"k"], lambda: ref.__setitem__(b"k", b"w")):
                with pytest.raises(StoreError) as raised:
                    use()
                assert raised.value.__cause__ is not None
                assert left_on_thread() is None
            flaky.fail = None
            assert ref[b"k"] == b"v"

    @pytest.mark.parametrize(
        ("attribute", "source"), [("wm_h_sha256", "native/wm.h"), ("abi_sha256", "broker/abi/")]
    )
    def test_a_stale_build_is_refused(
        self, monkeypatch: pytest.MonkeyPatch, attribute: str, source: str
    ) -> None:
        """An extension built from another wm.h or ABI than the core's is refused by name."""
        monkeypatch.setattr(hostmap_door, attribute, "0" * 64)
        with pytest.raises(StaleCoreError, match=rf"broker\._hostmap.*{re.escape(source)}"):
            hostmap_door._bind()

    def test_an_errno_after_the_broker_closed_leaves_nothing(self) -> None:
        """A store failure met by the hot path is taken even when what is raised is
        ConfigError (the broker closed meanwhile): nothing is left on the thread."""
        b = Broker()
        m = b.new_map()
        b.close()
        # What the store function leaves when the hot path's call into the core met IO.
        record(StoreFailure(StoreError("disk gone"), "flaky:", "m", "get", "host", 1))
        with pytest.raises(ConfigError, match="broker is closed"):
            m._failed("get", b"k", Errno.IO)
        assert left_on_thread() is None


class TestThreads:
    def test_many_threads_one_map(self, broker: Broker) -> None:
        """Threads setting and reading one map (the GIL released in C) lose nothing."""
        m = broker.new_map()

        def work(t: int) -> None:
            for i in range(2_000):
                key = b"%d-%d" % (t, i % 50)
                m[key] = key * 3
                assert m[key] == key * 3 and key in m

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(m) == 200

    def test_the_broker_closed_under_a_loop(self) -> None:
        """Closing the broker while another thread loops on a MapRef ends the loop
        with ConfigError, never a crash (nor BADF from the emptied tables)."""
        b = Broker()
        m = b.new_map()
        ended: list[BaseException] = []
        started = threading.Event()

        def loop() -> None:
            try:
                while True:
                    m[b"k"] = b"v"
                    m[b"k"]
                    started.set()
            except ConfigError as exc:
                ended.append(exc)

        thread = threading.Thread(target=loop)
        thread.start()
        started.wait(10)
        b.close()
        thread.join(10)
        assert not thread.is_alive() and ended


def test_a_mapref_is_still_a_mapref() -> None:
    """The C base changes nothing a caller sees of the type."""
    with Broker() as b, b.new_map() as m:
        assert isinstance(m, MapRef) and type(m).__name__ == "MapRef"
        m.update({b"a": b"1", b"b": b"2"})
        assert dict(m) == {b"a": b"1", b"b": b"2"} and m.get(b"zz") is None
