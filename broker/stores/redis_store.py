"""Named maps in Redis (redis-py with hiredis): the distributed store.

Per map NAME four keys, all with the hash tag {NAME} so that a cluster
keeps a map on one node:

    wasi-map:v:{NAME}      hash   key -> value
    wasi-map:ver:{NAME}    hash   key -> version
    wasi-map:seq:{NAME}    zset   key, scored by its insertion sequence number
    wasi-map:clock:{NAME}  string the map's clock (versions, sequence numbers)

Reads are one plain command (HGET, HMGET, ...).  Every write is one Lua
script, so it is atomic and one round trip.  redis-py keeps the connection
pool (connecting, AUTH, SELECT from the URL); commands are packed by hiredis
and sent on a pooled connection directly, which halves the client's cost.
A command that meets a broken connection (say, a server restarted since the
connection was made) is sent once more on a new one; every write carries a
request id that its script remembers (the last one per client and map), so
a resent one never applies twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, cast

from ..errors import ConfigError, StoreError
from .base import Store, i64_bytes, redact_url

try:
    import hiredis
    import redis
    import redis.cluster
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:  # pragma: no cover - not installed
    redis = None  # type: ignore[assignment]

CONNECT_TIMEOUT_S = 2.0
REPLY_TIMEOUT_S = 10.0
DEDUP_MS = 60_000  # how long a map's request ids are kept after its last write

# Shared by every write script: KEYS = values, versions, order, clock[, done].
WRITE = """
local function write(key, value, clock)
  if redis.call('HSET', KEYS[1], key, value) == 1 then
    redis.call('ZADD', KEYS[3], clock, key)
  end
  redis.call('HSET', KEYS[2], key, clock)
end
"""

# Request ids: KEYS[5] is the map's hash of the last request of every
# client (a store in one thread), ARGV[1] the client, ARGV[2] the request id
# (24 hex digits).  A resend finds its id there and gets the first answer;
# the hash expires when the map has been idle for DEDUP_MS, so it holds one
# field per client that wrote lately, never one per request.
DEDUP = """
local function answered()
  local last = redis.call('HGET', KEYS[5], ARGV[1])
  if last and string.sub(last, 1, 24) == ARGV[2] then return string.sub(last, 25) end
end
local function answer(result)
  redis.call('HSET', KEYS[5], ARGV[1], ARGV[2] .. result)
  redis.call('PEXPIRE', KEYS[5], ARGV[3])
  return result
end
"""

# Every write carries a request id (ARGV 1-3: client, request id, dedup
# ms), so that one resent after a lost reply never applies twice -- a set
# applied twice would give its key a second version and could undo a
# set_if another client made in between.

# ARGV: client, request id, dedup ms, key, value.
SET = (
    WRITE
    + DEDUP
    + """
if answered() then return 1 end
write(ARGV[4], ARGV[5], redis.call('INCR', KEYS[4]))
return answer('1')
"""
)

# ARGV: client, request id, dedup ms, key.
DELETE = (
    DEDUP
    + """
if answered() then return 1 end
if redis.call('HDEL', KEYS[1], ARGV[4]) == 1 then
  redis.call('HDEL', KEYS[2], ARGV[4])
  redis.call('ZREM', KEYS[3], ARGV[4])
end
return answer('1')
"""
)

# ARGV: client, request id, dedup ms, key, delta (8 bytes, little-endian).
# The 64-bit sum is done byte by byte: Lua's numbers are doubles and would
# round above 2^53.
INCR = (
    WRITE
    + DEDUP
    + """
local done = answered()
if done then return done end
local old = redis.call('HGET', KEYS[1], ARGV[4]) or string.rep('\\0', 8)
if #old ~= 8 then return false end
local out, carry = {}, 0
for i = 1, 8 do
  local sum = string.byte(old, i) + string.byte(ARGV[5], i) + carry
  out[i] = sum % 256
  carry = (sum - out[i]) / 256
end
local value = string.char(unpack(out))
write(ARGV[4], value, redis.call('INCR', KEYS[4]))
return answer(value)
"""
)

# ARGV: client, request id, dedup ms, key, value, expected version (decimal).
SET_IF = (
    WRITE
    + DEDUP
    + """
