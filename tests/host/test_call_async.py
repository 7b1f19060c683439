"""`Broker.call_async`: the call on the broker's worker threads, awaited off the event loop."""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from broker import Borrow, Broker, ConfigError, GuestTrap, MapRef, Own, StaleHandleError
from broker.aio import DEFAULT_WORKERS, THREAD_NAME

GUEST = """
(module
  (import "wasi_map" "len" (func $len (param i32 i32) (result i32)))
  (import "clock" "now" (func $now (result i64)))  ;; the host's wall clock, in ms
  (memory (export "memory") 1)
  (func (export "add") (param i32 i64) (result i64)
    (i64.add (i64.extend_i32_s (local.get 0)) (local.get 1)))
  (func (export "pair") (param i32) (result i32 i32)
    (local.get 0) (i32.mul (local.get 0) (i32.const 2)))
  (func (export "nothing"))
  (func (export "boom") (unreachable))
  (func (export "size") (param i32) (result i32)
    (drop (call $len (local.get 0) (i32.const 0)))
    (i32.load (i32.const 0)))
  (func (export "spin") (param $ms i64) (result i64)
    ;; busy for $ms milliseconds: it neither sleeps nor yields
    (local $end i64)
    (local.set $end (i64.add (call $now) (local.get $ms)))
    (loop $l (br_if $l (i64.lt_s (call $now) (local.get $end))))
    (local.get $ms)))
"""
EXPORTS = {"size": {"params": ["borrow"], "results": ["i32"]}}


def make_broker(**kwargs: Any) -> Broker:
    broker = Broker(**kwargs)
    broker.define("clock", "now", lambda caller: time.monotonic_ns() // 1_000_000, results=["i64"])
    broker.load("g", GUEST.encode(), exports=EXPORTS)
    return broker


@pytest.fixture
def b() -> Any:
    with make_broker() as broker:
        yield broker


def workers_alive() -> int:
    return sum(t.name.startswith(THREAD_NAME) for t in threading.enumerate())


class TestResults:
    """call_async returns what call returns."""

    def test_values_none_and_tuples(self, b: Broker) -> None:
        """One value, a tuple of two, and None, as Broker.call gives them."""

        async def main() -> list[Any]:
            return [
                await b.call_async("g.add", 2, 40),
                await b.call_async("g.pair", 21),
                await b.call_async("g.nothing"),
            ]

        assert (
            asyncio.run(main())
            == [42, (21, 42), None]
            == [
                b.call("g.add", 2, 40),
                b.call("g.pair", 21),
                b.call("g.nothing"),
            ]
        )

    def test_handles_pass_as_from_call(self, b: Broker) -> None:
        """A MapRef lent with Borrow reaches the guest and is the host's again after."""
        m = b.new_map()
        m[b"a"], m[b"b"] = b"1", b"2"
        assert asyncio.run(b.call_async("g.size", Borrow(m))) == 2
        assert m[b"a"] == b"1"

    def test_many_at_once_from_one_loop(self, b: Broker) -> None:
        """200 calls gathered at once each get their own result."""

        async def main() -> list[Any]:
            return await asyncio.gather(*(b.call_async("g.add", i, 1000) for i in range(200)))

        assert asyncio.run(main()) == [i + 1000 for i in range(200)]


class TestExceptions:
    """call_async raises what call raises."""

    def test_a_trap_is_a_guest_trap(self, b: Broker) -> None:
        """The GuestTrap names module and export; the module is torn down and
        replaced as after call."""
        with pytest.raises(GuestTrap, match=r"g\.boom: guest trapped"):
            asyncio.run(b.call_async("g.boom"))
        assert b.call("g.add", 1, 2) == 3

    def test_a_map_error_of_the_call(self, b: Broker) -> None:
        """A moved MapRef is refused with StaleHandleError, as by call."""
        m = b.new_map()
        m.close()
        with pytest.raises(StaleHandleError):
            asyncio.run(b.call_async("g.size", Borrow(m)))

    def test_bad_target_and_arguments(self, b: Broker) -> None:
        """An unknown export is a ConfigError; a wrong argument a TypeError."""
        with pytest.raises(ConfigError, match="no exported function 'nope'"):
            asyncio.run(b.call_async("g.nope"))
        with pytest.raises(TypeError, match="takes 2 argument"):
            asyncio.run(b.call_async("g.add", 1))
        with pytest.raises(TypeError, match="declared borrow"):
            asyncio.run(b.call_async("g.size", Own(b.new_map())))


class TestTheLoopRuns:
    """A guest call does not hold up the event loop."""

    @staticmethod
    async def ticks_during(call: Callable[[], Awaitable[Any]]) -> int:
        """How often a 5 ms ticker on the loop ticked while `call` ran."""
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)  # the ticker starts, and waits
        await call()
        seen = ticks
        task.cancel()
        return seen

    def test_a_ticker_ticks_while_a_guest_spins(self, b: Broker) -> None:
        """A 5 ms ticker keeps ticking through a guest busy for 200 ms."""
        start = time.perf_counter()
        ticks = asyncio.run(self.ticks_during(lambda: b.call_async("g.spin", 200)))
        assert time.perf_counter() - start >= 0.2
        assert ticks >= 10  # about 40 when nothing else runs; 0 if the loop were blocked

    def test_the_same_call_blocks_the_loop_when_made_with_call(self, b: Broker) -> None:
        """The control: Broker.call from a coroutine lets no tick through."""

        async def blocking() -> None:
            b.call("g.spin", 100)

        assert asyncio.run(self.ticks_during(blocking)) == 0

    def test_context_variables_reach_the_call(self, b: Broker) -> None:
        """A host function called by the guest sees the awaiting task's context variables."""
        request = contextvars.ContextVar("request", default="none")
        seen: list[str] = []
        b.define("ctx", "mark", lambda caller: seen.append(request.get()))
        b.load("m", b'(module (import "ctx" "mark" (func $m)) (func (export "go") (call $m)))')

        async def one(name: str) -> None:
            request.set(name)
            await b.call_async("m.go")

        async def main() -> None:
            await asyncio.gather(one("a"), one("b"))

        asyncio.run(main())
        assert sorted(seen) == ["a", "b"]

    def test_cancelling_the_awaiter_lets_the_call_finish(self, b: Broker) -> None:
        """A cancelled awaiter does not stop the guest; the broker stays usable."""

        async def main() -> None:
            task = asyncio.create_task(b.call_async("g.spin", 100))
            await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        assert asyncio.run(b.call_async("g.add", 1, 2)) == 3


