"""The server-side session's life in the store: loaded on its first read,
and its save plan. The session knows what this request did to it and turns
that into a :class:`SavePlan`, which
:class:`~wsgi_sessions.server.ServerSideSessionInterface` runs against the
store. A module of its own: only the server-side interface uses it. How its
mapping parses each stored value on first read is
:mod:`wsgi_sessions._lazy_fields`'s job.
"""

from __future__ import annotations

import logging
import secrets
import time
import typing as t
from collections.abc import Callable, Mapping

from ._lazy_fields import LazyFieldsSession
from ._timeouts import START, USED, Timeouts
from .errors import SessionStoreError
from .interface import META_KEY
from .owners import OWNER_KEY, SEEN_INTERVAL, OwnerWrite, check_owner
from .serialization import dump_fields, field_loader
from .sessions import CSRF_KEY, SecureCookieSession
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


class ServerSideSession(LazyFieldsSession):
    """A session whose data lives in a store, loaded on first read.

    On top of the cookie session's change tracking it records which keys were
    set and deleted, so that only those are written (setting ``modified = True``
    without changing any key writes every loaded key). ``sid`` is the session
    id (issued on first use for a new session); ``new`` is True when the
    session was created in this request.

    Every read loads the session first (so does ``accessed = True`` set by
    hand); a write needs no load (a blind write). A load parses no value: each
    stored text is parsed when its key is first read (a request that reads one
    key of a 500-key session parses one value, not 500); iterating, or anything
    that sees every value, parses the rest first. A text that does not parse is
    dropped (and logged) when its key is read; ``len`` counts it until then.
    Code that reads the dict's storage directly sees only the values parsed so
    far: ``json.dumps`` looks at its size first, and gives ``{}`` for a
    session none of whose values was read yet (even one already counted, by
    ``len`` or ``if session:``); once one was, it asks for the items, which
    parses the rest.
    """

    # The mapping's side of the lazy load and of per-key change tracking is
    # LazyFieldsSession's (wsgi_sessions/_lazy_fields.py); this class fetches
    # the record, and turns what the request did into a save plan.

    # Defaults for a session created in this request (most anonymous requests).
    _sid: str | None = None
    _store_key: str | None = None  # the record this request found (or may find)
    _opened_key: str | None = None  # the record the cookie named (kept for invalidate)
    # The signer of the key that verified the cookie, when it was a fallback:
    # the record lives under that key's hash, so a re-sent cookie is signed with it.
    _signer: Signer | None = None
    _fetch: Callable[[], Mapping[str, str] | Ended | None] | None = None
    _serializer: t.Any = None
    new = True
    _loaded = True  # a new session has nothing to load
    _from_store = False  # loaded, and found in the store
    _stale_cookie = False  # a cookie named a session the store does not have
    _ended: Ended | None = None  # the store found the cookie's session ended (or renamed)
    _doomed: tuple[str, ...] = ()  # store keys to end (invalidate)
    _rename_from: str | None = None  # store key to rename (regenerate)
    _store_error: SessionStoreError | None = None
    _opened_at: float = 0.0  # when the cookie's id was read (epoch seconds)
    # idle_timeout / absolute_timeout, checked at the load: the times live in
    # the hidden field META_KEY of the record (see _load_texts).
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
        session._mark_unparsed()
        if timeouts is not None:
            session._timeouts = timeouts
            session._clock = clock
        return session

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

    def _load_texts(self) -> None:
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
        texts = dict(fields)
        texts.pop(META_KEY, None)
        texts.pop(OWNER_KEY, None)
        self._hold_texts(texts, load)

    def _become_fresh(self) -> None:
        """Unknown, expired or dead in the store: never adopt the id."""
        self._sid = None
        self._store_key = None
        self._signer = None
        self._rename_from = None
        self.new = True

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
        if self._holds(CSRF_KEY):
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
        self._drop_contents()
        self._meta = None  # what is written next is a new session, with new times
        self._owner = self._owner_key = self._new_owner = None  # and with no owner
        self._owner_set = False
        self._loaded = True
        self._mark_unparsed()
        self._from_store = False
        self._changed()

    def clear(self) -> None:
        """End the session, as :meth:`invalidate` does (the usual logout idiom).

        Removing keys one by one (``pop``, ``del``) only deletes those keys:
        the session, its id and its cookie stay.
        """
        self.invalidate()

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
            self._unread = None  # the texts it held are gone with it
            dict.update(self, kept)
        self._sid = sid
        self._loaded = True
        self._mark_unparsed()
