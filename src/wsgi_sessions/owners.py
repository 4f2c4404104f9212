"""A user's sessions: the owner index that lists them and ends them.

``session.owner`` (set at login) lives in a hidden field of the session's
record, :data:`OWNER_KEY`: ``{"owner": ..., "created": ..., "seen": ...}``.
Each owner has an *index*: a record of its own in the same store, so no store
needed a new operation. Its key is a keyed hash of the owner (a dump of the
store does not name the users), with a Redis Cluster hash tag of its own; its
fields are *handles* -> JSON ``{"key", "created", "seen"}``:

- A handle is a keyed hash of the session's store key: it names one session
  to its owner's pages, but is neither the id nor the store key, and is not
  signed, so as a cookie it opens nothing.
- Entries are written with the store's per-field ``create`` and ``apply``, so
  two logins of one owner at the same moment write two fields and both stay.
- The index is written only when a session's owner is set or changes (at
  login, on ``regenerate()``) and when its ``seen`` time is refreshed (at
  most every :data:`SEEN_INTERVAL`, or when the timeouts record a use):
  never on an ordinary request. Each refresh pushes the index's expiry, so it
  outlives every session it lists.
- Listing checks every entry against its record (live, same owner, not over
  by a timeout) and prunes the dead ones from the index.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import typing as t
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

from ._timeouts import USED, Timeouts
from .errors import SessionStoreError
from .serialization import field_loader
from .stores.base import Store

__all__ = ["OWNER_KEY", "SEEN_INTERVAL", "SessionRecord"]

#: The record's hidden field that holds the owner and its times.
OWNER_KEY = "_wsgi_sessions.owner"
#: Seconds between two refreshes of a session's ``last_seen`` (each is a
#: store write of the record's owner field and one of the index).
SEEN_INTERVAL = 300
#: An index entry is a short JSON object; anything longer is not ours.
_MAX_ENTRY = 512

_INDEX_CONTEXT = b"wsgi_sessions.owner index"
_HANDLE_CONTEXT = b"wsgi_sessions.owner handle"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One live session of an owner, as :meth:`ServerSideSessionInterface.sessions_of` lists it.

    ``handle`` names the session to :meth:`~ServerSideSessionInterface.end_session`;
    it is not its id, and does not open it. ``created`` is when its owner was
    set (the login), ``last_seen`` its last recorded use (within
    :data:`SEEN_INTERVAL`), both timezone-aware UTC. ``current`` marks the
    session that was passed as ``current=``.
    """

    handle: str
    created: datetime
    last_seen: datetime
    current: bool = False


class OwnerWrite(t.NamedTuple):
    """What a save does to the owner indexes, once the record is written."""

    #: List the written record under this owner, with these times (None: under none).
    owner: str | None
    created: int
    seen: int
    #: The owner was set in this request: kept if the record must be created anew
    #: (a mere ``seen`` refresh never brings an owner back to a vanished session).
    assigned: bool
    #: The (owner, store key) whose entry goes: the owner changed, or the key did.
    drop: tuple[str, str] | None


class Entry(t.NamedTuple):
    """A live entry of an index, checked against its record."""

    source: str  # the index record it is in
    handle: str
    key: str  # the session's store key
    created: int
    seen: int


def check_owner(value: object) -> str | None:
    """An owner as stored: a non-empty str, or None for none (None or "")."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError(f"session.owner must be a str (or None), got {type(value).__name__}")
    return value


@lru_cache(maxsize=32)
def _derived(hash_key: bytes) -> tuple[bytes, bytes]:
    """The index and handle keys of one secret key's store-hash key."""
    return (
        hmac.digest(hash_key, _INDEX_CONTEXT, "sha256"),
        hmac.digest(hash_key, _HANDLE_CONTEXT, "sha256"),
    )


def index_key(hash_key: bytes, owner: str) -> str:
    """The store key of ``owner``'s index under one secret key: a hash tag of
    its own (a Redis Cluster slot), then a keyed hash of the owner."""
    digest = hashlib.blake2b(
        owner.encode("utf-8", "surrogatepass"), key=_derived(hash_key)[0], digest_size=24
    ).hexdigest()
    return "{o" + digest[:8] + "}owners:" + digest


def handle_of(hash_key: bytes, store_key: str) -> str:
    """The handle of the session at ``store_key`` (128 bits, hex)."""
    return hashlib.blake2b(
        store_key.encode(), key=_derived(hash_key)[1], digest_size=16
    ).hexdigest()