class TestWorkers:
    """The pool: its size, made when first used, shut down by close."""

    def test_default_and_chosen_size(self) -> None:
        """The default is ThreadPoolExecutor's (cores + 4, at most 32); workers=N picks N."""
        assert min(32, (os.cpu_count() or 1) + 4) == DEFAULT_WORKERS
        with make_broker(workers=2) as broker:

            async def main() -> None:
                await asyncio.gather(*(broker.call_async("g.spin", 30) for _ in range(6)))
                names = {t.name for t in threading.enumerate() if t.name.startswith(THREAD_NAME)}
                assert len(names) <= 2

            asyncio.run(main())

    @pytest.mark.parametrize("bad", [0, -1, 2.0, "4", True])
    def test_a_bad_size_is_a_config_error(self, bad: object) -> None:
        """workers must be an int >= 1: anything else is refused with ConfigError."""
        with pytest.raises(ConfigError, match="workers must be an integer of at least 1"):
            Broker(workers=bad)  # type: ignore[arg-type]

    def test_no_threads_until_the_first_call_and_none_after_close(self) -> None:
        """A broker that never calls async starts no thread; close ends those it started."""
        before = workers_alive()
        broker = make_broker(workers=3)
        assert workers_alive() == before
        asyncio.run(broker.call_async("g.add", 1, 2))
        assert workers_alive() > before
        broker.close()
        assert workers_alive() == before

    def test_close_waits_for_running_calls_and_refuses_queued_ones(self) -> None:
        """close lets the running call return its result; a call still queued gets
        ConfigError ("closed"); call_async afterwards is refused too."""
        broker = make_broker(workers=1)

        async def main() -> list[Any]:
            running = asyncio.ensure_future(broker.call_async("g.spin", 400))
            queued = asyncio.ensure_future(broker.call_async("g.add", 1, 2))
            await asyncio.sleep(0.03)  # the first is in the guest; the second waits
            await asyncio.to_thread(broker.close)
            return await asyncio.gather(running, queued, return_exceptions=True)

        spun, refused = asyncio.run(main())
        assert spun == 400
        assert isinstance(refused, ConfigError) and "closed" in str(refused)
        with pytest.raises(ConfigError, match="the broker is closed"):
            asyncio.run(broker.call_async("g.add", 1, 2))

    def test_own_results_come_back_as_maprefs(self) -> None:
        """A declared own result reaches the coroutine as a MapRef of the broker."""
        with Broker() as broker:
            broker.load(
                "mk",
                b"""(module
                  (import "wasi_map" "new" (func $new (param i32) (result i32)))
                  (memory (export "memory") 1)
                  (func (export "make") (result i32)
                    (drop (call $new (i32.const 0))) (i32.load (i32.const 0))))""",
                exports={"make": {"results": ["own"]}},
            )
            ref = asyncio.run(broker.call_async("mk.make"))
            assert isinstance(ref, MapRef) and len(ref) == 0
            ref.close()
