"""Sessions for any WSGI application: signed cookies or a server-side store.

Wrap the app, read the session from the environ::

    from wsgi_sessions import SessionMiddleware, get_session

    app = SessionMiddleware(app, {"secret_key": "..."})

    def view(environ, start_response):
        session = get_session(environ)
"""

from __future__ import annotations

from .encrypted import EncryptedCookieSessionInterface
from .errors import SessionCookieTooLarge, SessionError, SessionStoreError
from .interface import SecureCookieSessionInterface, SessionInterface
from .middleware import SessionMiddleware, get_session
from .owners import SessionRecord
from .serialization import TaggedJSONSerializer
from .server import ServerSideSession, ServerSideSessionInterface
from .sessions import NullSession, SecureCookieSession, SessionMixin
from .settings import SessionConfig, parse_settings

__all__ = [
    "EncryptedCookieSessionInterface",
    "NullSession",
    "SecureCookieSession",
    "SecureCookieSessionInterface",
    "ServerSideSession",
    "ServerSideSessionInterface",
    "SessionConfig",
    "SessionCookieTooLarge",
    "SessionError",
    "SessionInterface",
    "SessionMiddleware",
    "SessionMixin",
    "SessionRecord",
    "SessionStoreError",
    "TaggedJSONSerializer",
    "get_session",
    "parse_settings",
]

__version__ = "0.1.0"
