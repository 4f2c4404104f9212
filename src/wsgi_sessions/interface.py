"""Session interfaces: how a session is opened from a request and saved to a response.

The names, hooks and meaning follow Flask's ``flask.sessions`` so that an
interface of ours is also a drop-in ``app.session_interface`` for a Flask app.
``app`` is anything with ``config`` (Flask's key names), ``secret_key`` and
``permanent_session_lifetime``: a :class:`flask.Flask` or our configuration
object (what :class:`~wsgi_sessions.SessionMiddleware` passes). Configuration
is read on every call (Flask's own tests change it between requests); what is
derived from it (signers, cookie attribute strings) is cached, keyed by the
values it is derived from.
"""

from __future__ import annotations

import logging
import time
import typing as t
from datetime import datetime, timedelta, timezone
from email.utils import formatdate
from functools import lru_cache
from urllib.parse import quote

from itsdangerous import BadData, URLSafeTimedSerializer

from ._cache_control import private_cache_control
from ._signing import (
    MAX_PAYLOAD_SIZE,
    DerivedKeySerializer,
    lazy_sha1,
    make_signing_serializer,
    may_be_permanent,
)
from ._timeouts import Timeouts, timeouts_for
from .errors import SessionCookieTooLarge
from .serialization import session_json_serializer
from .sessions import NullSession, SecureCookieSession, SessionMixin

if t.TYPE_CHECKING:  # pragma: no cover
    from werkzeug.wrappers import Request

__all__ = ["SecureCookieSessionInterface", "SessionApp", "SessionInterface", "SessionResponse"]

logger = logging.getLogger("wsgi_sessions")

#: Where a cookie's metadata (SecureCookieSession.meta()) travels inside its
#: payload: a key of its own, which Flask keeps as it is (and shows).
META_KEY = "_wsgi_sessions"

_DELETED_EXPIRES = "; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0"


class SessionApp(t.Protocol):
    """What an interface needs of the application: Flask's three members."""

    @property
    def config(self) -> t.Mapping[str, t.Any]: ...

    @property
    def secret_key(self) -> str | bytes | None: ...

    @property
    def permanent_session_lifetime(self) -> timedelta: ...


class SessionResponse(t.Protocol):
    """What an interface needs of the response: a werkzeug Response has it all."""

    @property
    def headers(self) -> t.Any: ...

    @property
    def vary(self) -> t.Any: ...


