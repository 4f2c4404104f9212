"""Pyramid: ``config.include("wsgi_sessions.integrations.pyramid")``, or
``config.set_session_factory(session_factory_from_settings(settings))``.

``request.session`` then is our session behind Pyramid's ``ISession``. When
``SessionMiddleware`` is mounted around the app, it is the session the
middleware opened; otherwise it is opened on first use from the ``session.*``
settings (the ini file's ``[app:main]``) through the same session interface
and saved by a response callback, so a Pyramid user needs no WSGI wrapping.
Pyramid's default CSRF policy works with it (``get_csrf_token`` /
``new_csrf_token``).
"""

from __future__ import annotations

import time
import typing as t
from functools import partial

from pyramid.interfaces import ISession
from zope.interface import implementer

from wsgi_sessions import (
    SecureCookieSession,
    ServerSideSession,
    SessionConfig,
    SessionInterface,
    SessionMixin,
)
from wsgi_sessions._wsgi import HeaderResponse, LazyRequest, warn_if_secure_cookie_over_http
from wsgi_sessions.middleware import default_interface

if t.TYPE_CHECKING:
    from pyramid.config import Configurator
    from pyramid.request import Request
    from pyramid.response import Response

__all__ = ["PyramidSession", "SessionFactory", "includeme", "session_factory_from_settings"]

#: Where a server-side session keeps ``created`` (hidden from the mapping here);
#: a cookie session keeps it in its metadata instead.
CREATED_KEY = "_created"


def _passed_through(name: str) -> t.Any:
    """A property that reads and writes the underlying session's ``name``."""

    def read(view: PyramidSession) -> bool:
        return getattr(view.session, name)  # type: ignore[no-any-return]

    def write(view: PyramidSession, value: bool) -> None:
        setattr(view.session, name, value)

    return property(read, write)


@implementer(ISession)
class PyramidSession(SessionMixin):
    """Our session seen through Pyramid's ``ISession``.

    A view onto the real session object (cookie or server-side), so reads and
    writes are tracked, and saved, exactly as anywhere else; ``session`` is
    that object, for what ``ISession`` does not name (``regenerate()``).
    """

    def __init__(self, session: SessionMixin) -> None:
        self.session = session

    # -- the mapping, passed through (without the key where ``created`` is kept) --
    # keys(), values(), items(), popitem() and == are Mapping's, built on these.

    def __getitem__(self, key: str) -> t.Any:
        if key == CREATED_KEY:
            raise KeyError(key)
        return self.session[key]

    def __setitem__(self, key: str, value: t.Any) -> None:
        self.session[key] = value

    def __delitem__(self, key: str) -> None:
        if key == CREATED_KEY:
            raise KeyError(key)
        del self.session[key]

    def __iter__(self) -> t.Iterator[str]:
        return (key for key in self.session if key != CREATED_KEY)

    def __len__(self) -> int:
        session = self.session
        return len(session) - (CREATED_KEY in session)

    def __contains__(self, key: object) -> bool:
        return key != CREATED_KEY and key in self.session

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.session!r}>"

    def get(self, key: str, default: t.Any = None) -> t.Any:
        if key == CREATED_KEY:
            return default
        return self.session.get(key, default)

    def pop(self, key: str, *default: t.Any) -> t.Any:
        if key == CREATED_KEY:
            return super().pop(key, *default)  # as for a missing key
        return self.session.pop(key, *default)

    def setdefault(self, key: str, default: t.Any = None) -> t.Any:
        return self.session.setdefault(key, default)

    def update(self, *args: t.Any, **kwargs: t.Any) -> None:
        self.session.update(*args, **kwargs)

    def clear(self) -> None:
        self.session.clear()

    # -- the session's state, passed through ---------------------------------

    new = _passed_through("new")
    modified = _passed_through("modified")
    accessed = _passed_through("accessed")

    # -- what ISession adds ----------------------------------------------------

    @property
    def created(self) -> float:
        """When the session was created (epoch seconds); fixed once recorded.

        A cookie session keeps it in its metadata (in the cookie, not in the
        mapping); a server-side one in the key ``_created``, which this view
        hides. An empty session is not stored anywhere yet: the time is
        recorded and goes out with its first write (a read-only page must not
        start sending cookies, nor fail without a key). A session that holds
        data but no time (a cookie written by Flask, or before this version)
        records it now and is saved with it.
        """
        session = self.session
        if _keeps_meta(session):
            cookie_session = t.cast(SecureCookieSession, session)
            value = cookie_session.get_meta("created")
            if _is_time(value):
                return float(value)
            now = time.time()
            cookie_session.set_meta("created", now)
            if not cookie_session.is_empty():
                cookie_session.modified = True
            return now
        value = session.get(CREATED_KEY)
        if _is_time(value):
            return float(value)
        now = time.time()
        if len(session):
            session[CREATED_KEY] = now
        return now

    def invalidate(self) -> None:
        """Drop the session: a server-side one loses its id; a cookie one is
        emptied, which deletes the cookie when the response is saved."""
        invalidate = getattr(self.session, "invalidate", None)
        if callable(invalidate):
            invalidate()
        else:
            self.session.clear()

    def changed(self) -> None:
        """Mark the session changed, after changing a value in place."""
        self.session.modified = True

    def get_csrf_token(self) -> str:
        """Pyramid's name for :meth:`~wsgi_sessions.SessionMixin.csrf_token`."""
        return self.csrf_token()


