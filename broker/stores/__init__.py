"""Backing stores for named maps: `open_store(url)`.

`memory:` keeps named maps in the C data plane (no Store object);
`sqlite:PATH` keeps them in a file, `leveldb:PATH` in a LevelDB directory
(one process at a time); a Redis server is reached over TCP
(`redis://[USER:PASSWORD@]HOST:PORT/DB`), TLS (`rediss://...` with
certificate options) or a unix socket (`unix://[USER:PASSWORD@]/PATH?db=N`),
and a Redis Cluster through any of its nodes (`redis+cluster://HOST:PORT,...`,
cluster_url.py), each kept in a `Store`.  Anonymous maps always stay in the C data plane.
A URL shown in a message, log line or repr goes through `redact_url` first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigError
from . import cluster_url
from .base import Store, redact_url

__all__ = ["SCHEMES", "Store", "open_store", "redact_url", "resolve_url", "url_problem"]

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
FILE_SCHEMES = ("sqlite:", "leveldb:")  # a path, and ?sync=
SCHEMES = ("memory:", *FILE_SCHEMES, *REDIS_SCHEMES, *cluster_url.SCHEMES)
TLS_SCHEMES = ("rediss://", "rediss+cluster://")
SYNC = ("full", "normal")  # sqlite:PATH?sync=normal trades durability for speed; leveldb: too
MAX_REDIS_DB = (1 << 31) - 1  # SELECT takes a C int

# The options each Redis scheme takes after '?', as redis-py's from_url
# reads them; any other would reach redis-py's connection unchecked (and
# could override the broker's own timeouts or protocol).
_BOOL = ("true", "false", "yes", "no", "1", "0")
TLS_FILES = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")  # read when a connection is made
TLS_OPTIONS: dict[str, tuple[str, ...] | None] = {  # None: any value
    "ssl_cert_reqs": ("none", "optional", "required"),
    "ssl_check_hostname": _BOOL,
    "ssl_ca_certs": None,
    "ssl_ca_path": None,
    "ssl_certfile": None,
    "ssl_keyfile": None,
    "ssl_password": None,  # of an encrypted ssl_keyfile (shown as ***)
}
UNIX_OPTIONS: dict[str, tuple[str, ...] | None] = {"db": None, "password": None}
OPTIONS = {"redis://": {}, "rediss://": TLS_OPTIONS, "unix://": UNIX_OPTIONS}
USAGE = {
    "redis://": "write redis://HOST:PORT/DB (a host, and a port from 1 to 65535)",
    "rediss://": "write rediss://HOST:PORT/DB[?ssl_ca_certs=FILE&...] "
    "(a host, and a port from 1 to 65535)",
    "unix://": "write unix:///PATH/TO/SOCKET[?db=N] (the socket's absolute path, no host)",
}


def _file_parts(url: str) -> tuple[str, str, str | None]:
    """sqlite:PATH[?sync=MODE] (or leveldb:) -> (scheme, PATH, the query or None)."""
    scheme, _, rest = url.partition(":")
    path, _, query = rest.partition("?")
    return f"{scheme}:", path, (query or None)


def url_problem(url: str) -> str | None:
    """Why `url` is not a store URL, or None."""
    if not url.startswith(SCHEMES):
        return f"must start with one of {', '.join(SCHEMES)}"
    if url.startswith("memory:") and url != "memory:":
        return "the memory store takes no argument: write 'memory:'"
    if url.startswith(REDIS_SCHEMES):
        return _redis_problem(url)
    if url.startswith(cluster_url.SCHEMES):
        parsed = cluster_url.parse(url, TLS_OPTIONS)
        return parsed if isinstance(parsed, str) else None
    if url.startswith(FILE_SCHEMES):
        scheme, path, query = _file_parts(url)
        what = "file" if scheme == "sqlite:" else "directory"
        if not path:
            return f"names no {what}: write {scheme}PATH"
        if "\0" in path:
            return f"the {what} name contains a NUL byte"
        if query is not None and query.removeprefix("sync=") not in SYNC:
            return f"the only option is sync={'|'.join(SYNC)}"
    return None


def _scheme(url: str) -> str:
    return next(s for s in REDIS_SCHEMES if url.startswith(s))


def _db_problem(db: str) -> str | None:
    # isdigit() alone takes '²' and other digits int() or Redis would refuse.
    if db and not (db.isascii() and db.isdigit() and len(db) <= 10 and int(db) <= MAX_REDIS_DB):
        return f"the database must be a number from 0 to {MAX_REDIS_DB}"
    return None


def _redis_problem(url: str) -> str | None:
    scheme = _scheme(url)
    usage = USAGE[scheme]
    try:
        parts = urlsplit(url)
    except ValueError:  # "Invalid IPv6 URL": a '[' without its ']' or the other way round
        if scheme == "unix://":
            return usage
        return f"{usage}; an IPv6 host goes in brackets: {scheme}[::1]:6379/0"
    if parts.fragment:
        return f"takes no '#': {usage}"
    if scheme == "unix://":
        # The userinfo (USER:PASSWORD@) may stand before the path; a host may not.
        if parts.netloc.rpartition("@")[2] or not parts.path.startswith("/"):
            return usage
        if "\0" in parts.path:
            return "the socket's path contains a NUL byte"
    else:
        try:
            port = parts.port
        except ValueError:
            port = -1
        if not parts.hostname or port == -1 or (port is not None and not 0 < port < 65536):
            return usage
        # The path is not unquoted: with a '/' in a password, part of it would be.
        problem = _db_problem(parts.path.removeprefix("/"))
        if problem:
            return problem
    return _options_problem(scheme, parts)


def _options_problem(scheme: str, parts: SplitResult) -> str | None:
    """Why the options after '?' are not ones `scheme` takes, or None."""
    allowed = OPTIONS[scheme]
    try:
        options = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        options = [("", "")] if parts.query else []
    seen: set[str] = set()
    for name, value in options:
        if not allowed:
            return "takes no options after the database number (TLS options: use rediss://)"
        if name not in allowed:
            what = f"unknown option {name!r}" if name else "options are NAME=VALUE joined by '&'"
            return f"{what} (the options are {', '.join(allowed)})"
        if name in seen:
            return f"the option {name} is given twice"
        seen.add(name)
        choices = allowed[name]
        if choices is not None and value.lower() not in choices:
            return f"{name} must be one of {', '.join(choices)}"
        if name == "db":
            problem = _db_problem(value) if value else "db= needs a number"
            if problem:
                return problem
        elif not value:
            return f"{name}= needs a value"
    return None


def resolve_url(url: str, base: Path) -> str:
    """A store URL with a relative sqlite or LevelDB path, or relative TLS
    certificate files of a rediss:// URL, made relative to `base`."""
    if url.startswith(FILE_SCHEMES):
        scheme, name, query = _file_parts(url)
        path = Path(name).expanduser()
        path = path if path.is_absolute() else base / path
        return f"{scheme}{path}" + (f"?{query}" if query else "")
    if url.startswith(TLS_SCHEMES) and any(f"{name}=" in url for name in TLS_FILES):
        parts = urlsplit(url)
        options = [
            (name, str(base / Path(value).expanduser()) if name in TLS_FILES else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ]
        return urlunsplit(parts._replace(query=urlencode(options, safe="/")))
    return url


def tls_file_problem(url: str) -> str | None:
    """The first certificate file a rediss:// URL names that cannot be read."""
    if not url.startswith(TLS_SCHEMES):
        return None
    for name, value in parse_qsl(urlsplit(url).query):
        if name in TLS_FILES:
            path = Path(value).expanduser()
            if not path.is_file():
                return f"{name}: {path} is not a file"
            if not os.access(path, os.R_OK):
                return f"{name}: {path} cannot be read"
    return None


def open_store(url: Any) -> Store | None:
    """The Store behind `url` (None for memory:); ConfigError if unusable."""
    if not isinstance(url, str):
        raise ConfigError(f"a store is a URL string or a Store, not {type(url).__name__}")
    problem = url_problem(url)
    if problem:
        raise ConfigError(f"store {redact_url(url)!r}: {problem}")
    if url == "memory:":
        return None
    problem = tls_file_problem(url)
    if problem:
        raise ConfigError(f"store {redact_url(url)!r}: {problem}")
    if url.startswith(FILE_SCHEMES):
        scheme, path, query = _file_parts(url)
        sync = query.removeprefix("sync=") if query else "full"
        if scheme == "leveldb:":
            from .leveldb_store import LevelDBStore

            return LevelDBStore(path, sync=sync)
        from .sqlite_store import SqliteStore

        return SqliteStore(path, sync=sync)
    if url.startswith(cluster_url.SCHEMES):
        from .redis_cluster_store import RedisClusterStore

        parsed = cluster_url.parse(url, TLS_OPTIONS)
        assert not isinstance(parsed, str)  # url_problem said so
        return RedisClusterStore(url, parsed.nodes, **parsed.store_options())
    from .redis_store import RedisStore

    return RedisStore(url)