class SessionInterface:
    """The contract between the middleware (or Flask) and a session backend.

    Implement :meth:`open_session` and :meth:`save_session`; the other methods
    are hooks with sensible defaults, each overridable on its own (a cookie name
    per URL, say). Requests of one session may run concurrently and are opened
    and saved in whatever order they start and finish.
    """

    #: What :meth:`make_null_session` returns when sessions cannot work.
    null_session_class: type[SessionMixin] = NullSession

    #: Always False: no interface of ours pickles. (Flask reads the attribute.)
    pickle_based = False

    #: The time (epoch seconds) that ``idle_timeout`` and ``absolute_timeout``
    #: are measured by; a test sets one it can move instead of sleeping.
    clock: t.Callable[[], float] = staticmethod(time.time)

    def make_null_session(self, app: SessionApp) -> SessionMixin:
        """The stand-in session used when :meth:`open_session` returns ``None``:
        readable, and failing with a helpful message on write (naming the
        setting as ``app`` spells it, when it is a :class:`SessionConfig`)."""
        session = self.null_session_class()
        setting_name = getattr(app, "setting_name", None)
        if setting_name is not None and isinstance(session, NullSession):
            session.secret_key_setting = setting_name("secret_key")
        return session

    def is_null_session(self, obj: object) -> bool:
        """Null sessions are never saved."""
        return isinstance(obj, self.null_session_class)

    def get_cookie_name(self, app: SessionApp) -> str:
        return app.config["SESSION_COOKIE_NAME"]  # type: ignore[no-any-return]

    def get_cookie_domain(self, app: SessionApp) -> str | None:
        """The cookie's ``Domain``; None (the default) keeps it to the exact host."""
        return app.config["SESSION_COOKIE_DOMAIN"]  # type: ignore[no-any-return]

    def get_cookie_path(self, app: SessionApp) -> str:
        """``SESSION_COOKIE_PATH``, else ``APPLICATION_ROOT``: a session is scoped to its app."""
        return app.config["SESSION_COOKIE_PATH"] or app.config["APPLICATION_ROOT"]  # type: ignore[no-any-return]

    def get_cookie_httponly(self, app: SessionApp) -> bool:
        return app.config["SESSION_COOKIE_HTTPONLY"]  # type: ignore[no-any-return]

    def get_cookie_secure(self, app: SessionApp) -> bool:
        return app.config["SESSION_COOKIE_SECURE"]  # type: ignore[no-any-return]

    def get_cookie_samesite(self, app: SessionApp) -> str | None:
        return app.config["SESSION_COOKIE_SAMESITE"]  # type: ignore[no-any-return]

    def get_cookie_partitioned(self, app: SessionApp) -> bool:
        # .get: Flask before 3.1 has no such key
        return app.config.get("SESSION_COOKIE_PARTITIONED", False)  # type: ignore[no-any-return]

    def get_expiration_time(self, app: SessionApp, session: SessionMixin) -> datetime | None:
        """When the cookie expires: now + the permanent lifetime for a permanent
        session, None (end of the browser session) otherwise."""
        if session.permanent:
            return datetime.now(timezone.utc) + app.permanent_session_lifetime
        return None

    def should_set_cookie(self, app: SessionApp, session: SessionMixin) -> bool:
        """Send the cookie when the session changed, or to push the expiry of a
        permanent session forward when ``SESSION_REFRESH_EACH_REQUEST`` is on."""
        # The setting first: then `permanent` (a read of a lazy session) is
        # only asked when it matters.
        return session.modified or (
            bool(app.config["SESSION_REFRESH_EACH_REQUEST"]) and session.permanent
        )

    def open_session(self, app: SessionApp, request: Request) -> SessionMixin | None:
        """Return the request's session, or None when sessions cannot work."""
        raise NotImplementedError

    def save_session(
        self, app: SessionApp, session: SessionMixin, response: SessionResponse
    ) -> None:
        """Write what the session needs to the response (and to a store)."""
        raise NotImplementedError

    # -- the session cookie, shared by every interface of ours ---------------

    def get_session_cookie(self, app: SessionApp, request: Request) -> str | None:
        """The session cookie's value from the request, or None.

        Reads the raw ``Cookie`` header instead of ``request.cookies``: most
        requests carry no session cookie, and the full parse would cost more
        than everything else the middleware does. The first cookie of the name
        wins, as with werkzeug (browsers send the most specific path first).
        A value over ``MAX_COOKIE_SIZE``, or one that is not ASCII, is ignored
        unread: we never issue one (and itsdangerous would silently drop
        non-ASCII characters from a signature, accepting an altered cookie).
        """
        return session_cookie_value(
            request.environ.get("HTTP_COOKIE"),
            self.get_cookie_name(app),
            app.config.get("MAX_COOKIE_SIZE", 4093),
        )

    def set_session_cookie(
        self, app: SessionApp, response: SessionResponse, value: str, expires: datetime | None
    ) -> None:
        """Add the ``Set-Cookie`` header for ``value``.

        Raises :class:`SessionCookieTooLarge` instead of sending a cookie the
        browser would drop; nothing is sent then, so the old cookie stays valid.
        """
        name = self.get_cookie_name(app)
        header = f"{name}={value}"
        if expires is not None:
            if expires.tzinfo is None:  # naive means UTC, as in werkzeug
                expires = expires.replace(tzinfo=timezone.utc)
            header += "; Expires=" + _http_date(int(expires.timestamp()))
        header += self._cookie_attributes(app)
        limit = app.config.get("MAX_COOKIE_SIZE", 4093)
        if limit and len(header) > limit:
            raise SessionCookieTooLarge(len(header), limit)
        response.headers.add("Set-Cookie", header)
        self.make_response_private(app, response)

    def delete_session_cookie(self, app: SessionApp, response: SessionResponse) -> None:
        """Expire the cookie with the same name and attributes it was set with
        (a browser only deletes a cookie whose Domain and Path match)."""
        name = self.get_cookie_name(app)
        response.headers.add(
            "Set-Cookie", f"{name}={_DELETED_EXPIRES}{self._cookie_attributes(app)}"
        )
        self.make_response_private(app, response)

    def make_response_private(self, app: SessionApp, response: SessionResponse) -> None:
        """Keep a response that sets or deletes the session cookie out of shared
        caches: ``Cache-Control`` gets ``private`` (merged into the app's, see
        :func:`~wsgi_sessions._cache_control.private_cache_control`) unless
        ``SESSION_COOKIE_CACHE_CONTROL`` is off.

        A CDN or proxy that stored such a response would hand the cookie, so
        the session, to whoever asks for the same URL next.
        """
        if not app.config.get("SESSION_COOKIE_CACHE_CONTROL", True):  # .get: Flask's config
            return
        make_private = getattr(response, "make_private", None)
        if make_private is not None:  # the middleware's header list
            make_private()
            return
        headers = response.headers  # a werkzeug Response (Flask's)
        values = headers.getlist("Cache-Control")
        merged = private_cache_control(values)
        if values != [merged]:
            headers.set("Cache-Control", merged)

    def _cookie_attributes(self, app: SessionApp) -> str:
        return _cookie_attributes(
            self.get_cookie_domain(app),
            self.get_cookie_path(app),
            self.get_cookie_secure(app),
            self.get_cookie_httponly(app),
            self.get_cookie_samesite(app),
            self.get_cookie_partitioned(app),
        )


