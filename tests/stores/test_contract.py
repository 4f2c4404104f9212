"""The store contract, run against every store."""

from __future__ import annotations

import itertools
import time

import pytest

from wsgi_sessions.stores import Store
from wsgi_sessions.stores.base import MAX_FORWARDS

KEY = "{fam00001}record"


def test_load_of_an_absent_key_is_none(store: Store) -> None:
    assert store.load(KEY) is None
    assert store.load(KEY, touch=True) is None


def test_create_then_load(store: Store, other_store: Store) -> None:
    assert store.create(KEY, {"a": "1", "b": '"two"'}, 60) is True
    assert other_store.load(KEY) == {"a": "1", "b": '"two"'}


def test_create_is_insert_only(store: Store, other_store: Store) -> None:
    assert store.create(KEY, {"a": "1"}, 60)
    assert other_store.create(KEY, {"a": "2", "b": "3"}, 60) is False
    assert store.load(KEY) == {"a": "1"}


def test_create_with_no_fields_is_a_live_empty_record(store: Store) -> None:
    assert store.create(KEY, {}, 60)
    assert store.load(KEY) == {}
    assert store.apply(KEY, {"a": "1"}, [])
    assert store.load(KEY) == {"a": "1"}


def test_apply_sets_and_deletes_only_the_named_fields(store: Store, other_store: Store) -> None:
    store.create(KEY, {"a": "1", "b": "2", "c": "3"}, 60)
    assert other_store.apply(KEY, {"a": "10", "d": "4"}, ["b", "missing"])
    assert store.load(KEY) == {"a": "10", "c": "3", "d": "4"}


def test_apply_never_creates(store: Store) -> None:
    assert store.apply(KEY, {"a": "1"}, []) is False
    assert store.load(KEY) is None


def test_a_deleted_record_stays_deleted(store: Store, other_store: Store) -> None:
    store.create(KEY, {"a": "1"}, 60)
    assert other_store.delete(KEY) is True
    assert store.delete(KEY) is False
    assert store.apply(KEY, {"a": "2"}, []) is False
    assert store.touch(KEY) is False
    assert store.load(KEY) is None


def test_rename_moves_the_record_and_kills_the_old_key(store: Store, other_store: Store) -> None:
    store.create(KEY, {"a": "1"}, 60)
    assert store.rename(KEY, "{fam00001}new") is True
    assert other_store.load(KEY) is None
    assert other_store.load("{fam00001}new") == {"a": "1"}
    # The old key can be neither renamed again, nor touched, nor deleted as a session.
    assert store.rename(KEY, "{fam00001}third") is False
    assert store.touch(KEY) is False
    assert store.load("{fam00001}third") is None


def test_a_write_in_flight_during_rename_follows_it(store: Store, other_store: Store) -> None:
    store.create(KEY, {"a": "1"}, 60)
    opened_at = time.time()
    store.rename(KEY, "{fam00001}new")
    assert other_store.apply(KEY, {"late": "2"}, ["a"], opened_at=opened_at) is True
    assert store.load("{fam00001}new") == {"late": "2"}
    assert store.load(KEY) is None


def test_a_write_that_started_after_the_rename_is_refused(store: Store, other_store: Store) -> None:
    # Whoever still holds the old id after a regenerate (at login) cannot write
    # into the renamed session: only requests already in flight are forwarded.
    store.create(KEY, {"user": "alice"}, 60)
    store.rename(KEY, "{fam00001}new")
    assert other_store.apply(KEY, {"user": "mallory"}, [], opened_at=time.time()) is False
    assert other_store.apply(KEY, {"user": "mallory"}, []) is False
    assert store.load("{fam00001}new") == {"user": "alice"}


def test_a_write_does_not_follow_a_rename_to_a_deleted_record(store: Store) -> None:
    store.create(KEY, {"a": "1"}, 60)
    store.rename(KEY, "{fam00001}new")
    store.delete("{fam00001}new")
    assert store.apply(KEY, {"a": "2"}, []) is False
    assert store.load("{fam00001}new") is None


def test_rename_of_an_absent_record(store: Store) -> None:
    assert store.rename(KEY, "{fam00001}new") is False
    assert store.load("{fam00001}new") is None


def test_touch(store: Store) -> None:
    assert store.touch(KEY) is False
    store.create(KEY, {"a": "1"}, 60)
    assert store.touch(KEY) is True
    assert store.load(KEY) == {"a": "1"}


def test_reserved_field_names_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="reserved"):
        store.create(KEY, {"\x00l": "1"}, 60)
    store.create(KEY, {"a": "1"}, 60)
    with pytest.raises(ValueError, match="reserved"):
        store.apply(KEY, {"\x00m": "x"}, [])
    assert store.load(KEY) == {"a": "1"}


