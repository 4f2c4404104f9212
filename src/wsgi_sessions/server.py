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

The session (:mod:`wsgi_sessions.server_session`) is loaded on its first
read, with the expiry refresh in the same store call; a key written without
being read is sent as a blind per-key write, applied only if the session still
exists. Only changed keys are written (removing keys writes per-key deletions;
only ``invalidate()`` or ``clear()`` ends a session), so overlapping requests
of one user that change different keys both survive, and an ended session is
never written back to life. A request whose session another request ended or
regenerated while it ran has its writes dropped and sends no cookie: nothing
crosses a login or a logout.

The session computes its save plan; this module runs it against the store
and writes the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
import typing as t
from datetime import timedelta
from functools import lru_cache, partial

from itsdangerous import BadSignature, Signer

from ._signing import StrictSigner, make_signing_serializer
from ._timeouts import timeouts_for
from .errors import SessionStoreError
from .interface import META_KEY, SecureCookieSessionInterface, SessionApp, SessionResponse
from .owners import (
    OWNER_KEY,
    SEEN_INTERVAL,
    Entry,
    SessionRecord,
    check_owner,
    index_key,
    live_entries,
    record_of,
    write_entries,
)
from .server_session import SavePlan, ServerSideSession, new_session_id
from .sessions import SessionMixin
from .settings import DEFAULT_IDLE_LIFETIME, to_timedelta
from .stores import MemoryStore, Store, store_from_url
from .stores.base import Ended

if t.TYPE_CHECKING:  # pragma: no cover
    from werkzeug.wrappers import Request

__all__ = ["ServerSideSession", "ServerSideSessionInterface"]

logger = logging.getLogger("wsgi_sessions")

