"""The records of the ownership model (support/model.py): maps, their entries, handles
and modules, and the refusal every rule raises."""

from __future__ import annotations

from dataclasses import dataclass, field

from broker._native import ENTRY_COST
from broker.abi import Errno

READ, WRITE = 1, 2
ALL_RIGHTS = READ | WRITE
MAX_NAME_LEN = 1024
INDEX_BITS, MAX_GENERATION = 21, 1023


class Refused(Exception):
    """An operation the rules refuse, with the errno they give.

    `receiver_full`: a pass refused because the receiving module's handle
    table has no room (that module is at fault, not the giver)."""

    def __init__(self, errno: Errno, *, receiver_full: bool = False) -> None:
        super().__init__(errno.name)
        self.errno = errno
        self.receiver_full = receiver_full


@dataclass(eq=False)
class Map:
    """One map: entries in insertion order, its reference count, and its name if named."""

    serial: int  # creation order, for messages
    name: bytes | None
    refs: int = 0
    entries: dict[bytes, Entry] = field(default_factory=dict)
    alive: bool = True
    native_id: int | None = None  # the core's id for it, learnt through map_id()
    maker: ModuleModel | None = None  # charged MAP_COST while it lives (anonymous maps)

    def __repr__(self) -> str:
        what = f"named {self.name!r}" if self.name is not None else "anonymous"
        return f"<map #{self.serial} {what} refs={self.refs}{'' if self.alive else ' reclaimed'}>"


@dataclass
class Entry:
    """A value under a key (bytes or a map reference), its write number and its last writer."""

    value: bytes | Map
    write: int  # orders versions
    writer: ModuleModel  # charged for the entry's size (docs/abi.md, "Limits and quotas")

    def size(self, key: bytes) -> int:
        """What the entry costs its writer: key + value (a map reference counting as 8)
        + ENTRY_COST."""
        return len(key) + (8 if isinstance(self.value, Map) else len(self.value)) + ENTRY_COST


@dataclass(eq=False)
class Handle:
    """A handle: the map it reaches, the rights it carries, and whether it counts.

    A borrowed handle (`owning=False`) does not count: the lender's does.
    While lent out, a handle is `busy`: it can be neither closed nor moved.
    """

    map: Map
    rights: int
    owning: bool = True
    busy: int = 0  # borrows of it in progress
    live: bool = True
    number: int | None = None  # None until the test learns it (`Model.bind`)

    def __repr__(self) -> str:
        number = "?" if self.number is None else f"{self.number:#x}"
        how = "own" if self.owning else "borrowed"
        state = "" if self.live else " closed"
        return f"<handle {number} {how} rights={self.rights} -> map #{self.map.serial}{state}>"


HandleRef = int | Handle | None  # a number, the model's handle, or a number never issued


@dataclass
class ModuleModel:
    """One module's side: its grants, limits and handle table."""

    name: str
    is_host: bool = False
    grants: dict[bytes, int] = field(default_factory=dict)
    handle_limit: int = 65536
    key_size: int = 4096
    value_size: int = 1 << 20
    live: dict[int, Handle] = field(default_factory=dict)  # live handles by number
    issued: set[int] = field(default_factory=set)  # every number ever given to this module
    unbound: list[Handle] = field(default_factory=list)  # live, number not learnt yet

    def lookup(self, h: HandleRef) -> Handle:
        """The live handle `h`, else BADF (never issued here) or STALE (issued, then closed)."""
        if isinstance(h, Handle):
            if h.live:
                return h
            raise Refused(Errno.STALE)
        if h is not None and h in self.live:
            return self.live[h]
        raise Refused(Errno.STALE if h in self.issued else Errno.BADF)

    def stale(self) -> list[int]:
        return sorted(self.issued - self.live.keys())

    def handles(self) -> list[Handle]:
        """Every live handle, numbered or not."""
        return list(self.live.values()) + self.unbound

    def handle_count(self) -> int:
        return len(self.live) + len(self.unbound)


def well_formed_handle(h: int) -> bool:
    """A number the core may issue: positive, 31 bits, generation 1..1023."""
    return 0 < h < (1 << 31) and 1 <= h >> INDEX_BITS <= MAX_GENERATION