def test_reserved_field_names_are_refused_for_deletes_too(store: Store) -> None:
    # Deleting a store's own bookkeeping field (Redis keeps the lifetime in
    # one) would leave a live session unloadable: a silent logout.
    store.create(KEY, {"a": "1"}, 60)
    with pytest.raises(ValueError, match="reserved"):
        store.apply(KEY, {"b": "2"}, ["\x00l"])
    assert store.load(KEY) == {"a": "1"}
    assert store.apply(KEY, {"b": "2"}, iter(["a"]))  # any iterable of names
    assert store.load(KEY) == {"b": "2"}


def test_unicode_fields_and_values(store: Store) -> None:
    store.create(KEY, {"ключ": '"значение ✓"'}, 60)
    store.apply(KEY, {"emoji 🍪": '"yes"'}, [])
    assert store.load(KEY) == {"ключ": '"значение ✓"', "emoji 🍪": '"yes"'}


# -- expiry (real time; lifetimes of a second or two) ---------------------------------


def test_an_expired_record_is_absent_to_every_operation(store: Store) -> None:
    store.create(KEY, {"a": "1"}, 1)
    time.sleep(1.3)
    assert store.load(KEY) is None
    assert store.apply(KEY, {"a": "2"}, []) is False
    assert store.touch(KEY) is False
    assert store.rename(KEY, "{fam00001}new") is False
    # Insert-only means "no live record": an expired one may be replaced.
    assert store.create(KEY, {"b": "1"}, 60) is True
    assert store.load(KEY) == {"b": "1"}


def test_load_with_touch_pushes_the_expiry_forward(store: Store) -> None:
    store.create(KEY, {"a": "1"}, 2)
    time.sleep(1.3)
    assert store.load(KEY, touch=True) == {"a": "1"}
    time.sleep(1.3)  # 2.6 s after creation: alive only because of the touch
    assert store.load(KEY) == {"a": "1"}


def test_load_without_touch_does_not(store: Store) -> None:
    store.create(KEY, {"a": "1"}, 2)
    time.sleep(1.3)
    assert store.load(KEY) == {"a": "1"}
    time.sleep(1.3)
    assert store.load(KEY) is None


def test_apply_with_a_new_lifetime(store: Store) -> None:
    store.create(KEY, {"a": "1"}, 1)
    assert store.apply(KEY, {"_permanent": "true"}, [], lifetime=60)
    time.sleep(1.3)
    assert store.load(KEY) == {"a": "1", "_permanent": "true"}
    # Without a lifetime, the record keeps the one it has.
    assert store.apply(KEY, {"b": "2"}, [])
    assert store.touch(KEY)
    assert store.load(KEY) == {"a": "1", "_permanent": "true", "b": "2"}


def test_purge_expired(store: Store) -> None:
    store.create("{fam00001}short1", {"a": "1"}, 1)
    store.create("{fam00002}short2", {"a": "1"}, 1)
    store.create("{fam00003}long", {"a": "1"}, 60)
    time.sleep(1.3)
    purged = store.purge_expired()
    # Redis expires keys by itself and reports nothing to purge.
    assert purged == (0 if type(store).__name__ == "RedisStore" else 2)
    assert store.purge_expired() == 0
    assert store.load("{fam00001}short1") is None
    assert store.load("{fam00003}long") == {"a": "1"}


def test_a_zero_grace_rename_forwards_nothing(store: Store, other_store: Store) -> None:
    store.moved_grace = 0
    other_store.moved_grace = 0
    store.create(KEY, {"a": "1"}, 60)
    assert store.rename(KEY, "{fam00001}new")
    assert other_store.apply(KEY, {"late": "2"}, []) is False
    assert store.load("{fam00001}new") == {"a": "1"}


def test_a_write_follows_up_to_max_forwards(store: Store, other_store: Store) -> None:
    # A session regenerated MAX_FORWARDS times while a request was in flight:
    # every store follows that many forwards, and refuses one more.
    store.create(KEY, {"a": "1"}, 60)
    opened_at = time.time()
    keys = [KEY] + [f"{{fam00001}}renamed{i}" for i in range(MAX_FORWARDS + 1)]
    for old, new in itertools.pairwise(keys[:-1]):
        assert store.rename(old, new)
    assert other_store.apply(KEY, {"late": "2"}, [], opened_at=opened_at) is True
    assert store.load(keys[-2]) == {"a": "1", "late": "2"}
    assert store.rename(keys[-2], keys[-1])
    assert other_store.apply(KEY, {"later": "3"}, [], opened_at=opened_at) is False
    assert store.load(keys[-1]) == {"a": "1", "late": "2"}
