"""The WSGI plumbing: open the session on the way in, save it on the way out.

The session is opened before the wrapped app runs and placed in the environ.
It is saved when the app calls ``start_response``, the last moment before any
header leaves, and only once: a second ``start_response`` (an error page, with
``exc_info``) gets the same session headers again. A framework adapter may save
it earlier, in the framework's response phase, so that what saving raises goes
to the framework's error handling; ``start_response`` then adds what that save
recorded (see ``_early_save``). A session store that fails
(while opening, while the app runs, or while saving) becomes a 503 if no
header has left yet. Apart from the session's headers, what the app passes
(status, headers, body iterable, ``close()``, ``exc_info``, the ``write``
callable) goes on untouched. The interface is given the light request and
response of ``_wsgi`` and, as Flask's ``app``, the middleware's
:class:`~wsgi_sessions.SessionConfig`.
"""

from __future__ import annotations

import logging
import typing as t
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta

from ._early_save import NOTHING_SAVED, SAVED, RequestSave, request_save_key
from ._signing import may_be_permanent
from ._wsgi import HeaderResponse, LazyRequest, warn_if_secure_cookie_over_http
from .encrypted import EncryptedCookieSessionInterface
from .errors import SessionStoreError
from .interface import (
    SecureCookieSessionInterface,
    SessionInterface,
    _CookieLoader,
    session_cookie_value,
)
from .sessions import SecureCookieSession, SessionMixin
from .settings import DEFAULT_ENVIRON_KEY, SessionConfig

if t.TYPE_CHECKING:  # pragma: no cover
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["SessionMiddleware", "default_interface", "get_session"]

logger = logging.getLogger("wsgi_sessions")

_UNAVAILABLE_BODY = (
    b"503 Service Unavailable: the session store could not be reached. Try again shortly.\n"
)
_UNAVAILABLE_HEADERS = (
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Content-Length", str(len(_UNAVAILABLE_BODY))),
    ("Cache-Control", "no-store"),
    ("Retry-After", "5"),
)
_new_session = SecureCookieSession.__new__
#: Exactly these classes (not subclasses, whose hooks may differ) take the short way.
_STOCK_COOKIE_INTERFACES = (SecureCookieSessionInterface, EncryptedCookieSessionInterface)


def get_session(environ: WSGIEnvironment, key: str = DEFAULT_ENVIRON_KEY) -> SessionMixin:
    """The session of the request that ``environ`` belongs to."""
    try:
        return environ[key]  # type: ignore[no-any-return]
    except KeyError:
        raise RuntimeError(
            f"no session in the WSGI environ at {key!r}: wrap the application in "
            "SessionMiddleware(app, settings), or pass the environ_key it was given"
        ) from None


