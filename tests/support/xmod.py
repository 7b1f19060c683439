"""The cross-module test guests (tests/guests/xmod_*.wat) and how to load them.

`xmod_caller.wat` ("caller") passes handles to `xmod_callee.wat`
("callee") through its via_* exports; each test declares the callee's
kinds with `decl`.  Guest helpers return a value >= 0, or -errno.
"""

from __future__ import annotations

from typing import Any

from paths import GUESTS

from broker import Broker

CALLER = GUESTS / "xmod_caller.wat"
CALLEE = GUESTS / "xmod_callee.wat"
PING = GUESTS / "xmod_ping.wat"
PONG = GUESTS / "xmod_pong.wat"
SELFREF = GUESTS / "xmod_self.wat"
WATCHER = GUESTS / "xmod_watcher.wat"

R, W, RW = 1, 2, 3


def decl(*params: str, results: tuple[str, ...] = ("i32",)) -> dict[str, list[str]]:
    """An export declaration: its parameters' kinds, then its results'."""
    return {"params": list(params), "results": list(results)}


def load_pair(
    broker: Broker,
    callee: dict[str, Any] | None = None,
    caller: dict[str, Any] | None = None,
    **callee_load: Any,
) -> None:
    """Load "callee" (with the export declarations `callee`), then "caller"."""
    broker.load("callee", CALLEE, exports=callee or {}, **callee_load)
    broker.load("caller", CALLER, exports=caller or {})


def caller_map(b: Broker, key: int = 1, value: int = 2) -> int:
    """A new map in "caller" holding {key: value}; the caller's handle."""
    h = int(b.call("caller.new"))
    assert b.call("caller.write", h, key, value) == 0
    return h


def neg(errno: int) -> int:
    """How a guest helper reports an errno: as its negative."""
    return -int(errno)