def session_cookie_value(raw: str | None, name: str, limit: int | None) -> str | None:
    """The value of the cookie ``name`` in the ``Cookie`` header ``raw``, as
    :meth:`SessionInterface.get_session_cookie` takes it (``limit``: the most
    characters accepted; None or 0 for no limit), or None."""
    if not raw or name not in raw:  # most requests: a third of the call below
        return None
    found = find_cookie(raw, name)
    if found is None:
        return None
    value = found.strip()
    if len(value) > 1 and value[0] == value[-1] == '"':
        # RFC 6265 allows a quoted value (some clients quote); ours
        # has nothing that needs escaping, so the quotes just go.
        value = value[1:-1]
    if limit and len(value) > limit:
        logger.debug("session cookie ignored: %d bytes, over the limit", len(value))
        return None
    if not value.isascii():
        logger.debug("session cookie ignored: not ASCII")
        return None
    return value


def find_cookie(raw: str, name: str) -> str | None:
    """The unstripped value of the first cookie called ``name`` in a ``Cookie``
    header: the part after the first ``=`` of the first ``;``-separated chunk
    whose part before it strips to ``name`` (werkzeug's choice of the first).

    Exactly what splitting the header at every ``;`` and partitioning each
    chunk finds, without the copies: the usual header is a few finds in C,
    half the time of the split at a few cookies and far less with many. Only
    a chunk's first occurrence of the name can start it, so each chunk is
    looked at once, and a hostile header costs time linear in its length.
    """
    if ";" not in raw:  # one cookie: its split is the header itself (no cheaper way)
        key, sign, value = raw.partition("=")
        return value if sign and key.strip() == name else None
    size = len(name)
    if not size or name != name.strip() or ";" in name or "=" in name:
        return _find_cookie_by_split(raw, name)  # names no chunk's key can be, or only by split
    pos = raw.find(name)
    while pos >= 0:
        after = pos + size
        semi = raw.find(";", after)
        end = len(raw) if semi < 0 else semi
        # First in the header, or after "; " as browsers join them: no look back.
        starts = pos == 0 or raw[pos - 2 : pos] == "; "
        if not starts:
            start = raw.rfind(";", 0, pos) + 1
            starts = start == pos or raw[start:pos].isspace()
        if starts:
            if raw[after : after + 1] == "=":
                return raw[after + 1 : end]
            equals = raw.find("=", after, end)
            if equals > after and raw[after:equals].isspace():
                return raw[equals + 1 : end]
        if semi < 0:
            return None
        pos = raw.find(name, semi + 1)
    return None


def _find_cookie_by_split(raw: str, name: str) -> str | None:
    """:func:`find_cookie`'s definition, as code."""
    for chunk in raw.split(";"):
        key, equals, value = chunk.partition("=")
        if equals and key.strip() == name:
            return value
    return None


@lru_cache(maxsize=64)
def _cookie_attributes(
    domain: str | None,
    path: str | None,
    secure: bool,
    httponly: bool,
    samesite: str | None,
    partitioned: bool,
) -> str:
    """The ``; Attr=...`` tail of a Set-Cookie header, built once per configuration."""
    parts = []
    if domain:
        parts.append(f"; Domain={domain}")
    if path:
        parts.append(f"; Path={quote(path, safe='/:@!$&()*+,=-._~%')}")
    if secure or partitioned:
        parts.append("; Secure")
    if httponly:
        parts.append("; HttpOnly")
    if samesite:
        value = samesite.title()
        if value not in ("Strict", "Lax", "None"):
            # Flask's config is not validated at start-up: fail as Flask does.
            raise ValueError(
                f"SameSite must be 'Strict', 'Lax' or 'None' (or unset), got {samesite!r}:"
                " fix SESSION_COOKIE_SAMESITE (cookie_samesite)"
            )
        parts.append(f"; SameSite={value}")
    if partitioned:
        parts.append("; Partitioned")
    return "".join(parts)


