"""One parametrized fixture over every store, with real backends.

``store`` is a store; ``other_store`` is a second handle on the same data with
its own connections (the same object for the in-process memory store), as a
second process or machine would have.
"""

from __future__ import annotations

import typing as t
from collections.abc import Iterator
from pathlib import Path

import pytest

from wsgi_sessions.stores import MemoryStore, SQLiteStore, Store

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
