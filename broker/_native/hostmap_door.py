"""The host MapRef's hot path (broker._hostmap, native/hostmap.c), bound to the core.

broker._hostmap is a plain extension beside the cffi core, and does not
link to it: here it gets the addresses of the core functions it calls, and
is refused when it was built from another native/wm.h or broker/abi/ than
the core.
`MapCore` is the C base of broker.mapref's MapRef; `new_door` makes the
object through which one broker's MapRefs reach its host module, closed
with the broker, and in a forked child.
"""

from __future__ import annotations

import os
import weakref

from ..errors import StaleCoreError, StoreFailure
from .core import Native, built_sha256, ffi, lib, rebuild_advice
from .failures import check, take_failure

try:
    from .._hostmap import Door, MapCore, abi_sha256, bind, wm_h_sha256
except ImportError as exc:  # pragma: no cover - a broken install
    raise ImportError(
        f"wasi-map's MapRef extension (broker._hostmap) is not built: {exc}. "
        "Reinstall with `pip install .`."
    ) from exc

__all__ = ["Door", "MapCore", "new_door", "raise_for", "take_failure"]


def _address(name: str) -> int:
    return int(ffi.cast("uintptr_t", ffi.addressof(lib, name)))


def _bind() -> None:
    core = built_sha256()
    for name, mine in (("native/wm.h", wm_h_sha256), ("broker/abi/", abi_sha256)):
        if core[name] != mine:
            raise StaleCoreError(
                "wasi-map's MapRef extension (broker._hostmap) was built from another "
                f"{name} than its C core; {rebuild_advice()}"
            )
    names = ("wm_op_get", "wm_op_set", "wm_op_exists", "wm_op_len", "wm_broker_host_after")
    bind(*(_address(name) for name in names))


_bind()
_doors: weakref.WeakSet[Door] = weakref.WeakSet()


def new_door(broker: Native, host: Native, released: list[int]) -> Door:
    """The door of one broker's MapRefs to its host module (`released`: the
    handles of finalized MapRefs, which send MapRefs the slow way until closed).
    `broker` is the cdata that frees the C broker when it goes: the door keeps
    it, so no MapRef outlives the memory it reaches."""
    door = Door(_address_of(broker), _address_of(host), released, broker)
    _doors.add(door)
    return door


def _address_of(ptr: Native) -> int:
    return int(ffi.cast("uintptr_t", ptr))


def _close_all() -> None:
    """In a forked child: the parent's brokers are not this process's to use
    (MapRefs take the slow way, which says so)."""
    for door in list(_doors):
        door.close()


os.register_at_fork(after_in_child=_close_all)


def raise_for(err: int, what: str, failure: StoreFailure | None) -> None:
    """Raise for errno `err` of the host operation `what`, which reached the
    core by the hot path, with the store's `failure` (`take_failure`) as its cause."""
    check(err, what, failure)
