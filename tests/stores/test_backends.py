"""What is particular to each backend: URLs, SQLite across processes, Redis clients."""

from __future__ import annotations

import logging
import multiprocessing
import sqlite3
import time
import typing as t
from collections.abc import Mapping
from pathlib import Path

import pytest

from wsgi_sessions.errors import SessionStoreError
from wsgi_sessions.stores import MemoryStore, SQLiteStore, store_from_url
from wsgi_sessions.stores.base import Ended

if t.TYPE_CHECKING:
    from .conftest import Clock

KEY = "{backend1}session"


# -- store_from_url -------------------------------------------------------------------------


def test_store_from_url_memory() -> None:
    assert isinstance(store_from_url("memory://"), MemoryStore)


def test_store_from_url_sqlite_absolute_and_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absolute = store_from_url(f"sqlite:///{tmp_path}/abs.db")
    assert isinstance(absolute, SQLiteStore)
    assert absolute.path == f"{tmp_path}/abs.db"
    monkeypatch.chdir(tmp_path)
    relative = store_from_url("sqlite:///rel.db")
    assert isinstance(relative, SQLiteStore)
    assert relative.path == "rel.db"
    assert (tmp_path / "rel.db").exists()


def test_store_from_url_redis(redis_url: str) -> None:
    from wsgi_sessions.stores.redis import RedisStore

    store = store_from_url(redis_url)
    assert isinstance(store, RedisStore)
    store.close()


@pytest.mark.parametrize("url", ["mongodb://x", "sqlite://x.db", "sqlite:///", "nothing"])
def test_store_from_url_refuses_other_urls(url: str) -> None:
    with pytest.raises(ValueError, match="store"):
        store_from_url(url)


def test_a_bad_sqlite_table_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="table"):
        SQLiteStore(tmp_path / "x.db", table="sessions; DROP TABLE x")


# -- SQLite: separate processes on one file -------------------------------------------------


def _sqlite_writer(path: str, index: int, rounds: int) -> None:
    store = SQLiteStore(path)
    for round_ in range(rounds):
        if not store.apply(KEY, {f"p{index}-{round_}": str(round_)}, []):
            raise SystemExit(1)
    store.close()


def test_sqlite_writers_in_separate_processes_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    store = SQLiteStore(path)
    store.create(KEY, {"base": "0"}, 60)
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_sqlite_writer, args=(path, index, 25)) for index in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0, 0, 0, 0]
    fields = store.load(KEY)
    assert isinstance(fields, Mapping)
    assert len(fields) == 1 + 4 * 25
    assert fields["p3-24"] == "24"


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "wal.db")
    mode = store._connection().execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


# -- Redis: ready clients, scripts, layout ---------------------------------------------------


def test_redis_accepts_a_ready_client_with_decoded_responses(
    redis_url: str, redis_prefix: str
) -> None:
    import redis

    from wsgi_sessions.stores.redis import RedisStore

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store = RedisStore(client, prefix=redis_prefix)
    assert store.create(KEY, {"a": '"x"'}, 60)
    assert store.apply(KEY, {"b": "1"}, [])
    assert store.load(KEY, touch=True) == {"a": '"x"', "b": "1"}
    # One hash per session, under the prefix, with a TTL.
    assert client.type(redis_prefix + KEY) == "hash"
    assert 0 < client.ttl(redis_prefix + KEY) <= 60
    client.close()


def test_redis_reloads_its_scripts_after_a_script_flush(own_redis: t.Any) -> None:
    import redis

    from wsgi_sessions.stores.redis import RedisStore

    store = RedisStore(own_redis.url)
    assert store.create(KEY, {"a": "1"}, 60)
    redis.Redis.from_url(own_redis.url).script_flush()  # the test's own server only
    assert store.load(KEY) == {"a": "1"}
    store.close()


def test_a_regenerated_session_stays_in_its_hash_slot(redis_url: str, redis_prefix: str) -> None:
    from redis.crc import key_slot

    from wsgi_sessions.stores.redis import RedisStore

    store = RedisStore(redis_url, prefix=redis_prefix)
    store.create("{famslot1}old", {"a": "1"}, 60)
    assert store.rename("{famslot1}old", "{famslot1}new")
    store.close()
    keys = [f"{redis_prefix}{{famslot1}}{name}".encode() for name in ("old", "new", "other")]
    assert len({key_slot(key) for key in keys}) == 1
    assert key_slot(f"{redis_prefix}{{famslot2}}old".encode()) != key_slot(keys[0])


# -- MemoryStore: bounded -------------------------------------------------------------------


def test_memory_store_reclaims_expired_records_without_looking_them_up(
    fake_clock: Clock,
) -> None:
    store = MemoryStore(clock=fake_clock)
    for i in range(3000):
        store.create(f"{{expired}}{i}", {"a": "1"}, 1)
    fake_clock.advance(1.1)
    for i in range(3000):  # new sessions only: no lookup of an expired key
        store.create(f"{{live}}{i}", {"a": "1"}, 60)
    assert len(store) <= 3000 + 1024  # at most one sweep's worth of inserts unswept
    assert store.load("{live}0") == {"a": "1"}


