"""Instances: a module loaded with instances=N serves calls from N threads at once.

Overlap is shown, never timed: `meet(n)` returns 1 only when n calls are
inside the module together (the host counts arrivals), and `hold` blocks in
a host function until the test lets it go, keeping its instance busy.
"""

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from broker import Broker, BusyError, ConfigError, GuestTrap, ManifestError, ModuleError

GUESTS = Path(__file__).parent.parent / "guests"
CALLER = b"""
(module
  (import "svc" "hold" (func $hold))
  (import "svc" "calls" (func $calls (result i32)))
  (func (export "via_hold") (call $hold))
  (func (export "via_calls") (result i32) (call $calls)))
"""
WAIT = 10  # seconds a test waits for a thread; never reached when all is well


class Host:
    """The host functions the guest imports: arrivals and a gate for `hold`."""

    def __init__(self, broker: Broker) -> None:
        self.arrived = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.holding = threading.Semaphore(0)  # one up per call inside `hold`
        self.then: Callable[[], Any] | None = None  # run by `hold` once let go
        broker.define("env", "arrive", self.arrive)
        broker.define("env", "count", self.count, results=["i32"])
        broker.define("env", "hold", self.hold)

    def arrive(self, caller: Any) -> None:
        with self.lock:
            self.arrived += 1

    def count(self, caller: Any) -> int:
        return self.arrived

    def hold(self, caller: Any) -> None:
        self.holding.release()
        assert self.release.wait(WAIT), "the test never let hold return"
        if self.then is not None:
            self.then()


@pytest.fixture
def host(broker: Broker) -> Host:
    return Host(broker)


def load(broker: Broker, n: int, name: str = "svc", **kw: Any) -> None:
    broker.load(name, GUESTS / "instances.wat", grants={"counter": "rw"}, instances=n, **kw)


