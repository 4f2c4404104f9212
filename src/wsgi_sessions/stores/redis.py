"""A store in Redis: one hash per session, shared by many machines.

Each session is one hash at ``prefix + key``; the fields are the session's
keys, plus reserved fields (``\\x00l``: the lifetime; ``\\x00m`` and ``\\x00t``:
the forward left by a rename, and when). Expiry is Redis's own TTL. Every operation that
must be atomic is one Lua script, so it is also one round trip. The keys the
interface hands over carry a hash tag (``{...}``) that a regenerated session
keeps, so a session and its renames live in one Cluster slot.
"""

from __future__ import annotations

import json
import time
import typing as t
from collections.abc import Iterable, Mapping

from ..errors import SessionStoreError
from .base import MAX_FORWARDS, Store, check_fields

if t.TYPE_CHECKING:  # pragma: no cover
    import redis

__all__ = ["RedisStore"]

# KEYS[1] session; ARGV[1] '1' to touch. The fields as one JSON object (one
# bulk reply parses far faster than a long array in redis-py), or nil when
# absent or renamed away.
_LOAD = """
local flat = redis.call('HGETALL', KEYS[1])
local fields = {}
local lifetime = nil
for i = 1, #flat, 2 do
  local name = flat[i]
  if name == '\\0m' then return false end
  if name == '\\0l' then lifetime = flat[i + 1] else fields[name] = flat[i + 1] end
end
if not lifetime then return false end
if ARGV[1] == '1' then redis.call('EXPIRE', KEYS[1], lifetime) end
if next(fields) == nil then return '{}' end
return cjson.encode(fields)
"""

# KEYS[1] session; ARGV: lifetime, then field, value pairs. 1 if created.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], '\\0l', ARGV[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

# KEYS[1] session; ARGV: lifetime ('' = keep), number of fields to set, hops,
# opened_at ('' = none), the field/value pairs, then the fields to delete.
# Follows forwards left by a rename after opened_at (they share the hash tag,
# so the slot). 1 if applied, 0 if there is no live session.
_APPLY = """
local key = KEYS[1]
local hops = tonumber(ARGV[3])
local opened = tonumber(ARGV[4])
while true do
  local forward = redis.call('HMGET', key, '\\0m', '\\0t')
  if not forward[1] then break end
  if hops == 0 or not opened or opened >= tonumber(forward[2]) then return 0 end
  hops = hops - 1
  key = forward[1]
end
local lifetime = ARGV[1]
if lifetime == '' then
  lifetime = redis.call('HGET', key, '\\0l')
  if not lifetime then return 0 end
else
  if redis.call('EXISTS', key) == 0 then return 0 end
  redis.call('HSET', key, '\\0l', lifetime)
end
local nset = tonumber(ARGV[2])
if nset > 0 then redis.call('HSET', key, unpack(ARGV, 5, 4 + 2 * nset)) end
if #ARGV > 4 + 2 * nset then redis.call('HDEL', key, unpack(ARGV, 5 + 2 * nset)) end
redis.call('EXPIRE', key, lifetime)
return 1
"""

# KEYS[1] old, KEYS[2] new; ARGV[1] grace seconds, ARGV[2] the time of the
# rename (the forward's \\0t). RENAME keeps the TTL.
_RENAME = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], '\\0m') == 1 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], '\\0m', KEYS[2], '\\0t', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

_TOUCH = """
if redis.call('HEXISTS', KEYS[1], '\\0m') == 1 then return 0 end
local lifetime = redis.call('HGET', KEYS[1], '\\0l')
if not lifetime then return 0 end
return redis.call('EXPIRE', KEYS[1], lifetime)
"""

# DEL, but a forward left by a rename is not a session.
_DELETE = """
local moved = redis.call('HEXISTS', KEYS[1], '\\0m')
local gone = redis.call('DEL', KEYS[1])
if moved == 1 then return 0 end
return gone
"""


class RedisStore(Store):
    """Sessions in Redis, through redis-py.

    ``client`` is a ``redis://`` / ``rediss://`` / ``unix://`` URL or a ready
    client (``redis.Redis``, a Sentinel master, ``redis.RedisCluster``), used
    as it is: pass a configured client for TLS, Sentinel or Cluster. A client
    built from a URL gets short timeouts (``socket_timeout``, 2 s by default)
    so that a hung Redis becomes a 503 instead of a hung worker.
    """

    def __init__(
        self,
        client: str | redis.Redis | t.Any = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "wsgi_sessions:",
        socket_timeout: float = 2.0,
    ) -> None:
        try:
            import redis as redis_module
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError(
                "RedisStore needs redis-py: pip install 'wsgi-sessions[redis]'"
            ) from None
        self._errors = (redis_module.RedisError,)
        self._no_script = redis_module.exceptions.NoScriptError
        if isinstance(client, str):
            client = redis_module.Redis.from_url(
                client, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
            )
        self.client = client
        self.prefix = prefix
        self._shas: dict[str, str] = {}

    def _call(self, operation: str, script: str, keys: list[str], args: list[t.Any]) -> t.Any:
        """Run a script by its SHA (one round trip), loading it the first time."""
        client = self.client
        try:
            sha = self._shas.get(script)
            if sha is not None:
                try:
                    return client.evalsha(sha, len(keys), *keys, *args)
                except self._no_script:
                    pass  # the server restarted or flushed its scripts
            sha = self._shas[script] = client.script_load(script)
            return client.evalsha(sha, len(keys), *keys, *args)
        except self._errors as exc:
            raise SessionStoreError(
                f"Redis session store failed during {operation} ({type(exc).__name__}); "
                "check that Redis is reachable and answering"
            ) from exc

    def load(self, key: str, touch: bool = False) -> dict[str, str] | None:
        reply = self._call("load", _LOAD, [self.prefix + key], ["1" if touch else "0"])
        if reply is None:
            return None
        return json.loads(reply)  # type: ignore[no-any-return]

    def create(self, key: str, fields: Mapping[str, str], lifetime: int) -> bool:
        check_fields(fields)
        args: list[t.Any] = [lifetime]
        for item in fields.items():
            args.extend(item)
        return bool(self._call("create", _CREATE, [self.prefix + key], args))

    def apply(
        self,
        key: str,
        set_fields: Mapping[str, str],
        delete_fields: Iterable[str],
        lifetime: int | None = None,
        opened_at: float | None = None,
    ) -> bool:
        delete_fields = tuple(delete_fields)
        check_fields(set_fields, delete_fields)
        args: list[t.Any] = [
            "" if lifetime is None else lifetime,
            len(set_fields),
            MAX_FORWARDS,
            "" if opened_at is None else repr(opened_at),
        ]
        for item in set_fields.items():
            args.extend(item)
        args.extend(delete_fields)
        return bool(self._call("apply", _APPLY, [self.prefix + key], args))

    def delete(self, key: str) -> bool:
        return bool(self._call("delete", _DELETE, [self.prefix + key], []))

    def rename(self, old_key: str, new_key: str) -> bool:
        keys = [self.prefix + old_key, self.prefix + new_key]
        args = [self.moved_grace, repr(time.time())]
        return bool(self._call("rename", _RENAME, keys, args))

    def touch(self, key: str) -> bool:
        return bool(self._call("touch", _TOUCH, [self.prefix + key], []))

    def purge_expired(self) -> int:
        """Redis expires sessions by itself (TTL): nothing to do."""
        return 0

    def close(self) -> None:
        self.client.close()