def test_memory_store_evicts_the_least_recently_used_beyond_its_maximum(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore(max_sessions=100)
    for i in range(100):
        store.create(f"{{s}}{i}", {"a": str(i)}, 60)
    assert store.load("{s}0") == {"a": "0"}  # used: now the most recent
    with caplog.at_level(logging.WARNING, logger="wsgi_sessions"):
        for i in range(100, 150):
            store.create(f"{{s}}{i}", {"a": str(i)}, 60)
    assert len(store) == 100
    assert store.load("{s}0") == {"a": "0"}
    assert store.load("{s}1") is None  # evicted
    assert store.load("{s}149") == {"a": "149"}
    warnings = [r for r in caplog.records if "max_sessions" in r.getMessage()]
    assert len(warnings) == 1  # once, not per eviction


@pytest.mark.parametrize("bad", [0, -1, "100", True])
def test_memory_store_refuses_a_bad_maximum(bad: t.Any) -> None:
    with pytest.raises((TypeError, ValueError), match="max_sessions"):
        MemoryStore(max_sessions=bad)


# -- SQLiteStore: faults pass, files are never made behind the app's back ------------------


def test_sqlite_never_recreates_a_deleted_database_file(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    store = SQLiteStore(path)
    store.create(KEY, {"a": "1"}, 60)
    store.close()  # as a worker that has not connected yet
    path.unlink()
    with pytest.raises(SessionStoreError):
        store.load(KEY)
    assert not path.exists()  # a 503, never a new empty store


def test_sqlite_reopens_a_connection_that_failed(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    store = SQLiteStore(path)
    store.create(KEY, {"a": "1"}, 60)
    store.close()
    aside = tmp_path / "aside.db"
    path.rename(aside)  # the file is unavailable while this thread first connects
    with pytest.raises(SessionStoreError):
        store.load(KEY)
    aside.rename(path)  # the fault passes
    assert store.load(KEY) == {"a": "1"}


def test_sqlite_drops_a_read_only_connection_after_a_failed_write(tmp_path: Path) -> None:
    # A connection opened while the file could only be read keeps failing
    # writes for good unless it is reopened once the fault has passed.
    path = tmp_path / "sessions.db"
    store = SQLiteStore(path)
    store.create(KEY, {"a": "1"}, 60)
    store.close()
    uri = f"file:{path}?mode=ro"
    store._local.db = sqlite3.connect(uri, uri=True, isolation_level=None)  # the faulty one
    with pytest.raises(SessionStoreError):
        store.apply(KEY, {"b": "2"}, [])
    assert store.apply(KEY, {"b": "2"}, []) is True
    assert store.load(KEY) == {"a": "1", "b": "2"}


def test_sqlite_upgrades_a_table_of_version_0_1(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE wsgi_sessions (key TEXT PRIMARY KEY, fields TEXT NOT NULL, "
        "lifetime INTEGER NOT NULL, expires_at REAL NOT NULL, moved_to TEXT, moved_at REAL) "
        "WITHOUT ROWID;"
    )
    db.execute(
        "INSERT INTO wsgi_sessions VALUES (?, ?, 60, ?, NULL, NULL)",
        (KEY, '{"a": "1"}', time.time() + 60),
    )
    db.commit()
    db.close()
    store = SQLiteStore(path)
    assert store.load(KEY) == {"a": "1"}
    assert store.rename(KEY, "{backend1}new") is True
    assert isinstance(store.load(KEY), Ended)


# -- RedisStore: timeouts you can rely on ---------------------------------------------------


def test_redis_warns_about_a_ready_client_without_a_socket_timeout(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    import redis

    from wsgi_sessions.stores.redis import RedisStore

    with caplog.at_level(logging.WARNING, logger="wsgi_sessions"):
        RedisStore(redis.Redis.from_url(redis_url)).close()
    assert any("socket_timeout" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="wsgi_sessions"):
        client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        RedisStore(client).close()
        RedisStore(redis_url).close()
    assert not caplog.records


def test_redis_hands_over_every_field_as_it_was_written(
    redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The load script joins names and texts with one separator in one bulk;
    a field whose name or text holds the separator (the count tells) is still
    handed over exactly, through the plain reply, and the store's own fields
    (and an earlier version's mark) never show."""
    from wsgi_sessions.stores.redis import RedisStore

    store = RedisStore(redis_url, prefix=redis_prefix)
    texts = {"a": '"é ☃"', "b": '[1,{" t":[2]}]', "c": "{}", "": "", "x": "[1", "y": "2]"}
    store.create(KEY, texts, 60)
    assert store.load(KEY) == texts

    tricky = {"one\x1fsep": "1", "two": "\x1f\x1f", "é\x1f": '"\x1f"'}
    assert store.apply(KEY, tricky, ["x"])
    del texts["x"]
    assert store.load(KEY, touch=True) == {**texts, **tricky}

    # A hash an earlier version wrote, with its "\x00c" mark, and a text that
    # is not UTF-8 (written by some other client): no failure, no mark.
    old = "{fam00001}written-before"
    store.client.hset(
        redis_prefix + old, mapping={"\x00l": 60, "\x00c": "1", "ok": "1", "bad": b"\xff\xfe"}
    )
    fields = store.load(old)
    assert isinstance(fields, dict)
    assert fields["ok"] == "1"
    assert sorted(fields) == ["bad", "ok"]
    from wsgi_sessions.serialization import TaggedJSONSerializer, load_fields

    with caplog.at_level(logging.WARNING, logger="wsgi_sessions"):
        assert load_fields(TaggedJSONSerializer(), fields) == {"ok": 1}
    assert [r for r in caplog.records if "dropped" in r.getMessage()]
    # A write takes the old mark away (an earlier version's load trusted it).
    assert store.apply(old, {"n": "2"}, [])
    assert not store.client.hexists(redis_prefix + old, "\x00c")
    store.client.delete(redis_prefix + old)
    store.close()