def in_threads(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """fn(i) on n threads started together; their results (or exceptions)."""
    start = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        start.wait()
        try:
            out[i] = fn(i)
        except BaseException as exc:  # returned to the test to assert on
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    return out


@pytest.fixture
def running() -> Iterator[list[threading.Thread]]:
    """Threads a test starts in the background, joined at its end."""
    threads: list[threading.Thread] = []
    yield threads
    for t in threads:
        t.join(WAIT)


def background(running: list[threading.Thread], fn: Callable[[], Any]) -> list[Any]:
    """Run fn() on a thread; the list gets its result or exception."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            out.append(exc)

    t = threading.Thread(target=run)
    t.start()
    running.append(t)
    return out


def hold_one(broker: Broker, host: Host, running: list[threading.Thread]) -> list[Any]:
    """A call of svc.hold on a thread, inside its instance (blocked in env.hold)."""
    held = background(running, lambda: broker.call("svc.hold"))
    assert host.holding.acquire(timeout=WAIT)
    return held


def let_go(host: Host, running: list[threading.Thread]) -> None:
    """Let every held call return, and the background threads end."""
    host.release.set()
    for t in running:
        t.join(WAIT)


class TestEachInstanceIsItsOwn:
    def test_instances_are_named_and_counted_apart(self, broker: Broker, host: Host) -> None:
        """Three instances: each its own memory, handles named `svc#1`..`svc#3`."""
        load(broker, 3)
        assert broker.stats()["handles"] == {"svc#1": 0, "svc#2": 0, "svc#3": 0}
        assert broker.call("svc.calls") == 1  # one thread: the first free instance each time
        assert broker.call("svc.calls") == 2

    def test_two_calls_run_at_once_in_two_instances(self, broker: Broker, host: Host) -> None:
        """Both calls are inside the module together: each sees the other arrive."""
        load(broker, 2)
        assert in_threads(2, lambda i: broker.call("svc.meet", 2)) == [1, 1]

    def test_one_instance_runs_one_call_at_a_time(self, broker: Broker, host: Host) -> None:
        """With one instance the second call waits: the first gives up waiting to
        meet (0), and only then does the second come in (and see two arrivals)."""
        load(broker, 1, limits={"time_ms": 0})
        assert sorted(in_threads(2, lambda i: broker.call("svc.meet", 2))) == [0, 1]

    def test_handles_and_quotas_are_per_instance(self, broker: Broker, host: Host) -> None:
        """Each instance has the whole handle quota; its handles are its own."""
        load(broker, 2, limits={"handles": 1})
        assert in_threads(2, lambda i: broker.call("svc.make_meet", 2)) == [1, 1]
        assert broker.stats()["handles"] == {"svc#1": 1, "svc#2": 1}


class TestNamedMapsAreShared:
    def test_incr_from_many_threads_loses_nothing(self, broker: Broker, host: Host) -> None:
        load(broker, 2)
        in_threads(4, lambda i: [broker.call("svc.hit") for _ in range(500)])
        assert broker.call("svc.hit") == 2001


class TestTraps:
    def test_a_trap_replaces_only_its_instance(
        self, broker: Broker, host: Host, running: Any
    ) -> None:
        """svc#1 is held in a call while svc#2 traps: svc#1's call goes on, svc#2 is
        replaced (its handles closed), and calls are served again."""
        load(broker, 2)
        held = hold_one(broker, host, running)
        broker.call("svc.make")  # in the other instance
        with pytest.raises(GuestTrap) as info:
            broker.call("svc.boom")
        assert info.value.origin is not None and info.value.origin.startswith("svc#")
        let_go(host, running)
        assert held == [None]
        assert sorted(broker.stats()["handles"].values()) == [0, 0]
        assert broker.call("svc.calls") == 1  # a new instance's memory

    def test_on_trap_stop_leaves_the_others_serving(self, broker: Broker, host: Host) -> None:
        load(broker, 2, on_trap="stop")
        for _ in range(2):
            assert broker.call("svc.calls") >= 1
            with pytest.raises(GuestTrap):
                broker.call("svc.boom")
        with pytest.raises(ModuleError, match="torn down"):
            broker.call("svc.calls")


class TestTrapRaces:
    """A trap's teardown while another thread runs in the same instance: it
    took the instance between the trap's unwinding and the teardown."""

    def let_one_in(
        self, broker: Broker, host: Host, running: Any, monkeypatch: pytest.MonkeyPatch
    ) -> list[list[Any]]:
        """When the broker next notes a trap's origin, a call of svc.hold
        first takes svc's one instance (and is inside env.hold); the list
        holds the list that gets that call's result."""
        held: list[list[Any]] = []
        take = broker._native.take_trap_origin

        def take_then_let_one_in() -> int | None:
            origin = take()
            held.append(hold_one(broker, host, running))
            return origin

        monkeypatch.setattr(broker._native, "take_trap_origin", take_then_let_one_in)
        return held

    def test_the_teardown_waits_without_the_brokers_lock(
        self, broker: Broker, host: Host, running: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The other call's host function asks the broker for its stats while
        the teardown waits for that call to end: both finish (the wait held
        the lock stats needs, and neither ended)."""
        load(broker, 1)
        native = broker.native_module("svc")
        teardown, tearing = native.teardown, threading.Event()

        def tear() -> None:
            tearing.set()
            teardown()

        monkeypatch.setattr(native, "teardown", tear)
        stats: list[Any] = []
        host.then = lambda: (tearing.wait(WAIT), stats.append(broker.stats()["handles"]))
        host.release.set()
        held = self.let_one_in(broker, host, running, monkeypatch)
        trapped = background(running, lambda: broker.call("svc.boom"))
        for t in running:
            t.join(WAIT)
        assert not any(t.is_alive() for t in running), "the trap and the call deadlocked"
        assert isinstance(trapped[0], GuestTrap) and held == [[None]] and len(stats) == 1
        assert broker.call("svc.calls") == 1  # replaced once the call ended

    def test_a_call_that_comes_meanwhile_waits_for_the_new_instance(
        self, broker: Broker, host: Host, running: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Once the instance is torn down and before its replacement is
        counted, a call must not find the module dead: it waits, then runs
        in the new instance."""
        load(broker, 1)
        native = broker.native_module("svc")
        teardown = native.teardown
        meanwhile: list[list[Any]] = []

        def tear_then_call() -> None:
            teardown()
            meanwhile.append(background(running, lambda: broker.call("svc.calls")))
            running[-1].join(0.2)  # it fails at once, or waits for the new instance

        monkeypatch.setattr(native, "teardown", tear_then_call)
        assert broker.call("svc.calls") == 1  # the host's way in is made before
        with pytest.raises(GuestTrap):
            broker.call("svc.boom")
        for t in running:
            t.join(WAIT)
        assert meanwhile == [[1]]


class TestHostOperationsOnAnInstance:
    """`native_module(...).op_*` (tools and tests) hold the instance as a call
    would: its own thread writes its handle table and counts unlocked."""

    def test_they_wait_for_a_call_on_another_thread_then_give_up(
        self, broker: Broker, host: Host, running: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from broker._native import module as native_module

        monkeypatch.setattr(native_module, "HOLD_WAIT_MS", 50)
        load(broker, 1)
        native = broker.native_module("svc")
        hold_one(broker, host, running)
        with pytest.raises(BusyError, match="runs a call on another thread"):
            native.op_new()
        let_go(host, running)
        h = native.op_new()
        native.op_set(h, b"k", b"v")
        assert native.op_get(h, b"k") == b"v" and native.usage()[1] == 1

    def test_a_host_function_of_the_call_uses_its_instance(
        self, broker: Broker, host: Host, running: Any
    ) -> None:
        load(broker, 1)
        native = broker.native_module("svc")
        made: list[int] = []
        host.then = lambda: made.append(native.op_new())
        host.release.set()
        assert broker.call("svc.hold") is None
        assert made and native.handle_count() == 1

    def test_the_counts_stay_true_beside_a_running_guest(self, broker: Broker) -> None:
        """A guest writes on one thread while the host writes for it on
        another: the bytes it is charged match what it holds, never wrap."""
        broker.load("w", GUESTS / "parallel_model.wat", grants={"shared": "rw"})
        native = broker.native_module("w")
        h = native.op_new()
        stop = threading.Event()

        def host_writes() -> None:
            i = 0
            while not stop.is_set():
                native.op_set(h, b"k%d" % (i % 64), b"x" * (i % 50))
                native.op_delete(h, b"k%d" % ((i * 7) % 64))
                i += 1

        t = threading.Thread(target=host_writes)
        t.start()
        try:
            for tag in range(50):
                assert broker.call("w.own", 5000, tag) == 0
        finally:
            stop.set()
            t.join(WAIT)
        used, entries = native.usage()
        assert used < 1 << 40 and entries < 1 << 40
        assert broker._native.check() == 0


class TestCallsBetweenModules:
    def test_a_call_waits_for_a_free_instance(
        self, broker: Broker, host: Host, running: Any
    ) -> None:
        """svc's one instance is busy: a call through caller -> svc waits, then runs."""
        load(broker, 1, limits={"time_ms": 0})
        broker.load("caller", CALLER, limits={"time_ms": 0})
        held = hold_one(broker, host, running)
        via = background(running, lambda: broker.call("caller.via_calls"))
        running[-1].join(0.2)
        assert via == []  # waiting for svc's one instance
        let_go(host, running)
        assert held == [None] and via == [1]

    def test_the_wait_ends_with_the_callers_time_limit(
        self, broker: Broker, host: Host, running: Any
    ) -> None:
        load(broker, 1, limits={"time_ms": 0})
        broker.load("caller", CALLER, limits={"time_ms": 50})
        held = hold_one(broker, host, running)
        with pytest.raises(GuestTrap, match="no instance of the module came free") as info:
            broker.call("caller.via_calls")
        assert info.value.origin == "caller"  # its own trap: it waited too long
        let_go(host, running)
        assert held == [None]


class TestChangesWaitForCalls:
    def test_unload_waits_for_the_call_in_flight(
        self, broker: Broker, host: Host, running: Any
    ) -> None:
        load(broker, 1, limits={"time_ms": 0})
        held = hold_one(broker, host, running)
        unloaded = background(running, lambda: broker.unload("svc"))
        running[-1].join(0.2)
        assert unloaded == []  # still waiting for the call
        let_go(host, running)
        assert held == [None] and unloaded == [None]
        assert broker.modules() == []


class TestDeclaring:
    @pytest.mark.parametrize("n", [0, -1, 257, "2", 1.5, True])
    def test_a_bad_count_is_a_config_error(self, broker: Broker, n: object) -> None:
        with pytest.raises(ConfigError, match="instances: must be an integer in 1..256"):
            broker.load("svc", GUESTS / "instances.wat", instances=n)  # type: ignore[arg-type]

    def test_a_bad_on_trap_is_a_config_error(self, broker: Broker) -> None:
        with pytest.raises(ConfigError, match='on_trap: must be "replace" or "stop"'):
            broker.load("svc", GUESTS / "instances.wat", on_trap="restart")

    def test_the_manifest_says_how_many(self, tmp_path: Path) -> None:
        counter = GUESTS / "store_counter.wat"
        (tmp_path / "app.toml").write_text(
            f'[modules.c]\npath = "{counter}"\ninstances = 2\ngrants = {{ counter = "rw" }}\n'
        )
        with Broker.from_manifest(tmp_path / "app.toml") as b:
            assert b.stats()["handles"] == {"c#1": 0, "c#2": 0}
            in_threads(2, lambda i: [b.call("c.main") for _ in range(100)])
            assert b.call("c.main") == 201
        (tmp_path / "bad.toml").write_text(f'[modules.c]\npath = "{counter}"\ninstances = 0\n')
        with pytest.raises(ManifestError, match=r"bad.toml: modules.c.instances: must be"):
            Broker.from_manifest(tmp_path / "bad.toml")


REACTOR = b"""
(module
  (import "env" "hold" (func $hold))
  (import "env" "count" (func $count (result i32)))
  (global $ready (mut i32) (i32.const 0))
  (func (export "_initialize")
    (call $hold)
    (if (i32.eq (call $count) (i32.const 99)) (then unreachable))
    (global.set $ready (i32.const 1)))
  (func (export "ready") (result i32) (global.get $ready))
  (func (export "boom") unreachable))
"""


class TestReplacing:
    def test_a_call_meanwhile_waits_for_the_new_instance(
        self, broker: Broker, host: Host, running: Any
    ) -> None:
        """One instance, replaced after a trap: a call that comes while the new
        one runs `_initialize` waits for it (no ModuleError), and finds it ready."""
        host.release.set()
        broker.load("r", REACTOR)
        assert host.holding.acquire(timeout=WAIT)  # the load's _initialize
        host.release.clear()
        trapped = background(running, lambda: broker.call("r.boom"))
        assert host.holding.acquire(timeout=WAIT)  # the new instance's _initialize
        meanwhile = background(running, lambda: broker.call("r.ready"))
        running[-1].join(0.2)
        assert meanwhile == []
        let_go(host, running)
        assert isinstance(trapped[0], GuestTrap) and meanwhile == [1]

    def test_a_new_instance_that_fails_leaves_the_module_down(
        self, broker: Broker, host: Host
    ) -> None:
        host.release.set()
        broker.load("r", REACTOR)
        host.arrived = 99  # the next _initialize traps
        with pytest.raises(GuestTrap):
            broker.call("r.boom")
        with pytest.raises(ModuleError, match="a new instance failed to start: .*_initialize"):
            broker.call("r.ready")
