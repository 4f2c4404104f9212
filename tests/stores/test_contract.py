"""The store contract, run against every store."""

from __future__ import annotations

import itertools
import typing as t
from collections.abc import Mapping

import pytest

from wsgi_sessions.serialization import TaggedJSONSerializer, load_fields
from wsgi_sessions.stores import Store
from wsgi_sessions.stores.base import MAX_SUCCESSORS, Ended

if t.TYPE_CHECKING:
    from .conftest import Clock

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


def test_an_ended_record_stays_ended(store: Store, other_store: Store, clock: Clock) -> None:
    store.create(KEY, {"a": "1"}, 60)
    before = clock()
    assert other_store.end(KEY) is True
    assert store.end(KEY) is False
    ended = store.apply(KEY, {"a": "2"}, [])
    assert isinstance(ended, Ended)
    assert not ended  # falsy: nothing was written
    assert before <= ended.at <= clock()
    assert store.touch(KEY) is False
    assert store.load(KEY) == ended
    assert store.load(KEY, touch=True) == ended
    # An ended key is not free for a new session either.
    assert store.create(KEY, {"b": "1"}, 60) is False
    assert store.rename(KEY, "{fam00001}new") == ended
    assert store.load("{fam00001}new") is None


def test_end_of_an_absent_record(store: Store) -> None:
    assert store.end(KEY) is False
    assert store.load(KEY) is None
    assert store.create(KEY, {"a": "1"}, 60) is True


def test_rename_moves_the_record_and_ends_the_old_key(store: Store, other_store: Store) -> None:
    store.create(KEY, {"a": "1"}, 60)
    assert store.rename(KEY, "{fam00001}new") is True
    old = other_store.load(KEY)
    assert isinstance(old, Ended)
    assert other_store.load("{fam00001}new") == {"a": "1"}
    # The old key can be neither renamed again, nor touched, nor written.
    assert store.rename(KEY, "{fam00001}third") == old
    assert store.touch(KEY) is False
    assert store.load("{fam00001}third") is None


def test_a_write_with_the_old_key_never_lands_in_the_renamed_record(
    store: Store, other_store: Store
) -> None:
    # A request that opened the session before a regenerate (at login), or
    # whoever planted that id before the victim logged in: the write is
    # dropped, however it is timed.
    store.create(KEY, {"user": "alice"}, 60)
    store.rename(KEY, "{fam00001}new")
    result = other_store.apply(KEY, {"user": "mallory"}, ["a"])
    assert isinstance(result, Ended)
    assert store.load("{fam00001}new") == {"user": "alice"}
    assert isinstance(store.load(KEY), Ended)


def test_end_after_rename_ends_the_successor(store: Store, other_store: Store) -> None:
    # A logout that opened the old id, saved after a login's regenerate.
    store.create(KEY, {"user": "alice"}, 60)
    assert store.rename(KEY, "{fam00001}new") is True
    assert other_store.end(KEY) is True
    assert isinstance(store.load("{fam00001}new"), Ended)
    assert isinstance(store.apply("{fam00001}new", {"x": "1"}, []), Ended)


def test_end_follows_every_rename(store: Store, other_store: Store) -> None:
    store.create(KEY, {"a": "1"}, 60)
    keys = [KEY] + [f"{{fam00001}}renamed{i}" for i in range(5)]
    for old, new in itertools.pairwise(keys):
        assert store.rename(old, new) is True
    assert other_store.end(keys[1]) is True
    for key in keys:
        assert isinstance(store.load(key), Ended)


def test_end_follows_up_to_max_successors(store: Store) -> None:
    store.create(KEY, {"a": "1"}, 60)
    keys = [KEY] + [f"{{fam00001}}renamed{i}" for i in range(MAX_SUCCESSORS + 1)]
    for old, new in itertools.pairwise(keys):
        assert store.rename(old, new) is True
    # One rename more than the bound: the newest is out of reach of the first key...
    assert store.end(KEY) is False
    assert store.load(keys[-1]) == {"a": "1"}
    # ...but not of the next one.
    assert store.end(keys[1]) is True
    assert isinstance(store.load(keys[-1]), Ended)


def test_rename_after_end_is_refused(store: Store, other_store: Store) -> None:
    # A login whose save arrives after a logout of the same session.
    store.create(KEY, {"user": "alice"}, 60)
    assert other_store.end(KEY) is True
    assert isinstance(store.rename(KEY, "{fam00001}new"), Ended)
    assert store.load("{fam00001}new") is None


def test_an_ended_marker_outlives_the_grace_only_as_long_as_the_record(
    store: Store, clock: Clock
) -> None:
    store.end_grace = 1
    store.create(KEY, {"a": "1"}, 3)
    store.end(KEY)
    clock.advance(1.3)  # past the grace, not past the record's own expiry
    assert isinstance(store.load(KEY), Ended)
    clock.advance(2.0)  # past the record's expiry
    assert store.load(KEY) is None


