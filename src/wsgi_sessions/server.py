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
from .interface import SecureCookieSessionInterface, SessionApp, SessionResponse
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
        timeouts = timeouts_for(app.config)
        plan = session._save_plan(
            self.serializer,
            bool(app.config["SESSION_REFRESH_EACH_REQUEST"]),
            timeouts,
            int(self.clock()) if timeouts is not None else 0,
        )
        if session.accessed:
            response.vary.add("Cookie")
        if plan is None:
            return  # nothing changed, nothing to refresh: no store call, no header
        id_keys = self.get_id_keys(app)
        if id_keys is None:  # the secret key was removed mid-flight
            return
        cookie = self._execute(app, session, plan, id_keys[0])
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
    ) -> tuple[Signer, str] | t.Literal["delete"] | None:
        """Make the plan's store calls; return the signer and id of the
        cookie to send, "delete" to delete the cookie, or None to send none."""
        store = self.store
        for doomed in plan.end:
            store.end(doomed)
        if plan.ended is not None and self._ran_during(plan, plan.ended):
            return None  # ended or regenerated by another request meanwhile: writes dropped

        key = plan.key
        signer = plan.signer or current.signer
        send_cookie = False
        if plan.rename_from is not None:
            assert plan.sid is not None
            new_key = store_key_for(current.hash_key, plan.sid)
            moved = store.rename(plan.rename_from, new_key)
            if isinstance(moved, Ended):
                return None  # a concurrent logout or login won: nothing of this login lands
            key = new_key if moved else None
            send_cookie = moved

        if key is not None and (plan.set_fields or plan.delete_fields):
            lifetime = None if plan.permanent is None else self.get_lifetime(app, plan.permanent)
            applied = store.apply(key, plan.set_fields, plan.delete_fields, lifetime)
            if isinstance(applied, Ended) and self._ran_during(plan, applied):
                return None  # ended or regenerated by another request meanwhile: dropped
            if not applied:
                key = None  # gone (expired, or ended long ago): never resurrect it
            elif plan.resend_on_write:
                send_cookie = True  # the cookie's expiry follows the store's
        elif key is not None and plan.touch and not send_cookie:
            # Re-send the id only while it is live: a read in flight during a
            # login must not hand back the id the login just retired.
            send_cookie = store.touch(key)
        if key is None:
            if plan.set_fields:
                sid = self._create(app, plan, current)
                session._created(sid, plan)
                return current.signer, sid
            return "delete" if plan.delete_cookie else None
        if not send_cookie:
            return None
        assert plan.sid is not None
        return signer, plan.sid

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
