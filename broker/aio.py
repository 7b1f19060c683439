"""The broker's worker threads: `Broker.call_async` runs a call there, off the event loop.

A guest call blocks its thread until the export returns (the C core and
wasmtime release the GIL meanwhile), so an asyncio program hands it to a
thread and awaits the result.  `Workers` is that thread pool, one per
broker: made on the first `call_async`, shut down by `Broker.close`.  It
does not know how calls are scheduled inside the broker (one at a time
under the broker's lock, or in parallel): it only moves them off the loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .errors import ConfigError
from .names import shown_name

T = TypeVar("T")

#: ThreadPoolExecutor's own default: the cores plus a few, for calls that
#: wait on a store (sqlite, Redis) rather than compute; never more than 32.
DEFAULT_WORKERS = min(32, (os.cpu_count() or 1) + 4)
THREAD_NAME = "wasi-map-worker"


def worker_count(workers: object) -> int:
    """The pool's size from `Broker(workers=...)`: None for the default, else an int >= 1."""
    if workers is None:
        return DEFAULT_WORKERS
    if type(workers) is not int or workers < 1:
        raise ConfigError(f"workers must be an integer of at least 1, not {shown_name(workers)}")
    return workers


class Workers:
    """A broker's thread pool for calls from asyncio; made when first used."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False
        self._lock = threading.Lock()  # the pool is made once, even from two threads

    @property
    def started(self) -> bool:
        """Threads exist: a call was made and the pool is not shut down yet."""
        return self._pool is not None

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._closed:
                raise ConfigError("the broker is closed")
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.size, thread_name_prefix=THREAD_NAME)
            return self._pool

    def _guarded(self, fn: Callable[..., T], *args: Any) -> T:
        """On a worker: refuse a call that waited in the queue while the broker closed."""
        if self._closed:
            raise ConfigError("the broker is closed")
        return fn(*args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on a worker thread, with the caller's context variables; its result.

        Cancelling the awaiting task does not stop a call already running:
        it runs to its end and its result is dropped."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()  # structlog's bound values, and the like
        call = functools.partial(context.run, self._guarded, fn, *args)
        return await loop.run_in_executor(self._executor(), call)

    def shutdown(self) -> None:
        """Refuse new calls, fail queued ones (ConfigError), wait for running ones."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