_last_http_date: tuple[int, str] = (0, "")


def _http_date(timestamp: int) -> str:
    """An HTTP date, remembered for the current second: many responses in the
    same second share one expiry string (formatdate costs 2.9 µs here)."""
    global _last_http_date
    cached = _last_http_date
    if cached[0] == timestamp:
        return cached[1]
    text = formatdate(timestamp, usegmt=True)
    _last_http_date = (timestamp, text)
    return text


class SecureCookieSessionInterface(SessionInterface):
    """The default: the whole session in a cookie signed with itsdangerous.

    The format is Flask's, so cookies move between a Flask app and ours. The
    cookie is signed, not encrypted: the client can read what is in it.
    """

    #: Mixed into the key so a signature made for anything else is never valid here.
    salt = "cookie-session"
    #: The hash behind the HMAC signature; SHA-1 as in Flask, looked up lazily.
    digest_method = staticmethod(lazy_sha1)
    #: How itsdangerous derives the signing key from the secret key.
    key_derivation = "hmac"
    #: The payload format: tagged JSON, never pickle.
    serializer = session_json_serializer
    #: The most bytes a cookie's compressed payload may expand to; past it the
    #: cookie is refused (a fresh session), so no cookie decodes megabytes.
    max_payload_size = MAX_PAYLOAD_SIZE
    session_class = SecureCookieSession

    def get_signing_serializer(self, app: SessionApp) -> URLSafeTimedSerializer | None:
        """The (cached) serializer for the app's keys, or None without a secret key.

        Verifying tries the current key first, then ``SECRET_KEY_FALLBACKS`` in
        order; signing always uses the current key, so a cookie signed with an
        old key is re-signed with the new one the next time it is written.
        """
        secret_key = app.secret_key
        if not secret_key:
            return None
        fallbacks = app.config.get("SECRET_KEY_FALLBACKS")
        keys = (*reversed(fallbacks), secret_key) if fallbacks else (secret_key,)
        return make_signing_serializer(
            keys,
            self.salt,
            self.key_derivation,
            self.digest_method,
            self.serializer,
            self.max_payload_size,
        )

    def open_session(self, app: SessionApp, request: Request) -> SecureCookieSession | None:
        """The request's session: found now, verified and decoded on first use.

        Finding the cookie is cheap; its HMAC and decoding are not, and many
        requests (static files, health checks, pages that never look at the
        session) carry a cookie they never use. A ``session_class`` that is
        not a :class:`SecureCookieSession` is decoded at once, as before.
        """
        if not app.secret_key:
            return None
        value = self.get_session_cookie(app, request)
        if not value:  # most requests: no cookie, no crypto
            return self.session_class()
        session_class = self.session_class
        if issubclass(session_class, SecureCookieSession):
            return session_class.lazy(_CookieLoader(self, app, value))
        found = self._load_cookie(app, value)
        if found is None:
            return session_class()
        session = session_class(found[0])
        session.new = False
        return session

    def _load_cookie(self, app: SessionApp, value: str) -> tuple[dict[str, t.Any], t.Any] | None:
        """A cookie's data and metadata, or None when it is not a valid session
        cookie or its session is over (``idle_timeout``, ``absolute_timeout``):
        then the request starts a fresh session, as if it had brought none.

        The times are read from the decoded metadata, whatever :meth:`_decode`
        did to get it (verify, decrypt): every cookie format gets the timeouts.
        """
        found = self._decode(app, value)
        if found is not None:
            timeouts = timeouts_for(app.config)
            if timeouts is not None and timeouts.over(found[1], int(self.clock())):
                logger.debug("session cookie refused: its session timed out")
                return None
        return found

    def _decode(self, app: SessionApp, value: str) -> tuple[dict[str, t.Any], t.Any] | None:
        """A cookie's data and metadata, or None when it is not a valid session cookie."""
        signing_serializer = self.get_signing_serializer(app)
        if signing_serializer is None:  # the secret key was removed mid-flight
            return None
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data = signing_serializer.loads(value, max_age=max_age)
        except BadData as exc:
            # Tampered, respelled, truncated, expired or garbage: a fresh
            # session. The value is never logged; it may be someone's valid session.
            logger.debug("session cookie rejected: %s", type(exc).__name__)
            return None
        except Exception:  # a bug in a custom serializer must not escape a read
            logger.exception("session cookie could not be decoded")
            return None
        return split_meta(data)

    def _encode(self, app: SessionApp, data: dict[str, t.Any]) -> str | None:
        """The cookie value of ``data`` (metadata included), or None without a
        secret key: with :meth:`_decode`, all that a cookie format changes."""
        signing_serializer = self.get_signing_serializer(app)
        if signing_serializer is None:
            return None
        return signing_serializer.dumps(data)

    def save_session(
        self, app: SessionApp, session: SessionMixin, response: SessionResponse
    ) -> None:
        # Never used: its cookie stays as it is, unread, unless it must be
        # re-sent to push a permanent session's expiry forward.
        # (A class attribute lookup: S0 pays it on every request, a property costs more.)
        if getattr(session, "_loader", None) is not None and not self._may_refresh_unread(
            app, session
        ):
            return
        # Vary is never duplicated, so once added it need not be added again.
        varies = session.accessed
        if varies:
            response.vary.add("Cookie")
        if _is_empty(session):
            if session.modified:
                self.delete_session_cookie(app, response)
                if not varies:
                    response.vary.add("Cookie")
            return
        send = self.should_set_cookie(app, session)
        if varies and (timeouts := timeouts_for(app.config)) is not None:
            send = self._record_use(session, timeouts, send) or send
        if not send:
            if not varies:
                # The hook read session.permanent: saving is not the app reading it.
                session.accessed = False
            return
        as_dict = getattr(session, "as_dict", None)
        data = as_dict() if as_dict is not None else dict(session)
        get_meta = getattr(session, "meta", None)
        meta = get_meta() if get_meta is not None else None
        if meta:
            data[META_KEY] = meta
        value = self._encode(app, data)
        if value is None:  # the secret key was removed mid-flight
            return
        self.set_session_cookie(app, response, value, self.get_expiration_time(app, session))
        if not varies:
            response.vary.add("Cookie")

    def _record_use(self, session: SessionMixin, timeouts: Timeouts, sending: bool) -> bool:
        """Record the application's use of ``session`` in its metadata, where
        the timeouts read it; whether the cookie must be sent for that alone
        (a time is missing, or the recorded use is getting old). A cookie sent
        anyway carries the new use for free."""
        meta = getattr(session, "meta", None)
        set_meta = getattr(session, "set_meta", None)
        if meta is None or set_meta is None:  # a session class that keeps no metadata
            return False
        due = timeouts.due(meta(), int(self.clock()), sending)
        for name, value in due.items():
            set_meta(name, value)
        return bool(due)

    def _may_refresh_unread(self, app: SessionApp, session: SessionMixin) -> bool:
        """Whether a session the request never used may need its cookie re-sent.

        Only a permanent one with ``SESSION_REFRESH_EACH_REQUEST`` on does (as
        in Flask), and whether it is permanent is in the payload. The payload
        is read unverified here, only to rule the refresh out: a payload
        without the text ``_permanent`` cannot hold the key (JSON writers
        spell keys plainly), and sending nothing is what a bad cookie gets
        too. Anything else (the key is there, a compressed payload, a hook
        overridden) is answered by verifying and decoding, as Flask does.
        """
        if type(self).should_set_cookie is not SessionInterface.should_set_cookie:
            return True
        if not app.config["SESSION_REFRESH_EACH_REQUEST"]:
            return False
        loader = getattr(session, "_loader", None)
        if not isinstance(loader, _CookieLoader):
            return True
        serializer = self.get_signing_serializer(app)
        if isinstance(serializer, DerivedKeySerializer):  # looks inside a compressed payload
            return serializer.may_be_permanent(loader.value)
        return may_be_permanent(loader.value)


class _CookieLoader:
    """What a lazy cookie session needs to decode itself on first use: even
    the signer is looked up then, so an unused session costs none of it."""

    __slots__ = ("app", "interface", "value")

    def __init__(
        self, interface: SecureCookieSessionInterface, app: SessionApp, value: str
    ) -> None:
        self.interface = interface
        self.app = app
        self.value = value

    def __call__(self) -> tuple[dict[str, t.Any], t.Any] | None:
        return self.interface._load_cookie(self.app, self.value)


def split_meta(data: t.Any) -> tuple[dict[str, t.Any], t.Any] | None:
    """A decoded payload as (data, metadata), or None when it is not an object:
    the last step of every cookie format's ``_decode``."""
    if type(data) is not dict:
        logger.debug("session cookie rejected: payload is not an object")
        return None
    return data, data.pop(META_KEY, None)


def _is_empty(session: SessionMixin) -> bool:
    """Emptiness without counting as the application reading the session
    (``len()`` would mark it accessed); a session class of someone else's may
    have no ``is_empty``."""
    is_empty = getattr(session, "is_empty", None)
    return is_empty() if is_empty is not None else not session
