"""Redis clients from the ``store`` URL: one server, Sentinel or Cluster.

Kept apart from the store (which runs the scripts) because its job is only to
turn a URL into a configured redis-py client, with the same safe defaults for
every deployment kind: short socket timeouts, and at most one quick retry of a
command whose connection broke (a pooled connection closed by a restart or a
failover), never a retry after a timeout, so that a Redis that is down or hung
becomes a 503 within about ``socket_timeout`` instead of a worker stuck for
redis-py's default ten retries.

URLs::

    redis://[[user]:password@]host[:port][/db]      (also rediss://, unix://)
    redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]
    redis+cluster://[[user]:password@]host:port[,host:port...]
    rediss+sentinel://..., rediss+cluster://...     (TLS to every server)

Query parameters read here, for every kind: ``prefix`` (the key prefix),
``wait_replicas`` and ``wait_timeout`` (see :class:`RedisStore`), and for
Sentinel and Cluster ``socket_timeout``, ``socket_connect_timeout`` (seconds),
``sentinel_username``, ``sentinel_password`` (Sentinel), and for TLS
``ssl_cert_reqs``, ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``. A
plain ``redis://`` URL passes its other parameters to redis-py as it always
did; an unknown parameter of a Sentinel or Cluster URL is a ``ValueError``.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from . import _REDIS_SCHEMES as REDIS_SCHEMES
from . import mask_url

__all__ = ["REDIS_SCHEMES", "RedisURL", "client_from_url"]


# Read by the store, for every kind of URL.
_STORE_PARAMETERS = ("prefix", "wait_replicas", "wait_timeout")
_TIMEOUTS = ("socket_timeout", "socket_connect_timeout")
_TLS = ("ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
_SENTINEL_AUTH = ("sentinel_username", "sentinel_password")


@dataclass
class RedisURL:
    """What a URL asks for: the client, the store's options, and the other
    clients built for it (the Sentinels) that the store closes with it."""

    client: t.Any
    prefix: str | None = None
    wait_replicas: int = 0
    wait_timeout: float | None = None
    socket_timeout: float | None = None
    also_close: list[t.Any] = field(default_factory=list)


def _fail(url: str, problem: str) -> t.NoReturn:
    raise ValueError(f"setting 'store': {problem}, in {mask_url(url)!r}")


def _seconds(url: str, name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        _fail(url, f"{name} must be a positive number of seconds, got {text!r}")
    return value


def _retry() -> t.Any:
    """One immediate retry, on a broken connection only (not after a timeout:
    that would double the time a request hangs)."""
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError
    from redis.retry import Retry

    return Retry(NoBackoff(), 1, supported_errors=(ConnectionError,))


def _store_options(url: str, query: dict[str, str], result: RedisURL) -> None:
    if "prefix" in query:
        result.prefix = query["prefix"]
    if "wait_replicas" in query:
        text = query["wait_replicas"]
        if not text.isdigit():
            _fail(url, f"wait_replicas must be a whole number of replicas, got {text!r}")
        result.wait_replicas = int(text)
    if "wait_timeout" in query:
        result.wait_timeout = _seconds(url, "wait_timeout", query["wait_timeout"])


def _hosts(url: str, netloc: str, default_port: int) -> tuple[str | None, str | None, list[t.Any]]:
    """user, password and [(host, port)] of a comma-separated authority."""
    user = password = None
    credentials, at, hosts = netloc.rpartition("@")
    if at:
        name, colon, secret = credentials.partition(":")
        user = unquote(name) or None
        password = unquote(secret) if colon else None
    addresses = []
    for item in hosts.split(","):
        host, port_text = item, ""
        if item.startswith("["):  # [IPv6]:port
            host, _, rest = item[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else rest
        elif ":" in item:
            host, _, port_text = item.rpartition(":")
        if not host or (port_text and not port_text.isdigit()):
            _fail(url, f"{item!r} is not host:port")
        port = int(port_text) if port_text else default_port
        if not 0 < port < 65536:
            _fail(url, f"{item!r} is not host:port")
        addresses.append((host, port))
    return user, password, addresses


def client_from_url(url: str, *, socket_timeout: float) -> RedisURL:
    """A client for a Redis URL of any kind above, and the store options it names.

    ``socket_timeout`` is the default of both socket timeouts where the URL
    sets none.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in REDIS_SCHEMES:
        _fail(url, "not a Redis URL")
    query_list = parse_qsl(parts.query, keep_blank_values=True)
    query = dict(query_list)
    if len(query) != len(query_list):
        _fail(url, "a query parameter is given twice")
    if scheme in ("redis", "rediss", "unix"):
        return _single(url, parts, query, socket_timeout)

    base, _, kind = scheme.partition("+")
    known = {*_STORE_PARAMETERS, *_TIMEOUTS}
    if base == "rediss":
        known.update(_TLS)
    if kind == "sentinel":
        known.update(_SENTINEL_AUTH)
    unknown = sorted(set(query) - known)
    if unknown:
        _fail(url, f"unknown query parameter {unknown[0]!r} (known: {', '.join(sorted(known))})")

    result = RedisURL(client=None)
    _store_options(url, query, result)
    timeouts = {
        name: _seconds(url, name, query[name]) if name in query else socket_timeout
        for name in _TIMEOUTS
    }
    result.socket_timeout = timeouts["socket_timeout"]
    tls: dict[str, t.Any] = {}
    if base == "rediss":
        tls = {"ssl": True, **{name: query[name] for name in _TLS if name in query}}
    user, password, addresses = _hosts(url, parts.netloc, 26379 if kind == "sentinel" else 6379)
    common = {"username": user, "password": password, "retry": _retry(), **timeouts, **tls}

    if kind == "sentinel":
        result.client, result.also_close = _sentinel(url, parts.path, addresses, common, query)
    else:
        result.client = _cluster(url, parts.path, addresses, common)
    return result


