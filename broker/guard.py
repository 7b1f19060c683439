"""A broker's lock and lifetime, shared by its parts (broker/host.py).

Calls into wasmtime (whose stores are single-threaded) are serialised by
one re-entrant lock; the C core has its own.  A broker is refused once
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


class Guard:
    """The lock, whether the broker is closed, and whether guest code is running."""

    def __init__(self, native: NativeBroker) -> None:
        self.lock = threading.RLock()
        self.closed = False
        # Guest code running under the lock (on the thread that holds it): a
        # store or callback inside it must not unload, load or close, nor
        # deliver notices in the middle of the guest's call.
        self.running = 0
        self._native = native
        self._pid = os.getpid()  # a forked child gets a copy it cannot use

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
        """Around guest code this thread runs with the lock held."""
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1

    def refuse_inside_a_call(self, what: str) -> None:
        """Lock held: refuse what would free a running guest's store or module."""
        if self.running:
            raise ConfigError(
                f"{what}: not while a guest call is running on this thread "
                "(from a store or callback inside it)"
            )
