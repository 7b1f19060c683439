"""Checks for the tests of an app built on wasi-map, for any test runner.

The pytest fixture `wasi_map_broker` (broker/pytest_plugin.py) runs
`leak_message` when a test ends; the same checks are here for other
runners and for tests that want them mid-way:

- `assert_no_leaks(broker)`: run the cycle collector, then fail with the
  leak report if any map that is not a named map is alive, or a borrow was
  left for the broker to end (the report needs `Broker(trace=True)` to say
  who holds what; without it the counts alone).
- `check_refcounts(broker)`: recount every reference the C core holds
  (handles, host refs, stored map references, names) and fail if a map's
  count disagrees.  Cheap enough to run after every step of a test.
- `core_counters(broker)`: the C core's counters -- live maps, named maps,
  entries, borrows left unreleased, maps reclaimed (and by the collector),
  collections, modules, links -- for asserting on what a step did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .host import Broker


def leak_message(broker: Broker) -> str:
    """What `broker` was left with, as a failure message ('' if nothing)."""
    if broker.closed:  # closed by the test: nothing is left to check
        return ""
    from . import leaks

    broker.collect()
    report = broker.leaks()
    maps = len(report["leaks"])
    kept = report.get("not_kept", {})
    borrows = len(report["unreleased_borrows"]) + kept.get("unreleased_borrows", 0)
    if not maps and not borrows:
        return ""
    found = " and ".join(
        _count(n, what) for n, what in ((maps, "map"), (borrows, "unreleased borrow")) if n
    )
    return f"wasi-map: the test left {found} behind\n{leaks.format_text(report)}"


def assert_no_leaks(broker: Broker) -> None:
    """AssertionError with the leak report if maps or borrows were left behind."""
    message = leak_message(broker)
    if message:
        raise AssertionError(message)


def check_refcounts(broker: Broker) -> None:
    """AssertionError if any map's reference count disagrees with a recount."""
    wrong = broker._native.check()
    if wrong:
        raise AssertionError(
            f"wasi-map: {_count(wrong, 'map')} whose reference count disagrees with a recount "
            "of the handles, host refs, stored references and names that hold it"
        )


def core_counters(broker: Broker) -> dict[str, int]:
    """The C core's counters: maps, named, entries, unreleased_borrows, reclaimed,
    cycles_reclaimed, collections, modules, links, gc_work_bytes (and any the core adds)."""
    return dict(broker._native.stats())


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")
