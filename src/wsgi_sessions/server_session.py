"""The server-side session, loaded from the store on its first read, and its
save plan: the session knows what this request did to it and turns that into
a :class:`SavePlan`, which :class:`~wsgi_sessions.server.ServerSideSessionInterface`
runs against the store. A module of its own: it is as long as ``sessions.py``,
and only the server-side interface uses it.
"""

from __future__ import annotations

import logging
import secrets
import time
import typing as t
from collections.abc import Callable, Mapping

from ._timeouts import START, USED, Timeouts
from .errors import SessionStoreError
from .interface import META_KEY
from .owners import OWNER_KEY, SEEN_INTERVAL, OwnerWrite, check_owner
from .serialization import UNREADABLE, dump_fields, field_loader
from .sessions import _IMMUTABLE_TYPES, _MISSING, CSRF_KEY, SecureCookieSession
from .stores.base import Ended, check_fields

if t.TYPE_CHECKING:  # pragma: no cover
    from itsdangerous import Signer

__all__ = ["SavePlan", "ServerSideSession", "new_session_id"]

logger = logging.getLogger("wsgi_sessions")


def new_session_id(family: str | None = None) -> str:
    """A fresh id; ``family`` (the part before the dot) is kept on regenerate."""
    if family is None:
        text = secrets.token_urlsafe(30)  # 240 bits: 48 for the family, 192 for the token
        return f"{text[:8]}.{text[8:]}"
    return f"{family}.{secrets.token_urlsafe(24)}"


class SavePlan(t.NamedTuple):
    """What saving a session asks of the store, in this order, and what each
    answer means for the cookie. Built before the first store call, so
    anything the session cannot store fails before anything is changed.
    """

    #: 1. Records to end, with their successors (``invalidate()``).
    end: tuple[str, ...]
    #: The store already said at the load that the session ended (or was
    #: renamed): the writes are dropped if the request was in flight then.
    ended: Ended | None
    #: When the cookie's id was read: decides whether the request was in flight.
    opened_at: float
    #: 2. The record to move to the key of :attr:`sid` (``regenerate()``).
    rename_from: str | None
    #: 3. The record to write (or touch); None: there is none.
    key: str | None
    set_fields: Mapping[str, str]
    delete_fields: tuple[str, ...]
    #: Written with the permanent lifetime or not; None keeps the record's own.
    permanent: bool | None
    #: Nothing to write, and a permanent session was read: push its expiry
    #: forward, re-sending the cookie only if the id is still live.
    touch: bool
    #: 4. No record is left and there are fields: create a new session with
    #: them (under this id if given, else a fresh one).
    create_sid: str | None
    create_permanent: bool
    #: The cookie: the id, and the signer of a fallback key whose hash the
    #: record lives under (None: the current key).
    sid: str | None
    signer: Signer | None
    #: A written record re-sends its cookie (its expiry follows the store's).
    resend_on_write: bool
    #: No record is left and nothing is created: delete the cookie.
    delete_cookie: bool
    #: The owner index entries to write after the record (None: none).
    owner: OwnerWrite | None = None