if answered() then return 1 end
if (redis.call('HGET', KEYS[2], ARGV[4]) or '0') ~= ARGV[6] then return 0 end
write(ARGV[4], ARGV[5], redis.call('INCR', KEYS[4]))
answer('1')
return 1
"""
)

# ARGV: client, request id, dedup ms, key1, value1, key2, value2, ...
SET_MANY = (
    WRITE
    + DEDUP
    + """
if answered() then return 1 end
local n = (#ARGV - 3) / 2
local clock = redis.call('INCRBY', KEYS[4], n) - n
for i = 1, n do
  write(ARGV[2 * i + 2], ARGV[2 * i + 3], clock + i)
end
return answer('1')
"""
)

SHA1 = {
    src: hashlib.sha1(src.encode()).hexdigest() for src in (SET, DELETE, INCR, SET_IF, SET_MANY)
}


class RedisStore(Store):
    def __init__(self, url: str) -> None:
        self._maps_in_redis(url)
        try:
            self._r = redis.Redis.from_url(
                url,
                socket_connect_timeout=CONNECT_TIMEOUT_S,
                socket_timeout=REPLY_TIMEOUT_S,
                retry=Retry(NoBackoff(), 0),  # resending is decided here, per operation
                protocol=2,  # the reply shapes _command's callers read (RESP3 nests pairs)
            )
        except ValueError as exc:
            raise ConfigError(f"store {self.url!r}: {exc}") from None
        self._pool = self._r.connection_pool

    def _maps_in_redis(self, url: str) -> None:
        """What every Redis store has: its URL fit to show, a name in request
        ids, the keys of each map."""
        # The one copy of the URL with its password goes to redis-py; every
        # message, log line and repr shows this one.
        self.url = redact_url(url)
        if redis is None:
            raise ConfigError(
                f"store {self.url!r}: the Redis store needs redis-py and hiredis: "
                "pip install 'redis[hiredis]'"
            )
        self._client = os.urandom(6).hex()  # names this store in request ids
        self._keys_of: dict[str, list[bytes]] = {}
        self._keys_lock = threading.Lock()

    # --- plumbing ----------------------------------------------------------

    def _keys(self, name: str) -> list[bytes]:
        keys = self._keys_of.get(name)
        if keys is None:
            tag = "{" + name + "}"
            keys = [f"wasi-map:{part}:{tag}".encode() for part in ("v", "ver", "seq", "clock")]
            with self._keys_lock:
                self._keys_of[name] = keys
        return keys

    def _once(self, name: str) -> list[Any]:
        """The map's request-id hash key, then ARGV 1-3 of a script that
        must not run twice: this client (store and thread), a new request
        id, how long to remember it."""
        client = f"{self._client}-{threading.get_ident()}"
        return [f"wasi-map:done:{{{name}}}".encode(), client, os.urandom(12).hex(), DEDUP_MS]

    def _pool_for(self, name: str) -> Any:
        """The connection pool of the server that holds map `name` (one server here)."""
        return self._pool

    def _command(self, pool: Any, *args: Any, then: Sequence[Any] = ()) -> Any:
        """One command on a connection of `pool`, packed by hiredis and its raw
        reply returned: redis-py's own packing and reply handling cost about
        20 us a command, 40% of a round trip on one machine.  `then`: one more
        command sent with it on the same connection (a cluster's WAIT),
        whose reply goes to `_then`."""
        conn: Any = pool.get_connection()
        try:
            packed = [hiredis.pack_command(args)]
            if then:
                packed.append(hiredis.pack_command(tuple(then)))
            conn.send_packed_command(packed)
            try:
                reply = conn.read_response()
            except redis.ResponseError:
                if then:  # its reply is read, but says nothing: the command's error is the news
                    with contextlib.suppress(redis.ResponseError):
                        conn.read_response()
                raise  # MOVED (read the slot map again), NOSCRIPT (load it), ...
            if then:
                self._then(conn.read_response(), then)
            return reply
        except redis.ResponseError:
            raise  # an error reply: the connection is fine
        except BaseException:
            conn.disconnect()  # a half-read reply must not reach the next command
            raise
        finally:
            pool.release(conn)

    def _then(self, reply: Any, command: Sequence[Any]) -> None:
        """The reply to `then` (the cluster store checks its WAIT here)."""

    def _evalsha(self, name: str, source: str, keys: Sequence[bytes], *args: Any) -> Any:
        """A write script, loaded first when the server lacks it (NOSCRIPT: a
        restarted server; the script did not run)."""
        sha = SHA1[source]
        pool, then = self._pool_for(name), self._after_write
        try:
            return self._command(pool, b"EVALSHA", sha, len(keys), *keys, *args, then=then)
        except redis.exceptions.NoScriptError:
            self._command(pool, b"SCRIPT", b"LOAD", source)
            return self._command(pool, b"EVALSHA", sha, len(keys), *keys, *args, then=then)

    _after_write: Sequence[Any] = ()  # a command sent after every write (WAIT), or none

    def _run(self, how: Callable[..., Any], *args: Any) -> Any:
        """`how(*args)`, once more on a new connection if the first one was
        broken; any failure a StoreError."""
        try:
            try:
                return how(*args)
            except redis.ConnectionError:
                return how(*args)
        except redis.RedisError as exc:
            raise StoreError(f"{self.url}: {exc}") from None

    def _read(self, name: str, *args: Any) -> Any:
        return self._run(lambda: self._command(self._pool_for(name), *args))

    def _write(self, name: str, source: str, keys: Sequence[bytes], *args: Any) -> Any:
        return self._run(self._evalsha, name, source, keys, *args)

    # --- the operations ----------------------------------------------------

    def get(self, name: str, key: bytes) -> bytes | None:
        return cast("bytes | None", self._read(name, b"HGET", self._keys(name)[0], key))

    def set(self, name: str, key: bytes, value: bytes) -> None:
        done, *once = self._once(name)
        self._write(name, SET, [*self._keys(name), done], *once, key, value)

    def delete(self, name: str, key: bytes) -> None:
        done, *once = self._once(name)
        self._write(name, DELETE, [*self._keys(name), done], *once, key)

    def exists(self, name: str, key: bytes) -> bool:
        return bool(self._read(name, b"HEXISTS", self._keys(name)[0], key))

    def len(self, name: str) -> int:
        return int(self._read(name, b"HLEN", self._keys(name)[0]))

    def keys(self, name: str, cursor: int, limit: int) -> list[tuple[int, bytes]]:
        order = self._keys(name)[2]
        flat = self._read(
            name, b"ZRANGEBYSCORE", order, cursor, b"+inf", b"WITHSCORES", b"LIMIT", 0, limit
        )
        at = iter(flat)
        return [(int(float(score)), key) for key, score in zip(at, at, strict=True)]

    def incr(self, name: str, key: bytes, delta: int) -> int | None:
        done, *once = self._once(name)
        value = self._write(name, INCR, [*self._keys(name), done], *once, key, i64_bytes(delta))
        return None if value is None else int.from_bytes(value, "little", signed=True)

    def version(self, name: str, key: bytes) -> int:
        value = self._read(name, b"HGET", self._keys(name)[1], key)
        return int(value) if value is not None else 0

    def set_if(self, name: str, key: bytes, value: bytes, expected: int) -> bool:
        done, *once = self._once(name)
        return bool(
            self._write(name, SET_IF, [*self._keys(name), done], *once, key, value, expected)
        )

    def get_many(self, name: str, keys: Sequence[bytes]) -> list[bytes | None]:
        if not keys:
            return []
        return cast("list[bytes | None]", self._read(name, b"HMGET", self._keys(name)[0], *keys))

    def set_many(self, name: str, items: Sequence[tuple[bytes, bytes]]) -> None:
        if items:
            done, *once = self._once(name)
            flat = (part for item in items for part in item)
            self._write(name, SET_MANY, [*self._keys(name), done], *once, *flat)

    def close(self) -> None:
        self._r.close()
