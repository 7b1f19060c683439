"""The leaky app's host side: module-level objects that never close their MapRefs.

tests/diagnostics/test_leaks.py loads this file as the module `leaky_hostcache`, so the
leak report can name `leaky_hostcache.CACHE` (a dict) and
`leaky_hostcache.SESSION` (an object's attribute) as what keeps a map alive.
"""

from __future__ import annotations

from typing import Any

CACHE: dict[str, Any] = {}


class Session:
    """Something that keeps a MapRef as an attribute."""

    ref: Any = None


SESSION = Session()


def remember(name: str, ref: Any) -> None:
    """Keep `ref` under `name` for the life of the process (the leak)."""
    CACHE[name] = ref


def forget() -> None:
    """Drop every reference this module keeps (for the tests' teardown)."""
    CACHE.clear()
    SESSION.ref = None
