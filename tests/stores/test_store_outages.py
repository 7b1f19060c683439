"""A Redis server that goes away: killed with SIGKILL it gives IO promptly, loses
no acknowledged write and is used again once it is back; a command that
meets a broken connection is sent once more, and never counts twice.
"""

from __future__ import annotations

import contextlib
import operator
import re
import socket
import threading
import time

import pytest
import redis
from guest_driver import RW, Driver
from redis_server import RedisServer
from store_ops import CONFLICT, IO, OK, i64, open_m

from broker import Broker
from broker.abi import Errno
from broker.errors import StoreError

CONNECT_TIMEOUT_S = 2.0  # the Redis store's connect timeout (docs/stores.md, Timeouts)


class IncrLoop(threading.Thread):
    """Guest incr's of 1 on one key until stopped; every answer with the time it took."""

    def __init__(self, driver: Driver, handle: int, key: bytes) -> None:
        super().__init__(name="incr-loop", daemon=True)
        self.driver, self.handle, self.key = driver, handle, key
        self.answers: list[tuple[int, int | None, float]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            start = time.monotonic()
            err, value = self.driver.incr(self.handle, self.key, 1)
            self.answers.append((err, value, time.monotonic() - start))

    def count(self, errno: int) -> int:
        return sum(1 for err, _, _ in list(self.answers) if err == errno)

    def wait_for(self, errno: int, n: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count(errno) < n:
            assert self.is_alive(), "the loop died"
            assert time.monotonic() < deadline, f"fewer than {n} answers {Errno(errno).name}"
            time.sleep(0.005)

    def finish(self) -> None:
        self.halt.set()
        self.join(timeout=30)
        assert not self.is_alive(), "a guest call hung"


class TestRedisKilled:
    """kill -9 of the redis-server: IO, then the same broker and guest go on once it is back."""

    def test_kill_mid_run_then_restart(self, own_redis: RedisServer) -> None:
        """IO promptly while down; host StoreError names the URL; no acknowledged incr lost."""
        server = own_redis.start()
        with Broker(store=server.url) as broker:
            driver = Driver(broker, "g", grants={"counters": "rw"})
            err, handle = driver.open(b"counters", RW)
            assert err == OK and handle is not None
            ref = broker.open("counters")

            loop = IncrLoop(driver, handle, b"n")
            loop.start()
            loop.wait_for(OK, 150)
            server.kill()  # while the loop runs: a request may be in flight
            loop.wait_for(IO, 20)
            loop.finish()

            errs = [err for err, _, _ in loop.answers]
            acked = [value for err, value, _ in loop.answers if err == OK]
            first_io = errs.index(IO)
            assert set(errs) == {OK, IO}
            assert set(errs[first_io:]) == {IO}, "an answer came from a dead server"
            assert acked == list(range(1, len(acked) + 1))
            slowest = max(took for err, _, took in loop.answers if err == IO)
            assert slowest < CONNECT_TIMEOUT_S + 1.0, f"an IO answer took {slowest:.2f} s"

            for op in (
                lambda: ref[b"n"],
                lambda: ref.incr(b"n"),
                lambda: operator.setitem(ref, b"x", b"y"),
                lambda: len(ref),
                lambda: list(ref),
            ):
                with pytest.raises(StoreError, match=re.escape(server.url)) as info:
                    op()
                assert info.value.errno == Errno.IO

            server.start()  # same port, same directory: the append-only file is read back
            ios = errs.count(IO)
            err, now = driver.incr(handle, b"n", 0)
            assert err == OK and now is not None
            assert len(acked) <= now <= len(acked) + ios, (len(acked), now, ios)
            for i in range(1, 51):
                assert driver.incr(handle, b"n", 1) == (OK, now + i)
            assert ref.incr(b"n", 0) == now + 50
            ref[b"x"] = b"y"
            assert ref[b"x"] == b"y"

    def test_broker_created_while_redis_is_down(self, own_redis: RedisServer) -> None:
        """A broker whose Redis is not up yet is made; calls give IO until the server starts."""
        server = own_redis
        with Broker(store=server.url) as broker:
            driver = Driver(broker, "g", grants={"counters": "rw"})
            err, handle = driver.open(b"counters", RW)
            assert err == OK and handle is not None  # opening does not touch the store
            start = time.monotonic()
            assert driver.incr(handle, b"n", 1) == (IO, None)
            assert driver.set(handle, b"k", b"v") == IO
            assert driver.get(handle, b"k") == (IO, None)
            assert time.monotonic() - start < 3 * CONNECT_TIMEOUT_S
            with (
                broker.open("counters") as ref,
                pytest.raises(StoreError, match=re.escape(server.url)),
            ):
                ref.incr(b"n")

            server.start()
            assert driver.incr(handle, b"n", 1) == (OK, 1)
            assert driver.set(handle, b"k", b"v") == OK
            assert driver.value(handle, b"k") == b"v"


class CuttingProxy:
    """A TCP relay to a redis-server that can close a connection just before a reply passes.

    The server has then carried out the request; the broker sees a broken
    connection and sends the request once more, on a new connection.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._lock = threading.Lock()
        self._to_cut = 0
        self.cuts = 0
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, name="proxy", daemon=True).start()

    def cut(self, n: int = 1) -> None:
        """Swallow the next `n` replies, each closing the connection it came on."""
        with self._lock:
            self._to_cut += n

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self._socks += [client, server]
            for src, dst, replies in ((client, server, False), (server, client, True)):
                threading.Thread(target=self._relay, args=(src, dst, replies), daemon=True).start()

    def _relay(self, src: socket.socket, dst: socket.socket, replies: bool) -> None:
        try:
            while data := src.recv(65536):
                if replies:
                    with self._lock:
                        if self._to_cut:
                            self._to_cut -= 1
                            self.cuts += 1
                            break
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class TestRedisResend:
    """A command that meets a broken connection is sent once more, and never counts twice."""

    def test_a_restart_between_calls_is_invisible(self, own_redis: RedisServer) -> None:
        """The broker's connection died with the old server: the next call still answers OK."""
        server = own_redis.start()
        with Broker(store=server.url) as broker:
            driver, handle = open_m(broker)
            assert driver.incr(handle, b"n", 1) == (OK, 1)
            server.kill()
            server.start()
            assert driver.incr(handle, b"n", 1) == (OK, 2)
            admin = redis.Redis(port=server.port)
            try:
                assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
            finally:
                admin.close()
            assert driver.incr(handle, b"n", 1) == (OK, 3)
            assert driver.get(handle, b"n") == (OK, i64(3))

    def test_a_lost_reply_does_not_apply_twice(self, redis_server: RedisServer) -> None:
        """incr and set_if whose reply is lost are resent: OK, and applied exactly once."""
        redis_server.flush()
        proxy = CuttingProxy(redis_server.port)
        try:
            with Broker(store=proxy.url) as broker:
                driver, handle = open_m(broker)
                assert driver.incr(handle, b"n", 1) == (OK, 1)  # its script is loaded now

                proxy.cut()
                assert driver.incr(handle, b"n", 1) == (OK, 2)
                assert proxy.cuts == 1
                assert driver.incr(handle, b"n", 0) == (OK, 2)

                assert driver.set_if(handle, b"n", b"!", 1 << 40) == CONFLICT  # its script loaded
                _, version = driver.version(handle, b"n")
                assert version is not None
                proxy.cut()
                assert driver.set_if(handle, b"n", i64(100), version) == OK  # not CONFLICT
                assert proxy.cuts == 2
                assert driver.get(handle, b"n") == (OK, i64(100))

                proxy.cut(2)  # the resend's reply is lost too: IO, though it was done once
                assert driver.incr(handle, b"n", 1) == (IO, None)
                assert proxy.cuts == 4
                assert driver.incr(handle, b"n", 0) == (OK, 101)

                assert driver.set_many(handle, [(b"a", b"0")]) == OK
                proxy.cut()
                assert driver.set_many(handle, [(b"a", b"1"), (b"b", b"2")]) == OK
                assert driver.list_keys(handle) == [b"n", b"a", b"b"]
                assert driver.get_many(handle, [b"a", b"b"]) == (OK, [b"1", b"2"])
        finally:
            proxy.close()

    def test_a_lost_reply_to_a_write_does_not_apply_twice(self, redis_server: RedisServer) -> None:
        """set and set_many whose reply is lost are resent and applied once: the
        versions move as for one write (a second application would take new
        ones, and could undo a set_if another client made in between)."""
        redis_server.flush()
        proxy = CuttingProxy(redis_server.port)
        try:
            with Broker(store=proxy.url) as broker:
                driver, handle = open_m(broker)
                assert driver.set(handle, b"k", b"a") == OK  # its script is loaded now
                _, before = driver.version(handle, b"k")
                assert before is not None
                proxy.cut()
                assert driver.set(handle, b"k", b"b") == OK
                assert proxy.cuts == 1
                assert driver.version(handle, b"k") == (OK, before + 1)

                assert driver.set_many(handle, [(b"x", b"0"), (b"y", b"0")]) == OK
                _, y = driver.version(handle, b"y")
                assert y is not None
                proxy.cut()
                assert driver.set_many(handle, [(b"x", b"1"), (b"y", b"2")]) == OK
                assert driver.version(handle, b"y") == (OK, y + 2)

                proxy.cut()
                assert driver.delete(handle, b"k") == OK
                assert driver.get(handle, b"k") == (Errno.NOENT, None)
                assert driver.set(handle, b"k", b"c") == OK
                assert driver.version(handle, b"k") == (OK, y + 3)  # delete takes none
        finally:
            proxy.close()
