"""Size limits and per-module quotas, with their defaults."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from .abi import HANDLE_INDEX_BITS

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30

# Hard ceilings: a limit above these is a configuration error.
MAX_KEY_SIZE = 1 << 30
MAX_VALUE_SIZE = 1 << 30
MAX_HANDLES = (1 << HANDLE_INDEX_BITS) - 1  # the handle index space
ON_QUOTA = ("error", "trap")
MAX_TIME_MS = (1 << 32) - 1  # about 49 days
MAX_LINEAR_MEMORY = 1 << 48  # bytes: far beyond any real machine, still finite
MAX_TABLE_ELEMENTS = (1 << 32) - 1


# The largest value each numeric limit may take (0 is the smallest).
CEILINGS: dict[str, int] = {
    "key_size": MAX_KEY_SIZE,
    "value_size": MAX_VALUE_SIZE,
    "handles": MAX_HANDLES,
    "bytes": (1 << 63),
    "entries": (1 << 63),
    "watches": (1 << 32) - 1,
    "time_ms": MAX_TIME_MS,
    "linear_memory": MAX_LINEAR_MEMORY,
    "table_elements": MAX_TABLE_ELEMENTS,
}


@dataclass(frozen=True)
class LimitDoc:
    """What a limit bounds and what happens when it is reached (for the reference)."""

    unit: str
    bounds: str
    reached: str


LIMIT_DOCS: dict[str, LimitDoc] = {
    "key_size": LimitDoc("bytes", "the length of every key argument, reads included", "`TOOBIG`"),
    "value_size": LimitDoc("bytes", "the length of every value written", "`TOOBIG`"),
    "handles": LimitDoc("handles", "the module's live handles (owning and borrowed)", "`QUOTA`"),
    "bytes": LimitDoc(
        "bytes",
        "memory charged to the module: each entry it last wrote (key + value + 88) and each"
        " anonymous map it made (160)",
        "`QUOTA`",
    ),
    "entries": LimitDoc("entries", "entries the module last wrote that are still live", "`QUOTA`"),
    "watches": LimitDoc(
        "registrations", "the module's pending `watch_drop` registrations", "`QUOTA`"
    ),
    "on_quota": LimitDoc(
        "—", "what a quota reached does", '"trap": the guest traps instead of `QUOTA`'
    ),
    "time_ms": LimitDoc(
        "milliseconds",
        "wall-clock time of each call into the module (0: no limit)",
        "the call traps; the module is torn down",
    ),
    "linear_memory": LimitDoc(
        "bytes",
        "the module's linear memory",
        "`memory.grow` returns -1; a bigger minimum fails the load",
    ),
    "table_elements": LimitDoc(
        "elements",
        "each of the module's tables",
        "`table.grow` returns -1; a bigger minimum fails the load",
    ),
}


@dataclass(frozen=True)
class Limits:
    """Limits for one module (or, for the host, just the two size limits).

    Defaults are above Spin's minimums (keys 256 B, values 1 MiB, 1024
    entries).  `bytes` and `entries` count the live data a module has
    written, in any map, charged to the last writer of each entry.
    `time_ms` bounds every call into the module (0: no limit);
    `linear_memory` (bytes) its linear memory and `table_elements` each of
    its tables: growth past them fails, a module that needs more at start
    does not load.
    """

    key_size: int = 4 * KIB
    value_size: int = 1 * MIB
    handles: int = 65536
    bytes: int = 256 * MIB
    entries: int = 1 << 20
    watches: int = 65536  # pending watch_drop registrations
    on_quota: str = "error"  # "trap": hitting a quota traps the guest
    time_ms: int = 10_000  # wall-clock milliseconds per call into the module
    linear_memory: int = 256 * MIB
    table_elements: int = 1_000_000

    def __post_init__(self) -> None:
        for name, ceiling in CEILINGS.items():
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= ceiling:
                raise ValueError(f"limit {name} must be an integer in 0..{ceiling}, got {value!r}")
        if self.on_quota not in ON_QUOTA:
            raise ValueError(f"limit on_quota must be one of {ON_QUOTA}, got {self.on_quota!r}")

    def merged(self, overrides: dict[str, Any]) -> Limits:
        """These limits with some fields replaced (unknown names are a ValueError)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown limit {unknown[0]!r} (known: {', '.join(sorted(known))})")
        return replace(self, **overrides)


DEFAULT_LIMITS = Limits()
