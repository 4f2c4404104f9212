"""The exceptions wsgi-sessions raises, in one place so callers can catch them by type."""

from __future__ import annotations


class SessionError(Exception):
    """Base class of every error this library raises on purpose."""


class SessionCookieTooLarge(SessionError):
    """The session does not fit in a cookie a browser would keep.

    Browsers silently drop a cookie over about 4 KB, which would lose the whole
    session without anyone noticing. Raising at save time keeps the previous
    cookie valid (no ``Set-Cookie`` is sent) and tells the developer to store
    less or move to a server-side store.
    """

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"the session cookie would be {size} bytes, over the limit of {limit} "
            "(max_cookie_size / MAX_COOKIE_SIZE); browsers drop such cookies. "
            "Store less in the session, or use a server-side store."
        )


class SessionStoreError(SessionError):
    """A session store failed (down, timed out, refused the operation).

    The middleware turns it into a ``503 Service Unavailable`` before any header
    is sent, so a client never believes a write succeeded that did not. The
    message never contains a secret or a session id; the cause is chained.
    """
