"""Pyramid: ``config.include("wsgi_sessions.integrations.pyramid")``, or
``config.set_session_factory(session_factory_from_settings(settings))``.

``request.session`` then is our session behind Pyramid's ``ISession``. When
``SessionMiddleware`` is mounted around the app, it is the session the
middleware opened; otherwise it is opened on first use from the ``session.*``
settings (the ini file's ``[app:main]``) through the same session interface,
so a Pyramid user needs no WSGI wrapping. Pyramid's default CSRF policy works
with it (``get_csrf_token`` / ``new_csrf_token``).

The include also adds a tween under Pyramid's exception-view tween that saves
the session once the view has returned: what saving raises (a value JSON
cannot hold, :class:`~wsgi_sessions.SessionCookieTooLarge`) goes to the app's
exception views, and a store that is down becomes ``HTTPServiceUnavailable``.
A response callback (without the include, or after a view that raised) and
``SessionMiddleware`` save whatever the tween did not, as before.
"""

from __future__ import annotations

import time
import typing as t
from functools import partial

from pyramid.httpexceptions import HTTPServiceUnavailable
from pyramid.interfaces import ISession, ISessionFactory
from pyramid.tweens import EXCVIEW
from zope.interface import implementer

from wsgi_sessions import (
    SecureCookieSession,
    ServerSideSession,
    SessionConfig,
    SessionInterface,
    SessionMixin,
    SessionStoreError,
)
from wsgi_sessions._early_save import request_save_key, save_early
from wsgi_sessions._wsgi import LazyRequest
from wsgi_sessions.middleware import default_interface
from wsgi_sessions.settings import DEFAULT_ENVIRON_KEY

if t.TYPE_CHECKING:
    from pyramid.config import Configurator
    from pyramid.registry import Registry
    from pyramid.request import Request
    from pyramid.response import Response

__all__ = [
    "PyramidSession",
    "SessionFactory",
    "includeme",
    "session_factory_from_settings",
    "session_tween_factory",
]

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
                # Saved by the tween, or else by the callback (see _early_save).
                environ[request_save_key(environ_key)] = [self, session, None]
                request.add_response_callback(partial(_save, environ_key))
        return PyramidSession(session)


def _save(environ_key: str, request: Request, response: Response) -> None:
    """Add the session's headers (saving it first, unless the tween did)."""
    saved = save_early(request.environ, environ_key, response.headerlist)
    if saved is not None:
        # WebOb's headerlist is the response's real header list: written in place.
        saved.replay(response.headerlist)


def session_tween_factory(
    handler: t.Callable[[Request], Response], registry: Registry
) -> t.Callable[[Request], Response]:
    """A tween that saves the session when the view has returned; placed under
    Pyramid's exception-view tween (by :func:`includeme`), so that the app's
    exception views handle what saving raises.

    The session is the one at the session factory's ``environ_key`` (or the
    default key): opened by the factory, or by ``SessionMiddleware`` around the
    app. Neither is saved again later.
    """
    factory = registry.queryUtility(ISessionFactory)
    session_config = getattr(factory, "session_config", None)
    environ_key = (
        session_config.environ_key
        if isinstance(session_config, SessionConfig)
        else DEFAULT_ENVIRON_KEY
    )

    def session_tween(request: Request) -> Response:
        response = handler(request)
        try:
            save_early(request.environ, environ_key, response.headerlist)
        except SessionStoreError:  # logged where it was caught
            raise HTTPServiceUnavailable(
                "The session store could not be reached. Try again shortly.",
                headers={"Retry-After": "5"},
            ) from None
        return response

    return session_tween


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
    """Read the ``session.*`` settings (validated now), set the session factory
    and add the tween that saves the session in Pyramid's response phase."""
    config.set_session_factory(session_factory_from_settings(config.get_settings()))
    config.add_tween(f"{__name__}.session_tween_factory", under=EXCVIEW)
