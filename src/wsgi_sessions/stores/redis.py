"""A store in Redis: one hash per session, shared by many machines.

Each session is one hash at ``prefix + key``; the fields are the session's
keys, plus the reserved field ``\\x00l`` (the lifetime; a hash written by an
earlier version may also hold ``\\x00c``, which is ignored).
An ended marker is a hash of ``\\x00e`` (when it ended) and, after a rename,
``\\x00s`` (the Redis key of its successor).
Expiry is Redis's own TTL. Every operation is one Lua script, so it is atomic
and one round trip. The keys the interface hands over carry a hash tag
(``{...}``) that a regenerated session keeps, so a session and its successors
live in one Cluster slot.
"""

from __future__ import annotations

import logging
import time
import typing as t
from collections.abc import Mapping

from ..errors import SessionStoreError
from .base import MAX_SUCCESSORS, Clock, Ended, Store

if t.TYPE_CHECKING:  # pragma: no cover
    import redis

__all__ = ["RedisStore"]

logger = logging.getLogger("wsgi_sessions")

# Lua's unpack() fails beyond a few thousand values (LUAI_MAXCSTACK), so
# every variadic HSET/HDEL below takes the arguments 1000 at a time (an even
# number: field/value pairs never straddle two calls).

# KEYS[1] session; ARGV[1] '1' to touch. For a live session, the hash as
# HGETALL has it (names and texts alternating, the reserved fields among
# them) joined by one separator in one bulk, with how many there are: a
# C-level table.concat, no Lua loop over the fields, and one bulk for
# redis-py to read (its parser costs microseconds per bulk: a 500-key HGETALL
# reply took 2 ms to read). With ARGV[2], the plain HGETALL reply instead,
# for the rare hash where a name or text holds the separator. 'e' and the
# time for an ended marker; nil when absent.
_LOAD = """
local state = redis.call('HMGET', KEYS[1], '\\0l', '\\0e')
if state[2] then return 'e' .. state[2] end
if not state[1] then return false end
if ARGV[1] == '1' then redis.call('EXPIRE', KEYS[1], state[1]) end
local flat = redis.call('HGETALL', KEYS[1])
if ARGV[2] then return flat end
return {#flat, table.concat(flat, '\\31')}
"""

# Joins the load reply: a control character, which the JSON texts of the
# default serializer never hold and a session key name only very rarely
# does (the count then tells, and the load asks again for the plain reply).
_SEPARATOR = "\x1f"
# Reserved fields a live hash holds ("\x00c": an earlier version's mark).
_RESERVED = ("\x00l", "\x00c")


def _text(value: bytes | str) -> str:
    if type(value) is bytes:
        # surrogateescape: bytes that are not UTF-8 (written by someone else)
        # make a text that does not parse, not a failed request.
        return value.decode("utf-8", "surrogateescape")
    return t.cast(str, value)


def _fields(flat: list[str]) -> dict[str, str]:
    """Names and texts alternating, as HGETALL gives them, as a dict of the
    session's fields (C-level: two slices and a zip, no loop)."""
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    for name in _RESERVED:
        fields.pop(name, None)
    return fields


# KEYS[1] session; ARGV: lifetime, then field, value pairs. 1 if created.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], '\\0l', ARGV[1])
for i = 2, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

# KEYS[1] session; ARGV: lifetime ('' = keep), number of fields to set, the
# field/value pairs, then the fields to delete. 1 if applied; 0 if absent; the
# time it ended (a string) for an ended marker, which is left as it is.
# '\\0c' is removed: an earlier version's load trusted it to mean "every text
# is JSON by itself", which this version no longer checks.
_APPLY = """
local key = KEYS[1]
local state = redis.call('HMGET', key, '\\0l', '\\0e')
if state[2] then return state[2] end
if not state[1] then return 0 end
local lifetime = ARGV[1]
if lifetime == '' then lifetime = state[1] else redis.call('HSET', key, '\\0l', lifetime) end
local last = 2 + 2 * tonumber(ARGV[2])
for i = 3, last, 1000 do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + 999, last)))
end
for i = last + 1, #ARGV, 1000 do
  redis.call('HDEL', key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('HDEL', key, '\\0c')
redis.call('EXPIRE', key, lifetime)
return 1
"""

