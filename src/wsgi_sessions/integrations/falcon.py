"""Falcon (WSGI): a middleware component that puts the session at ``req.context.session``.

::

    app = falcon.App(middleware=[SessionComponent()])
    application = SessionMiddleware(app, {"secret_key": ...})  # serve this

Opening and saving stay in :class:`SessionMiddleware`, around the Falcon app:
Falcon calls ``start_response`` once the response is complete, so everything a
responder writes to the session is saved. Falcon's ASGI app (``falcon.asgi``)
is out of scope: the middleware is WSGI only.
"""

from __future__ import annotations

import typing as t

from wsgi_sessions import get_session
from wsgi_sessions.settings import DEFAULT_ENVIRON_KEY

if t.TYPE_CHECKING:
    import falcon

__all__ = ["SessionComponent"]


class SessionComponent:
    """Expose the session that :class:`SessionMiddleware` opened to responders and hooks."""

    def __init__(self, environ_key: str = DEFAULT_ENVIRON_KEY) -> None:
        self.environ_key = environ_key

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.session = get_session(req.env, self.environ_key)
