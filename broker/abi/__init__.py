"""The wasi-map guest ABI, declared once: functions, errnos, rights.

One package, a module per job: errnos.py (errnos and rights), constants.py
(the numbers C and Python share), declaration.py (how a function is
declared), functions.py (every function), batch.py (the batch buffer
formats) and codegen.py, which writes the C registration table
(`native/abi_gen.h`), the guest bindings' generated halves and the Node.js
host's table: `python -m broker.abi`.  (codegen is not imported here: it
reads broker/limits.py, which reads this package.)  The `check` command and the ABI tables of
docs/abi.md and docs/reference/functions.md (`python -m broker.docgen`)
read it too.  Tests fail when any of them drifts, and when a function's
declared errnos stop matching the C core's return paths.
"""

from .batch import ABSENT, pack_items, pack_keys, unpack_records
from .constants import (
    DROP_EXPORT,
    ENTRY_COST,
    HANDLE_INDEX_BITS,
    HANDLE_MAX_GEN,
    IMPORT_MODULE,
    MAP_COST,
    MAX_HANDLE_ARGS,
    MAX_INSTANCES,
    MAX_MODULES,
    MAX_NAME_LEN,
    PASS_ERRNOS,
    PASS_KIND_MASK,
    PASS_READONLY,
    HandleState,
    PassKind,
)
from .declaration import AbiFunction, Param, Shape, Span, declare
from .errnos import ERRNO_MEANING, RIGHTS_ALL, Errno, Rights, parse_rights
from .functions import BY_NAME, FUNCTIONS, IMPLEMENTED

__all__ = [
    "ABSENT",
    "BY_NAME",
    "DROP_EXPORT",
    "ENTRY_COST",
    "ERRNO_MEANING",
    "FUNCTIONS",
    "HANDLE_INDEX_BITS",
    "HANDLE_MAX_GEN",
    "IMPLEMENTED",
    "IMPORT_MODULE",
    "MAP_COST",
    "MAX_HANDLE_ARGS",
    "MAX_INSTANCES",
    "MAX_MODULES",
    "MAX_NAME_LEN",
    "PASS_ERRNOS",
    "PASS_KIND_MASK",
    "PASS_READONLY",
    "RIGHTS_ALL",
    "AbiFunction",
    "Errno",
    "HandleState",
    "Param",
    "PassKind",
    "Rights",
    "Shape",
    "Span",
    "declare",
    "pack_items",
    "pack_keys",
    "parse_rights",
    "unpack_records",
]
