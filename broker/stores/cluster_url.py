"""`redis+cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]/[?OPTIONS]` read and checked.

The nodes are where the store finds the cluster (any of them will do; it
learns the masters from the first that answers).  A cluster has only
database 0, so the path is `/` (or `/0`).  Options: `replicas=N` (every
write waits until N replicas have it), `replica_timeout_ms=T` (how long it
waits), and with `rediss+cluster://` the TLS options of `rediss://`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

SCHEMES = ("redis+cluster://", "rediss+cluster://")
USAGE = (
    "write {scheme}HOST:PORT[,HOST:PORT...]/ (any of the cluster's nodes, each a host "
    "and a port from 1 to 65535)"
)
MAX_REPLICAS = 1000
MAX_TIMEOUT_MS = 3_600_000
CLUSTER_OPTIONS = ("replicas", "replica_timeout_ms")
TRUE = ("true", "yes", "1")  # a boolean option's true words (the others are false)


@dataclass
class ClusterUrl:
    nodes: list[tuple[str, int]]
    username: str | None = None
    password: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    tls: bool = False  # rediss+cluster://

    def store_options(self) -> dict[str, Any]:
        """RedisClusterStore's keyword arguments from the options (TLS ones
        converted as redis-py's from_url converts them for rediss://)."""
        tls: dict[str, Any] = {}
        for name, value in self.options.items():
            if name == "ssl_check_hostname":
                tls[name] = value.lower() in TRUE
            elif name == "ssl_cert_reqs":
                tls[name] = value.lower()
            elif name.startswith("ssl_"):
                tls[name] = value
        out: dict[str, Any] = {"username": self.username, "password": self.password}
        if "replicas" in self.options:
            out["replicas"] = int(self.options["replicas"])
        if "replica_timeout_ms" in self.options:
            out["replica_timeout_ms"] = int(self.options["replica_timeout_ms"])
        return out | ({"tls": tls} if self.tls else {})


def _small_number(text: str) -> bool:
    """ASCII digits, few enough for int() to be quick and exact."""
    return text.isascii() and text.isdigit() and len(text) <= 10


def _node(text: str) -> tuple[str, int] | None:
    """HOST:PORT or [IPv6]:PORT -> (host, port), or None."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            return None
        port = rest[1:]
    else:
        host, sep, port = text.rpartition(":")
        if not sep or ":" in host:
            return None
    if not host or not _small_number(port) or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def parse(url: str, tls_options: dict[str, tuple[str, ...] | None]) -> ClusterUrl | str:
    """The parts of a cluster URL, or why it is not one (`tls_options`: what
    rediss:// takes after '?', name -> allowed values or None for any)."""
    scheme = next(s for s in SCHEMES if url.startswith(s))
    usage = USAGE.format(scheme=scheme)
    rest = url[len(scheme) :]
    if "#" in rest:
        return f"takes no '#': {usage}"
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    if path not in ("", "0"):
        return "a cluster has only database 0: end the nodes with '/' (or '/0')"
    userinfo, at, hosts = netloc.rpartition("@")
    nodes = [_node(n) for n in hosts.split(",")]
    if not hosts or None in nodes:
        return usage
    parsed = ClusterUrl([n for n in nodes if n is not None], tls=scheme == "rediss+cluster://")
    if at:
        user, colon, password = userinfo.partition(":")
        parsed.username = unquote(user) if colon and user else None
        parsed.password = unquote(password if colon else user)
    allowed: dict[str, tuple[str, ...] | None] = {name: None for name in CLUSTER_OPTIONS}
    if parsed.tls:
        allowed |= tls_options
    try:
        options = parse_qsl(query, keep_blank_values=True, strict_parsing=True) if query else []
    except ValueError:
        return "options are NAME=VALUE joined by '&'"
    for name, value in options:
        if name not in allowed:
            tls = "" if parsed.tls else " (TLS options: use rediss+cluster://)"
            return f"unknown option {name!r} (the options are {', '.join(allowed)}){tls}"
        if name in parsed.options:
            return f"the option {name} is given twice"
        problem = _option_problem(name, value, allowed[name])
        if problem:
            return problem
        parsed.options[name] = value
    return parsed


def _option_problem(name: str, value: str, choices: tuple[str, ...] | None) -> str | None:
    if name in CLUSTER_OPTIONS:
        top = MAX_REPLICAS if name == "replicas" else MAX_TIMEOUT_MS
        low = 0 if name == "replicas" else 1
        if not (_small_number(value) and low <= int(value) <= top):
            return f"{name} must be a number from {low} to {top}"
        return None
    if choices is not None and value.lower() not in choices:
        return f"{name} must be one of {', '.join(choices)}"
    if not value:
        return f"{name}= needs a value"
    return None
