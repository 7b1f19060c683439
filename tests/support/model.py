"""A pure-Python model of the ownership rules: the oracle the C core is checked against.

`test_model.py` drives it beside the core's operations in one module at a
time; `test_model_xmod.py` beside real cross-module calls.  It is written to
be read.  Every rule comes from docs/ownership.md and docs/abi.md ("Order of
checks", "Handles", "Rights", "Lifetime", "Calls between modules"):

- A map's count = owning handles to it in any module + `set_map`
  references stored in live maps + 1 while it is named.  At zero it is
  reclaimed at once, and the maps it referenced lose one reference each,
  cascading.  A map whose count is above zero is alive, even when nothing
  outside its cycle reaches it -- until the cycle collector runs
  (`collect`): then every map that no handle or name reaches, directly or
  through other maps, is reclaimed.
- Handles are per module.  A number the module was never given is `BADF`;
  one it was given and has since closed is `STALE`.
- Checks come in a fixed order: `INVAL` (argument values) -> `BADF`/`STALE`
  (the handle, and for `set_map` the child handle) -> `ACCES` -> `TOOBIG`
  -> the operation's own answers (`NOENT`, `TYPE`, `QUOTA`, `BUSY`).
- Passing handles to another module's export (see "Across modules" below):
  `own` moves, `borrow` lends for the call (the lender's handle is `BUSY`
  for close and move until the borrow ends), `share` gives the callee a
  counted handle of its own; `:r` passes READ only.  All the handles of a
  call pass, or none does.  Teardown closes every handle of a module.

The model never chooses handle numbers: the machine passes in the number
the core issued (`issued=`), or binds it later (`bind`) when the handle was
made inside a guest, and the model checks it is well formed and has never
been issued to that module before.  A handle argument may be a number, the
model's `Handle` itself (what a guest's table holds), or None (a number
never issued: `BADF`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from broker._native import ENTRY_COST, MAP_COST
from broker.abi import Errno
from broker.ownership import Kind

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


@dataclass(frozen=True)
class Passing:
    """How one declared handle parameter or result passes (broker/ownership.py)."""

    kind: Kind
    readonly: bool = False  # the ":r" suffix
    mask: int = ALL_RIGHTS  # the host's narrowing: Own(ref, rights="r")

    def __str__(self) -> str:
        return str(self.kind.name).lower() + (":r" if self.readonly else "")


@dataclass
class Lend:
    """A borrow in progress: `lent` (the lender's handle) is busy while `borrowed` exists."""

    lender: ModuleModel
    lent: Handle
    callee: ModuleModel
    borrowed: Handle


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

    def count_of(self, m: Map) -> int:
        """A map's count from its definition (docs/ownership.md), not from `refs`."""
        handles = sum(1 for mod in self.modules for h in mod.handles() if h.owning and h.map is m)
        stored = sum(
            1 for other in self.maps if other.alive for e in other.entries.values() if e.value is m
        )
        return handles + stored + (1 if m.name is not None else 0)

    def collect(self) -> int:
        """The cycle collector: reclaim every map no handle or name reaches; how many."""
        reached: set[int] = set()
        pending = [h.map for mod in self.modules for h in mod.handles() if h.owning]
        pending += list(self.names.values())
        while pending:
            m = pending.pop()
            if m.serial not in reached:
                reached.add(m.serial)
                pending += [e.value for e in m.entries.values() if isinstance(e.value, Map)]
        garbage = [m for m in self.maps if m.alive and m.serial not in reached]
        for m in garbage:  # they go together; what they reference outside loses a reference
            m.alive = False
        for m in garbage:
            for e in m.entries.values():
                if isinstance(e.value, Map) and e.value.alive:
                    self._release(e.value)
            m.entries.clear()
            m.refs = 0
        return len(garbage)

    def usage(self, mod: ModuleModel) -> tuple[int, int]:
        """(bytes, entries) charged to `mod`: live entries it wrote last, and live
        maps it made (MAP_COST each, in bytes)."""
        mine = [
            (k, e) for m in self.maps if m.alive for k, e in m.entries.items() if e.writer is mod
        ]
        made = sum(1 for m in self.maps if m.alive and m.maker is mod)
        return sum(e.size(k) for k, e in mine) + made * MAP_COST, len(mine)

    # --- handles --------------------------------------------------------------

    def _give(self, mod: ModuleModel, m: Map, rights: int, *, owning: bool = True) -> Handle:
        """A new live handle in `mod` (its number is bound later); an owning one counts."""
        handle = Handle(m, rights, owning=owning)
        if owning:
            self._incref(m)
        mod.unbound.append(handle)
        return handle

    def bind(self, mod: ModuleModel, handle: Handle, number: int) -> None:
        """Learn the number the core issued for `handle` (it may be closed by now)."""
        assert handle.number is None, f"{mod.name}: {handle} was numbered twice"
        assert well_formed_handle(number), (
            f"{mod.name}: the core issued a malformed handle {number:#x}"
        )
        assert number not in mod.issued, f"{mod.name}: the core issued handle {number:#x} twice"
        mod.issued.add(number)
        handle.number = number
        if handle.live:
            mod.unbound.remove(handle)
            mod.live[number] = handle

    def _drop(self, mod: ModuleModel, handle: Handle) -> None:
        """The handle goes (closed, moved away, or its borrow ended); an owning one releases."""
        handle.live = False
        if handle.number is not None:
            del mod.live[handle.number]
        else:
            mod.unbound.remove(handle)
        if handle.owning:
            self._release(handle.map)

    def _issue(self, mod: ModuleModel, issued: int | None, m: Map, rights: int) -> Handle:
        """Record the new owning handle the core gave out (`issued`: its number, if known)."""
        handle = self._give(mod, m, rights)
        if issued is not None:
            self.bind(mod, handle, issued)
        return handle

    @staticmethod
    def _check_rights_bits(rights: int) -> None:
        if rights & ~ALL_RIGHTS:
            raise Refused(Errno.INVAL)

    @staticmethod
    def _check_handle_quota(mod: ModuleModel, more: int = 1) -> None:
        if mod.handle_count() + more > mod.handle_limit:
            raise Refused(Errno.QUOTA)

    @staticmethod
    def _resolve(mod: ModuleModel, h: HandleRef, needs: int) -> Handle:
        handle = mod.lookup(h)
        if handle.rights & needs != needs:
            raise Refused(Errno.ACCES)
        return handle

    @staticmethod
    def _check_sizes(mod: ModuleModel, key: bytes, value_len: int = 0) -> None:
        if len(key) > mod.key_size or value_len > mod.value_size:
            raise Refused(Errno.TOOBIG)

    # --- the operations (each raises Refused or returns its result) --------

    def open(self, mod: ModuleModel, name: bytes, rights: int, issued: int | None) -> Handle:
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

    def new(self, mod: ModuleModel, issued: int | None) -> Handle:
        self._check_handle_quota(mod)
        m = self._create(None)
        m.maker = mod
        return self._issue(mod, issued, m, ALL_RIGHTS)

    def close(self, mod: ModuleModel, h: HandleRef) -> None:
        """Owning: one reference less.  Borrowed: the borrow ends early.  Lent out: BUSY."""
        handle = mod.lookup(h)
        if handle.busy:
            raise Refused(Errno.BUSY)
        self._drop(mod, handle)

    def clone(self, mod: ModuleModel, h: HandleRef, rights: int, issued: int | None) -> Handle:
        """A new owning handle, also from a borrowed one (how a callee keeps a map)."""
        self._check_rights_bits(rights)
        handle = self._resolve(mod, h, rights)  # attenuation: a subset of h's rights
        self._check_handle_quota(mod)
        return self._issue(mod, issued, handle.map, rights)

    def close_all(self, mod: ModuleModel) -> None:
        """Module teardown: every handle closed as if by `close` (lent or not)."""
        for handle in mod.handles():
            self._drop(mod, handle)

    def get(self, mod: ModuleModel, h: HandleRef, key: bytes) -> bytes:
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

    def set(self, mod: ModuleModel, h: HandleRef, key: bytes, value: bytes) -> None:
        m = self._resolve(mod, h, WRITE).map
        self._check_sizes(mod, key, len(value))
        self._write(mod, m, key, value)

    def delete(self, mod: ModuleModel, h: HandleRef, key: bytes) -> None:
        m = self._resolve(mod, h, WRITE).map
        self._check_sizes(mod, key)
        old = m.entries.pop(key, None)
        if old is not None and isinstance(old.value, Map):
            self._release(old.value)

    def exists(self, mod: ModuleModel, h: HandleRef, key: bytes) -> bool:
        m = self._resolve(mod, h, READ).map
        self._check_sizes(mod, key)
        return key in m.entries

    def len(self, mod: ModuleModel, h: HandleRef) -> int:
        return len(self._resolve(mod, h, READ).map.entries)

    def keys(self, mod: ModuleModel, h: HandleRef) -> list[bytes]:
        return list(self._resolve(mod, h, READ).map.entries)  # insertion order

    def incr(self, mod: ModuleModel, h: HandleRef, key: bytes, delta: int) -> int:
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

    def version(self, mod: ModuleModel, h: HandleRef, key: bytes) -> int:
        """The write number of the key's last write, 0 when absent (see `observe_version`)."""
        m = self._resolve(mod, h, READ).map
        self._check_sizes(mod, key)
        entry = m.entries.get(key)
        return 0 if entry is None else entry.write

    def set_map(self, mod: ModuleModel, h: HandleRef, key: bytes, child_h: HandleRef) -> None:
        parent = mod.lookup(h)  # BADF/STALE: the handle, then the child handle
        child = mod.lookup(child_h)
        if parent.rights & WRITE != WRITE:
            raise Refused(Errno.ACCES)
        if child.rights != ALL_RIGHTS:  # storing a read-only handle would upgrade it
            raise Refused(Errno.ACCES)
        self._check_sizes(mod, key)
        self._write(mod, parent.map, key, child.map)

    def get_map(self, mod: ModuleModel, h: HandleRef, key: bytes, issued: int | None) -> Handle:
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

    # --- across modules ---------------------------------------------------------
    #
    # A call to another module's export passes each declared handle parameter
    # (and, on return, each declared handle result) one of three ways:
    #
    #   own     the handle moves: the giver's number turns STALE, the receiver
    #           owns a new one (the map's count does not change).  Only an
    #           owning handle that is not lent out may move: a borrowed one is
    #           ACCES (not the holder's to give), a lent one BUSY.
    #   borrow  the receiver gets a borrowed handle (not counted) with the
    #           giver's rights; the giver's handle is busy until the borrow
    #           ends, when the call returns (or traps).  A borrowed handle the
    #           receiver left open is closed then.
    #   share   the receiver gets an owning handle of its own: count + 1.
    #
    # A ":r" kind passes READ only; the host may narrow further with a mask.
    # A call's results pass (callee to caller) before its borrows end, so a
    # callee may return what it was lent as `share`, never as `own`.

    def pass_handles(
        self, giver: ModuleModel, items: list[tuple[HandleRef, Passing]], receiver: ModuleModel
    ) -> tuple[list[Handle], list[Lend]]:
        """Pass every (handle, how) of one call, all or none: the receiver's new
        handles in order, and the borrows to end when the call returns."""
        checked: list[tuple[Handle, Passing]] = []
        for ref, how in items:
            handle = giver.lookup(ref)  # BADF / STALE
            if how.kind is Kind.OWN and not handle.owning:
                raise Refused(Errno.ACCES)
            if how.kind is Kind.OWN and handle.busy:
                raise Refused(Errno.BUSY)
            # A handle that moves may not be passed twice in one call.
            for other, other_how in checked:
                if other is handle and Kind.OWN in (how.kind, other_how.kind):
                    raise Refused(Errno.BUSY)
            checked.append((handle, how))
        if receiver.handle_count() + len(checked) > receiver.handle_limit:
            raise Refused(Errno.QUOTA, receiver_full=True)  # room for all, before any moves
        passed, lends = [], []
        for handle, how in checked:
            rights = handle.rights & how.mask & (READ if how.readonly else ALL_RIGHTS)
            new = self._give(receiver, handle.map, rights, owning=how.kind is not Kind.BORROW)
            if how.kind is Kind.OWN:
                self._drop(giver, handle)  # after the receiver's reference: the count stays up
            elif how.kind is Kind.BORROW:
                handle.busy += 1
                lends.append(Lend(giver, handle, receiver, new))
            passed.append(new)
        return passed, lends

    def end_borrow(self, lend: Lend) -> bool:
        """The call returned: the lender's handle is free again, and the borrowed
        handle goes if the callee had not closed it (True: it was left open)."""
        lend.lent.busy -= 1
        if not lend.borrowed.live:
            return False
        self._drop(lend.callee, lend.borrowed)
        return True

    def teardown(self, mod: ModuleModel) -> None:
        """A trap that began in the module: every handle closed."""
        self.close_all(mod)

    def unload(self, mod: ModuleModel, host: ModuleModel) -> None:
        """Unload: every handle closed; what it wrote is charged to the host from now on."""
        self.close_all(mod)
        for m in self.maps:
            if m.alive:
                if m.maker is mod:
                    m.maker = host
                for e in m.entries.values():
                    if e.writer is mod:
                        e.writer = host

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
