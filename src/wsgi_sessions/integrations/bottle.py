"""Bottle: a plugin that hands the session to the route callbacks that ask for it.

::

    app = bottle.Bottle()
    application = with_sessions(app, {"secret_key": ...})  # a WSGI app to serve

    @app.route("/")
    def index(session):  # asks for it by name, as bottle-sqlite's ``db``
        ...

``with_sessions`` wraps the app in :class:`SessionMiddleware` (which opens and
saves the session) and installs :class:`SessionPlugin` with the same environ key.
"""

from __future__ import annotations

import functools
import inspect
import typing as t

import bottle

from wsgi_sessions import SessionMiddleware, get_session
from wsgi_sessions.settings import DEFAULT_ENVIRON_KEY

__all__ = ["SessionPlugin", "with_sessions"]


class SessionPlugin:
    """Pass the request's session as the ``keyword`` argument of each callback
    whose signature names it; other callbacks are left untouched."""

    name = "wsgi_sessions"
    api = 2

    def __init__(self, keyword: str = "session", environ_key: str = DEFAULT_ENVIRON_KEY) -> None:
        self.keyword = keyword
        self.environ_key = environ_key

    def setup(self, app: bottle.Bottle) -> None:
        """Refuse a second plugin that would fill the same keyword."""
        for other in app.plugins:
            if isinstance(other, SessionPlugin) and other.keyword == self.keyword:
                raise bottle.PluginError(f"a session plugin for {self.keyword!r} is installed")

    def apply(
        self, callback: t.Callable[..., t.Any], route: bottle.Route
    ) -> t.Callable[..., t.Any]:
        if self.keyword not in _parameters(route.callback):
            return callback
        keyword, environ_key = self.keyword, self.environ_key

        @functools.wraps(callback)
        def with_session(*args: t.Any, **kwargs: t.Any) -> t.Any:
            kwargs[keyword] = get_session(bottle.request.environ, environ_key)
            return callback(*args, **kwargs)

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
