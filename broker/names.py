"""Names: what may name a module or a map, and how a message quotes a value.

A leaf module (it imports only broker/abi/'s numbers): the module spec
(broker/module_spec.py), the manifest, the host API and the ownership
wrappers all check names and quote values through it, so a rule and its
words live once.
"""

from __future__ import annotations

from collections.abc import Iterable

from .abi import MAX_NAME_LEN  # bytes of UTF-8

MAX_MODULE_NAME_LEN = 255  # characters
SHOWN_VALUE_LEN = 40  # characters of a value a message quotes
SHOWN_NAMES = 20  # names an "unknown module/export" message lists at most


def shorten(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shown_name(value: object) -> str:
    """A name or value as a message quotes it: repr, cut short (a message stays one line)."""
    return shorten(repr(value), SHOWN_VALUE_LEN)


def listed(what: str, names: Iterable[str]) -> str:
    """'what: a, b, c' for a message, cut after SHOWN_NAMES names."""
    names = list(names)
    if not names:
        return f"{what}: none"
    shown = ", ".join(shown_name(n) for n in names[:SHOWN_NAMES])
    more = f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else ""
    return f"{what}: {shown}{more}"


def module_name_problem(name: object) -> str | None:
    """Why `name` cannot name a module, or None: it names links ("a.f"), messages
    and trace events, which must stay one line."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_MODULE_NAME_LEN:
        return f"a module name must be 1..{MAX_MODULE_NAME_LEN} characters"
    if "." in name or not name.isprintable():
        return "a module name must have no '.' and no unprintable characters"
    return None


def map_name_problem(name: object) -> str | None:
    """Why `name` cannot name a map, or None."""
    if not isinstance(name, str):
        return f"a map name must be a str, not {type(name).__name__}"
    try:
        size = len(name.encode())
    except UnicodeEncodeError:
        return "a map name must be valid Unicode text (no lone surrogates)"
    if not 0 < size <= MAX_NAME_LEN:
        return f"a map name must be 1..{MAX_NAME_LEN} bytes of UTF-8"
    return None
