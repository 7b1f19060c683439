"""Threads: parallel brokers share nothing; one broker's host API loses nothing under contention."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from paths import GUESTS

from broker import Broker
from broker.errors import NotFoundError

WORKER = GUESTS / "worker.wat"
S = TypeVar("S")


@pytest.fixture(autouse=True)
def fast_switching() -> Iterator[None]:
    """Switch threads often, so that Python-side steps interleave as much as the C side does."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def run_together(n: int, setup: Callable[[int], S], body: Callable[[int, S], Any]) -> list[Any]:
    """Run setup(i) in n threads, then every body(i, state) at once (a barrier); the results."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def main(i: int) -> None:
        try:
            state = setup(i)
            barrier.wait()
            results[i] = body(i, state)
        except BaseException as exc:  # re-raised in the main thread below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=main, args=(i,), name=f"worker-{i}") for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    if errors:
        raise errors[0]
    return results


def incr_many(host: Any, h: int, key: bytes, times: int) -> list[int]:
    return [host.op_incr(h, key, 1) for _ in range(times)]


class TestSeparateBrokers:
    """Brokers in different threads share only the C code, never state."""

    THREADS, ROUNDS, LOOP = 4, 50, 5000

    def test_guest_loops_and_host_ops_in_parallel(self) -> None:
        """Each thread's broker ends with exactly its own counts, though all use the same names."""

        def setup(i: int) -> tuple[Broker, int, int]:
            broker = Broker()
            broker.load("w", WORKER, grants={"tally": "rw"})
            host = broker.host
            return broker, host.op_open(b"tally", 3), host.op_new()

        def body(i: int, state: tuple[Broker, int, int]) -> dict[str, Any]:
            broker, tally, own = state
            host = broker.host
            try:
                for r in range(self.ROUNDS):
                    assert broker.call("w.run", self.LOOP) == self.LOOP * (self.LOOP - 1) // 2
                    host.op_incr(tally, b"host", 1)
                    host.op_set(own, b"round", f"{i}:{r}".encode())
                    assert host.op_get(own, b"round") == f"{i}:{r}".encode()
                    host.op_incr(own, f"thread-{i}".encode(), r)
                return {
                    "hits": host.op_incr(tally, b"hits", 0),
                    "host": host.op_incr(tally, b"host", 0),
                    "own_keys": host.op_keys(own),
                    "own_sum": host.op_incr(own, f"thread-{i}".encode(), 0),
                    "stats": broker.stats(),
                    "host_handles": host.handle_count(),
                }
            finally:
                broker.close()

        results = run_together(self.THREADS, setup, body)
        for i, got in enumerate(results):
            assert got["hits"] == self.ROUNDS * self.LOOP
            assert got["host"] == self.ROUNDS
            assert got["own_keys"] == [b"round", f"thread-{i}".encode()]
            assert got["own_sum"] == sum(range(self.ROUNDS))
            assert got["stats"] == {"maps": 1, "named": 1, "handles": {"w": 0}}
            assert got["host_handles"] == 2


class TestSharedHost:
    """One broker's host API, called from several threads at once."""

    THREADS, TIMES = 8, 20000

    def test_incr_on_one_key_loses_nothing(self, broker: Broker) -> None:
        """Concurrent incr on one key returns every value 1..N exactly once and ends at N."""
        host = broker.host
        h = host.op_open(b"counter", 3)

        def body(i: int, _: None) -> list[int]:
            seen = incr_many(host, h, b"n", self.TIMES)
            incr_many(host, h, f"t{i}".encode(), self.TIMES)
            return seen

        results = run_together(self.THREADS, lambda i: None, body)
        total = self.THREADS * self.TIMES
        assert sorted(v for seen in results for v in seen) == list(range(1, total + 1))
        assert host.op_incr(h, b"n", 0) == total
        for i in range(self.THREADS):
            assert host.op_incr(h, f"t{i}".encode(), 0) == self.TIMES
        assert host.op_len(h) == self.THREADS + 1

    def test_each_thread_with_its_own_handle(self, broker: Broker) -> None:
        """Threads incrementing through their own handles to one named map lose nothing either."""
        host = broker.host

        def setup(i: int) -> int:
            return host.op_open(b"counter", 3)

        def body(i: int, h: int) -> None:
            incr_many(host, h, b"n", self.TIMES)
            host.op_close(h)

        run_together(self.THREADS, setup, body)
        h = host.op_open(b"counter", 1)
        assert host.op_get(h, b"n") == (self.THREADS * self.TIMES).to_bytes(8, "little")
        assert host.handle_count() == 1

    def test_handles_and_references_balance(self, broker: Broker) -> None:
        """Concurrent new/clone/set_map/delete/close leave exactly the maps and handles expected."""
        host = broker.host
        parent = host.op_new()
        rounds = 2000

        def body(i: int, _: None) -> int:
            kept = 0
            for r in range(rounds):
                h = host.op_new()
                view = host.op_clone(h, 1)
                value = f"{i}/{r}".encode()
                host.op_set(h, b"v", value)
                assert host.op_get(view, b"v") == value
                key = f"{i}/{r}".encode()
                host.op_set_map(parent, key, h)
                host.op_close(h)
                host.op_close(view)
                child = host.op_get_map(parent, key)
                assert host.op_get(child, b"v") == value
                host.op_close(child)
                if r % 5:  # drop four in five again; the fifth stays referenced by parent
                    host.op_delete(parent, key)
                else:
                    kept += 1
            return kept

        kept = sum(run_together(self.THREADS, lambda i: None, body))
        assert kept == self.THREADS * rounds // 5
        assert host.op_len(parent) == kept
        assert host.handle_count() == 1
        assert broker.stats()["maps"] == 1 + kept
        host.op_close(parent)  # reclaims the parent and, cascading, every child it kept
        assert broker.stats()["maps"] == 0

    def test_guest_and_host_threads_share_one_counter(self, broker: Broker) -> None:
        """A guest looping in one thread and host threads incrementing one key add up exactly."""
        broker.load("w", WORKER, grants={"tally": "rw"})
        host = broker.host
        h = host.op_open(b"tally", 3)
        rounds, loop = 100, 5000

        def body(i: int, _: None) -> None:
            if i == 0:
                for _ in range(rounds):
                    assert broker.call("w.run", loop) == loop * (loop - 1) // 2
            else:
                incr_many(host, h, b"hits", self.TIMES)

        run_together(self.THREADS, lambda i: None, body)
        expected = rounds * loop + (self.THREADS - 1) * self.TIMES
        assert host.op_incr(h, b"hits", 0) == expected
        assert broker.stats()["handles"] == {"w": 0}
        with pytest.raises(NotFoundError):
            host.op_get(h, b"nothing")
