"""A pure-Python model of the ownership rules: the oracle `test_model.py` checks the C core against.

It is written to be read.  Every rule comes from spec section 2 and
docs/abi.md ("Order of checks", "Handles", "Rights", "Lifetime"):

- A map's count = owning handles to it in any module + `set_map`
  references stored in live maps + 1 while it is named.  At zero it is
  reclaimed at once, and the maps it referenced lose one reference each,
  cascading.  There is no cycle collector yet: a map whose count is above
  zero is alive, even when nothing outside its cycle reaches it.
- Handles are per module.  A number the module was never given is `BADF`;
  one it was given and has since closed is `STALE`.
- Checks come in a fixed order: `INVAL` (argument values) -> `BADF`/`STALE`
  (the handle, and for `set_map` the child handle) -> `ACCES` -> `TOOBIG`
  -> the operation's own answers (`NOENT`, `TYPE`, `QUOTA`).

The model never chooses handle numbers: the machine passes in the number
the core issued (`issued=`), and the model checks it is well formed and
has never been issued to that module before.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from broker.abi import Errno

READ, WRITE = 1, 2
ALL_RIGHTS = READ | WRITE
MAX_NAME_LEN = 1024
INDEX_BITS, MAX_GENERATION = 21, 1023


class Refused(Exception):
    """An operation the rules refuse, with the errno they give."""

    def __init__(self, errno: Errno) -> None:
        super().__init__(errno.name)
        self.errno = errno


@dataclass(eq=False)
class Map:
    """One map: entries in insertion order, its reference count, and its name if named."""

    serial: int  # creation order, for messages
    name: bytes | None
    refs: int = 0
    entries: dict[bytes, Entry] = field(default_factory=dict)
    alive: bool = True
    native_id: int | None = None  # the core's id for it, learnt through map_id()

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
        """What the entry costs its writer: key + value, a map reference counting as 8."""
        return len(key) + (8 if isinstance(self.value, Map) else len(self.value))


@dataclass
class Handle:
    """An owning handle: the map it reaches and the rights it carries."""

    map: Map
    rights: int


@dataclass
class ModuleModel:
    """One module's side: its grants, limits and handle table."""

    name: str
    is_host: bool = False
    grants: dict[bytes, int] = field(default_factory=dict)
    handle_limit: int = 65536
    key_size: int = 4096
    value_size: int = 1 << 20
    live: dict[int, Handle] = field(default_factory=dict)
    issued: set[int] = field(default_factory=set)  # every number ever given to this module

    def lookup(self, h: int) -> Handle:
        """The live handle `h`, else BADF (never issued here) or STALE (issued, then closed)."""
        if h in self.live:
            return self.live[h]
        raise Refused(Errno.STALE if h in self.issued else Errno.BADF)

    def stale(self) -> list[int]:
        return sorted(self.issued - self.live.keys())


def well_formed_handle(h: int) -> bool:
    """A number the core may issue: positive, 31 bits, generation 1..1023."""
    return 0 < h < (1 << 31) and 1 <= h >> INDEX_BITS <= MAX_GENERATION


def _i64(n: int) -> int:
    return (n + (1 << 63)) % (1 << 64) - (1 << 63)


