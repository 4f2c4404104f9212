"""Falcon (WSGI): a middleware component that puts the session at ``req.context.session``.

::

    app = falcon.App(middleware=[SessionComponent(), ...])  # first: others may read it
    application = SessionMiddleware(app, {"secret_key": ...})  # serve this

Opening and saving stay in :class:`SessionMiddleware`, around the Falcon app:
Falcon calls ``start_response`` once the response is complete, so everything a
responder writes to the session is saved. Falcon's ASGI app (``falcon.asgi``)
is out of scope: the middleware is WSGI only.
"""

from __future__ import annotations

import logging
import typing as t

from wsgi_sessions import get_session
from wsgi_sessions.settings import DEFAULT_ENVIRON_KEY

if t.TYPE_CHECKING:
    import falcon

__all__ = ["SessionComponent"]

logger = logging.getLogger("wsgi_sessions")


class SessionComponent:
    """Expose the session that :class:`SessionMiddleware` opened to responders,
    hooks and the middleware components listed after this one."""

    def __init__(self, environ_key: str = DEFAULT_ENVIRON_KEY) -> None:
        self.environ_key = environ_key

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            session = get_session(req.env, self.environ_key)
        except RuntimeError:
            raise RuntimeError(
                f"SessionComponent found no session in the WSGI environ at "
                f"{self.environ_key!r}: serve SessionMiddleware(app, settings) wrapped "
                "around the falcon.App, not the falcon.App itself (and give both the "
                "same environ_key)"
            ) from None
        req.context.session = session

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        # Falcon runs components in the order listed; one listed before this one
        # that reads req.context.session fails with a bare AttributeError (a 500)
        # before process_request above ran. Falcon still calls every
        # process_response, so this is the one place that can say why.
        if req_succeeded or "session" in req.context or not str(resp.status).startswith("500"):
            return
        logger.error(
            "the request failed in a middleware component that ran before "
            "SessionComponent, so req.context.session was not set yet. If a component "
            "reads the session, list SessionComponent() first: "
            "falcon.App(middleware=[SessionComponent(), ...]); or read it there with "
            "wsgi_sessions.get_session(req.env)"
        )
