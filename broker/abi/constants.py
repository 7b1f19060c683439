"""The numbers the C core and Python share (native/abi_gen.h has the C side).

The import module's name, how a handle passes (PassKind) and what a pass
can fail with, the handle number's layout, the `bytes` quota's costs and
the fixed limits.
"""

from __future__ import annotations

import enum

from .errnos import Errno

IMPORT_MODULE = "wasi_map"
DROP_EXPORT = "wasi_map_on_drop"


class PassKind(enum.IntEnum):
    """How a declared export parameter or result passes a handle (docs/ownership.md)."""

    PLAIN = 0
    OWN = 1
    BORROW = 2
    SHARE = 3


PASS_KIND_MASK = 3  # the PassKind bits of a pass code
PASS_READONLY = 4  # the ":r" suffix, or'd into a pass code


# A handle number (docs/abi.md): a slot index in the low HANDLE_INDEX_BITS
# bits, the slot's generation (1..HANDLE_MAX_GEN) above it.
HANDLE_INDEX_BITS = 21
HANDLE_MAX_GEN = 1023


class HandleState(enum.IntEnum):
    """A slot of a module's handle table (a snapshot's `state`)."""

    FREE = 0
    OWN = 1
    BORROW = 2


# What the `bytes` quota charges beyond the key and value bytes: about what
# the data plane really allocates for an entry (its slot, index and
# allocation) and for an anonymous map (its row and its smallest table), so
# that a module's quota bounds its real memory within 2x.
ENTRY_COST = 88  # per live entry, charged to its last writer
MAP_COST = 160  # per live anonymous map, charged to the module whose `new` made it
MAX_NAME_LEN = 1024  # bytes of a map name (UTF-8); longer is INVAL
MAX_MODULES = 65535  # modules of one broker (an entry records its account in 16 bits)
MAX_INSTANCES = 256  # instances of one module (each is a module of the broker)
MAX_HANDLE_ARGS = 64  # handle parameters, or results, of one export

# What a handle passed to another module's export (own, borrow, share) can
# fail with.  A guest caller traps naming the errno; the host gets it as an
# exception.  Checked before anything passes: all the handles pass, or none.
PASS_ERRNOS: tuple[tuple[Errno, str], ...] = (
    (
        Errno.INVAL,
        f"more than {MAX_HANDLE_ARGS} handle parameters in one call (a declaration the manifest"
        " refuses)",
    ),
    (Errno.BADF, "the handle was never issued to the caller"),
    (Errno.STALE, "the handle was closed, or moved away"),
    (Errno.ACCES, "`own` of a borrowed handle: it is not the caller's to give"),
    (
        Errno.BUSY,
        "`own` of a handle lent to a call in progress, the same handle twice in one call where"
        " one pass is `own`, or a handle lent 65,535 times at once",
    ),
    (Errno.QUOTA, "no room in the receiver's handle table: the receiver is at fault"),
)
