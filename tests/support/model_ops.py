"""The ownership model within one module (support/model.py adds passing between modules).

Maps and modules, the count of each map and its reclaiming (at zero, or by
the cycle collector), the handles a module holds, and each ABI operation a
module makes on its own handles, with its checks in their fixed order.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from model_records import (
    ALL_RIGHTS,
    MAX_NAME_LEN,
    READ,
    WRITE,
    Entry,
    Handle,
    HandleRef,
    Map,
    ModuleModel,
    Refused,
    well_formed_handle,
)

from broker._native import MAP_COST
from broker.abi import Errno


def _i64(n: int) -> int:
    return (n + (1 << 63)) % (1 << 64) - (1 << 63)


class ModelOps:
    """Maps, modules, their counts, and the operations of one module on its own handles."""

    def __init__(self) -> None:
        self.modules: list[ModuleModel] = []
        self.maps: list[Map] = []  # every map ever created, reclaimed ones included
        self.names: dict[bytes, Map] = {}
        self.writes = 0  # write order: versions must increase along it
        self.observed_versions: dict[int, int] = {}  # write number -> version the core reported
        self.write_map: dict[int, int] = {}  # write number -> the serial of the map written

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
        self.write_map[self.writes] = m.serial
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

    # --- running and checking -------------------------------------------------

    @staticmethod
    def attempt(op: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Errno, Any]:
        """Run a model operation: (errno, result)."""
        try:
            return Errno.OK, op(*args, **kwargs)
        except Refused as refused:
            return refused.errno, None

    def observe_version(self, write: int, version: int) -> None:
        """Check a version the core reported: versions increase with the write
        order among the writes to one map (a clock per map, docs/abi.md)."""
        if write == 0:
            assert version == 0, f"an absent key has version {version}, expected 0"
            return
        assert version > 0, "a present key has version 0"
        for other, seen in self.observed_versions.items():
            if self.write_map[other] != self.write_map[write]:
                continue
            assert (other < write) == (seen < version) and (other == write) == (seen == version), (
                f"write #{write} has version {version}, but write #{other} has {seen}"
            )
        self.observed_versions[write] = version
