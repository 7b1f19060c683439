"""The held-back apps tests/apps/leaky and tests/apps/atlas, and what the diagnostics
tests (tests/diagnostics/) read of their runs: handle numbers, traced events,
the leak report of leaky.
"""

from __future__ import annotations

from typing import Any

from paths import APPS, ROOT

from broker import Broker

LEAKY = APPS / "leaky" / "app.toml"
ATLAS = APPS / "atlas" / "app.toml"


def h(index: int, gen: int = 1) -> int:
    """A handle number: slot index in the low 21 bits, generation above (docs/abi.md)."""
    return gen << 21 | index


def events(b: Broker, kind: str, **match: Any) -> list[dict[str, Any]]:
    """The broker's events of one kind whose fields include `match`, as dicts."""
    assert b.tracer is not None
    out = []
    for e in b.tracer.recent:
        d = e.as_dict()
        if d["event"] == kind and all(d.get(k) == v for k, v in match.items()):
            out.append(d)
    return out


def without_seq(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != "seq"}


WORDFREQ = ROOT / "examples" / "wordfreq" / "app.toml"


def ev(seq: int, event: str, path: list[str], **fields: Any) -> dict[str, Any]:
    """An event as the report prints it: the export is the last step of the path."""
    out: dict[str, Any] = {"seq": seq, "event": event, **fields}
    if path:
        out["export"] = path[-1]
        out["path"] = path
    return out


MAIN = ["a.main"]

# What `wasi-map leaks tests/apps/leaky/app.toml --call a.main --json` prints.
EXPECTED: dict[str, Any] = {
    "leaks": [
        {
            "map": 1,
            "holders": [{"module": "b", "handle": h(0)}],
            "referenced_by": [],
            "entries": 1,
            "events": [
                ev(2, "new", MAIN, module="a", handle=h(0), map=1),
                ev(
                    4,
                    "move",
                    ["a.main", "b.take"],
                    module="a",
                    handle=h(0),
                    map=1,
                    to_module="b",
                    to_handle=h(0),
                ),
            ],
        },
        {
            "map": 6,
            "holders": [],
            "referenced_by": [{"map": 5, "key": "child"}],
            "entries": 1,
            "events": [
                ev(20, "new", MAIN, module="a", handle=h(0, 4), map=6),
                ev(21, "set_map", MAIN, module="a", handle=h(1, 2), map=5, other_map=6),
                ev(22, "close", MAIN, module="a", handle=h(0, 4), map=6),
            ],
        },
        {
            "map": 7,
            "holders": [{"module": "b", "handle": h(2)}],
            "referenced_by": [],
            "entries": 0,
            "events": [
                ev(24, "new", MAIN, module="a", handle=h(1, 3), map=7),
                ev(
                    26,
                    "borrow",
                    ["a.main", "b.stash"],
                    module="a",
                    handle=h(1, 3),
                    map=7,
                    to_module="b",
                    to_handle=h(1, 2),
                ),
                # clone: `to_handle` is the handle cloned from (see the report)
                ev(
                    27,
                    "clone",
                    ["a.main", "b.stash"],
                    module="b",
                    handle=h(2),
                    map=7,
                    to_handle=h(1, 2),
                ),
                ev(
                    28,
                    "close",
                    ["a.main", "b.stash"],
                    module="b",
                    handle=h(1, 2),
                    map=7,
                    borrowed=True,
                ),
                ev(
                    29,
                    "borrow_end",
                    ["a.main", "b.stash"],
                    module="a",
                    handle=h(1, 3),
                    map=7,
                    to_module="b",
                    to_handle=h(1, 2),
                ),
                ev(31, "close", MAIN, module="a", handle=h(1, 3), map=7),
            ],
        },
    ],
    "unreleased_borrows": [
        {
            "map": 2,
            "lender": "a",
            "handle": h(0, 2),
            "borrower": "b",
            "borrowed_handle": h(1),
            "export": "b.peek",
            "path": ["a.main", "b.peek"],
            "seq": 9,
        }
    ],
    "reclaimed": 1,
    "cycles_reclaimed": 2,
}
