"""`HostSide`: what a `MapRef` and a host call need of their broker, and no more.

The host's module in the C core (its handles count like a module's), whether
the broker is closed, what to do after a host operation (take its trace
events, deliver the drop notices of maps it reclaimed), and where a MapRef's
finalizer leaves its handle to be closed.  Its identity tells one broker's
MapRefs from another's.  A leaf (it imports no other part of the broker at
run time), so broker/mapref.py and broker/calls.py need not import
broker/host.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._native import Door, NativeBroker, NativeModule
    from .guard import Guard


class HostSide:
    """The host's side of one broker."""

    __slots__ = ("_native", "_guard", "_after_op")

    def __init__(self, native: NativeBroker, guard: Guard, after_op: Callable[[], None]) -> None:
        self._native = native
        self._guard = guard
        self._after_op = after_op

    @property
    def module(self) -> NativeModule:
        """The host's module in the C core (ConfigError once the broker is closed)."""
        self._guard.check_open()
        return self._native.host

    @property
    def closed(self) -> bool:
        return self._guard.closed

    @property
    def door(self) -> Door:
        """MapRefs' hot path to the host module (native/hostmap.c)."""
        return self._native.door

    def after_op(self) -> None:
        """After an operation that may have reclaimed maps or traced events."""
        self._after_op()

    def release_later(self, handle: int) -> None:
        """A finalizer's handle: closed at the broker's next operation (never a
        call into C from a finalizer, which may run as the broker is freed)."""
        self._native.released.append(handle)