class ServerSideSession(SecureCookieSession):
    """A session whose data lives in a store, loaded on first read.

    On top of the cookie session's change tracking it records which keys were
    set and deleted, so that only those are written (setting ``modified = True``
    without changing any key writes every loaded key). ``sid`` is the session
    id (issued on first use for a new session); ``new`` is True when the
    session was created in this request.

    The load hangs on one hook: every read marks the session :attr:`accessed`
    before it looks at the dict (a rule of :class:`SecureCookieSession`), and
    marking it loads (so does ``accessed = True`` set by hand). Writes mark it
    without loading (a blind write).

    A load parses no value: each stored text is parsed when its key is first
    read (a request that reads one key of a 500-key session parses one value,
    not 500). Until then the key and its text wait in ``_unread``, outside the
    dict, so ``len`` and writes need no parse; iterating, or anything that
    sees every value, parses the rest first. A text that does not parse is
    dropped (and logged) when its key is read; ``len`` counts it until then.
    Code that reads the dict's storage directly, as ``json.dumps`` does, sees
    only what was read so far (as it sees nothing before the first read).
    """

    # Defaults for a session created in this request (most anonymous requests).
    _sid: str | None = None
    _store_key: str | None = None  # the record this request found (or may find)
    _opened_key: str | None = None  # the record the cookie named (kept for invalidate)
    # The signer of the key that verified the cookie, when it was a fallback:
    # the record lives under that key's hash, so a re-sent cookie is signed with it.
    _signer: Signer | None = None
    _fetch: Callable[[], Mapping[str, str] | Ended | None] | None = None
    # Loaded keys not parsed yet, with their stored texts; never in the dict too.
    _unread: dict[str, str] | None = None
    _load_value: Callable[[str], t.Any] | None = None  # the serializer's field loader
    _serializer: t.Any = None
    new = True
    _accessed = False
    _loaded = True  # a new session has nothing to load
    _from_store = False  # loaded, and found in the store
    _stale_cookie = False  # a cookie named a session the store does not have
    _ended: Ended | None = None  # the store found the cookie's session ended (or renamed)
    _doomed: tuple[str, ...] = ()  # store keys to end (invalidate)
    _rename_from: str | None = None  # store key to rename (regenerate)
    _store_error: SessionStoreError | None = None
    _opened_at: float = 0.0  # when the cookie's id was read (epoch seconds)
    # key -> True (set here) or False (deleted here); None until the first write.
    _touched: dict[str, bool] | None = None
    # idle_timeout / absolute_timeout, checked at the load: the times live in
    # the hidden field META_KEY of the record (see _ensure_loaded).
    _timeouts: Timeouts | None = None
    _clock: Callable[[], float] = staticmethod(time.time)
    # The app set `modified = True` itself. Not the inherited flag: a write
    # that changes nothing (popping a missing key) sets that one too, and
    # must not write every loaded key over other requests' newer values.
    _write_all = False
    # session.owner: as loaded ({"owner", "created", "seen"} from the hidden
    # field OWNER_KEY, and the record it came from), and as set in this request.
    _owner: dict[str, t.Any] | None = None
    _owner_key: str | None = None
    _owner_set = False
    _new_owner: str | None = None

    @classmethod
    def from_cookie(
        cls,
        sid: str,
        store_key: str,
        fetch: Callable[[], Mapping[str, str] | Ended | None],
        serializer: t.Any,
        opened_at: float,
        signer: Signer | None = None,
        *,
        timeouts: Timeouts | None = None,
        clock: Callable[[], float] = time.time,
    ) -> ServerSideSession:
        """The session a cookie names, loaded by ``fetch`` on its first read.

        A classmethod rather than constructor arguments: a session created in
        this request (most anonymous requests) is then built by the plain
        dict constructor, with nothing to set.
        """
        session = cls()
        session._sid = sid
        session._store_key = session._opened_key = store_key
        session._fetch = fetch
        session._serializer = serializer
        session._opened_at = opened_at
        session._signer = signer
        session.new = False
        session._loaded = False
        if timeouts is not None:
            session._timeouts = timeouts
            session._clock = clock
        return session

    @property
    def accessed(self) -> bool:
        """As for cookie sessions; marking it True (every read does) loads first."""
        return self._accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        if value and not self._loaded:
            self._ensure_loaded()
        self._accessed = value

    @property
    def permanent(self) -> bool:
        """As for cookie sessions; known without a load once written here."""
        known = self._known_permanent()
        if known is None:
            return super().permanent
        self._accessed = True
        return known

    @permanent.setter
    def permanent(self, value: bool) -> None:
        self["_permanent"] = bool(value)

    @property
    def modified(self) -> bool:
        """As for cookie sessions; setting it True writes every loaded key."""
        return super().modified

    @modified.setter
    def modified(self, value: bool) -> None:
        SecureCookieSession.modified.fset(self, value)  # type: ignore[attr-defined]
        self._write_all = value

    @property
    def owner(self) -> str | None:
        """Whose session this is (``session.owner = str(user.id)`` at login),
        so that :meth:`ServerSideSessionInterface.sessions_of` lists it and
        ``end_sessions_of`` can end it. Kept in a hidden field of the record,
        never a key of the mapping; it survives :meth:`regenerate` and ends
        with :meth:`invalidate`. None or "" clears it.
        """
        if self._owner_set:
            return self._new_owner
        self._ensure_loaded()
        self._accessed = True
        return self._owner["owner"] if self._owner else None

    @owner.setter
    def owner(self, value: str | None) -> None:
        owner = check_owner(value)
        self._ensure_loaded()  # the owner it had: its index loses the entry if it changes
        self._accessed = True
        self._owner_set = True
        self._new_owner = owner

    @property
    def sid(self) -> str:
        """The session id (never log it: it is the user's credential)."""
        if self._sid is None:
            self._sid = new_session_id()
        return self._sid

    # -- loading -----------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        assert self._fetch is not None
        try:
            fields = self._fetch()
        except SessionStoreError as exc:
            # Remembered so that saving fails too: a framework that turns the
            # exception into its own error page must still not answer as if
            # the session worked.
            self._store_error = exc
            raise
        self._loaded = True
        if fields is None or isinstance(fields, Ended):
            # Never adopt the id. Whether this request ran while another ended
            # the session (its writes are then dropped) is decided at save.
            self._ended = fields
            self._become_fresh()
            self._stale_cookie = True
            return
        load = field_loader(self._serializer)
        # The session's metadata (the timeouts' times) is a field of the
        # record, never a key of the mapping; parsed now, the rest on first read.
        meta_text = fields.get(META_KEY)
        meta = None if meta_text is None else load(meta_text)
        timeouts = self._timeouts
        if timeouts is not None and timeouts.over(meta, int(self._clock())):
            # Over: the id is never adopted, and its record is ended at the
            # save, so neither a later replay of the cookie nor a request of
            # it in flight can bring it back.
            self._doomed += (self._opened_key,) if self._opened_key else ()
            self._opened_key = None
            self._become_fresh()
            self._stale_cookie = True
            return
        if type(meta) is dict:
            self._meta = meta
        owner_text = fields.get(OWNER_KEY)  # session.owner: a hidden field too
        owner = None if owner_text is None else load(owner_text)
        if type(owner) is dict and isinstance(owner.get("owner"), str):
            self._owner = owner
            self._owner_key = self._opened_key
        self._from_store = True
        unread = dict(fields)
        unread.pop(META_KEY, None)
        unread.pop(OWNER_KEY, None)
        if not unread:
            return
        touched = self._touched
        if touched:
            for name in touched:  # changed here before the first read: ours wins
                unread.pop(name, None)
        self._unread = unread
        self._load_value = load

    def _parse(self, key: str, snapshot: bool) -> t.Any:
        """Move ``key`` (in ``_unread``) into the dict with its parsed value;
        return the value, or _MISSING if its text is not one (the key is gone).

        ``snapshot``: the value is being handed out, so a mutable one gets the
        copy that change tracking compares against, made by parsing the text
        a second time (several times cheaper than ``deepcopy`` of the value).
        """
        unread, load = self._unread, self._load_value
        assert unread is not None and load is not None
        text = unread.pop(key)
        value = load(text)
        if value is UNREADABLE:
            return _MISSING
        dict.__setitem__(self, key, value)
        if snapshot and type(value) not in _IMMUTABLE_TYPES:
            handed_out = self._handed_out
            if handed_out is None:
                handed_out = self._handed_out = {}
            if key not in handed_out:
                handed_out[key] = load(text)
        return value

    def _parse_all(self, snapshot: bool) -> None:
        """Parse every key not parsed yet: before anything iterates, so that
        keys whose text does not parse are gone first."""
        unread = self._unread
        if unread:
            for key in list(unread):
                self._parse(key, snapshot)
        self._unread = None

    def _is_unread(self, key: object) -> bool:
        unread = self._unread
        return unread is not None and key in unread

    def _peek(self, key: str, default: t.Any = None) -> t.Any:
        """The value of ``key`` for the library's own use: parsed if need be,
        not handed out, not marking the session accessed."""
        value = dict.get(self, key, _MISSING)
        if value is _MISSING and self._is_unread(key):
            value = self._parse(key, snapshot=False)
        return default if value is _MISSING else value

    def _become_fresh(self) -> None:
        """Unknown, expired or dead in the store: never adopt the id."""
        self._sid = None
        self._store_key = None
        self._signer = None
        self._rename_from = None
        self.new = True

    # -- reads: a value not parsed yet is parsed first ----------------------------

    def _read(self, key: str) -> t.Any:
        """The value of ``key`` handed out to the app (parsed first if need
        be), or _MISSING."""
        self.accessed = True
        value = dict.get(self, key, _MISSING)
        if value is _MISSING:
            return self._parse(key, snapshot=True) if self._is_unread(key) else _MISSING
        return self._hand_out(key, value)

    def __getitem__(self, key: str) -> t.Any:
        value = self._read(key)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def get(self, key: str, default: t.Any = None) -> t.Any:
        value = self._read(key)
        return default if value is _MISSING else value

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        if dict.__contains__(self, key):
            return True
        return self._is_unread(key) and self._parse(t.cast(str, key), False) is not _MISSING

    def __len__(self) -> int:
        self.accessed = True
        unread = self._unread
        return dict.__len__(self) + (len(unread) if unread else 0)

    def __iter__(self) -> t.Iterator[str]:
        self.accessed = True
        self._parse_all(snapshot=False)
        return dict.__iter__(self)

    def keys(self) -> t.KeysView[str]:  # type: ignore[override]
        self.accessed = True
        self._parse_all(snapshot=False)
        return dict.keys(self)

    def __reversed__(self) -> t.Iterator[str]:
        self.accessed = True
        self._parse_all(snapshot=False)
        return dict.__reversed__(self)

    def values(self) -> t.ValuesView[t.Any]:  # type: ignore[override]
        self.accessed = True
        self._parse_all(snapshot=True)
        return super().values()

    def items(self) -> t.ItemsView[str, t.Any]:  # type: ignore[override]
        self.accessed = True
        self._parse_all(snapshot=True)
        return super().items()

    def copy(self) -> dict[str, t.Any]:
        self.accessed = True
        self._parse_all(snapshot=True)
        return super().copy()

    def __eq__(self, other: object) -> bool:
        self.accessed = True
        self._parse_all(snapshot=False)
        return dict.__eq__(self, other)

    __hash__ = SecureCookieSession.__hash__  # None: unhashable, as any dict

    def as_dict(self) -> dict[str, t.Any]:
        self._ensure_loaded()
        self._parse_all(snapshot=False)
        return super().as_dict()

    def is_empty(self) -> bool:
        self._ensure_loaded()
        return not (dict.__len__(self) or self._unread)

    # -- writes (per key; a plain set needs no load) -----------------------------

    def _changed(self) -> None:
        self._accessed = True  # not the property: a write needs no load
        self._modified = True

    def __setitem__(self, key: str, value: t.Any) -> None:
        super().__setitem__(key, value)
        self._touched_for_write()[key] = True
        unread = self._unread
        if unread:
            unread.pop(key, None)

    def update(self, *args: t.Any, **kwargs: t.Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value
        self._changed()

    def __delitem__(self, key: str) -> None:
        self._ensure_loaded()
        unread = self._unread
        if unread is not None and key in unread:
            del unread[key]  # no need to parse what goes
            self._changed()
        else:
            super().__delitem__(key)
        self._touched_for_write()[key] = False

    def setdefault(self, key: str, default: t.Any = None) -> t.Any:
        self._ensure_loaded()
        if self._is_unread(key):
            self._parse(key, snapshot=True)  # handed out below
        if not dict.__contains__(self, key):
            self._touched_for_write()[key] = True
        return super().setdefault(key, default)

    def pop(self, key: str, *default: t.Any) -> t.Any:
        self._ensure_loaded()
        if self._is_unread(key):
            self._parse(key, snapshot=False)
        if dict.__contains__(self, key):
            self._touched_for_write()[key] = False
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, t.Any]:
        self._ensure_loaded()
        self._parse_all(snapshot=False)
        key, value = super().popitem()
        self._touched_for_write()[key] = False
        return key, value

    def clear(self) -> None:
        """End the session, as :meth:`invalidate` does (the usual logout idiom).

        Removing keys one by one (``pop``, ``del``) only deletes those keys:
        the session, its id and its cookie stay.
        """
        self.invalidate()

    def _touched_for_write(self) -> dict[str, bool]:
        if self._touched is None:
            self._touched = {}
        return self._touched

    # -- the id ------------------------------------------------------------------

    def regenerate(self) -> None:
        """Give the session a new id, keeping its data; the old id dies.

        Call it when privileges change (login), so that an id an attacker
        planted or saw before is worth nothing afterwards.
        """
        self._ensure_loaded()  # its permanence decides the new cookie's expiry
        if self._store_key is not None and self._rename_from is None:
            self._rename_from = self._store_key
        self._store_key = None
        family = self._sid[:8] if self._sid else None
        self._sid = new_session_id(family)
        self._accessed = True
        if dict.__contains__(self, CSRF_KEY) or self._is_unread(CSRF_KEY):
            self.new_csrf_token()  # a token seen before the login is worthless after it
        if self._meta and START in self._meta:
            del self._meta[START]  # the absolute_timeout counts from the login

    def invalidate(self) -> None:
        """End the session: its data and id are deleted and the cookie removed.

        Every session :meth:`regenerate` made from it ends too, whichever of
        the two requests saves first (a login racing a logout). Keys written
        afterwards (a "you are logged out" message) start a new session with a
        new id.
        """
        keys = (self._opened_key, self._rename_from, self._store_key)
        self._doomed += tuple(key for key in dict.fromkeys(keys) if key)
        self._opened_key = None
        self._ended = None
        self._stale_cookie = False
        self._become_fresh()
        dict.clear(self)
        self._unread = None
        self._touched = None
        self._handed_out = None
        self._meta = None  # what is written next is a new session, with new times
        self._owner = self._owner_key = self._new_owner = None  # and with no owner
        self._owner_set = False
        self._loaded = True
        self._from_store = False
        self._changed()

    # -- saving ------------------------------------------------------------------

    def _known_permanent(self) -> bool | None:
        """Whether the session is permanent, if known without a store call."""
        if self._loaded or (self._touched is not None and "_permanent" in self._touched):
            return bool(self._peek("_permanent", False))
        return None

    def _changes(self) -> tuple[dict[str, t.Any], set[str]]:
        """The keys to write (with their values) and the keys to delete."""
        touched = self._touched or {}
        changed = {key for key, is_set in touched.items() if is_set}
        if self._handed_out:
            for key, snapshot in self._handed_out.items():
                if dict.get(self, key, snapshot) != snapshot:
                    changed.add(key)
        if self._write_all and not touched and not changed and self._loaded:
            self._parse_all(snapshot=False)  # a text that does not parse is not written
            changed.update(dict.keys(self))  # `session.modified = True`: write it all
        values = {
            key: dict.__getitem__(self, key) for key in changed if dict.__contains__(self, key)
        }
        return values, {key for key, is_set in touched.items() if not is_set}

    def _save_plan(
        self,
        serializer: t.Any,
        refresh_each_request: bool,
        timeouts: Timeouts | None = None,
        now: int = 0,
    ) -> SavePlan | None:
        """What saving this session takes; None when nothing changed and
        nothing needs a refresh (no store call, no cookie).

        With ``timeouts``, a session used in this request has its use (and its
        start) recorded at ``now`` in its hidden metadata field: with any
        write, and on its own only when due (a time is missing, or the
        recorded use is a tenth of ``idle_timeout`` old). A write that read
        nothing loads the session first, so its times are checked before
        anything is written to it.

        Raises the store error a read met (the save must fail too), and
        anything the serializer or the store refuses, before any store call:
        a rename or end done for a save that then fails would leave the
        client with a dead cookie and no new one.
        """
        if self._store_error is not None:
            raise SessionStoreError(
                "the session store failed while this request read the session"
            ) from self._store_error
        used = timeouts is not None and self._accessed
        due = None
        if used:
            self._ensure_loaded()  # a blind write: check the times first
            if self._from_store:
                due = t.cast(Timeouts, timeouts).due(self._meta, now, writing=False)
        # A permanent session read here gets its cookie's expiry pushed forward.
        refresh = bool(self._from_store and self._peek("_permanent") and refresh_each_request)
        renaming = self._rename_from is not None
        owner = self._owner_write(now, renaming, bool(due and USED in due))
        if not (
            self.modified
            or refresh
            or self._stale_cookie
            or renaming
            or self._doomed
            or due
            or owner
        ):
            return None
        values, deleted = self._changes()
        if used and (self._from_store or values):
            due = t.cast(Timeouts, timeouts).due(self._meta, now, writing=bool(values or deleted))
            if due:
                self._meta = {**(self._meta or {}), **due}
                values[META_KEY] = self._meta
        if owner is not None:
            if owner.owner is None:
                deleted.add(OWNER_KEY)
            else:
                values[OWNER_KEY] = {"owner": owner.owner, "created": owner.created, "seen": now}
        fields = dump_fields(serializer, values)
        check_fields(fields, deleted)
        permanent = self._known_permanent()
        gone = not self.new or self._from_store  # a record we had may be gone at the save
        return SavePlan(
            end=self._doomed,
            ended=self._ended,
            opened_at=self._opened_at,
            rename_from=self._rename_from,
            key=self._store_key,
            set_fields=fields,
            delete_fields=tuple(deleted),
            permanent=permanent,
            touch=refresh,
            create_sid=None if gone else self._sid,
            create_permanent=bool(values.get("_permanent", False)),
            sid=self._sid,
            signer=None if renaming else self._signer,
            resend_on_write=bool(permanent or "_permanent" in values or "_permanent" in deleted),
            delete_cookie=bool(self._doomed or self._stale_cookie),
            owner=owner,
        )

    def _owner_write(self, now: int, renaming: bool, use_recorded: bool) -> OwnerWrite | None:
        """What this save does to the owner's index: list the session when its
        owner is set or its key changes, refresh its ``seen`` time when due
        (every SEEN_INTERVAL, or with the timeouts' use), drop the old entry
        when the owner or the key changed. None, the usual answer: nothing."""
        loaded = self._owner
        old = loaded["owner"] if loaded else None
        new = self._new_owner if self._owner_set else old
        if new is None and old is None:
            return None
        drop = (
            (old, self._owner_key) if old and self._owner_key and (new != old or renaming) else None
        )
        if new is None:
            return OwnerWrite(None, 0, now, True, drop)
        if loaded and new == old and type(loaded.get("created")) is int:
            created = loaded["created"]
            seen = loaded.get("seen")
            if not (
                renaming or use_recorded or type(seen) is not int or now - seen >= SEEN_INTERVAL
            ):
                return None  # listed, and seen recently enough
        else:
            created = now
        return OwnerWrite(new, created, now, self._owner_set, drop)

    def _created(self, sid: str, plan: SavePlan) -> None:
        """The plan's fields were stored as a new session under ``sid``. If
        the session they came from is gone, only this request's writes are kept."""
        if not self.new or self._from_store:
            kept = {
                name: dict.__getitem__(self, name)
                for name in plan.set_fields
                if name not in (META_KEY, OWNER_KEY)
            }
            self._become_fresh()
            dict.clear(self)
            dict.update(self, kept)
        self._sid = sid
        self._loaded = True

    def __repr__(self) -> str:
        state = "" if self._loaded else " (not loaded)"
        unread = f" (+{len(self._unread)} keys not read)" if self._unread else ""
        return f"<{type(self).__name__}{state} {dict.__repr__(self)}{unread}>"
