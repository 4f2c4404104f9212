"""Server-side sessions: the cookie carries a signed random id, the data lives
in a :class:`~wsgi_sessions.stores.Store`.

What travels where:

- The session id is ``family.token``: ``token`` holds 192 random bits from
  :mod:`secrets`; ``family`` (48 bits) is kept by :meth:`ServerSideSession.regenerate`
  so a session and its successors share a Redis Cluster hash slot. It is not
  a secret: the token is.
- The cookie is the id signed with itsdangerous (keys derived once, as for
  cookie sessions; its own salt; SHA-256), so a forged id costs no store lookup.
- The store key is ``{family}`` + an HMAC of the id under a key derived from
  the secret key: a dump of the store yields no usable cookie.

The session is loaded on its first read, with the expiry refresh in the same
store call; a key written without being read is sent as a blind per-key
write, applied only if the session still exists. Only changed keys are
written (removing keys writes per-key deletions; only ``invalidate()`` or
``clear()`` ends a session), so overlapping requests of one user that change
different keys both survive, and an ended session is never written back to
life. A request whose session another request ended or regenerated while it
ran has its writes dropped and sends no cookie: nothing crosses a login or a
logout.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
import typing as t
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import lru_cache, partial

from itsdangerous import BadSignature, Signer

from ._signing import StrictSigner, make_signing_serializer
from .errors import SessionStoreError
from .interface import (
    SecureCookieSessionInterface,
    SessionApp,
    SessionResponse,
)
from .serialization import dump_fields, load_fields
from .sessions import CSRF_KEY, SecureCookieSession, SessionMixin
from .settings import DEFAULT_IDLE_LIFETIME, to_timedelta
from .stores import MemoryStore, Store, store_from_url
from .stores.base import Ended, check_fields

if t.TYPE_CHECKING:  # pragma: no cover
    from werkzeug.wrappers import Request

__all__ = ["ServerSideSession", "ServerSideSessionInterface"]

logger = logging.getLogger("wsgi_sessions")

_SID = re.compile(r"[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{32}")
_STORE_KEY_CONTEXT = b"wsgi_sessions.server-side store key"


def new_session_id(family: str | None = None) -> str:
    """A fresh id; ``family`` (the part before the dot) is kept on regenerate."""
    if family is None:
        text = secrets.token_urlsafe(30)  # 240 bits: 48 for the family, 192 for the token
        return f"{text[:8]}.{text[8:]}"
    return f"{family}.{secrets.token_urlsafe(24)}"


def store_key_for(hash_key: bytes, sid: str) -> str:
    """The store key of ``sid``: its family as a hash tag, then a keyed hash.

    Keyed BLAKE2b (a MAC by design, 192 bits) costs a third of an HMAC-SHA256
    here, on every request that carries a session cookie.
    """
    digest = hashlib.blake2b(sid.encode(), key=hash_key, digest_size=24).hexdigest()
    return "{" + sid[:8] + "}" + digest


class _IdKey(t.NamedTuple):
    signer: Signer
    hash_key: bytes


@lru_cache(maxsize=32)
def _id_keys(
    secret_keys: tuple[str | bytes, ...], salt: str, key_derivation: str, digest_method: t.Any
) -> tuple[_IdKey, ...]:
    """One (signer, store-hash key) pair per secret key, the current key first.

    Each key keeps its own store hash: a session whose cookie verifies under a
    fallback key is still found after a key rotation, until it is regenerated
    (at the next login) under the current key.
    """
    pairs = []
    for key in secret_keys:
        serializer = make_signing_serializer((key,), salt, key_derivation, digest_method, None)
        derived = serializer.secret_keys[-1]  # derived once, there
        # No timestamp: the store decides when a session expires. Strict: one
        # spelling of a signature, as for cookie sessions.
        signer = StrictSigner(
            derived, salt=salt, key_derivation="none", digest_method=digest_method
        )
        hash_key = hmac.digest(derived, _STORE_KEY_CONTEXT, "sha256")
        pairs.append(_IdKey(signer, hash_key))
    return tuple(pairs)


_NOTHING_TOUCHED: dict[str, bool] = {}


class ServerSideSession(SecureCookieSession):
    """A session whose data lives in a store, loaded on first read.

    On top of the cookie session's change tracking it records which keys were
    set and deleted, so that only those are written (setting ``modified = True``
    without changing any key writes every loaded key). ``sid`` is the session
    id (issued on first use for a new session); ``new`` is True when the
    session was created in this request.
    """

    # Defaults for a session created in this request (most anonymous requests).
    _sid: str | None = None
    _store_key: str | None = None  # the record this request found (or may find)
    _opened_key: str | None = None  # the record the cookie named (kept for invalidate)
    # The key that verified the cookie, when it was a fallback: the record lives
    # under that key's hash, so a re-sent cookie must be signed with it too.
    _id_key: _IdKey | None = None
    _fetch: Callable[[], Mapping[str, str] | Ended | None] | None = None
    _serializer: t.Any = None
    new = True
    _loaded = True  # a new session has nothing to load
    _from_store = False  # loaded, and found in the store
    _stale_cookie = False  # a cookie named a session the store does not have
    _ended: Ended | None = None  # the store found the cookie's session ended (or renamed)
    _doomed: tuple[str, ...] = ()  # store keys to delete (invalidate)
    _rename_from: str | None = None  # store key to rename (regenerate)
    _store_error: SessionStoreError | None = None
    _opened_at: float = 0.0  # when the cookie's id was read (epoch seconds)
    # key -> True (set here) or False (deleted here): what to write. The shared
    # empty default is never written to (see _touched_for_write): most requests
    # write nothing and need no dict of their own.
    _touched: dict[str, bool] = _NOTHING_TOUCHED
    # The app set `modified = True` itself. Not the inherited flag: a write
    # that changes nothing (popping a missing key) sets that one too, and
    # must not write every loaded key over other requests' newer values.
    _write_all = False

    @classmethod
    def from_cookie(
        cls,
        sid: str,
        store_key: str,
        fetch: Callable[[], Mapping[str, str] | Ended | None],
        serializer: t.Any,
        opened_at: float,
        id_key: _IdKey | None = None,
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
        session._id_key = id_key
        session.new = False
        session._loaded = False
        return session

    @property
    def permanent(self) -> bool:
        """As for cookie sessions; known without a load once written here."""
        known = self._known_permanent()
        if known is None:
            return super().permanent
        self.accessed = True
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
        self._from_store = True
        if not fields:
            return
        touched = self._touched
        for name, value in load_fields(self._serializer, fields).items():
            if not (touched and name in touched):  # changed here before the first read: ours wins
                dict.__setitem__(self, name, value)

    def _become_fresh(self) -> None:
        """Unknown, expired or dead in the store: never adopt the id."""
        self._sid = None
        self._store_key = None
        self._id_key = None
        self._rename_from = None
        self.new = True

    # -- reads (load first) ----------------------------------------------------

    def __getitem__(self, key: str) -> t.Any:
        self._ensure_loaded()
        return super().__getitem__(key)

    def get(self, key: str, default: t.Any = None) -> t.Any:
        self._ensure_loaded()
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self._ensure_loaded()
        return super().__contains__(key)

    def __len__(self) -> int:
        self._ensure_loaded()
        return super().__len__()

    def __iter__(self) -> t.Iterator[str]:
        self._ensure_loaded()
        return super().__iter__()

    def keys(self) -> t.KeysView[str]:  # type: ignore[override]
        self._ensure_loaded()
        return super().keys()

    def values(self) -> t.ValuesView[t.Any]:  # type: ignore[override]
        self._ensure_loaded()
        return super().values()

    def items(self) -> t.ItemsView[str, t.Any]:  # type: ignore[override]
        self._ensure_loaded()
        return super().items()

    def copy(self) -> dict[str, t.Any]:
        self._ensure_loaded()
        return super().copy()

    def __eq__(self, other: object) -> bool:
        self._ensure_loaded()
        return super().__eq__(other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __reversed__(self) -> t.Iterator[str]:
        self._ensure_loaded()
        self.accessed = True
        return dict.__reversed__(self)

    __hash__ = None

    def as_dict(self) -> dict[str, t.Any]:
        self._ensure_loaded()
        return super().as_dict()

    def is_empty(self) -> bool:
        self._ensure_loaded()
        return super().is_empty()

    # -- writes (per key; a plain set needs no load) -----------------------------

    def __setitem__(self, key: str, value: t.Any) -> None:
        super().__setitem__(key, value)
        self._touched_for_write()[key] = True

    def update(self, *args: t.Any, **kwargs: t.Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value
        self._changed()

    def __delitem__(self, key: str) -> None:
        self._ensure_loaded()
        super().__delitem__(key)
        self._touched_for_write()[key] = False

    def setdefault(self, key: str, default: t.Any = None) -> t.Any:
        self._ensure_loaded()
        if not dict.__contains__(self, key):
            self._touched_for_write()[key] = True
        return super().setdefault(key, default)

    def pop(self, key: str, *default: t.Any) -> t.Any:
        self._ensure_loaded()
        if dict.__contains__(self, key):
            self._touched_for_write()[key] = False
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, t.Any]:
        self._ensure_loaded()
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
        touched = self._touched
        if touched is _NOTHING_TOUCHED:
            touched = self._touched = {}
        return touched

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
        self.accessed = True
        if dict.__contains__(self, CSRF_KEY):
            self.new_csrf_token()  # a token seen before the login is worthless after it

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
        self._touched = _NOTHING_TOUCHED
        self._handed_out = None
        self._loaded = True
        self._from_store = False
        self._changed()

    # -- for the interface -----------------------------------------------------------

    def _known_permanent(self) -> bool | None:
        """Whether the session is permanent, if known without a store call."""
        if self._loaded or "_permanent" in self._touched:
            return bool(dict.get(self, "_permanent", False))
        return None

    def _changes(self) -> tuple[dict[str, t.Any], set[str]]:
        """The keys to write (with their values) and the keys to delete."""
        touched = self._touched
        changed = {key for key, is_set in touched.items() if is_set}
        if self._handed_out:
            for key, snapshot in self._handed_out.items():
                if dict.get(self, key, snapshot) != snapshot:
                    changed.add(key)
        if self._write_all and not touched and not changed and self._loaded:
            changed.update(dict.keys(self))  # `session.modified = True`: write it all
        values = {
            key: dict.__getitem__(self, key) for key in changed if dict.__contains__(self, key)
        }
        return values, {key for key, is_set in touched.items() if not is_set}

    def __repr__(self) -> str:
        state = "" if self._loaded else " (not loaded)"
        return f"<{type(self).__name__}{state} {dict.__repr__(self)}>"


class ServerSideSessionInterface(SecureCookieSessionInterface):
    """Sessions kept in a store, the cookie holding only a signed id.

    ``store`` is a :class:`~wsgi_sessions.stores.Store`, a store URL
    (``memory://``, ``sqlite:///sessions.db``, ``redis://127.0.0.1:6379/0``)
    or None for a :class:`~wsgi_sessions.stores.MemoryStore`. Works from
    :class:`~wsgi_sessions.SessionMiddleware` (``interface=`` or the ``store``
    setting) and as a Flask ``app.session_interface``.

    Configuration is read from ``app.config`` on every call, as for cookie
    sessions; besides Flask's keys it reads ``SESSION_IDLE_LIFETIME`` (how long
    a browser session lives unused; default one day). With
    ``SESSION_REFRESH_EACH_REQUEST`` on, reading a session pushes its expiry
    forward in the same store call as the load.

    A failing store raises :class:`~wsgi_sessions.SessionStoreError` from the
    first read and again from ``save_session``; SessionMiddleware answers 503.
    Under Flask it is Flask's 500 unless the app registers an error handler
    for ``SessionStoreError``.
    """

    #: Separates id signatures from cookie-session signatures made with the same key.
    salt = "wsgi_sessions.server-side-session-id"
    #: No cookie compatibility to keep here, so SHA-256 (OpenSSL's, the fast HMAC path).
    digest_method = staticmethod(hashlib.sha256)
    session_class = ServerSideSession

    def __init__(self, store: Store | str | None = None) -> None:
        if store is None:
            store = MemoryStore()
        elif isinstance(store, str):
            store = store_from_url(store)
        elif not isinstance(store, Store):
            raise TypeError(
                f"setting 'store' must be a store URL or a Store, got {type(store).__name__}"
            )
        self.store = store

    def get_id_keys(self, app: SessionApp) -> tuple[_IdKey, ...] | None:
        """The (cached) signers and store-hash keys, current key first; None
        without a secret key."""
        secret_key = app.secret_key
        if not secret_key:
            return None
        fallbacks = app.config.get("SECRET_KEY_FALLBACKS")
        keys = (secret_key, *fallbacks) if fallbacks else (secret_key,)
        return _id_keys(keys, self.salt, self.key_derivation, self.digest_method)

    def get_lifetime(self, app: SessionApp, permanent: bool) -> int:
        """Seconds a session lives in the store after its last use."""
        if permanent:
            lifetime = app.permanent_session_lifetime
        else:
            configured = app.config.get("SESSION_IDLE_LIFETIME")
            if configured is None:
                lifetime = DEFAULT_IDLE_LIFETIME
            elif isinstance(configured, timedelta):
                lifetime = configured
            else:  # Flask's app.config may hold seconds or "12h"
                lifetime = to_timedelta("SESSION_IDLE_LIFETIME", configured)
        return max(1, int(lifetime.total_seconds()))

    def open_session(self, app: SessionApp, request: Request) -> ServerSideSession | None:
        if not app.secret_key:
            return None
        value = self.get_session_cookie(app, request)
        if not value:
            return self.session_class()
        id_keys = self.get_id_keys(app)
        assert id_keys is not None
        for index, id_key in enumerate(id_keys):
            try:
                sid = id_key.signer.unsign(value).decode("ascii", "replace")
            except BadSignature:
                continue
            if not _SID.fullmatch(sid):
                break
            store_key = store_key_for(id_key.hash_key, sid)
            touch = bool(app.config["SESSION_REFRESH_EACH_REQUEST"])
            fetch = partial(self.store.load, store_key, touch)
            fallback = id_key if index else None
            return self.session_class.from_cookie(
                sid, store_key, fetch, self.serializer, time.time(), fallback
            )
        # Forged, or another app's cookie: a fresh session; the value is never logged.
        logger.debug("session id cookie rejected")
        return self.session_class()

    def save_session(
        self, app: SessionApp, session: SessionMixin, response: SessionResponse
    ) -> None:
        if ServerSideSession not in type(session).__mro__:  # isinstance, minus the ABC cost
            raise TypeError(
                f"ServerSideSessionInterface saves ServerSideSession, got {type(session).__name__}"
            )
        session = t.cast(ServerSideSession, session)
        if session._store_error is not None:
            raise SessionStoreError(
                "the session store failed while this request read the session"
            ) from session._store_error
        if session.accessed:
            response.vary.add("Cookie")
        # A permanent session read here gets its cookie's expiry pushed forward.
        refresh = bool(
            session._from_store
            and dict.get(session, "_permanent")
            and app.config["SESSION_REFRESH_EACH_REQUEST"]
        )
        if not (
            session.modified
            or refresh
            or session._stale_cookie
            or session._rename_from is not None
            or session._doomed
        ):
            return  # nothing changed, nothing to refresh: no store call, no header
        id_keys = self.get_id_keys(app)
        if id_keys is None:  # the secret key was removed mid-flight
            return
        current = id_keys[0]
        # Everything that can refuse the session's contents fails here, before
        # the first store call: a rename or end done for a save that then
        # fails would leave the client with a dead cookie and no new one.
        values, deleted = session._changes()
        fields = dump_fields(self.serializer, values)
        check_fields(fields, deleted)
        signer = self._write(app, session, current, values, fields, deleted, refresh)
        if signer == "delete":
            self.delete_session_cookie(app, response)
            response.vary.add("Cookie")
        elif signer is not None:
            cookie = signer.sign(session.sid).decode("ascii")
            self.set_session_cookie(app, response, cookie, self.get_expiration_time(app, session))
            if not session.accessed:
                response.vary.add("Cookie")

    def _write(
        self,
        app: SessionApp,
        session: ServerSideSession,
        current: _IdKey,
        values: dict[str, t.Any],
        fields: dict[str, str],
        deleted: set[str],
        refresh: bool,
    ) -> Signer | t.Literal["delete"] | None:
        """Make the store calls of a save; return the signer of the cookie to
        send, "delete" to delete the cookie, or None to send none."""
        store = self.store
        for doomed in session._doomed:
            store.end(doomed)
        if session._ended is not None and self._ran_during(session, session._ended):
            return None  # ended or regenerated by another request meanwhile: writes dropped

        key = session._store_key
        # A record found under a fallback key stays there (until regenerated):
        # its cookie keeps that key's signature, or the next request misses it.
        signer = (session._id_key or current).signer
        send_cookie = False
        if session._rename_from is not None:
            new_key = store_key_for(current.hash_key, session.sid)
            moved = store.rename(session._rename_from, new_key)
            if isinstance(moved, Ended):
                return None  # a concurrent logout or login won: nothing of this login lands
            key = new_key if moved else None
            signer = current.signer
            send_cookie = moved

        permanent = session._known_permanent()
        if key is not None and (fields or deleted):
            lifetime = None if permanent is None else self.get_lifetime(app, permanent)
            applied = store.apply(key, fields, deleted, lifetime)
            if isinstance(applied, Ended) and self._ran_during(session, applied):
                return None  # ended or regenerated by another request meanwhile: dropped
            if not applied:
                key = None  # gone (expired, or ended long ago): never resurrect it
            elif permanent or "_permanent" in values or "_permanent" in deleted:
                send_cookie = True  # the cookie's expiry follows the store's
        elif key is not None and refresh and not send_cookie:
            # Re-send the id only while it is live: a read in flight during a
            # login must not hand back the id the login just retired.
            send_cookie = store.touch(key)
        if key is None:
            if fields:
                self._create(app, session, current, values, fields)
                return current.signer
            if session._doomed or session._stale_cookie:
                return "delete"
        return signer if send_cookie else None

    def _ran_during(self, session: ServerSideSession, ended: Ended) -> bool:
        """Whether the request was in flight when its session ended (or read
        the old id so soon after that its browser had not yet had the answer).

        Such a request's writes are dropped and it sends no cookie; a cookie
        that names a session ended longer ago is stale, and its request starts
        a fresh session.
        """
        return session._opened_at < ended.at + self.store.end_grace

    def _create(
        self,
        app: SessionApp,
        session: ServerSideSession,
        current: _IdKey,
        values: dict[str, t.Any],
        fields: dict[str, str],
    ) -> None:
        """Store what this request wrote as a new session with a new id."""
        if not session.new or session._from_store:
            # The session it belonged to is gone: keep only this request's writes.
            session._become_fresh()
            dict.clear(session)
            dict.update(session, values)
        session._loaded = True
        lifetime = self.get_lifetime(app, bool(values.get("_permanent", False)))
        for _attempt in range(3):
            if self.store.create(store_key_for(current.hash_key, session.sid), fields, lifetime):
                return
            session._sid = None  # 192 random bits collided: draw again
        raise SessionStoreError("the session store refused three new session ids in a row")
