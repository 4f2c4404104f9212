"""Encrypted cookie sessions: the cookie session, sealed instead of signed.

A signed cookie's payload is base64 of JSON: anyone who holds the cookie (the
user, their browser extensions, a proxy's log, whoever copies it from a
screen) reads it. :class:`EncryptedCookieSessionInterface` seals the same
payload with AES-256-GCM (see :mod:`wsgi_sessions._encryption` for the
format), so the cookie reveals nothing but its length, and a changed,
truncated, renamed or expired cookie is a fresh empty session.

Everything else is the signed cookie session's: the session class (loaded on
first use), change tracking, flash messages, CSRF tokens, the cookie hooks,
the settings, the size limit; it is a Flask ``app.session_interface`` too.
"""

from __future__ import annotations

import logging
import typing as t
import weakref

from ._encryption import CookieSealer, make_sealer, require_cryptography
from .interface import SecureCookieSessionInterface, SessionApp, _CookieLoader, split_meta
from .sessions import SecureCookieSession, SessionMixin

if t.TYPE_CHECKING:  # pragma: no cover
    from werkzeug.wrappers import Request

__all__ = ["EncryptedCookieSessionInterface"]

logger = logging.getLogger("wsgi_sessions")


class EncryptedCookieSessionInterface(SecureCookieSessionInterface):
    """The whole session in a cookie encrypted and authenticated with AES-256-GCM.

    Keys come from ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` through HKDF
    (never the secret itself, never a signing key). A cookie sealed under a
    fallback key opens, and the session is marked modified when it is first
    used, so the response re-seals it under the current key. The cookie's
    name is authenticated: a token does not open under another name.

    Needs the ``cryptography`` package (``pip install
    'wsgi-sessions[encryption]'``): without it, constructing the interface is
    a :class:`ValueError` that says so, at start-up.
    """

    #: The HKDF purpose label: keys for anything else differ from these.
    purpose = b"wsgi_sessions encrypted cookie session v1"
    #: Payloads at least this long are zlib-compressed before sealing when
    #: that makes them shorter; None (the default) never compresses. The
    #: length of a compressed payload tells how well its contents compress:
    #: a client that can put text of its choice into the session (a search
    #: term, a form field kept for later) next to a value it may not read
    #: could guess that value a character at a time from the cookie's length
    #: (the CRIME and BREACH attacks on TLS). Set it (e.g. to 80, as the
    #: signed cookie does) only for sessions that hold no such mix.
    compress_min_size: int | None = None

    def __init__(self) -> None:
        require_cryptography()

    def get_sealer(self, app: SessionApp) -> CookieSealer | None:
        """The (cached) sealer for the app's keys, or None without a secret key.

        Sealing uses the current key; opening uses the key the token names,
        the current key or one of ``SECRET_KEY_FALLBACKS``.
        """
        secret_key = app.secret_key
        if not secret_key:
            return None
        fallbacks = app.config.get("SECRET_KEY_FALLBACKS")
        keys = (secret_key, *fallbacks) if fallbacks else (secret_key,)
        return make_sealer(keys, self.purpose, self.max_payload_size, self.compress_min_size)

    def open_session(self, app: SessionApp, request: Request) -> SecureCookieSession | None:
        """The request's session, opened on first use as for signed cookies."""
        if not app.secret_key:
            return None
        value = self.get_session_cookie(app, request)
        if not value:
            return self.session_class()
        if not issubclass(self.session_class, SecureCookieSession):
            session = super().open_session(app, request)  # decoded at once
            if session is not None and not session.new:
                self._reseal_if_old(app, session, value)
            return session
        loader = _SealedCookieLoader(self, app, value)
        session = self.session_class.lazy(loader)
        loader.session = weakref.ref(session)  # no cycle: an unused session is freed at once
        return session

    def _reseal_if_old(self, app: SessionApp, session: SessionMixin, value: str) -> None:
        """Mark a session opened under a fallback key modified, so that this
        response seals it under the current key."""
        sealer = self.get_sealer(app)
        if sealer is not None and not sealer.is_current(value):
            session.modified = True

    def _decode(self, app: SessionApp, value: str) -> tuple[dict[str, t.Any], t.Any] | None:
        """A cookie's data and metadata, or None when it does not open."""
        sealer = self.get_sealer(app)
        if sealer is None:  # the secret key was removed mid-flight
            return None
        max_age = int(app.permanent_session_lifetime.total_seconds())
        payload = sealer.open(value, self.get_cookie_name(app), max_age)
        if payload is None:
            # Altered, truncated, renamed, expired or garbage: a fresh session.
            # The value is never logged; it may be someone's valid session.
            logger.debug("encrypted session cookie rejected")
            return None
        try:
            data = self.serializer.loads(payload.decode("utf-8"))
        except Exception:  # authentic, so ours: a serializer changed since it was written
            logger.exception("session cookie could not be decoded")
            return None
        return split_meta(data)

    def _encode(self, app: SessionApp, data: dict[str, t.Any]) -> str | None:
        sealer = self.get_sealer(app)
        if sealer is None:
            return None
        payload = self.serializer.dumps(data).encode("utf-8")
        return sealer.seal(payload, self.get_cookie_name(app))

    def _may_refresh_unread(self, app: SessionApp, session: SessionMixin) -> bool:
        """Whether an unused session is permanent (its cookie then re-sent) is
        sealed inside: with ``SESSION_REFRESH_EACH_REQUEST`` on, only opening
        the cookie tells (a signed cookie's payload can be peeked at)."""
        if type(self).should_set_cookie is not SecureCookieSessionInterface.should_set_cookie:
            return True
        return bool(app.config["SESSION_REFRESH_EACH_REQUEST"])


class _SealedCookieLoader(_CookieLoader):
    """Opens the cookie on first use, and marks the session for re-sealing
    when a fallback key opened it."""

    __slots__ = ("session",)

    session: weakref.ref[SecureCookieSession]

    def __call__(self) -> tuple[dict[str, t.Any], t.Any] | None:
        found = super().__call__()
        if found is not None:
            session = self.session()
            if session is not None:
                interface = t.cast(EncryptedCookieSessionInterface, self.interface)
                interface._reseal_if_old(self.app, session, self.value)
        return found
