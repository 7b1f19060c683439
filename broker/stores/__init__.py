"""Backing stores for named maps: `open_store(url)`.

`memory:` keeps named maps in the C data plane (no Store object);
`sqlite:PATH` and `redis://HOST:PORT/DB` keep them in a `Store`.
Anonymous maps always stay in the C data plane.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from ..errors import ConfigError
from .base import Store

SCHEMES = ("memory:", "sqlite:", "redis://")
SQLITE_SYNC = ("full", "normal")  # sqlite:PATH?sync=normal trades durability for speed


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
        if query is not None and query.removeprefix("sync=") not in SQLITE_SYNC:
            return f"the only option is sync={'|'.join(SQLITE_SYNC)}"
    return None


def _redis_problem(url: str) -> str | None:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or port == -1 or (port is not None and not 0 < port < 65536):
        return "write redis://HOST:PORT/DB (a host, and a port from 1 to 65535)"
    db = parts.path.removeprefix("/")
    if db and not db.isdigit():
        return f"the database {db!r} must be a number"
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


def open_store(url: str) -> Store | None:
    """The Store behind `url` (None for memory:); ConfigError if unusable."""
    problem = url_problem(url)
    if problem:
        raise ConfigError(f"store {url!r}: {problem}")
    if url == "memory:":
        return None
    if url.startswith("sqlite:"):
        from .sqlite_store import SqliteStore

        path, query = _sqlite_parts(url)
        return SqliteStore(path, sync=query.removeprefix("sync=") if query else "full")
    from .redis_store import RedisStore

    return RedisStore(url)
