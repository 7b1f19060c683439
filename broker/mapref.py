"""MapRef: the host's handle to a map, as a MutableMapping[bytes, bytes]."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from types import TracebackType
from typing import TYPE_CHECKING

from ._native import MapCore, raise_for_host_op, take_store_failure
from .abi import parse_rights
from .errors import AccessError, ConfigError, StaleHandleError

if TYPE_CHECKING:
    from ._native import NativeModule
    from .hostside import HostSide


class MapRef(MapCore, MutableMapping[bytes, bytes]):
    """A host-owned (counted) handle to a map.

    Reads and writes go straight to the C core, under the same rules as a
    guest's calls.  `close()` (also `with`, and garbage collection as a
    safety net) gives the reference up.  Once closed, or moved away with
    `Own(ref)`, every use raises `StaleHandleError`.

    `m[k]`, `m[k] = v`, `k in m` and `len(m)` are MapCore's, in C
    (native/hostmap.c): the common case goes to the core with no Python in
    between; every other case comes back to the method of the same job
    below (`_get`, `_setitem`, ...), and an errno to `_failed`.
    """

    __slots__ = ("_side", "_moved_to", "_lapse", "__weakref__")  # _h, _door: MapCore's

    def __init__(self, side: HostSide, handle: int) -> None:
        super().__init__(side.door, handle)  # _door, the hot path's way in; _h (None: gone)
        self._side = side  # its broker's, and all it needs of it
        self._moved_to: str | None = None  # where Own(...) gave it: "module.export parameter i"
        self._lapse: str | None = None  # why it ended by itself (a host function's borrow)

    # --- identity ------------------------------------------------------

    @property
    def handle(self) -> int:
        """The host handle number (StaleHandleError once closed or moved)."""
        if self._h is None:
            raise StaleHandleError(self._gone())
        return self._h

    def _moved(self, to: str) -> None:
        """Given away with Own(...) to `to`: the callee owns the map now."""
        self._h, self._moved_to = None, to

    def _lapsed(self, why: str) -> None:
        """Its handle ended without the host closing it (`why`: a borrow's call returned)."""
        self._h, self._lapse = None, why

    def _gone(self) -> str:
        if self._lapse is not None:
            return f"the MapRef is no longer valid: {self._lapse}"
        if self._moved_to is None:
            return "the MapRef is closed"
        return (
            f"the MapRef was moved to {self._moved_to} with Own(...): the callee owns the map "
            "now; to keep using it, pass Borrow(ref) or Share(ref), or Own(ref.clone())"
        )

    @property
    def map_id(self) -> int:
        """The broker's id of the map (0 once closed or moved)."""
        return 0 if self._h is None else self._host.map_id(self._h)

    @property
    def closed(self) -> bool:
        return self._h is None or self.map_id == 0

    @property
    def _host(self) -> NativeModule:
        return self._side.module

    def __repr__(self) -> str:
        if self._h is not None:
            state = f"handle={self._h}"
        else:
            state = "closed" if self._moved_to is None else f"moved to {self._moved_to}"
        return f"<MapRef {state} map={self.map_id}>"

    # --- the mapping: what MapCore hands back ---------------------------

    def _get(self, key: bytes) -> bytes:
        return self._host.op_get(self.handle, _key(key))

    def _setitem(self, key: bytes, value: bytes) -> None:
        self._host.op_set(self.handle, _key(key), _value(value))
        self._side.after_op()

    def _delitem(self, key: bytes) -> None:
        key, h = _key(key), self.handle
        try:
            present = self._host.op_exists(h, key)
        except AccessError:  # write-only: deleting needs no READ, and cannot say "absent"
            present = True
        if not present:
            raise KeyError(key)
        self._host.op_delete(h, key)
        self._side.after_op()

    def _contains(self, key: object) -> bool:
        h = self.handle
        if not isinstance(key, (bytes, bytearray)):
            return False
        return self._host.op_exists(h, bytes(key))

    def _len(self) -> int:
        return self._host.op_len(self.handle)

    def _failed(self, op: str, key: bytes | None, err: int) -> None:
        """Raise for errno `err` of MapCore's operation `op` (its message built only now)."""
        failure = take_store_failure()  # first: nothing is left on the thread, whatever raises
        self._side.module  # noqa: B018 - a broker closed meanwhile: ConfigError, not BADF
        what = f"len of handle {self._h}" if key is None else f"{op} {key!r}"
        raise_for_host_op(err, what, failure)

    def _after_op(self) -> None:
        self._side.after_op()

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._host.op_keys(self.handle))

    # --- the rest of the ABI -------------------------------------------

    def incr(self, key: bytes, delta: int = 1) -> int:
        """Atomically add to an 8-byte little-endian counter; the new value."""
        return self._host.op_incr(self.handle, _key(key), delta)

    def version(self, key: bytes) -> int:
        """The key's version (0 when absent)."""
        return self._host.op_version(self.handle, _key(key))

    def set_if(self, key: bytes, value: bytes, expected: int) -> None:
        """Set only if the key's version is `expected` (0: absent); else ConflictError."""
        self._host.op_set_if(self.handle, _key(key), _value(value), expected)
        self._side.after_op()

    def get_many(self, keys: Iterable[bytes]) -> list[bytes | None]:
        return self._host.op_get_many(self.handle, [_key(k) for k in keys])

    def set_many(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Set every item, all or nothing."""
        self._host.op_set_many(self.handle, [(_key(k), _value(v)) for k, v in items])
        self._side.after_op()

    def set_map(self, key: bytes, child: MapRef) -> None:
        """Store a reference to `child`'s map: this map keeps it alive."""
        check_mine(child, self._side, "set_map")
        self._host.op_set_map(self.handle, _key(key), child.handle)
        self._side.after_op()

    def get_map(self, key: bytes) -> MapRef:
        """A new MapRef to the map referenced under `key` (this one's rights)."""
        ref = MapRef(self._side, self._host.op_get_map(self.handle, _key(key)))
        self._side.after_op()
        return ref

    def clone(self, rights: str | int = "rw") -> MapRef:
        """A second reference, with `rights` a subset of this one's."""
        mask = parse_rights(rights) if isinstance(rights, str) else rights
        ref = MapRef(self._side, self._host.op_clone(self.handle, int(mask)))
        self._side.after_op()
        return ref

    # --- lifetime ------------------------------------------------------

    def close(self) -> None:
        """Give up this reference (idempotent; a moved MapRef is already gone)."""
        h, self._h = self._h, None
        if h is None or self._side.closed:
            return
        try:
            self._host.op_close(h)
        except StaleHandleError:
            pass  # moved away with Own(): nothing of ours is left
        except BaseException:
            self._h = h  # e.g. BusyError: still ours, still open
            raise
        self._side.after_op()

    def __enter__(self) -> MapRef:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # A safety net only, and never a call into C: a finalizer may run in
        # the same collection that frees the broker's C state.  The handle
        # is queued and closed at the broker's next operation.
        h, self._h = getattr(self, "_h", None), None
        if h is not None:
            self._side.release_later(h)

    # MutableMapping's mixins compare by content; a handle is an identity.
    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other


def check_mine(ref: MapRef, side: HostSide, where: str) -> None:
    """Refuse a MapRef of another broker than `side`'s: its handle number means nothing here."""
    if ref._side is not side:
        raise ConfigError(f"{where}: the MapRef belongs to another broker")


def live_handle(obj: object, side: HostSide) -> int | None:
    """The handle number of `obj` if it is an open MapRef of `side`'s broker, else None."""
    if isinstance(obj, MapRef) and obj._side is side:
        return obj._h
    return None


def _key(key: object) -> bytes:
    if isinstance(key, bytearray):
        return bytes(key)
    if not isinstance(key, bytes):
        raise TypeError(f"map keys are bytes, not {type(key).__name__}")
    return key


def _value(value: object) -> bytes:
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if not isinstance(value, bytes):
        raise TypeError(f"map values are bytes, not {type(value).__name__}")
    return value