def _single(url: str, parts: t.Any, query: dict[str, str], socket_timeout: float) -> RedisURL:
    """redis://, rediss://, unix://: redis-py's own URL parsing, without our parameters."""
    import redis

    result = RedisURL(client=None)
    _store_options(url, query, result)
    rest = [(name, value) for name, value in query.items() if name not in _STORE_PARAMETERS]
    plain = urlunsplit(parts._replace(query=urlencode(rest)))
    try:
        result.client = redis.Redis.from_url(
            plain,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=_retry(),
        )
    except (ValueError, TypeError) as exc:
        _fail(url, f"redis-py refused it ({exc})")
    kwargs = result.client.connection_pool.connection_kwargs
    result.socket_timeout = kwargs.get("socket_timeout")
    return result


def _sentinel(
    url: str,
    path: str,
    addresses: list[t.Any],
    common: dict[str, t.Any],
    query: dict[str, str],
) -> tuple[t.Any, list[t.Any]]:
    from redis.sentinel import Sentinel

    make_sentinel: t.Any = Sentinel  # untyped in redis-py

    names = [unquote(part) for part in path.split("/")[1:]]
    if not names or not names[0] or len(names) > 2:
        _fail(url, "a Sentinel URL ends with /service_name or /service_name/db")
    db = 0
    if len(names) == 2 and names[1]:
        if not names[1].isdigit():
            _fail(url, f"the database must be a number, got {names[1]!r}")
        db = int(names[1])
    # The Sentinels get the timeouts and TLS of the data nodes, and their own
    # credentials (Sentinels are often not password-protected when Redis is).
    sentinel_kwargs = {
        name: value for name, value in common.items() if name not in ("username", "password")
    }
    sentinel_kwargs["username"] = query.get("sentinel_username")
    sentinel_kwargs["password"] = query.get("sentinel_password")
    sentinel = make_sentinel(addresses, sentinel_kwargs=sentinel_kwargs, db=db, **common)
    return sentinel.master_for(names[0]), list(sentinel.sentinels)


def _cluster(url: str, path: str, addresses: list[t.Any], common: dict[str, t.Any]) -> t.Any:
    from redis.cluster import ClusterNode, RedisCluster

    make_node: t.Any = ClusterNode  # untyped in redis-py

    if path not in ("", "/", "/0"):
        _fail(url, "a Redis Cluster has only database 0: no path after the hosts")
    nodes = [make_node(host, port) for host, port in addresses]
    # The client connects (and reads the slot table) now: a cluster that
    # cannot be reached at start-up is an error, as for the other stores.
    from redis.exceptions import RedisClusterException, RedisError

    from ..errors import SessionStoreError

    try:
        return RedisCluster(startup_nodes=nodes, **common)
    except (RedisError, RedisClusterException) as exc:
        raise SessionStoreError(
            f"Redis Cluster at {mask_url(url)!r} could not be reached at start-up "
            f"({type(exc).__name__}); check that one of the nodes answers"
        ) from exc
