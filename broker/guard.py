"""A broker's locks and lifetime, shared by its parts (broker/host.py).

Guest calls from many threads run at once, each in an instance of its
own (native/pool.c); what they must not overlap with is a change of the
loaded modules.  So calls pass the broker's *gate* shared, and load,
unload and close pass it exclusive: those wait for the calls in flight to
end, and calls that come meanwhile wait for them.  `lock` guards the
Python bookkeeping (which instances are torn down, the host's links, drop
notices) for moments, never around guest code.  A broker is refused once
closed, and in a forked child (its locks may be held by threads the child
does not have, and wasmtime's compiler threads are gone).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from ._native import NativeBroker


class _ThisThread(threading.local):
    shared = 0  # this thread's passes through the gate, shared
    exclusive = 0  # ... and exclusive
    running = 0  # guest code this thread runs (a store or callback inside it is nested)


class Gate:
    """Calls pass shared, changes of the loaded modules exclusive; a thread
    that is already through may pass again (a call from a store callback
    inside a call, or inside a load's start function).  A waiting exclusive
    pass goes before new shared ones."""

    def __init__(self, mine: _ThisThread) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._shared = 0
        self._exclusive = False
        self._waiting = 0  # exclusive passes waiting
        self._mine = mine

    def enter_shared(self) -> None:
        mine = self._mine
        if not (mine.shared or mine.exclusive):
            with self._cond:
                while self._exclusive or self._waiting:
                    self._cond.wait()
                self._shared += 1
        mine.shared += 1

    def leave_shared(self) -> None:
        mine = self._mine
        mine.shared -= 1
        if not (mine.shared or mine.exclusive):
            with self._cond:
                self._shared -= 1
                if not self._shared:
                    self._cond.notify_all()

    @contextmanager
    def shared(self) -> Iterator[None]:
        self.enter_shared()
        try:
            yield
        finally:
            self.leave_shared()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        mine = self._mine
        if not mine.exclusive:
            with self._cond:
                self._waiting += 1
                try:
                    while self._shared or self._exclusive:
                        self._cond.wait()
                finally:
                    self._waiting -= 1
                self._exclusive = True
        mine.exclusive += 1
        try:
            yield
        finally:
            mine.exclusive -= 1
            if not mine.exclusive:
                with self._cond:
                    self._exclusive = False
                    self._cond.notify_all()


class Guard:
    """The gate, the lock, whether the broker is closed, and whether this
    thread is running guest code."""

    def __init__(self, native: NativeBroker) -> None:
        self.lock = threading.RLock()
        self._mine = _ThisThread()
        self.gate = Gate(self._mine)
        self.closed = False
        self._native = native
        self._pid = os.getpid()  # a forked child gets a copy it cannot use

    @property
    def running(self) -> int:
        """Guest calls running on this thread (nested ones count): a store or
        callback inside one must not load, unload or close, nor deliver
        notices in the middle of the guest's call."""
        return self._mine.running

    @property
    def forked(self) -> bool:
        """This is a forked child's copy: the parent owns the state."""
        return os.getpid() != self._pid

    def check_open(self) -> None:
        """Refuse a closed or forked broker; close what MapRef finalizers left."""
        if self.closed:
            raise ConfigError("the broker is closed")
        if self.forked:
            raise ConfigError(
                "this Broker was made before a fork, in another process: "
                "make a new Broker in this one"
            )
        if self._native.released:
            self._native.close_released()

    @contextmanager
    def guest(self) -> Iterator[None]:
        """Around guest code this thread runs."""
        self._mine.running += 1
        try:
            yield
        finally:
            self._mine.running -= 1

    @contextmanager
    def changing(self, what: str) -> Iterator[None]:
        """Around a change of the loaded modules (`what`: "load 'x'", "close"):
        refused from inside a guest call on this thread, else once no call is
        in flight; the lock is held."""
        self.refuse_inside_a_call(what)
        if self._mine.shared:
            raise ConfigError(f"{what}: not while this thread is inside a call")
        with self.gate.exclusive(), self.lock:
            yield

    def refuse_inside_a_call(self, what: str) -> None:
        """Refuse what would free a running guest's store or module."""
        if self._mine.running:
            raise ConfigError(
                f"{what}: not while a guest call is running on this thread "
                "(from a store or callback inside it)"
            )