def test_an_ended_marker_lasts_at_least_the_grace(store: Store, clock: Clock) -> None:
    store.end_grace = 3
    store.create(KEY, {"a": "1"}, 1)
    store.end(KEY)
    clock.advance(1.3)  # past the record's own expiry, within the grace
    assert isinstance(store.load(KEY), Ended)


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


# -- expiry (lifetimes of a second or two; real time only for Redis) ------------------


def test_an_expired_record_is_absent_to_every_operation(store: Store, clock: Clock) -> None:
    store.create(KEY, {"a": "1"}, 1)
    clock.advance(1.3)
    assert store.load(KEY) is None
    assert store.apply(KEY, {"a": "2"}, []) is False
    assert store.touch(KEY) is False
    assert store.rename(KEY, "{fam00001}new") is False
    # Insert-only means "no live record": an expired one may be replaced.
    assert store.create(KEY, {"b": "1"}, 60) is True
    assert store.load(KEY) == {"b": "1"}


def test_load_with_touch_pushes_the_expiry_forward(store: Store, clock: Clock) -> None:
    store.create(KEY, {"a": "1"}, 2)
    clock.advance(1.3)
    assert store.load(KEY, touch=True) == {"a": "1"}
    clock.advance(1.3)  # 2.6 s after creation: alive only because of the touch
    assert store.load(KEY) == {"a": "1"}


def test_load_without_touch_does_not(store: Store, clock: Clock) -> None:
    store.create(KEY, {"a": "1"}, 2)
    clock.advance(1.3)
    assert store.load(KEY) == {"a": "1"}
    clock.advance(1.3)
    assert store.load(KEY) is None


def test_apply_with_a_new_lifetime(store: Store, clock: Clock) -> None:
    store.create(KEY, {"a": "1"}, 1)
    assert store.apply(KEY, {"_permanent": "true"}, [], lifetime=60)
    clock.advance(1.3)
    assert store.load(KEY) == {"a": "1", "_permanent": "true"}
    # Without a lifetime, the record keeps the one it has.
    assert store.apply(KEY, {"b": "2"}, [])
    assert store.touch(KEY)
    assert store.load(KEY) == {"a": "1", "_permanent": "true", "b": "2"}


def test_purge_expired(store: Store, clock: Clock) -> None:
    store.create("{fam00001}short1", {"a": "1"}, 1)
    store.create("{fam00002}short2", {"a": "1"}, 1)
    store.create("{fam00003}long", {"a": "1"}, 60)
    clock.advance(1.3)
    purged = store.purge_expired()
    # Redis expires keys by itself and reports nothing to purge.
    assert purged == (0 if type(store).__name__ == "RedisStore" else 2)
    assert store.purge_expired() == 0
    assert store.load("{fam00001}short1") is None
    assert store.load("{fam00003}long") == {"a": "1"}


# -- size -----------------------------------------------------------------------------


def test_ten_thousand_keys_save(store: Store, other_store: Store) -> None:
    # Lua's unpack() stops at a few thousand values: Redis must chunk them.
    many = {f"key{i}": f'"value {i}"' for i in range(10_000)}
    assert store.create(KEY, many, 60) is True
    assert other_store.load(KEY) == many
    changed = {f"key{i}": '"changed"' for i in range(0, 10_000, 2)}
    deleted = [f"key{i}" for i in range(1, 10_000, 4)]
    added = {f"new{i}": "1" for i in range(10_000)}
    assert other_store.apply(KEY, {**changed, **added}, deleted) is True
    expected = {**many, **changed, **added}
    for name in deleted:
        del expected[name]
    assert store.load(KEY) == expected
    assert store.rename(KEY, "{fam00001}big") is True
    assert other_store.load("{fam00001}big") == expected


def _values(store: Store, key: str) -> dict[str, t.Any]:
    fields = store.load(key)
    assert isinstance(fields, Mapping)
    return load_fields(TaggedJSONSerializer(), fields)


def test_texts_that_parse_only_when_joined_load_each_on_its_own(store: Store) -> None:
    """A store may hand over its texts joined (Redis does, to parse them in
    one call); texts that are not one JSON value each must still be dropped
    one by one, never merged, whether written at creation or later."""
    store.create(KEY, {"ok": "1", "x": "[1", "y": "2]"}, 60)
    assert _values(store, KEY) == {"ok": 1}
    other = "{fam00001}other"
    store.create(other, {"ok": "1"}, 60)
    assert _values(store, other) == {"ok": 1}
    store.apply(other, {"z": "3,4", "w": '{"a": [1, {" t": [2]}]}'}, [])
    assert _values(store, other) == {"ok": 1, "w": {"a": [1, (2,)]}}