_SID = re.compile(r"[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{32}")
_STORE_KEY_CONTEXT = b"wsgi_sessions.server-side store key"


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
        self._served: SessionApp | None = None  # for sessions_of() etc. called without app=

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
        """Seconds a session lives in the store after its last use.

        At most ``idle_timeout`` or ``absolute_timeout``: a record unused for
        longer is over, so the store need not keep it. (Its use is recorded
        with a write at least that often while it is used.)
        """
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
        seconds = lifetime.total_seconds()
        timeouts = timeouts_for(app.config)
        if timeouts is not None and (limit := timeouts.store_lifetime) is not None:
            seconds = min(seconds, limit)
        return max(1, int(seconds))

    def open_session(self, app: SessionApp, request: Request) -> ServerSideSession | None:
        if not app.secret_key:
            return None
        if self._served is None:
            self._served = app
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
            fallback = id_key.signer if index else None
            return self.session_class.from_cookie(
                sid,
                store_key,
                fetch,
                self.serializer,
                time.time(),
                fallback,
                timeouts=timeouts_for(app.config),
                clock=self.clock,
            )
        # Forged, or another app's cookie: a fresh session; the value is never logged.
        logger.debug("session id cookie rejected")
        return self.session_class()

    def save_session(
        self, app: SessionApp, session: SessionMixin, response: SessionResponse
    ) -> None:
        if not isinstance(session, ServerSideSession):
            raise TypeError(
                f"ServerSideSessionInterface saves ServerSideSession, got {type(session).__name__}"
            )
        plan = session._save_plan(
            self.serializer,
            bool(app.config["SESSION_REFRESH_EACH_REQUEST"]),
            timeouts_for(app.config),
            int(self.clock()),
        )
        if session.accessed:
            response.vary.add("Cookie")
        if plan is None:
            return  # nothing changed, nothing to refresh: no store call, no header
        id_keys = self.get_id_keys(app)
        if id_keys is None:  # the secret key was removed mid-flight
            return
        cookie, key = self._execute(app, session, plan, id_keys[0])
        if plan.owner is not None:
            lifetime = self._index_lifetime(app)
            write_entries(self.store, plan.owner, key, id_keys[0].hash_key, lifetime)
        if cookie == "delete":
            self.delete_session_cookie(app, response)
            response.vary.add("Cookie")
        elif cookie is not None:
            signer, sid = cookie
            value = signer.sign(sid).decode("ascii")
            self.set_session_cookie(app, response, value, self.get_expiration_time(app, session))
            if not session.accessed:
                response.vary.add("Cookie")

    def _execute(
        self, app: SessionApp, session: ServerSideSession, plan: SavePlan, current: _IdKey
    ) -> tuple[tuple[Signer, str] | t.Literal["delete"] | None, str | None]:
        """Make the plan's store calls; return the signer and id of the
        cookie to send, "delete" to delete the cookie, or None to send none;
        and the store key of the record written, if one was."""
        store = self.store
        for doomed in plan.end:
            store.end(doomed)
        if plan.ended is not None and self._ran_during(plan, plan.ended):
            return None, None  # ended or regenerated by another request meanwhile: dropped

        key = plan.key
        signer = plan.signer or current.signer
        send_cookie = False
        if plan.rename_from is not None:
            assert plan.sid is not None
            new_key = store_key_for(current.hash_key, plan.sid)
            moved = store.rename(plan.rename_from, new_key)
            if isinstance(moved, Ended):
                return None, None  # a concurrent logout or login won: nothing of it lands
            key = new_key if moved else None
            send_cookie = moved

        if key is not None and (plan.set_fields or plan.delete_fields):
            lifetime = None if plan.permanent is None else self.get_lifetime(app, plan.permanent)
            applied = store.apply(key, plan.set_fields, plan.delete_fields, lifetime)
            if isinstance(applied, Ended) and self._ran_during(plan, applied):
                return None, None  # ended or regenerated by another request meanwhile: dropped
            if not applied:
                key = None  # gone (expired, or ended long ago): never resurrect it
            elif plan.resend_on_write:
                send_cookie = True  # the cookie's expiry follows the store's
        elif key is not None and plan.touch and not send_cookie:
            # Re-send the id only while it is live: a read in flight during a
            # login must not hand back the id the login just retired.
            send_cookie = store.touch(key)
        if key is None:
            fields = plan.set_fields
            listed = plan.owner is None or plan.owner.assigned
            if not listed and OWNER_KEY in fields:
                # The record vanished: a seen-time refresh does not list a new session.
                fields = {name: text for name, text in fields.items() if name != OWNER_KEY}
                plan = plan._replace(set_fields=fields)
            if fields:
                sid = self._create(app, plan, current)
                session._created(sid, plan)
                new_key = store_key_for(current.hash_key, sid)
                return (current.signer, sid), new_key if listed else None
            return ("delete" if plan.delete_cookie else None), None
        if not send_cookie:
            return None, key
        assert plan.sid is not None
        return (signer, plan.sid), key

    def _ran_during(self, plan: SavePlan, ended: Ended) -> bool:
        """Whether the request was in flight when its session ended (or read
        the old id so soon after that its browser had not yet had the answer).

        Such a request's writes are dropped and it sends no cookie; a cookie
        that names a session ended longer ago is stale, and its request starts
        a fresh session.
        """
        return plan.opened_at < ended.at + self.store.end_grace

    def _create(self, app: SessionApp, plan: SavePlan, current: _IdKey) -> str:
        """Store the plan's fields as a new session; return its id."""
        lifetime = self.get_lifetime(app, plan.create_permanent)
        sid = plan.create_sid or new_session_id()
        for _attempt in range(3):
            if self.store.create(store_key_for(current.hash_key, sid), plan.set_fields, lifetime):
                return sid
            sid = new_session_id()  # 192 random bits collided: draw again
        raise SessionStoreError("the session store refused three new session ids in a row")

    # -- a user's sessions (session.owner) ------------------------------------------

    def sessions_of(
        self, owner: str, current: SessionMixin | None = None, *, app: SessionApp | None = None
    ) -> list[SessionRecord]:
        """The live sessions of ``owner`` (what ``session.owner`` was set to),
        oldest login first; the one that is ``current`` (the request's own
        session) is marked. Dead entries are pruned from the owner's index.

        ``app`` is what the interface serves (a Flask app, or the middleware's
        ``session_config``); by default the one it opened a session for first.
        """
        found = self._owner_entries(owner, app)
        mine = self._keys_of(current)
        records = [record_of(entry, entry.key in mine) for entry in found]
        return sorted(records, key=lambda record: (record.created, record.handle))

    def end_session(self, owner: str, handle: str, *, app: SessionApp | None = None) -> bool:
        """End the session of ``owner`` that ``handle`` names (from
        :meth:`sessions_of`), as ``invalidate()`` would; whether one was ended.
        A handle of another owner's session ends nothing."""
        if not isinstance(handle, str):
            raise TypeError(f"handle must be a str, got {type(handle).__name__}")
        for entry in self._owner_entries(owner, app):
            # Bytes: compare_digest refuses a str that is not ASCII (a form may post one).
            if hmac.compare_digest(entry.handle.encode(), handle.encode("utf-8", "replace")):
                ended = self.store.end(entry.key)
                self.store.apply(entry.source, {}, (entry.handle,))
                return ended
        return False

    def end_sessions_of(
        self, owner: str, keep: SessionMixin | None = None, *, app: SessionApp | None = None
    ) -> int:
        """End every session of ``owner`` but ``keep`` (the request's own, at a
        password change), as ``invalidate()`` would; how many were ended.

        A request of an ended session that is in flight cannot write it back,
        and its next request gets a fresh session.
        """
        kept = self._keys_of(keep)
        ended = 0
        for entry in self._owner_entries(owner, app):
            if entry.key in kept:
                continue
            ended += self.store.end(entry.key)
            self.store.apply(entry.source, {}, (entry.handle,))
        return ended

    def _owner_entries(self, owner: str, app: SessionApp | None) -> list[Entry]:
        checked = check_owner(owner)
        if checked is None:
            return []
        app = self._owner_app(app)
        id_keys = self.get_id_keys(app)
        if id_keys is None:
            return []
        indexes = list(dict.fromkeys(index_key(key.hash_key, checked) for key in id_keys))
        return live_entries(
            self.store,
            indexes,
            checked,
            self.serializer,
            timeouts_for(app.config),
            int(self.clock()),
            META_KEY,
        )

    def _owner_app(self, app: SessionApp | None) -> SessionApp:
        if app is not None:
            return app
        if self._served is None:
            raise RuntimeError(
                "this interface has served no session yet, so it does not know its secret "
                "key: pass app= (the Flask app, or SessionMiddleware's session_config)"
            )
        return self._served

    @staticmethod
    def _keys_of(session: SessionMixin | None) -> set[str]:
        """The store keys ``session`` has or had in this request."""
        if session is None:
            return set()
        if not isinstance(session, ServerSideSession):
            raise TypeError(
                f"expected the request's ServerSideSession, got {type(session).__name__}"
            )
        keys = (session._store_key, session._opened_key, session._rename_from)
        return {key for key in keys if key}

    def _index_lifetime(self, app: SessionApp) -> int:
        """An index outlives every session it lists: it is written at least
        every SEEN_INTERVAL while one of them is used."""
        longest = max(self.get_lifetime(app, True), self.get_lifetime(app, False))
        return longest + SEEN_INTERVAL
