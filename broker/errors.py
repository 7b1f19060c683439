"""Exceptions: one class per errno, plus traps and configuration errors.

Every exception the library raises is a `MapError`; the base class itself
is never raised.  Errno errors carry `errno` (an `Errno`) and say its name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .abi import Errno


class MapError(Exception):
    """Base class of every wasi-map error (never raised itself)."""

    errno: Errno | None = None


class ErrnoError(MapError):
    """An ABI operation answered with an errno other than OK."""

    def __init__(self, message: str = "") -> None:
        assert self.errno is not None
        text = f"{self.errno.name}: {message}" if message else self.errno.name
        super().__init__(text)


class BadHandleError(ErrnoError):
    errno = Errno.BADF


class StaleHandleError(ErrnoError):
    errno = Errno.STALE


class NotFoundError(ErrnoError, KeyError):
    errno = Errno.NOENT

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else self.__class__.__name__


class AccessError(ErrnoError):
    errno = Errno.ACCES


class FaultError(ErrnoError):
    errno = Errno.FAULT


class BufferTooSmallError(ErrnoError):
    errno = Errno.RANGE


class InvalidArgumentError(ErrnoError, ValueError):
    errno = Errno.INVAL


class BusyError(ErrnoError):
    errno = Errno.BUSY


class QuotaError(ErrnoError):
    errno = Errno.QUOTA


class TooBigError(ErrnoError, ValueError):
    errno = Errno.TOOBIG


class ConflictError(ErrnoError):
    errno = Errno.CONFLICT


class ValueTypeError(ErrnoError, TypeError):
    errno = Errno.TYPE


class StoreError(ErrnoError, OSError):
    errno = Errno.IO


BY_ERRNO: dict[Errno, type[ErrnoError]] = {
    cls.errno: cls
    for cls in (
        BadHandleError,
        StaleHandleError,
        NotFoundError,
        AccessError,
        FaultError,
        BufferTooSmallError,
        InvalidArgumentError,
        BusyError,
        QuotaError,
        TooBigError,
        ConflictError,
        ValueTypeError,
        StoreError,
    )
}


def error_for(errno: int, message: str = "") -> ErrnoError:
    """The exception for a non-OK errno."""
    return BY_ERRNO[Errno(errno)](message)


_CHAIN_NUMBER = re.compile(r"^\d+: ")  # wasmtime numbers the causes of a chain


def error_chain(message: str) -> list[str]:
    """wasmtime's error message as a list: the error, then its causes.

    wasmtime writes the causes under "Caused by:", numbered ("0: ...",
    "1: ...") when there are several; the numbers are its layout, not
    part of any reason, and are dropped.  A backtrace is not kept (it is
    in the message, for `GuestTrap.details`)."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if "Caused by:" not in lines:
        return lines[-1:]
    at = lines.index("Caused by:")
    return lines[:1] + [_CHAIN_NUMBER.sub("", line, count=1) for line in lines[at + 1 :]]


def trap_reason(message: str) -> str:
    """The one line that says why wasmtime trapped (its message adds a backtrace)."""
    chain = error_chain(message)
    reason = chain[-1] if chain else "trap"
    return reason.removeprefix("wasm trap: ")


@dataclass(frozen=True)
class StoreFailure:
    """One operation on a named map that the store could not answer.

    `error` is the `StoreError` saying why (its message begins with the
    store's URL, password as ***); `url` is that URL, `map` the map's name,
    `op` the operation (get, set, incr, ...), `module` the module whose call
    it was ("host" for host code), and `count` the number of operations of
    this broker's store that have failed so far, this one included.
    """

    error: StoreError
    url: str
    map: str
    op: str
    module: str
    count: int

    @property
    def message(self) -> str:
        """Why, as the store said it (the URL first)."""
        return str(self.error).removeprefix(f"{Errno.IO.name}: ")

    def __str__(self) -> str:
        return f"{self.op} on map {self.map!r} from {self.module}: {self.message}"


class GuestTrap(MapError):
    """A guest trapped; the broker has torn down the module it began in.

    `module`/`export` name the call the host made; `origin` the module where
    the trap began (the same module, or one it called).  `reason` is one
    line; `details` is wasmtime's whole message (with the backtrace).  When
    the store failed during the call (the guest got IO, then trapped),
    `store_failure` says how, the message ends with it, and its `StoreError`
    is the trap's `__cause__`.
    """

    def __init__(
        self,
        module: str,
        export: str,
        details: str,
        origin: str | None = None,
        store_failure: StoreFailure | None = None,
    ) -> None:
        self.module, self.export, self.details = module, export, details
        self.origin = origin or module
        self.reason = trap_reason(details)
        self.store_failure = store_failure
        where = f" in module {origin}" if origin and origin != module else ""
        text = f"{module}.{export}: guest trapped{where}: {self.reason}"
        if store_failure is not None:
            text += f" (the store failed during the call: {store_failure})"
            self.__cause__ = store_failure.error
        super().__init__(text)


class ConfigError(MapError):
    """A manifest, module or argument the broker cannot use."""


class ManifestError(ConfigError):
    """A manifest that is not valid: names the file and the key."""


class ModuleError(ConfigError):
    """A Wasm module that cannot be loaded: names the module and the problem."""


class WasmtimeMismatchError(ImportError):
    """The installed wasmtime's C layouts differ from those the C core was built for."""


class StaleCoreError(WasmtimeMismatchError):
    """The compiled C core was built from other sources than the Python beside it."""