# KEYS[1] session; ARGV: now, grace seconds, how many successors to follow.
# The loop of Store.end (successors share the hash tag, so the slot): 1 if a
# live session was ended.
_END = """
local key = KEYS[1]
for _ = 0, tonumber(ARGV[3]) do
  local state = redis.call('HMGET', key, '\\0l', '\\0e', '\\0s')
  if not state[1] and not state[2] then return 0 end -- none
  if not state[2] then -- live: end it
    local ttl = math.max(redis.call('PTTL', key), tonumber(ARGV[2]) * 1000)
    redis.call('DEL', key)
    redis.call('HSET', key, '\\0e', ARGV[1])
    redis.call('PEXPIRE', key, ttl)
    return 1
  end
  if not state[3] then return 0 end -- a marker with no successor
  key = state[3]
end
return 0
"""

# KEYS[1] old, KEYS[2] new; ARGV: now, grace seconds. RENAME keeps the TTL;
# the marker keeps it too (at least the grace). Returns as _APPLY does.
_RENAME = """
local state = redis.call('HMGET', KEYS[1], '\\0l', '\\0e')
if state[2] then return state[2] end
if not state[1] then return 0 end
local ttl = math.max(redis.call('PTTL', KEYS[1]), tonumber(ARGV[2]) * 1000)
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], '\\0e', ARGV[1], '\\0s', KEYS[2])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
"""

_TOUCH = """
local state = redis.call('HMGET', KEYS[1], '\\0l', '\\0e')
if state[2] or not state[1] then return 0 end
return redis.call('EXPIRE', KEYS[1], state[1])
"""


def _absent_or_ended(reply: t.Any) -> Ended | None:
    """The load script's reply for a session that is not live."""
    if reply is None:
        return None
    return Ended(float(reply[1:]))  # b"e<time>" (or str, from a client that decodes replies)


def _outcome(reply: t.Any) -> bool | Ended:
    """A script's 1 / 0 / time-it-ended reply as the store contract's value."""
    if isinstance(reply, bytes):
        return Ended(float(reply))
    return bool(reply)


def _failed(operation: str, exc: Exception) -> SessionStoreError:
    return SessionStoreError(
        f"Redis session store failed during {operation} ({type(exc).__name__}); "
        "check that Redis is reachable and answering"
    )


def _socket_timeout(client: t.Any) -> float | None:
    """The socket timeout a ready client was configured with, if it says."""
    get_kwargs = getattr(client, "get_connection_kwargs", None)  # Redis, RedisCluster
    kwargs = get_kwargs() if callable(get_kwargs) else None
    if not isinstance(kwargs, dict):
        pool = getattr(client, "connection_pool", None)
        kwargs = getattr(pool, "connection_kwargs", None)
    if isinstance(kwargs, dict):
        return kwargs.get("socket_timeout")
    return getattr(client, "socket_timeout", 0.0)  # unknown shape: assume set


def _is_cluster(client: t.Any) -> bool:
    return hasattr(client, "get_node_from_key")


# The operations that write: with wait_replicas, each waits for replicas.
# (A load's or touch's expiry refresh does not: losing one costs nothing.)
_WRITES = frozenset(("create", "apply", "end", "rename"))


def _checked_options(
    prefix: str | None,
    wait_replicas: int | None,
    wait_timeout: float | None,
    socket_timeout: float | None,
) -> tuple[str, int, float]:
    """prefix, wait_replicas and wait_timeout with their defaults, or a ValueError."""
    prefix = "wsgi_sessions:" if prefix is None else prefix
    if "{" in prefix or "}" in prefix:
        raise ValueError(
            f"RedisStore prefix must not contain '{{' or '}}' (got {prefix!r}): the "
            "session's hash tag must be the first braces of its key"
        )
    replicas = wait_replicas or 0
    timeout = 0.5 if wait_timeout is None else wait_timeout
    if replicas < 0:
        raise ValueError(f"RedisStore wait_replicas must be 0 or more, got {wait_replicas}")
    if replicas and socket_timeout and timeout >= socket_timeout:
        raise ValueError(
            f"RedisStore wait_timeout ({timeout:g} s) must be shorter than the "
            f"client's socket_timeout ({socket_timeout:g} s), or every unacknowledged write "
            "would time out the connection instead"
        )
    return prefix, replicas, timeout