def _is_time(value: object) -> t.TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _keeps_meta(session: SessionMixin) -> bool:
    """Whether the session saves its metadata: cookie sessions do; a server-side
    session (a subclass) does not, yet."""
    return isinstance(session, SecureCookieSession) and not isinstance(session, ServerSideSession)


class SessionFactory:
    """Pyramid's session factory: ``factory(request)`` returns the session.

    ``session_config`` is what the interface gets as Flask's ``app``;
    ``interface`` defaults to the one the settings name (signed cookie, or
    server-side with a ``store``).
    """

    def __init__(
        self, session_config: SessionConfig, interface: SessionInterface | None = None
    ) -> None:
        self.session_config = session_config
        self.session_interface = (
            default_interface(session_config) if interface is None else interface
        )
        self._warned = False  # no secret key: said once, when this factory opens a session

    def __call__(self, request: Request) -> PyramidSession:
        environ = request.environ
        environ_key = self.session_config.environ_key
        session: SessionMixin | None = environ.get(environ_key)
        if session is None:  # no SessionMiddleware around the app: open it here
            interface, session_config = self.session_interface, self.session_config
            session = interface.open_session(session_config, LazyRequest(environ))
            if session is None:  # no secret key: reads work, writes explain
                if not self._warned:
                    self._warned = True
                    session_config.warn_if_no_secret()
                session = interface.make_null_session(session_config)
            else:
                environ[environ_key] = session
                request.add_response_callback(partial(_save, interface, session_config, session))
        return PyramidSession(session)


def _save(
    interface: SessionInterface,
    session_config: SessionConfig,
    session: SessionMixin,
    request: Request,
    response: Response,
) -> None:
    # WebOb's headerlist is the response's real header list: written in place.
    saved = HeaderResponse(response.headerlist)
    interface.save_session(session_config, session, saved)
    if saved.sets_cookie:
        warn_if_secure_cookie_over_http(request.environ, session_config.config)


def session_factory_from_settings(
    settings: t.Mapping[str, t.Any], prefix: str = "session."
) -> SessionFactory:
    """The session factory the ``prefix``-ed settings describe (validated now),
    for ``config.set_session_factory()``: the style of pyramid_beaker's
    function of the same name, and what :func:`includeme` does."""
    # No warning for a missing key yet: SessionMiddleware (a PasteDeploy filter,
    # say) may open every session with its own key; the factory warns once if
    # it has to open one itself.
    return SessionFactory(SessionConfig(settings, prefix=prefix, warn_without_secret=False))


def includeme(config: Configurator) -> None:
    """Read the ``session.*`` settings (validated now) and set the session factory."""
    config.set_session_factory(session_factory_from_settings(config.get_settings()))
