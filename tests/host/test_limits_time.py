"""Time limits: every call into a module is bounded (docs/abi.md, "Limits and quotas").

A guest that never returns -- in an export, a start function, a callee, a
drop-notice handler, or asleep in WASI -- traps with a message naming the
time limit, is torn down like any module whose trap began in it, and leaves
the other modules working.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from replaced import replaced

from broker import Broker, GuestTrap, Limits, ModuleError, testing

SPIN = b"""
(module
  (func (export "spin") (loop $l (br $l)))
  (func (export "ok") (result i32) (i32.const 7)))
"""

# Calls "spinner.spin" (a peer) or returns its argument.
CALLS_SPINNER = b"""
(module
  (import "spinner" "spin" (func $spin))
  (func (export "go") (call $spin))
  (func (export "ok") (result i32) (i32.const 1)))
"""

SPIN_AT_START = b"""
(module
  (func $start (loop $l (br $l)))
  (start $start))
"""

# sleep(ns): one relative clock subscription through WASI's poll_oneoff;
# returns poll's errno * 1000 + the number of events, and the event's
# userdata (42) at address 256.
SLEEPER = b"""
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "sleep") (param $ns i64) (result i32)
    (i64.store (i32.const 0) (i64.const 42))     ;; userdata
    (i32.store8 (i32.const 8) (i32.const 0))     ;; tag: clock
    (i32.store (i32.const 16) (i32.const 1))     ;; monotonic
    (i64.store (i32.const 24) (local.get $ns))   ;; timeout
    (i64.store (i32.const 32) (i64.const 0))     ;; precision
    (i32.store16 (i32.const 40) (i32.const 0))   ;; relative
    (i32.add (i32.mul (call $poll (i32.const 0) (i32.const 256) (i32.const 1) (i32.const 512))
                      (i32.const 1000))
             (i32.load (i32.const 512))))
  (func (export "userdata") (result i64) (i64.load (i32.const 256)))
  (func (export "poll_fd") (result i32)
    (i32.store8 (i32.const 8) (i32.const 1))     ;; tag: fd_read
    (call $poll (i32.const 0) (i32.const 256) (i32.const 1) (i32.const 512)))
  (func (export "poll_none") (result i32)
    (call $poll (i32.const 0) (i32.const 256) (i32.const 0) (i32.const 512)))
  (func (export "poll_outside") (result i32)
    (call $poll (i32.const 65520) (i32.const 256) (i32.const 1) (i32.const 512))))
"""

# Calls "sleeper.sleep" for 300 ms, then spins a little: its own limit is
# what ends it, once the callee has returned.
CALLS_SLEEPER = b"""
(module
  (import "sleeper" "sleep" (func $sleep (param i64) (result i32)))
  (func (export "go") (result i32)
    (drop (call $sleep (i64.const 300000000)))
    (loop $l (br $l))
    (i32.const 0)))
"""

# wasi_map_on_drop feeds itself: every notice makes, watches and closes a
# new map, which queues the next notice.  `start` does the first.
FEEDER = b"""
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "wasi_map" "watch_drop" (func $watch (param i32 i64) (result i32)))
  (memory (export "memory") 1)
  (global $notices (mut i64) (i64.const 0))
  (func $feed (param $cookie i64)
    (drop (call $new (i32.const 0)))
    (drop (call $watch (i32.load (i32.const 0)) (local.get $cookie)))
    (drop (call $close (i32.load (i32.const 0)))))
  (func (export "start") (call $feed (i64.const 1)))
  (func (export "wasi_map_on_drop") (param $cookie i64)
    (global.set $notices (i64.add (global.get $notices) (i64.const 1)))
    (call $feed (i64.add (local.get $cookie) (i64.const 1))))
  (func (export "notices") (result i64) (global.get $notices)))
"""


def timed(fn, *args):  # type: ignore[no-untyped-def]
    start = time.monotonic()
    try:
        return fn(*args), time.monotonic() - start
    except BaseException as exc:
        exc.elapsed = time.monotonic() - start  # type: ignore[attr-defined]
        raise


class TestAnExportThatNeverReturns:
    def test_traps_with_the_time_limit_in_the_message(self, broker: Broker) -> None:
        """A loop forever traps after about its limit, naming the limit."""
        broker.load("spinner", SPIN, limits={"time_ms": 200})
        with pytest.raises(GuestTrap) as info:
            timed(broker.call, "spinner.spin")
        assert "ran past its time limit of 200 ms" in str(info.value)
        assert 0.15 < info.value.elapsed < 5  # type: ignore[attr-defined]

    def test_the_module_is_torn_down_and_the_others_work(self, broker: Broker) -> None:
        """Like any trap: the module is torn down; another module keeps working."""
        broker.load("spinner", SPIN, limits={"time_ms": 100})
        broker.load("other", SPIN)
        with pytest.raises(GuestTrap):
            broker.call("spinner.spin")
        replaced(broker, "spinner.ok")
        assert broker.call("other.ok") == 7
        broker.unload("spinner")
        broker.load("spinner", SPIN, limits={"time_ms": 100})
        assert broker.call("spinner.ok") == 7

    def test_each_call_has_the_whole_limit(self, broker: Broker) -> None:
        """The limit is per call: many short calls add up to more than it."""
        broker.load("m", SPIN, limits={"time_ms": 50})
        start = time.monotonic()
        while time.monotonic() - start < 0.2:
            assert broker.call("m.ok") == 7

    def test_the_broker_lock_is_free_again(self, broker: Broker) -> None:
        """After the trap another thread's call goes through (nothing stayed held)."""
        import threading

        broker.load("spinner", SPIN, limits={"time_ms": 100})
        broker.load("other", SPIN)
        results: list[int] = []
        worker = threading.Thread(target=lambda: results.append(broker.call("other.ok")))
        with pytest.raises(GuestTrap):
            worker.start()
            broker.call("spinner.spin")
        worker.join(10)
        assert results == [7]


