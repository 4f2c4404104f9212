"""The WSGI plumbing: open the session on the way in, save it on the way out.

Nothing else happens here. The session is opened before the wrapped app runs,
placed in the environ, and saved when the app calls ``start_response`` — the
last moment before any header leaves. Everything the app passes through
(status, headers, body iterable, ``close()``, ``exc_info``, the ``write``
callable) is passed on untouched.
"""

from __future__ import annotations

import logging
import typing as t
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta

from werkzeug.http import dump_cookie
from werkzeug.wrappers import Request

from .errors import SessionStoreError
from .interface import SecureCookieSessionInterface, SessionInterface
from .sessions import SessionMixin
from .settings import DEFAULT_ENVIRON_KEY, SessionConfig

if t.TYPE_CHECKING:  # pragma: no cover
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["HeaderResponse", "LazyRequest", "SessionMiddleware", "default_interface", "get_session"]

logger = logging.getLogger("wsgi_sessions")

_UNAVAILABLE_BODY = (
    b"503 Service Unavailable: the session store could not be reached. Try again shortly.\n"
)
_UNAVAILABLE_HEADERS = [
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Content-Length", str(len(_UNAVAILABLE_BODY))),
    ("Cache-Control", "no-store"),
    ("Retry-After", "5"),
]


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
    (``"session."`` for a shared ini section).

    ``config``, ``secret_key`` and ``permanent_session_lifetime`` are the
    session configuration's, here for convenience; changing ``config`` later
    takes effect on the next request.
    """

    def __init__(
        self,
        app: WSGIApplication,
        settings: Mapping[str, t.Any] | None = None,
        *,
        interface: SessionInterface | None = None,
        prefix: str = "",
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be a WSGI callable, got {type(app).__name__}")
        self.app = app
        self.session_config = SessionConfig(settings, prefix=prefix)
        if interface is None:
            interface = default_interface(self.session_config)
        elif not isinstance(interface, SessionInterface):
            raise TypeError(f"interface must be a SessionInterface, got {type(interface).__name__}")
        self.session_interface = interface
        self.environ_key: str = self.session_config.environ_key

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

        # Per-request state lives in this frame, never on self.
        started = False
        store_failed = False
        saved: _SavedResponse | None = None

        def start_session_response(
            status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
        ) -> t.Callable[[bytes], object]:
            nonlocal started, store_failed, saved
            started = True
            if saved is None:
                saved = _SavedResponse(headers)
                try:
                    interface.save_session(session_config, session, saved)
                except SessionStoreError:
                    logger.exception("session store failed while saving the session")
                    store_failed = True
            else:
                # A second call (exc_info: an error page replaces the response)
                # must not save again: a second save of a regenerated or ended
                # session would undo the first. It carries the same headers.
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


class LazyRequest(Request):
    """A werkzeug :class:`~werkzeug.wrappers.Request` that parses nothing until asked.

    Building a full Request parses the method, URL parts and headers up front,
    which costs more than the whole middleware on a request that never touches
    its session. This one keeps only the environ; the first attribute that a
    full Request would have set in its constructor runs that constructor.
    """

    def __init__(self, environ: WSGIEnvironment) -> None:
        self.environ = environ
        self.shallow = False

    def __getattr__(self, name: str) -> t.Any:
        if name.startswith("__") or "_lazy_init" in self.__dict__:
            raise AttributeError(name)
        self.__dict__["_lazy_init"] = True
        Request.__init__(self, self.environ, populate_request=False)
        return getattr(self, name)


class _Vary:
    """``response.vary`` for a raw header list: one ``Vary`` header, merged."""

    __slots__ = ("_headers",)

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self._headers = headers

    def add(self, value: str) -> None:
        headers = self._headers
        lowered = value.lower()
        first = -1
        # An app may send several Vary headers: the value may sit in any of them.
        for index, (name, current) in enumerate(headers):
            if name.lower() == "vary":
                values = [item.strip().lower() for item in current.split(",")]
                if lowered in values or "*" in values:
                    return
                if first < 0:
                    first = index
        if first < 0:
            headers.append(("Vary", value))
            return
        name, current = headers[first]
        headers[first] = (name, f"{current}, {value}" if current.strip() else value)


class _HeaderList:
    """``response.headers`` for a raw header list: what interfaces call on it."""

    __slots__ = ("_headers",)

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self._headers = headers

    def add(self, name: str, value: str) -> None:
        self._headers.append((name, value))

    def get(self, name: str, default: str | None = None) -> str | None:
        lowered = name.lower()
        for key, value in self._headers:
            if key.lower() == lowered:
                return value
        return default

    def getlist(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self._headers if key.lower() == lowered]


class HeaderResponse:
    """The part of a werkzeug Response that ``save_session`` uses, over the
    WSGI header list the app passed to ``start_response``.

    A full Response would copy and re-parse the headers on every request;
    this writes straight into the list that is passed on.
    """

    __slots__ = ("_headers",)

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self._headers = headers

    @property
    def headers(self) -> _HeaderList:
        return _HeaderList(self._headers)

    @property
    def vary(self) -> _Vary:
        return _Vary(self._headers)

    def set_cookie(self, key: str, value: str = "", **attributes: t.Any) -> None:
        self.headers.add("Set-Cookie", dump_cookie(key, value, **attributes))

    def delete_cookie(self, key: str, **attributes: t.Any) -> None:
        attributes.pop("max_age", None)
        attributes.pop("expires", None)
        self.set_cookie(key, "", max_age=0, expires=0, **attributes)


class _SavedResponse(HeaderResponse):
    """The response of the request's one save: it writes into the header list
    of the first ``start_response`` and notes what it added, so that a later
    ``start_response`` (an error page) can be given the same headers."""

    __slots__ = ("_added",)

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        super().__init__(headers)
        # (name, value); a name of None is a value merged into Vary.
        self._added: list[tuple[str | None, str]] = []

    @property
    def headers(self) -> _HeaderList:
        return _NotedHeaderList(self._headers, self._added)

    @property
    def vary(self) -> _Vary:
        return _NotedVary(self._headers, self._added)

    def replay(self, headers: list[tuple[str, str]]) -> None:
        for name, value in self._added:
            if name is None:
                _Vary(headers).add(value)
            else:
                headers.append((name, value))


class _NotedHeaderList(_HeaderList):
    __slots__ = ("_added",)

    def __init__(self, headers: list[tuple[str, str]], added: list[tuple[str | None, str]]) -> None:
        super().__init__(headers)
        self._added = added

    def add(self, name: str, value: str) -> None:
        super().add(name, value)
        self._added.append((name, value))


class _NotedVary(_Vary):
    __slots__ = ("_added",)

    def __init__(self, headers: list[tuple[str, str]], added: list[tuple[str | None, str]]) -> None:
        super().__init__(headers)
        self._added = added

    def add(self, value: str) -> None:
        super().add(value)
        self._added.append((None, value))


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
    """The interface that ``session_config`` asks for: the signed cookie, or the
    server-side interface over its ``store``.

    Here rather than in ``settings`` (which sits below the interfaces and
    imports none of them); the Pyramid adapter uses it too.
    """
    store = session_config.config["SESSION_STORE"]
    if store is None:
        return SecureCookieSessionInterface()
    from .server import ServerSideSessionInterface  # only when a store is configured

    return ServerSideSessionInterface(store)