class RedisStore(Store):
    """Sessions in Redis, through redis-py.

    ``client`` is a URL (``redis://``, ``rediss://``, ``unix://``,
    ``redis+sentinel://``, ``redis+cluster://``, ``rediss+...``: see
    :mod:`wsgi_sessions.stores.redis_urls`) or a ready client (``redis.Redis``,
    ``Sentinel(...).master_for(...)``, ``redis.RedisCluster``), used as it is.
    A client built from a URL gets short timeouts (``socket_timeout``, 2 s by
    default) so that a hung Redis becomes a 503 instead of a hung worker; a
    ready client without a socket timeout is logged as a warning at start-up.

    ``prefix`` (default ``wsgi_sessions:``; a URL's ``prefix=`` when not
    given) must not hold ``{`` or ``}``: the keys' hash tag, which keeps a
    session and its successors in one Cluster slot, must be the first braces.

    Redis replicates asynchronously: a write acknowledged by a master that
    dies before its replica has it is lost in a failover. ``wait_replicas=n``
    makes each write (create, apply, end, rename) also wait up to
    ``wait_timeout`` seconds (default 0.5) for ``n`` replicas to acknowledge
    it (``WAIT``, in the same round trip as the script except on a Cluster,
    where it is a second one); fewer acknowledgements is a
    :class:`~wsgi_sessions.SessionStoreError` (a 503), never a false success.
    The write is then on the master and may still survive: as for any 503 after
    a timeout, the outcome is unknown, not "not written".

    Expiry runs on Redis's own clock (TTLs); ``clock`` only gives the time an
    ended marker records.
    """

    def __init__(
        self,
        client: str | redis.Redis | t.Any = "redis://127.0.0.1:6379/0",
        *,
        prefix: str | None = None,
        socket_timeout: float = 2.0,
        wait_replicas: int | None = None,
        wait_timeout: float | None = None,
        clock: Clock = time.time,
    ) -> None:
        try:
            import redis as redis_module
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError(
                "RedisStore needs redis-py: pip install 'wsgi-sessions[redis]'"
            ) from None
        # RedisClusterException is no RedisError, and a cluster client raises
        # it when no node answers (during a failover too): a 503 all the same.
        self._errors = (redis_module.RedisError, redis_module.RedisClusterException)
        self._also_close: list[t.Any] = []
        timeout: float | None
        made_here = isinstance(client, str)  # from a URL: ours to close on an error
        if isinstance(client, str):
            from .redis_urls import client_from_url

            parsed = client_from_url(client, socket_timeout=socket_timeout)
            client, self._also_close = parsed.client, parsed.also_close
            prefix = parsed.prefix if prefix is None else prefix
            wait_replicas = parsed.wait_replicas if wait_replicas is None else wait_replicas
            wait_timeout = parsed.wait_timeout if wait_timeout is None else wait_timeout
            timeout = parsed.socket_timeout
        else:
            timeout = _socket_timeout(client)
            if timeout is None:
                logger.warning(
                    "RedisStore: the Redis client has no socket_timeout, so a hung Redis hangs "
                    "every request that uses a session; create it with socket_timeout=2 "
                    "and socket_connect_timeout=2 (or pass a redis:// URL)"
                )
        try:
            self.prefix, self.wait_replicas, self.wait_timeout = _checked_options(
                prefix, wait_replicas, wait_timeout, timeout
            )
        except ValueError:
            for made in (client, *self._also_close) if made_here else ():
                made.close()  # a Cluster client has connected already
            raise
        self._cluster = _is_cluster(client)
        self.client: t.Any = client
        self.clock = clock
        # Script objects run by SHA (one round trip), loading the script again
        # when Redis answers NOSCRIPT (after a restart or SCRIPT FLUSH).
        self._scripts = {
            operation: client.register_script(source)
            for operation, source in (
                ("load", _LOAD),
                ("create", _CREATE),
                ("apply", _APPLY),
                ("end", _END),
                ("rename", _RENAME),
                ("touch", _TOUCH),
            )
        }

    def _call(self, operation: str, keys: list[str], args: list[t.Any]) -> t.Any:
        try:
            if self.wait_replicas and operation in _WRITES:
                reply, acknowledged = self._call_and_wait(operation, keys, args)
            else:
                return self._scripts[operation](keys, args)
        except self._errors as exc:
            raise _failed(operation, exc) from exc
        if acknowledged < self.wait_replicas:
            raise SessionStoreError(
                f"Redis session store: the {operation} reached the master but "
                f"{acknowledged} of {self.wait_replicas} replicas acknowledged it within "
                f"{self.wait_timeout:g} s (wait_replicas); it may be lost in a failover"
            )
        return reply

    def _call_and_wait(
        self, operation: str, keys: list[str], args: list[t.Any]
    ) -> tuple[t.Any, int]:
        """The script, then ``WAIT``: the reply and how many replicas have it.

        One round trip (a pipeline on one connection, so on the server the
        script ran on), except on a Cluster: there WAIT is sent after the
        script to the node that then serves the key, since a pipelined WAIT
        would stay on the old node if the script were redirected (MOVED).
        """
        script = self._scripts[operation]
        wait = ("WAIT", self.wait_replicas, int(self.wait_timeout * 1000))
        if self._cluster:
            reply = script(keys, args)
            node = self.client.get_node_from_key(keys[0])
            return reply, int(self.client.execute_command(*wait, target_nodes=node))
        from redis.exceptions import NoScriptError

        for attempt in range(2):
            pipe = self.client.pipeline(transaction=False)
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            pipe.execute_command(*wait)
            try:
                reply, acknowledged = pipe.execute()
            except NoScriptError:
                if attempt:
                    raise
                # Redis restarted or failed over to a replica without the script.
                script.sha = self.client.script_load(script.script)
                continue
            return reply, int(acknowledged)
        raise AssertionError("unreachable")  # pragma: no cover

    def load(self, key: str, touch: bool = False) -> dict[str, str] | Ended | None:
        keys = [self.prefix + key]
        reply = self._call("load", keys, ["1" if touch else "0"])
        if not isinstance(reply, list):
            return _absent_or_ended(reply)
        count, joined = reply
        flat = _text(joined).split(_SEPARATOR)
        if len(flat) == count:
            return _fields(flat)
        # A name or a text holds the separator: the plain reply (already touched).
        reply = self._call("load", keys, ["0", "plain"])
        if not isinstance(reply, list):
            return _absent_or_ended(reply)
        return _fields([_text(item) for item in reply])

    def _create(self, key: str, fields: Mapping[str, str], lifetime: int) -> bool:
        args: list[t.Any] = [lifetime]
        for item in fields.items():
            args.extend(item)
        return bool(self._call("create", [self.prefix + key], args))

    def _apply(
        self,
        key: str,
        set_fields: Mapping[str, str],
        delete_fields: tuple[str, ...],
        lifetime: int | None,
    ) -> bool | Ended:
        args: list[t.Any] = ["" if lifetime is None else lifetime, len(set_fields)]
        for item in set_fields.items():
            args.extend(item)
        args.extend(delete_fields)
        return _outcome(self._call("apply", [self.prefix + key], args))

    def end(self, key: str) -> bool:
        args = [repr(self.clock()), self.end_grace, MAX_SUCCESSORS]
        return bool(self._call("end", [self.prefix + key], args))

    def rename(self, old_key: str, new_key: str) -> bool | Ended:
        keys = [self.prefix + old_key, self.prefix + new_key]
        args = [repr(self.clock()), self.end_grace]
        return _outcome(self._call("rename", keys, args))

    def touch(self, key: str) -> bool:
        return bool(self._call("touch", [self.prefix + key], []))

    def purge_expired(self) -> int:
        """Redis expires sessions by itself (TTL): nothing to purge. Redis is
        still asked to answer, so that a purge run from cron against a Redis
        that is down says so instead of reporting success."""
        try:
            self.client.ping()
        except self._errors as exc:
            raise _failed("purge", exc) from exc
        return 0

    def close(self) -> None:
        self.client.close()
        for other in self._also_close:  # the Sentinels a URL named
            other.close()
