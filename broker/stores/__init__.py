"""Backing stores for named maps: `open_store(url)`.

`memory:` keeps named maps in the C data plane (no Store object);
`sqlite:PATH` and `redis://[USER:PASSWORD@]HOST:PORT/DB` keep them in a
`Store`.  Anonymous maps always stay in the C data plane.  A URL shown in
a message, log line or repr goes through `redact_url` first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from .base import Store, redact_url

__all__ = ["SCHEMES", "Store", "open_store", "redact_url", "resolve_url", "url_problem"]

SCHEMES = ("memory:", "sqlite:", "redis://")
SQLITE_SYNC = ("full", "normal")  # sqlite:PATH?sync=normal trades durability for speed
MAX_REDIS_DB = (1 << 31) - 1  # SELECT takes a C int


def _sqlite_parts(url: str) -> tuple[str, str | None]:
    """sqlite:PATH[?sync=MODE] -> (PATH, the query or None)."""
    path, _, query = url.removeprefix("sqlite:").partition("?")
    return path, (query or None)


def url_problem(url: str) -> str | None:
    """Why `url` is not a store URL, or None."""
    if not url.startswith(SCHEMES):
        return f"must start with one of {', '.join(SCHEMES)}"
    if url.startswith("memory:") and url != "memory:":
        return "the memory store takes no argument: write 'memory:'"
    if url.startswith("redis://"):
        return _redis_problem(url)
    if url.startswith("sqlite:"):
        path, query = _sqlite_parts(url)
        if not path:
            return "names no file: write sqlite:PATH"
        if "\0" in path:
            return "the file name contains a NUL byte"
        if query is not None and query.removeprefix("sync=") not in SQLITE_SYNC:
            return f"the only option is sync={'|'.join(SQLITE_SYNC)}"
    return None


def _redis_problem(url: str) -> str | None:
    usage = "write redis://HOST:PORT/DB (a host, and a port from 1 to 65535)"
    try:
        parts = urlsplit(url)
    except ValueError:  # "Invalid IPv6 URL": a '[' without its ']' or the other way round
        return f"{usage}; an IPv6 host goes in brackets: redis://[::1]:6379/0"
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or port == -1 or (port is not None and not 0 < port < 65536):
        return usage
    db = parts.path.removeprefix("/")
    # isdigit() alone takes '²' and other digits int() or Redis would refuse.  The
    # path is not quoted: with a '/' in a password, part of it would be.
    if db and not (db.isascii() and db.isdigit() and len(db) <= 10 and int(db) <= MAX_REDIS_DB):
        return f"the database must be a number from 0 to {MAX_REDIS_DB}"
    if parts.query or parts.fragment:
        return "takes no options after the database number"
    return None


def resolve_url(url: str, base: Path) -> str:
    """A store URL with a relative sqlite path made relative to `base`."""
    if url.startswith("sqlite:"):
        name, query = _sqlite_parts(url)
        path = Path(name).expanduser()
        path = path if path.is_absolute() else base / path
        return f"sqlite:{path}" + (f"?{query}" if query else "")
    return url


def open_store(url: Any) -> Store | None:
    """The Store behind `url` (None for memory:); ConfigError if unusable."""
    if not isinstance(url, str):
        raise ConfigError(f"a store is a URL string or a Store, not {type(url).__name__}")
    problem = url_problem(url)
    if problem:
        raise ConfigError(f"store {redact_url(url)!r}: {problem}")
    if url == "memory:":
        return None
    if url.startswith("sqlite:"):
        from .sqlite_store import SqliteStore

        path, query = _sqlite_parts(url)
        return SqliteStore(path, sync=query.removeprefix("sync=") if query else "full")
    from .redis_store import RedisStore

    return RedisStore(url)