class TestAStartFunctionThatNeverReturns:
    def test_load_fails_in_one_line_and_leaves_nothing(self, broker: Broker) -> None:
        """The load fails naming the module and the limit; the broker is as before."""
        before = testing.core_counters(broker)
        with pytest.raises(ModuleError) as info:
            broker.load("starter", SPIN_AT_START, limits={"time_ms": 100})
        message = str(info.value)
        assert "starter" in message and "time limit of 100 ms" in message
        assert "trapped while starting" in message
        assert "\n" not in message
        assert broker.modules() == []
        assert testing.core_counters(broker) == before


class TestASpinningCallee:
    def test_the_callee_is_blamed_and_torn_down(self, broker: Broker) -> None:
        """The callee's own limit ends it; the caller is not torn down."""
        broker.load("spinner", SPIN, limits={"time_ms": 100})
        broker.load("caller", CALLS_SPINNER, limits={"time_ms": 5000})
        with pytest.raises(GuestTrap) as info:
            broker.call("caller.go")
        assert info.value.origin == "spinner"
        assert "spinner' ran past its time limit of 100 ms" in str(info.value)
        assert broker.call("caller.ok") == 1  # the caller was not torn down

    def test_a_callee_without_its_own_limit_is_ended_by_the_callers(self, broker: Broker) -> None:
        """Time in a callee counts for the caller too: the caller's limit ends the call."""
        broker.load("sleeper", SLEEPER, limits={"time_ms": 5000})
        broker.load("caller", CALLS_SLEEPER, limits={"time_ms": 100})
        with pytest.raises(GuestTrap) as info:
            broker.call("caller.go")
        assert info.value.origin == "caller"
        assert "caller' ran past its time limit of 100 ms" in str(info.value)
        assert broker.call("sleeper.sleep", 1_000_000) == 1  # the callee still works


class TestSleepingInWasi:
    def test_a_sleep_within_the_limit_sleeps(self, broker: Broker) -> None:
        """poll_oneoff on a clock sleeps as asked and reports the subscription."""
        broker.load("sleeper", SLEEPER, limits={"time_ms": 2000})
        result, elapsed = timed(broker.call, "sleeper.sleep", 50_000_000)
        assert result == 1  # OK, one event
        assert broker.call("sleeper.userdata") == 42
        assert 0.045 < elapsed < 1.5

    def test_a_sleep_past_the_limit_traps_at_once(self, broker: Broker) -> None:
        """A 3 s sleep under a 500 ms limit traps at once, without holding the broker 3 s."""
        broker.load("sleeper", SLEEPER, limits={"time_ms": 500})
        with pytest.raises(GuestTrap) as info:
            timed(broker.call, "sleeper.sleep", 3_000_000_000)
        assert "would sleep past its time limit of 500 ms" in str(info.value)
        assert info.value.elapsed < 1.0  # type: ignore[attr-defined]

    def test_other_subscriptions_and_bad_pointers_are_errnos(self, broker: Broker) -> None:
        """fd subscriptions are NOTSUP, none is INVAL, a pointer outside memory FAULT."""
        broker.load("sleeper", SLEEPER)
        assert broker.call("sleeper.poll_fd") == 58
        assert broker.call("sleeper.poll_none") == 28
        assert broker.call("sleeper.poll_outside") == 21

    def test_no_limit_means_no_limit(self, broker: Broker) -> None:
        """time_ms = 0 turns the limit off: a sleep longer than any default runs."""
        broker.load("sleeper", SLEEPER, limits={"time_ms": 0})
        assert broker.call("sleeper.sleep", 20_000_000) == 1


class TestDropNoticesThatFeedThemselves:
    def test_the_call_returns(self, broker: Broker) -> None:
        """A handler whose every notice queues another does not keep `call` from
        returning: one delivery delivers what was queued before it began."""
        broker.load("feeder", FEEDER)
        start = time.monotonic()
        broker.call("feeder.start")
        assert time.monotonic() - start < 5
        assert broker.call("feeder.notices") >= 1
        # each later operation delivers the next round, and returns too
        before = broker.call("feeder.notices")
        broker.deliver_notices()
        assert broker.call("feeder.notices") > before


class TestDefaults:
    def test_the_default_limit_is_finite(self) -> None:
        """A module has a time limit unless it asks for none (10 s)."""
        assert Limits().time_ms == 10_000

    def test_manifest_limit(self, tmp_path: Path) -> None:
        """`limits = { time_ms = N }` in a manifest; `wasi-map run` exits 1 with one line."""
        (tmp_path / "spin.wat").write_bytes(SPIN)
        (tmp_path / "app.toml").write_text(
            '[modules.spinner]\npath = "spin.wat"\nlimits = { time_ms = 150 }\n'
        )
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "broker.cli",
                "run",
                str(tmp_path / "app.toml"),
                "--call",
                "spinner.spin",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 1
        assert "time limit of 150 ms" in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1

    def test_bad_time_limit_is_a_config_error(self, broker: Broker) -> None:
        """A negative or non-integer limit is refused at load."""
        from broker import ConfigError

        with pytest.raises(ConfigError, match="time_ms"):
            broker.load("m", SPIN, limits={"time_ms": -1})