class Model:
    """Maps, modules and the rules that tie them together."""

    def __init__(self) -> None:
        self.modules: list[ModuleModel] = []
        self.maps: list[Map] = []  # every map ever created, reclaimed ones included
        self.names: dict[bytes, Map] = {}
        self.writes = 0  # write order: versions must increase along it
        self.observed_versions: dict[int, int] = {}  # write number -> version the core reported

    def add_module(self, module: ModuleModel) -> ModuleModel:
        self.modules.append(module)
        return module

    # --- counting and reclaiming --------------------------------------------

    def _create(self, name: bytes | None) -> Map:
        m = Map(serial=len(self.maps), name=name)
        self.maps.append(m)
        return m

    def _incref(self, m: Map) -> None:
        assert m.alive, f"{m} gained a reference after it was reclaimed"
        m.refs += 1

    def _release(self, m: Map) -> None:
        """One reference less; at zero reclaim the map and release its references, cascading."""
        pending = [m]
        while pending:
            m = pending.pop()
            m.refs -= 1
            if m.refs == 0:
                m.alive = False
                pending += [e.value for e in m.entries.values() if isinstance(e.value, Map)]
                m.entries.clear()

    def live_anonymous(self) -> int:
        return sum(1 for m in self.maps if m.alive and m.name is None)

    def usage(self, mod: ModuleModel) -> tuple[int, int]:
        """(bytes, entries) that `mod` wrote last and that are still live."""
        mine = [
            (k, e) for m in self.maps if m.alive for k, e in m.entries.items() if e.writer is mod
        ]
        return sum(e.size(k) for k, e in mine), len(mine)

    # --- handles --------------------------------------------------------------

    def _issue(self, mod: ModuleModel, issued: int | None, m: Map, rights: int) -> int | None:
        """Record the new owning handle the core gave out (None: the core refused)."""
        if issued is None:
            return None  # the errnos disagree; the machine reports that
        assert well_formed_handle(issued), (
            f"{mod.name}: the core issued a malformed handle {issued:#x}"
        )
        assert issued not in mod.issued, f"{mod.name}: the core issued handle {issued:#x} twice"
        mod.issued.add(issued)
        mod.live[issued] = Handle(m, rights)
        self._incref(m)
        return issued

    @staticmethod
    def _check_rights_bits(rights: int) -> None:
        if rights & ~ALL_RIGHTS:
            raise Refused(Errno.INVAL)

    @staticmethod
    def _check_handle_quota(mod: ModuleModel) -> None:
        if len(mod.live) >= mod.handle_limit:
            raise Refused(Errno.QUOTA)

    @staticmethod
    def _resolve(mod: ModuleModel, h: int, needs: int) -> Handle:
        handle = mod.lookup(h)
        if handle.rights & needs != needs:
            raise Refused(Errno.ACCES)
        return handle

    @staticmethod
    def _check_sizes(mod: ModuleModel, key: bytes, value_len: int = 0) -> None:
        if len(key) > mod.key_size or value_len > mod.value_size:
            raise Refused(Errno.TOOBIG)

    # --- the operations (each raises Refused or returns its result) --------

    def open(self, mod: ModuleModel, name: bytes, rights: int, issued: int | None) -> int | None:
        self._check_rights_bits(rights)
        if not 1 <= len(name) <= MAX_NAME_LEN:
            raise Refused(Errno.INVAL)
        try:
            name.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(Errno.INVAL) from None
        if not mod.is_host:  # the host opens any name
            grant = mod.grants.get(name)
            if grant is None or rights & ~grant:
                raise Refused(Errno.ACCES)
        self._check_handle_quota(mod)
        m = self.names.get(name)
        if m is None:  # created on first open; the name holds one reference for ever
            m = self.names[name] = self._create(name)
            m.refs = 1
        return self._issue(mod, issued, m, rights)

    def new(self, mod: ModuleModel, issued: int | None) -> int | None:
        self._check_handle_quota(mod)
        return self._issue(mod, issued, self._create(None), ALL_RIGHTS)

    def close(self, mod: ModuleModel, h: int) -> None:
        handle = mod.lookup(h)
        del mod.live[h]
        self._release(handle.map)

    def clone(self, mod: ModuleModel, h: int, rights: int, issued: int | None) -> int | None:
        self._check_rights_bits(rights)
        handle = self._resolve(mod, h, rights)  # attenuation: a subset of h's rights
        self._check_handle_quota(mod)
        return self._issue(mod, issued, handle.map, rights)

    def close_all(self, mod: ModuleModel) -> None:
        """Module teardown: every handle closed as if by `close`."""
        for h in sorted(mod.live):
            self.close(mod, h)

    def get(self, mod: ModuleModel, h: int, key: bytes) -> bytes:
        m = self._resolve(mod, h, READ).map
        self._check_sizes(mod, key)
        entry = m.entries.get(key)
        if entry is None:
            raise Refused(Errno.NOENT)
        if isinstance(entry.value, Map):
            raise Refused(Errno.TYPE)
        return entry.value

    def _write(self, mod: ModuleModel, m: Map, key: bytes, value: bytes | Map) -> None:
        """Store a value (re-setting a key keeps its place); release what it replaces."""
        old = m.entries.get(key)
        if isinstance(value, Map):
            self._incref(value)  # before the old value goes: it may be the same map
        self.writes += 1
        m.entries[key] = Entry(value, self.writes, mod)
        if old is not None and isinstance(old.value, Map):
            self._release(old.value)

    def set(self, mod: ModuleModel, h: int, key: bytes, value: bytes) -> None:
        m = self._resolve(mod, h, WRITE).map
        self._check_sizes(mod, key, len(value))
        self._write(mod, m, key, value)

    def delete(self, mod: ModuleModel, h: int, key: bytes) -> None:
        m = self._resolve(mod, h, WRITE).map
        self._check_sizes(mod, key)
        old = m.entries.pop(key, None)
        if old is not None and isinstance(old.value, Map):
            self._release(old.value)

    def exists(self, mod: ModuleModel, h: int, key: bytes) -> bool:
        m = self._resolve(mod, h, READ).map
        self._check_sizes(mod, key)
        return key in m.entries

    def len(self, mod: ModuleModel, h: int) -> int:
        return len(self._resolve(mod, h, READ).map.entries)

    def keys(self, mod: ModuleModel, h: int) -> list[bytes]:
        return list(self._resolve(mod, h, READ).map.entries)  # insertion order

    def incr(self, mod: ModuleModel, h: int, key: bytes, delta: int) -> int:
        m = self._resolve(mod, h, READ | WRITE).map
        self._check_sizes(mod, key, 8)
        entry = m.entries.get(key)
        old = 0
        if entry is not None:
            if isinstance(entry.value, Map) or len(entry.value) != 8:
                raise Refused(Errno.TYPE)
            old = struct.unpack("<q", entry.value)[0]
        new = _i64(old + delta)
        self._write(mod, m, key, struct.pack("<q", new))
        return new

    def version(self, mod: ModuleModel, h: int, key: bytes) -> int:
        """The write number of the key's last write, 0 when absent (see `observe_version`)."""
        m = self._resolve(mod, h, READ).map
        self._check_sizes(mod, key)
        entry = m.entries.get(key)
        return 0 if entry is None else entry.write

    def set_map(self, mod: ModuleModel, h: int, key: bytes, child_h: int) -> None:
        parent = mod.lookup(h)  # BADF/STALE: the handle, then the child handle
        child = mod.lookup(child_h)
        if parent.rights & WRITE != WRITE:
            raise Refused(Errno.ACCES)
        if child.rights != ALL_RIGHTS:  # storing a read-only handle would upgrade it
            raise Refused(Errno.ACCES)
        self._check_sizes(mod, key)
        self._write(mod, parent.map, key, child.map)

    def get_map(self, mod: ModuleModel, h: int, key: bytes, issued: int | None) -> int | None:
        handle = self._resolve(mod, h, READ)
        self._check_sizes(mod, key)
        entry = handle.map.entries.get(key)
        if entry is None:
            raise Refused(Errno.NOENT)
        if not isinstance(entry.value, Map):
            raise Refused(Errno.TYPE)
        self._check_handle_quota(mod)
        # A read-only view stays read-only all the way down.
        return self._issue(mod, issued, entry.value, handle.rights)

    # --- running and checking -------------------------------------------------

    @staticmethod
    def attempt(op: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Errno, Any]:
        """Run a model operation: (errno, result)."""
        try:
            return Errno.OK, op(*args, **kwargs)
        except Refused as refused:
            return refused.errno, None

    def observe_version(self, write: int, version: int) -> None:
        """Check a version the core reported: versions increase with the write order."""
        if write == 0:
            assert version == 0, f"an absent key has version {version}, expected 0"
            return
        assert version > 0, "a present key has version 0"
        for other, seen in self.observed_versions.items():
            assert (other < write) == (seen < version) and (other == write) == (seen == version), (
                f"write #{write} has version {version}, but write #{other} has {seen}"
            )
        self.observed_versions[write] = version
