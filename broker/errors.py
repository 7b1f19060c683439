"""Exceptions: one class per errno, plus traps and configuration errors.

Every exception the library raises is a `MapError`; the base class itself
is never raised.  Errno errors carry `errno` (an `Errno`) and say its name.
"""

from __future__ import annotations

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
    errno = Errno.IO  # type: ignore[assignment]


BY_ERRNO: dict[Errno, type[ErrnoError]] = {
    cls.errno: cls  # type: ignore[misc]
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


class GuestTrap(MapError):
    """A guest trapped; the broker has torn its module down."""

    def __init__(self, module: str, export: str, reason: str) -> None:
        self.module, self.export, self.reason = module, export, reason
        super().__init__(f"{module}.{export}: guest trapped: {reason}")


class ConfigError(MapError):
    """A manifest, module or argument the broker cannot use."""


class ManifestError(ConfigError):
    """A manifest that is not valid: names the file and the key."""


class ModuleError(ConfigError):
    """A Wasm module that cannot be loaded: names the module and the problem."""


class WasmtimeMismatchError(ImportError):
    """The installed wasmtime's C layouts differ from those the C core was built for."""
