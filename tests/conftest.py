"""Shared test fixtures and helpers.

Each fixture is a self-contained function; helpers that tests call are handed
out by fixtures, so no test module imports this one. A test that needs a
service (Redis, a redis-server binary, a browser) skips with the reason when it
is unavailable, but fails instead when ``WSGI_SESSIONS_REQUIRE_SERVICES=1`` (set
by ``.ci/run``), so CI can never pass by skipping."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import typing as t
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import settings
from webtest import TestApp

import cookies
from wsgi_sessions import SessionMiddleware, get_session
from wsgi_sessions.sessions import SessionMixin
from wsgi_sessions.stores import MemoryStore, SQLiteStore, Store

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

Action = Callable[[SessionMixin], object]
MakeTestApp = Callable[..., TestApp]
ParseSetCookie = Callable[[str], tuple[str, str, dict[str, str]]]


@pytest.fixture
def secret_key() -> str:
    """The secret key the test apps use unless a test sets another."""
    return "test-secret-key-that-is-long-enough-0123456789"


@pytest.fixture
def make_testapp(secret_key: str) -> MakeTestApp:
    """Build a WebTest app around ``SessionMiddleware``.

    ``action(session)`` runs inside the wrapped app on every request; what it
    returns (if a str) becomes the body. ``settings`` are passed as keywords;
    ``secret_key`` is set unless given (``None`` leaves it out) or a ``prefix``
    is given (then every setting is the test's). The
    middleware is at ``testapp.app``.
    """

    def make(
        action: Action | None = None,
        *,
        interface: t.Any = None,
        headers: list[tuple[str, str]] | None = None,
        prefix: str = "",
        **settings: t.Any,
    ) -> TestApp:
        if not prefix:
            settings.setdefault("secret_key", secret_key)
        if settings.get("secret_key", "") is None:
            del settings["secret_key"]

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            session = get_session(environ, middleware.environ_key)
            result = action(session) if action is not None else None
            body = result.encode() if isinstance(result, str) else b"ok"
            start_response(
                "200 OK",
                [("Content-Type", "text/plain"), *(headers or [])],
            )
            return [body]

        middleware = SessionMiddleware(app, settings, interface=interface, prefix=prefix)
        return TestApp(middleware)

    return make


@pytest.fixture
def parse_set_cookie() -> ParseSetCookie:
    """:func:`cookies.parse_set_cookie`, for tests that take their helpers as fixtures."""
    return cookies.parse_set_cookie


#: Set by .ci/run: a test that needs a service or a browser must run, not skip.
REQUIRE_SERVICES_ENV = "WSGI_SESSIONS_REQUIRE_SERVICES"


def skip_or_fail(reason: str) -> t.NoReturn:
    """Skip for a missing service or browser, or fail under
    WSGI_SESSIONS_REQUIRE_SERVICES=1, where a skip would hide a broken CI."""
    if os.environ.get(REQUIRE_SERVICES_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_SERVICES_ENV}=1 requires it)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def service_unavailable() -> t.Callable[[str], t.NoReturn]:
    """:func:`skip_or_fail`, for tests: ``service_unavailable("no browser: ...")``."""
    return skip_or_fail


REDIS_URL = os.environ.get("WSGI_SESSIONS_REDIS_URL", "redis://127.0.0.1:6379/15")


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_url() -> str:
    """The test Redis's URL; skip/fail per the rule when it is not reachable."""
    pytest.importorskip("redis")
    if not _reachable(REDIS_URL):
        skip_or_fail(f"Redis is not reachable at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix unique to this test; its keys (and only those) are deleted after."""
    import redis

    prefix = f"wsgi_sessions_test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


POSTGRESQL_URL = os.environ.get(
    "WSGI_SESSIONS_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def postgresql_url() -> str:
    """The test PostgreSQL's URL; skip/fail per the rule when it is not reachable."""
    pytest.importorskip("psycopg")
    pytest.importorskip("psycopg_pool")
    import psycopg

    try:
        psycopg.connect(POSTGRESQL_URL, connect_timeout=2).close()
    except psycopg.Error as exc:
        skip_or_fail(f"PostgreSQL is not reachable at {POSTGRESQL_URL} ({type(exc).__name__})")
    return POSTGRESQL_URL


@pytest.fixture
def postgresql_table(postgresql_url: str) -> Iterator[str]:
    """A table name unique to this test; the table and the functions made with
    it (and only those) are dropped after."""
    table = f"wsgi_sessions_test_{uuid.uuid4().hex[:16]}"
    yield table
    drop_postgresql_table(postgresql_url, table)


def drop_postgresql_table(url: str, table: str) -> None:
    """Drop a test's table and the functions made with it (and only those)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f'DROP TABLE IF EXISTS "{table}"')
        db.execute(f'DROP FUNCTION IF EXISTS "{table}_end", "{table}_rename"')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A throwaway redis-server of the test's own, on a spare loopback port."""

    def __init__(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            skip_or_fail("redis-server is not installed")
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [
                executable,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _reachable(self.url):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                skip_or_fail("the test's own redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill the server and wait until it is gone."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    pytest.importorskip("redis")
    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


MYSQL_URL = os.environ.get("WSGI_SESSIONS_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")


@pytest.fixture
def mysql_url() -> str:
    """The test MySQL/MariaDB's URL; skip/fail per the rule when it is not reachable."""
    pytest.importorskip("MySQLdb")
    if not _reachable(MYSQL_URL.replace("mysql://", "redis://", 1)):  # the same host:port parse
        skip_or_fail(f"MySQL/MariaDB is not reachable at {MYSQL_URL}")
    return MYSQL_URL


def drop_mysql_table(url: str, table: str) -> None:
    """Drop a test's tables and the procedures made with them."""
    import MySQLdb

    from wsgi_sessions.stores import _mysql_sql
    from wsgi_sessions.stores.mysql import parse_url

    params, _ = parse_url(url)
    connection = MySQLdb.connect(**params, autocommit=True)
    try:
        cursor = connection.cursor()
        cursor.execute(f"DROP TABLE IF EXISTS {table}, {table}_fields")
        for operation in _mysql_sql.PROCEDURES:
            cursor.execute(
                f"DROP PROCEDURE IF EXISTS {_mysql_sql.procedure_name(table, operation)}"
            )
    finally:
        connection.close()


@pytest.fixture
def mysql_table(mysql_url: str) -> Iterator[str]:
    """A table name unique to this test; the table and its procedures are dropped after."""
    table = f"wsgi_sessions_test_{uuid.uuid4().hex[:16]}"
    yield table
    drop_mysql_table(mysql_url, table)


# -- Redis Sentinel and Cluster: deployments of our own, one of each per test session -----


def _deployment(request: pytest.FixtureRequest, kind: str) -> t.Any:
    pytest.importorskip("redis")
    import redis_servers

    try:
        deployment = redis_servers.Sentinels() if kind == "sentinel" else redis_servers.Cluster()
    except redis_servers.Unavailable as exc:
        skip_or_fail(f"no Redis {kind} for the tests: {exc}")
    request.addfinalizer(deployment.stop)
    return deployment


@pytest.fixture(scope="session")
def redis_sentinels(request: pytest.FixtureRequest) -> t.Any:
    """A master, a replica and three Sentinels of our own (redis_servers.Sentinels)."""
    return _deployment(request, "sentinel")


@pytest.fixture(scope="session")
def redis_cluster(request: pytest.FixtureRequest) -> t.Any:
    """A Redis Cluster of three masters of our own (redis_servers.Cluster)."""
    return _deployment(request, "cluster")


# -- the stores: one parametrized fixture over every backend ---------------------------

STORES = ["memory", "sqlite", "redis", "redis-sentinel", "redis-cluster", "postgresql", "mysql"]


class StorePair(t.NamedTuple):
    store: Store
    other: Store


@pytest.fixture(params=STORES)
def store_pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorePair]:
    kind = request.param
    if kind == "memory":
        store = MemoryStore()
        yield StorePair(store, store)
        return
    if kind == "sqlite":
        path = tmp_path / "sessions.db"
        first, second = SQLiteStore(path), SQLiteStore(path)
    elif kind == "postgresql":
        from wsgi_sessions.stores.postgresql import PostgreSQLStore

        url = request.getfixturevalue("postgresql_url")
        table = request.getfixturevalue("postgresql_table")
        first, second = PostgreSQLStore(url, table=table), PostgreSQLStore(url, table=table)
    elif kind == "mysql":
        from wsgi_sessions.stores.mysql import MySQLStore

        url = request.getfixturevalue("mysql_url")
        table = request.getfixturevalue("mysql_table")
        first = MySQLStore(url, table=table)
        second = MySQLStore(url, table=table, create=False)
    elif kind in ("redis-sentinel", "redis-cluster"):
        from wsgi_sessions.stores.redis import RedisStore

        fixture = "redis_sentinels" if kind == "redis-sentinel" else "redis_cluster"
        # A prefix of this test's own on a throwaway deployment, dropped with it.
        url = request.getfixturevalue(fixture).url(query=f"?prefix=t{uuid.uuid4().hex}:")
        first, second = RedisStore(url), RedisStore(url)
    else:
        from wsgi_sessions.stores.redis import RedisStore

        redis_url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_prefix")
        first = RedisStore(redis_url, prefix=prefix)
        second = RedisStore(redis_url, prefix=prefix)
    try:
        yield StorePair(first, second)
    finally:
        first.close()
        second.close()


@pytest.fixture
def store(store_pair: StorePair) -> Store:
    return store_pair.store


@pytest.fixture
def other_store(store_pair: StorePair) -> Store:
    return store_pair.other


# A long run of the hypothesis tests (the stateful race test above all), for
# local use: pytest --hypothesis-profile=long
settings.register_profile("long", max_examples=5000)


AlterSignature = Callable[[str], dict[str, str]]
_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.fixture
def altered_signatures() -> AlterSignature:
    """Respellings of a signed value's signature (after the last ``.``) that a
    lenient base64 decoder reads as the same bytes: each must be refused.

    The standard-alphabet case is there only when the signature has a ``-`` or
    ``_`` to swap.
    """

    def alter(value: str) -> dict[str, str]:
        head, _, signature = value.rpartition(".")
        flipped = _BASE64[_BASE64.index(signature[-1]) ^ 1]  # bit 0 is never used
        cases = {
            "unused-low-bit": f"{head}.{signature[:-1]}{flipped}",
            "trailing-padding": f"{value}=",
            "double-padding": f"{value}==",
        }
        standard = signature.replace("-", "+").replace("_", "/")
        if standard != signature:
            cases["standard-alphabet"] = f"{head}.{standard}"
        return cases

    return alter


class _CountingDecompressor:
    """A zlib decompressor that records how many bytes each call produced."""

    def __init__(self, inner: t.Any, sizes: list[int]) -> None:
        self._inner = inner
        self._sizes = sizes

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        out: bytes = self._inner.decompress(data, max_length)
        self._sizes.append(len(out))
        return out

    def flush(self, *args: t.Any) -> bytes:
        out: bytes = self._inner.flush(*args)
        self._sizes.append(len(out))
        return out

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._inner, name)


@pytest.fixture
def decompressed_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of bytes each zlib decompression produced while the test ran
    (``zlib.decompress`` and decompressor objects alike): a measure of the work
    a payload caused that does not depend on the machine's speed."""
    import zlib

    sizes: list[int] = []
    decompress, decompressobj = zlib.decompress, zlib.decompressobj

    def counting_decompress(data: bytes, *args: t.Any, **kwargs: t.Any) -> bytes:
        out = decompress(data, *args, **kwargs)
        sizes.append(len(out))
        return out

    def counting_decompressobj(*args: t.Any, **kwargs: t.Any) -> t.Any:
        return _CountingDecompressor(decompressobj(*args, **kwargs), sizes)

    monkeypatch.setattr(zlib, "decompress", counting_decompress)
    monkeypatch.setattr(zlib, "decompressobj", counting_decompressobj)
    return sizes