class SessionMiddleware:
    """Give any WSGI application a session.

    ``settings`` is a plain dict (see the README's table; strings from an ini
    file are fine), validated here, at start-up, into a :class:`SessionConfig`
    (``session_config``). ``interface`` replaces the session backend; by
    default it is the signed cookie, or a server-side interface when a
    ``store`` is configured. ``prefix`` reads only keys with that prefix
    (``"session."`` for a shared ini section). A ready :class:`SessionConfig`
    may stand for ``settings`` (the PasteDeploy filter builds one).

    ``config``, ``secret_key`` and ``permanent_session_lifetime`` are the
    session configuration's, here for convenience; changing ``config`` later
    takes effect on the next request.
    """

    def __init__(
        self,
        app: WSGIApplication,
        settings: Mapping[str, t.Any] | SessionConfig | None = None,
        *,
        interface: SessionInterface | None = None,
        prefix: str = "",
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be a WSGI callable, got {type(app).__name__}")
        self.app = app
        if isinstance(settings, SessionConfig):  # validated already (an adapter's)
            if prefix:
                raise TypeError("prefix applies to a settings dict, not to a SessionConfig")
            self.session_config = settings
        else:
            self.session_config = SessionConfig(settings, prefix=prefix)
        if interface is None:
            interface = default_interface(self.session_config)
        elif not isinstance(interface, SessionInterface):
            raise TypeError(f"interface must be a SessionInterface, got {type(interface).__name__}")
        self.session_interface = interface
        self.environ_key: str = self.session_config.environ_key
        self._request_save_key = request_save_key(self.environ_key)

    @property
    def session_interface(self) -> SessionInterface:
        """The session backend; may be replaced (takes effect on the next request)."""
        return self._session_interface

    @session_interface.setter
    def session_interface(self, interface: SessionInterface) -> None:
        self._session_interface = interface
        # A stock cookie interface, nothing overridden: then a request without
        # our cookie gets its fresh session here, and an untouched one is not
        # offered to save_session (bench/cookie.py S0: 2.6 -> 0.9 µs over the bare app).
        self._stock_cookie: SecureCookieSessionInterface | None = None
        if (
            isinstance(interface, SecureCookieSessionInterface)
            and type(interface) in _STOCK_COOKIE_INTERFACES
            and not vars(interface)
            and interface.session_class is SecureCookieSession
        ):
            self._stock_cookie = interface
        # A sealed cookie cannot be peeked at: a request with one takes the general way.
        self._sealed = type(interface) is EncryptedCookieSessionInterface

    @property
    def config(self) -> dict[str, t.Any]:
        return self.session_config.config

    @config.setter
    def config(self, config: dict[str, t.Any]) -> None:
        self.session_config.config = config

    @property
    def secret_key(self) -> str | bytes | None:
        return self.session_config.secret_key

    @property
    def permanent_session_lifetime(self) -> timedelta:
        return self.session_config.permanent_session_lifetime

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        interface = self._stock_cookie
        if interface is None:
            return self._call_general(environ, start_response)
        # The stock cookie interface: what _call_general does, in fewer steps
        # (each one here is paid by every request). The session is the one
        # open_session would return, made here; one the app never touched is
        # not offered to save_session (which would add nothing): fresh and
        # untouched, or from a cookie left unread that needs no refresh.
        # Saving a cookie touches no store: no save is a 503.
        config = self.session_config.config
        if not config["SECRET_KEY"]:
            environ[self.environ_key] = interface.make_null_session(self.session_config)
            return self.app(environ, start_response)
        # open_session's steps, without its calls; most requests stop at the `in`.
        raw = environ.get("HTTP_COOKIE")
        name = config["SESSION_COOKIE_NAME"]
        value = (
            session_cookie_value(raw, name, config.get("MAX_COOKIE_SIZE", 4093))
            if raw and name in raw
            else None
        )
        if value and self._sealed:
            return self._call_general(environ, start_response)
        # SecureCookieSession() without its __init__, which does nothing
        # without data: 0.06 µs of S0's 0.9.
        session: t.Any = _new_session(SecureCookieSession)  # session_class is checked at start-up
        if value:  # SecureCookieSession.lazy's work, as above
            session._make_lazy(_CookieLoader(interface, self.session_config, value))
        fresh = not value
        environ[self.environ_key] = session
        # Offered to a framework adapter, to save in the framework's response
        # phase: the middleware itself, which save_early turns into a request
        # save when it is used (a list on every request: S0 +0.1 µs).
        environ[self._request_save_key] = self
        saved: HeaderResponse | None = None

        def start_cookie_response(
            status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
        ) -> t.Callable[[bytes], object]:
            nonlocal saved
            if saved is None:
                if (
                    fresh
                    and not session._accessed
                    and not session._modified
                    and not dict.__len__(session)
                ) or (
                    # A cookie the app never used (its session is still unread):
                    # what save_session decides first, without its call
                    # (bench/cookie_parts.py U: 6.4 -> 2.4 µs over the bare app).
                    value is not None
                    and session._loader is not None
                    and not (
                        config["SESSION_REFRESH_EACH_REQUEST"]
                        # A plain payload's text search here; a compressed one's by the interface.
                        and may_be_permanent(value)
                        and interface._may_refresh_unread(self.session_config, session)
                    )
                ):
                    # Untouched: a second call replays nothing, as an early save
                    # (the flags only rise, a loaded session stays loaded) added nothing.
                    saved = NOTHING_SAVED
                else:
                    early = environ.get(self._request_save_key)
                    saved = early[SAVED] if type(early) is list else None
                    if saved is not None:  # an adapter saved it: add what that save added
                        saved.replay(headers)
                    else:
                        saved = HeaderResponse(headers)
                        interface.save_session(self.session_config, session, saved)
                        if saved.sets_cookie:
                            warn_if_secure_cookie_over_http(environ, config)
            else:  # as in _call_general: an error page gets the same headers, no second save
                saved.replay(headers)
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, start_cookie_response)
        except SessionStoreError:  # the app's own store: a 503 while no header has left
            if saved is not None:
                raise
            logger.exception("session store failed while the application ran")
            return _unavailable(start_response)

    def _call_general(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Any interface: open the session, run the app, save on ``start_response``."""
        interface = self.session_interface
        session_config = self.session_config  # what the interface takes as Flask's app
        try:
            session = interface.open_session(session_config, LazyRequest(environ))
        except SessionStoreError:
            logger.exception("session store failed while opening the session")
            return _unavailable(start_response)
        if session is None:
            session = interface.make_null_session(session_config)
        environ[self.environ_key] = session
        if interface.is_null_session(session):
            return self.app(environ, start_response)
        # Offered to a framework adapter, to save in the framework's response phase.
        request_save: RequestSave = [self, session, None]
        environ[self._request_save_key] = request_save

        # Per-request state lives in this frame (and request_save), never on self.
        started = False
        store_failed = False

        def start_session_response(
            status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
        ) -> t.Callable[[bytes], object]:
            nonlocal started, store_failed
            started = True
            saved: HeaderResponse | None = request_save[SAVED]
            if saved is None:
                request_save[SAVED] = saved = HeaderResponse(headers)
                try:
                    interface.save_session(session_config, session, saved)
                except SessionStoreError:
                    logger.exception("session store failed while saving the session")
                    store_failed = True
                if saved.sets_cookie:
                    warn_if_secure_cookie_over_http(environ, session_config.config)
            else:
                # Saved already: early, by a framework adapter, or by a first
                # call here. A second call (exc_info: an error page replaces the
                # response) must not save again: a second save of a regenerated
                # or ended session would undo the first. It carries the same headers.
                saved.replay(headers)
            if store_failed:
                start_response("503 Service Unavailable", list(_UNAVAILABLE_HEADERS), exc_info)
                return _discard
            return start_response(status, headers, exc_info)

        try:
            body = self.app(environ, start_session_response)
        except SessionStoreError:
            if started:
                raise
            logger.exception("session store failed while the application ran")
            return _unavailable(start_response)
        if store_failed:
            _close(body)
            return [_UNAVAILABLE_BODY]
        if started:
            return body
        # The app calls start_response lazily, from its body iterator (a
        # generator app): watch the first chunk for a failed save.
        return _WatchedBody(body, lambda: store_failed)


class _WatchedBody:
    """The body of an app that starts its response lazily: if saving the session
    failed, the app's chunks are dropped for the 503 body."""

    def __init__(self, body: Iterable[bytes], failed: t.Callable[[], bool]) -> None:
        self._body = body
        self._failed = failed

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            if self._failed():
                yield _UNAVAILABLE_BODY
                return
            yield chunk
        if self._failed():  # started, then ended without a chunk
            yield _UNAVAILABLE_BODY

    def close(self) -> None:
        _close(self._body)


def _discard(data: bytes) -> None:
    """The ``write`` callable handed out once the response became a 503."""


def _close(body: Iterable[bytes]) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()


def _unavailable(start_response: StartResponse) -> list[bytes]:
    start_response("503 Service Unavailable", list(_UNAVAILABLE_HEADERS))
    return [_UNAVAILABLE_BODY]


def default_interface(session_config: SessionConfig) -> SessionInterface:
    """The interface that ``session_config`` asks for: the signed cookie, the
    encrypted cookie (``cookie_encryption``), or the server-side interface
    over its ``store``.

    Here rather than in ``settings`` (which sits below the interfaces and
    imports none of them); the Pyramid adapter uses it too.
    """
    config = session_config.config
    store = config["SESSION_STORE"]
    if config.get("SESSION_COOKIE_ENCRYPTION"):
        name = session_config.setting_name("cookie_encryption")
        if store is not None:
            raise ValueError(
                f"setting {name!r} applies to cookie sessions; with a "
                f"{session_config.setting_name('store')!r} the cookie holds only a signed "
                "session id, and the data stays on the server: leave one of them out"
            )
        try:
            return EncryptedCookieSessionInterface()
        except ValueError as exc:  # cryptography is missing: name the setting too
            raise ValueError(f"setting {name!r} is on, but {exc}") from exc
    if store is None:
        return SecureCookieSessionInterface()
    from .server import ServerSideSessionInterface  # only when a store is configured

    return ServerSideSessionInterface(store)
