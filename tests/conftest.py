"""Shared test helpers: the rule for tests that need a running service, and
the one store fixture every store and server-side test runs over.

A test that needs Redis (or a redis-server binary) skips with the reason when
it is unavailable, but fails instead when ``WSGI_SESSIONS_REQUIRE_SERVICES=1``
(set by ``.ci/run``), so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import typing as t
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from wsgi_sessions.stores import MemoryStore, SQLiteStore, Store

REDIS_URL = os.environ.get("WSGI_SESSIONS_REDIS_URL", "redis://127.0.0.1:6379/15")


def service_unavailable(reason: str) -> t.NoReturn:
    """Skip the test, or fail it when services are required."""
    if os.environ.get("WSGI_SESSIONS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (WSGI_SESSIONS_REQUIRE_SERVICES=1: services are required)")
    pytest.skip(reason)


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
        service_unavailable(f"Redis is not reachable at {REDIS_URL}")
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A throwaway redis-server of the test's own, on a spare loopback port."""

    def __init__(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            service_unavailable("redis-server is not installed")
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
                service_unavailable("the test's own redis-server did not start")
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


# -- the stores: one parametrized fixture over every backend ---------------------------

STORES = ["memory", "sqlite", "redis"]


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
