"""Bottle: a plugin that hands the session to the route callbacks that ask for it.

::

    app = bottle.Bottle()
    application = with_sessions(app, {"secret_key": ...})  # a WSGI app to serve

    @app.route("/")
    def index(session):  # asks for it by name, as bottle-sqlite's ``db``
        ...

``with_sessions`` wraps the app in :class:`SessionMiddleware` (which opens the
session) and installs :class:`SessionPlugin` with the same environ key. The
plugin saves the session in an ``after_request`` hook: what saving raises (a
value JSON cannot hold, :class:`~wsgi_sessions.SessionCookieTooLarge`) gets
Bottle's error page (an ``@app.error(500)`` handler finds it in
``error.exception``), and a store that is down is ``HTTPError(503)``. A route
that streams (returns a generator) is saved by the middleware instead, when
Bottle starts the response after the first chunk, as before.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing as t

import bottle

from wsgi_sessions import SessionMiddleware, SessionStoreError, get_session
from wsgi_sessions._early_save import save_early
from wsgi_sessions.settings import DEFAULT_ENVIRON_KEY

__all__ = ["SessionPlugin", "with_sessions"]

#: Set in the environ when a route's body is a generator: the session is saved
#: when Bottle starts the response (after the first chunk), not in the hook.
_STREAMED = "wsgi_sessions.bottle.streamed"


class SessionPlugin:
    """Pass the request's session as the ``keyword`` argument of each callback
    whose signature names it, and save the session in Bottle's
    ``after_request`` hook (see the module's docstring)."""

    name = "wsgi_sessions"
    api = 2

    def __init__(self, keyword: str = "session", environ_key: str = DEFAULT_ENVIRON_KEY) -> None:
        self.keyword = keyword
        self.environ_key = environ_key
        self._apps: list[bottle.Bottle] = []

    def setup(self, app: bottle.Bottle) -> None:
        """Refuse a second plugin that would fill the same keyword; add the hook
        that saves the session."""
        for other in app.plugins:
            if isinstance(other, SessionPlugin) and other.keyword == self.keyword:
                raise bottle.PluginError(f"a session plugin for {self.keyword!r} is installed")
        app.add_hook("after_request", self.save_session)
        self._apps.append(app)

    def close(self) -> None:
        """Uninstalled: remove the hook."""
        for app in self._apps:
            app.remove_hook("after_request", self.save_session)
        self._apps.clear()

    def save_session(self) -> None:
        """Save the session in Bottle's response phase (``after_request``)."""
        environ = bottle.request.environ
        if environ.get(_STREAMED):
            return
        try:
            save_early(environ, self.environ_key, bottle.response.headerlist)
        except SessionStoreError:  # logged where it was caught
            raise bottle.HTTPError(
                503, "The session store could not be reached. Try again shortly."
            ) from None

    def apply(
        self, callback: t.Callable[..., t.Any], route: bottle.Route
    ) -> t.Callable[..., t.Any]:
        keyword = self.keyword if self.keyword in _parameters(route.callback) else None
        environ_key = self.environ_key

        @functools.wraps(callback)
        def with_session(*args: t.Any, **kwargs: t.Any) -> t.Any:
            environ = bottle.request.environ
            if keyword is not None:
                kwargs[keyword] = get_session(environ, environ_key)
            body = callback(*args, **kwargs)
            if isinstance(body, types.GeneratorType):
                # Its code runs after the hook, up to the first chunk before
                # Bottle starts the response: the middleware saves then.
                environ[_STREAMED] = True
            return body

        return with_session


def _parameters(callback: t.Callable[..., t.Any]) -> t.Mapping[str, inspect.Parameter]:
    """The parameters of the route's callback as the user wrote it.

    Not Bottle's ``Route.get_undecorated_callback()``: it guesses through
    closures, looping forever on one that captures no callable (a route in an
    app factory closing over a config dict) and reading a captured helper's
    signature instead of the route's. ``inspect.signature`` follows
    ``__wrapped__`` (``functools.wraps``), drops a bound method's ``self`` and
    reads a callable object's ``__call__``.
    """
    try:
        return inspect.signature(callback).parameters
    except (TypeError, ValueError):  # no signature to read (some builtins): leave it alone
        return {}


def with_sessions(
    app: bottle.Bottle | None = None,
    settings: t.Mapping[str, t.Any] | None = None,
    *,
    keyword: str = "session",
    **options: t.Any,
) -> SessionMiddleware:
    """Install the plugin on ``app`` (``bottle.default_app()`` by default) and
    return the app wrapped in the middleware: serve what this returns."""
    if app is None:
        app = bottle.default_app()
    middleware = SessionMiddleware(app, settings, **options)
    app.install(SessionPlugin(keyword, middleware.environ_key))
    return middleware
