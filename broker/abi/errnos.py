"""The ABI's errnos, what each means, and the rights bits a handle carries.

Fixed numbers: guests compare them, and native/abi_gen.h and the guest
header are generated from these enums (broker/abi/codegen.py).
"""

from __future__ import annotations

import enum


class Errno(enum.IntEnum):
    """Errno values every ABI function returns (fixed: guests compare the numbers)."""

    OK = 0
    BADF = 1
    STALE = 2
    NOENT = 3
    ACCES = 4
    FAULT = 5
    RANGE = 6
    INVAL = 7
    BUSY = 8
    QUOTA = 9
    TOOBIG = 10
    CONFLICT = 11
    TYPE = 12
    IO = 13


ERRNO_MEANING: dict[Errno, str] = {
    Errno.OK: "success",
    Errno.BADF: "not a handle of this module (never issued to it)",
    Errno.STALE: "a handle this module had, but it was closed or moved away",
    Errno.NOENT: "key absent",
    Errno.ACCES: "right missing, name not granted, or more rights than the grant",
    Errno.FAULT: "a pointer/length pair outside the guest's memory",
    Errno.RANGE: "output buffer too small (needed size written where the call says)",
    Errno.INVAL: "bad argument: unknown rights bits, malformed batch, bad name",
    Errno.BUSY: "the handle is lent to a call in progress",
    Errno.QUOTA: "a module limit reached (handles, bytes, entries)",
    Errno.TOOBIG: "key or value over the configured size limit",
    Errno.CONFLICT: "set_if version mismatch",
    Errno.TYPE: "map reference where bytes were expected, or the reverse",
    Errno.IO: "the backing store failed; the operation did not happen",
}


class Rights(enum.IntFlag):
    """Rights bits carried by a handle."""

    NONE = 0
    READ = 1
    WRITE = 2


RIGHTS_ALL = Rights.READ | Rights.WRITE


def parse_rights(text: object) -> Rights:
    """'r', 'w' or 'rw' (either order) as Rights; ValueError otherwise."""
    if (
        not isinstance(text, str)
        or not text
        or set(text) - {"r", "w"}
        or len(set(text)) != len(text)
    ):
        raise ValueError(f"rights must be 'r', 'w' or 'rw', not {text!r}")
    rights = Rights.NONE
    if "r" in text:
        rights |= Rights.READ
    if "w" in text:
        rights |= Rights.WRITE
    return rights