def entry_text(store_key: str, created: int, seen: int) -> str:
    return json.dumps({"key": store_key, "created": created, "seen": seen}, separators=(",", ":"))


def write_entries(
    store: Store, write: OwnerWrite, key: str | None, hash_key: bytes, lifetime: int
) -> None:
    """What a save asks of the indexes, after its record is written: list
    ``key`` (None: the record is gone) under its owner; drop the entry that
    the owner or the key left. One store write per index touched."""
    drop_index = drop_handle = None
    if write.drop is not None:
        drop_index = index_key(hash_key, write.drop[0])
        drop_handle = handle_of(hash_key, write.drop[1])
    if write.owner is not None and key is not None:
        index, handle = index_key(hash_key, write.owner), handle_of(hash_key, key)
        same = drop_index == index
        deleted = [drop_handle] if same and drop_handle and drop_handle != handle else []
        put(store, index, {handle: entry_text(key, write.created, write.seen)}, deleted, lifetime)
        if same:
            return
    if drop_index is not None and drop_handle is not None:
        put(store, drop_index, {}, (drop_handle,), lifetime)


def put(
    store: Store,
    index: str,
    set_fields: Mapping[str, str],
    delete_fields: Iterable[str],
    lifetime: int,
) -> None:
    """Write entries of an index, creating it if there is none. Per field, so
    concurrent writers of other entries (other logins) are never undone."""
    delete_fields = tuple(delete_fields)
    for _attempt in range(3):
        if store.apply(index, set_fields, delete_fields, lifetime) is True:
            return
        if not set_fields:
            return  # nothing to add to an index that is not there
        if store.create(index, set_fields, lifetime):
            return
        # Another login created it between the two calls: apply again.
    raise SessionStoreError("the session store would neither update nor create an owner index")


def _parse_entry(text: object) -> tuple[str, int, int] | None:
    if not isinstance(text, str) or len(text) > _MAX_ENTRY:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if type(value) is not dict:
        return None
    key, created, seen = value.get("key"), value.get("created"), value.get("seen")
    if type(key) is not str or type(created) is not int or type(seen) is not int:
        return None
    return key, created, seen


def _number(value: object) -> int | None:
    return int(value) if type(value) in (int, float) else None  # type: ignore[call-overload]


def live_entries(
    store: Store,
    indexes: Sequence[str],
    owner: str,
    serializer: t.Any,
    timeouts: Timeouts | None,
    now: int,
    meta_key: str,
) -> list[Entry]:
    """The entries of ``owner``'s indexes (one per secret key) whose sessions
    are live, still theirs and not over; the others are pruned from the index.

    One load per index and per entry: listing is rare (a settings page, a
    password change), ordinary requests never do it.
    """
    found: list[Entry] = []
    for index in indexes:
        fields = store.load(index)
        if not isinstance(fields, Mapping):
            continue
        dead = []
        for handle, text in dict(fields).items():
            parsed = _parse_entry(text)
            entry = (
                None
                if parsed is None
                else _checked(
                    store, index, handle, parsed, owner, serializer, timeouts, now, meta_key
                )
            )
            if entry is None:
                dead.append(handle)
            else:
                found.append(entry)
        if dead:
            store.apply(index, {}, dead)
    return found


def _checked(
    store: Store,
    index: str,
    handle: str,
    parsed: tuple[str, int, int],
    owner: str,
    serializer: t.Any,
    timeouts: Timeouts | None,
    now: int,
    meta_key: str,
) -> Entry | None:
    """The entry, with its record's times, if its session is live and ``owner``'s."""
    key, created, seen = parsed
    record = store.load(key)
    if not isinstance(record, Mapping):
        return None  # expired, ended, renamed away (the rename wrote the new entry)
    load = field_loader(serializer)
    mine, meta = (
        None if (text := record.get(name)) is None else load(text) for name in (OWNER_KEY, meta_key)
    )
    if type(mine) is not dict or mine.get("owner") != owner:
        return None  # its owner changed or was cleared
    if timeouts is not None and timeouts.over(meta if type(meta) is dict else None, now):
        return None  # over: its next request gets a fresh session
    times = [seen, _number(mine.get("seen")) or 0]
    if type(meta) is dict:
        times.append(_number(meta.get(USED)) or 0)
    return Entry(index, handle, key, _number(mine.get("created")) or created, max(times))


def record_of(entry: Entry, current: bool) -> SessionRecord:
    return SessionRecord(
        handle=entry.handle,
        created=datetime.fromtimestamp(entry.created, timezone.utc),
        last_seen=datetime.fromtimestamp(entry.seen, timezone.utc),
        current=current,
    )
