"""Pyramid: ``config.include("wsgi_sessions.integrations.pyramid")``.

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

from wsgi_sessions import SessionInterface, SessionMiddleware, SessionMixin
from wsgi_sessions.middleware import HeaderResponse, LazyRequest

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from pyramid.config import Configurator
    from pyramid.request import Request
    from pyramid.response import Response

__all__ = ["PyramidSession", "SessionFactory", "includeme"]

#: Where ``created`` is kept: cookie sessions have no creation time of their own.
CREATED_KEY = "_created"


@implementer(ISession)
class PyramidSession(SessionMixin):
    """Our session seen through Pyramid's ``ISession``.

    A view onto the real session object (cookie or server-side), so reads and
    writes are tracked, and saved, exactly as anywhere else; ``session`` is
    that object, for what ``ISession`` does not name (``regenerate()``).
    """

    def __init__(self, session: SessionMixin) -> None:
        self.session = session

    # -- the mapping, passed through -----------------------------------------

    def __getitem__(self, key: str) -> t.Any:
        return self.session[key]

    def __setitem__(self, key: str, value: t.Any) -> None:
        self.session[key] = value

    def __delitem__(self, key: str) -> None:
        del self.session[key]

    def __iter__(self) -> t.Iterator[str]:
        return iter(self.session)

    def __len__(self) -> int:
        return len(self.session)

    def __contains__(self, key: object) -> bool:
        return key in self.session

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.session!r}>"

    def get(self, key: str, default: t.Any = None) -> t.Any:
        return self.session.get(key, default)

    def keys(self) -> t.KeysView[str]:
        return self.session.keys()

    def values(self) -> t.ValuesView[t.Any]:
        return self.session.values()

    def items(self) -> t.ItemsView[str, t.Any]:
        return self.session.items()

    def pop(self, key: str, *default: t.Any) -> t.Any:
        return self.session.pop(key, *default)

    def popitem(self) -> tuple[str, t.Any]:
        return self.session.popitem()

    def setdefault(self, key: str, default: t.Any = None) -> t.Any:
        return self.session.setdefault(key, default)

    def update(self, *args: t.Any, **kwargs: t.Any) -> None:
        self.session.update(*args, **kwargs)

    def clear(self) -> None:
        self.session.clear()

    # -- the session's state, passed through ---------------------------------

    @property
    def new(self) -> bool:
        return self.session.new

    @new.setter
    def new(self, value: bool) -> None:
        self.session.new = value

    @property
    def modified(self) -> bool:
        return self.session.modified

    @modified.setter
    def modified(self, value: bool) -> None:
        self.session.modified = value

    @property
    def accessed(self) -> bool:
        return self.session.accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        self.session.accessed = value

    # -- what ISession adds ----------------------------------------------------

    @property
    def created(self) -> float:
        """When the session was created (epoch seconds).

        Our sessions do not record it unless asked: the first read on a session
        that holds data stamps it (``_created``); an empty session is not stored
        anywhere yet, so it reads as created now and is left unwritten (a
        read-only page must not start sending cookies, nor fail without a key).
        """
        value = self.session.get(CREATED_KEY)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        now = time.time()
        if len(self.session):
            self.session[CREATED_KEY] = now
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


class SessionFactory:
    """Pyramid's session factory: ``factory(request)`` returns the session.

    ``holder`` is a :class:`SessionMiddleware` used as the interface's ``app``
    (its configuration and session interface); it is never called as WSGI.
    """

    def __init__(self, holder: SessionMiddleware) -> None:
        self.holder = holder

    def __call__(self, request: Request) -> PyramidSession:
        environ = request.environ
        holder = self.holder
        session: SessionMixin | None = environ.get(holder.environ_key)
        if session is None:
            interface = holder.session_interface
            session = interface.open_session(holder, LazyRequest(environ))
            if session is None:  # no secret key: reads work, writes explain
                session = interface.make_null_session(holder)
            else:
                environ[holder.environ_key] = session
                request.add_response_callback(partial(_save, interface, holder, session))
        return PyramidSession(session)


def _save(
    interface: SessionInterface,
    holder: SessionMiddleware,
    session: SessionMixin,
    request: Request,
    response: Response,
) -> None:
    # WebOb's headerlist is the response's real header list: written in place.
    interface.save_session(holder, session, HeaderResponse(response.headerlist))


def _configuration_only(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    raise RuntimeError("the Pyramid adapter's SessionMiddleware holds settings; it is not an app")


def includeme(config: Configurator) -> None:
    """Read the ``session.*`` settings (validated now) and set the session factory."""
    holder = SessionMiddleware(_configuration_only, config.get_settings(), prefix="session.")
    config.set_session_factory(SessionFactory(holder))
