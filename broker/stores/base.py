"""What a backing store of named maps provides (sqlite, Redis).

A store keeps, per map name, entries of bytes with a version and an
insertion sequence number.  The rules every store keeps (docs/stores.md
says what each promises beyond them):

- a version changes on every write of a key and is never reused within a
  map (it comes from the map's own clock); 0 means absent;
- a key keeps its sequence number from insertion until it is deleted, and
  a new key takes a higher one than every key before it: `keys` lists by
  sequence number, so a key present for a whole listing appears once;
- `incr`, `set_if` and `set_many` are atomic, also between processes;
- a failure raises `StoreError`: the operation did not happen, or -- when
  the store fell silent after the request left -- its outcome is unknown.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence

INT64_MASK = (1 << 64) - 1

# A query option that may carry a secret (redis-py reads ?password=...).
_SECRET_OPTION = re.compile(r"([?&;][^=&;#]*(?:pass|pwd|secret|token|auth)[^=&;#]*=)[^&;#]*", re.I)
REDACTED = "***"


def redact_url(url: str) -> str:
    """`url` fit to show: its password and secret-looking query options as ***."""
    if url.startswith(("sqlite:", "leveldb:", "memory:")):  # no secrets; a path may hold '@'
        return url
    # No URL parser: the URLs that error messages show are those none accepts.
    # The userinfo ends at the last '@' (a password may hold '@', '/', '#');
    # one without ':' is hidden whole (it may be a password missing its ':').
    head, at, host = url.rpartition("@")
    if at:
        start = head.find("://") + 3 if "://" in head else 0
        user, colon, _ = head[start:].partition(":")
        url = f"{head[:start]}{user + ':' if colon else ''}{REDACTED}@{host}"
    return _SECRET_OPTION.sub(rf"\g<1>{REDACTED}", url)


def wrap_i64(value: int) -> int:
    """`value` wrapped into a signed 64-bit integer (i64.add's overflow)."""
    value &= INT64_MASK
    return value - (1 << 64) if value >= 1 << 63 else value


def i64_bytes(value: int) -> bytes:
    """An incr counter's layout: 8 bytes, little-endian, two's complement."""
    return (value & INT64_MASK).to_bytes(8, "little")


class Store(ABC):
    """Named maps in a backing store.  Thread-safe; `name` is a map name."""

    url: str  # shown in messages and reprs: never with a password (redact_url)

    @abstractmethod
    def get(self, name: str, key: bytes) -> bytes | None: ...

    @abstractmethod
    def set(self, name: str, key: bytes, value: bytes) -> None: ...

    @abstractmethod
    def delete(self, name: str, key: bytes) -> None: ...

    @abstractmethod
    def exists(self, name: str, key: bytes) -> bool: ...

    @abstractmethod
    def len(self, name: str) -> int: ...

    @abstractmethod
    def keys(self, name: str, cursor: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to `limit` (sequence number, key) pairs with sequence number >=
        `cursor`, in sequence order."""

    @abstractmethod
    def incr(self, name: str, key: bytes, delta: int) -> int | None:
        """Add `delta` to the 8-byte counter (absent: 0); the new value, or
        None when the value is not 8 bytes long (nothing written)."""

    @abstractmethod
    def version(self, name: str, key: bytes) -> int: ...

    @abstractmethod
    def set_if(self, name: str, key: bytes, value: bytes, expected: int) -> bool:
        """Write only if the key's version is `expected` (0: absent)."""

    @abstractmethod
    def get_many(self, name: str, keys: Sequence[bytes]) -> list[bytes | None]: ...

    @abstractmethod
    def set_many(self, name: str, items: Sequence[tuple[bytes, bytes]]) -> None:
        """Write every item or none (later items win over earlier ones)."""

    @abstractmethod
    def close(self) -> None: ...

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {redact_url(self.url)}>"  # an app's own may not redact
