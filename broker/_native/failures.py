"""How a store's failure gets from the C core's store function to what is raised.

The store function (store_door.wm_py_store) runs inside a C call and can
hand C only an errno, so it leaves the StoreFailure in this thread's slot,
as wasmtime-py leaves a callback's exception in its LAST_EXCEPTION.  The
rule, for every entry into C that can reach the store: clear the slot
before, take it right after (`reach_store`, or a `StoreReach` block for
entries through wasmtime-py itself, such as instantiating), and pass the
failure on as a value; what is raised for it has the StoreError as its
`__cause__` (`check`).  So nothing is left on the thread once the entry
returns or raises, and no later error is blamed on an earlier failure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .. import abi
from ..errors import StoreFailure, error_for


class _Slot(threading.local):
    failure: StoreFailure | None = None  # set by the store function, taken by the entry
    host_error: BaseException | None = None  # set by a host function's door (hostfn_door.py)


_slot = _Slot()


def record(failure: StoreFailure) -> None:
    """The store function's side: why the store could not answer (IO)."""
    _slot.failure = failure


def reach_store(fn: Callable[..., int], *args: Any) -> tuple[int, StoreFailure | None]:
    """Call the C function `fn(*args)`: its errno, and the store's failure during it."""
    _slot.failure = None
    try:
        err = fn(*args)
    finally:
        failure, _slot.failure = _slot.failure, None
    return int(err), failure


def take_failure() -> StoreFailure | None:
    """The store's failure during an entry into C that did not go through
    `reach_store` (the host MapRef's hot path, native/hostmap.c)."""
    failure, _slot.failure = _slot.failure, None
    return failure


def record_host_error(error: BaseException) -> None:
    """A host function's side: the exception that trapped its guest.  The same
    rule as a store's failure: the entry into C clears it before and takes it
    right after (`NativeLink.call`, a `StoreReach` block)."""
    _slot.host_error = error


def clear_host_error() -> None:
    _slot.host_error = None


def take_host_error() -> BaseException | None:
    """The exception a host function raised during the entry into C that just returned."""
    error, _slot.host_error = _slot.host_error, None
    return error


class StoreReach:
    """A block that can reach the store through wasmtime-py; `failure` after it."""

    failure: StoreFailure | None = None
    host_error: BaseException | None = None  # what a host function raised in the block

    def __enter__(self) -> StoreReach:
        _slot.failure = _slot.host_error = None
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.failure, _slot.failure = _slot.failure, None
        self.host_error = take_host_error()


def check(err: int, what: str, failure: StoreFailure | None) -> None:
    """Raise the exception for errno `err` (none for OK), caused by the store's failure."""
    if err:
        if err == abi.Errno.IO:
            what = f"{what}: {failure.message if failure else 'the store failed'}"
        raise error_for(err, what) from (failure.error if failure else None)


def left_on_thread() -> StoreFailure | None:
    """What this thread's slot holds: None whenever no entry into C is running."""
    return _slot.failure
