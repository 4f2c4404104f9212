"""Falcon (WSGI): a middleware component that puts the session at ``req.context.session``.

::

    app = falcon.App(middleware=[SessionComponent(), ...])  # first: others may read it
    application = SessionMiddleware(app, {"secret_key": ...})  # serve this

:class:`SessionMiddleware`, around the Falcon app, opens the session. The
component saves it in its ``process_response``, which Falcon runs last for the
component listed first: everything a responder, an error handler or another
component writes to the session is saved, and what saving raises (a value
JSON cannot hold, :class:`~wsgi_sessions.SessionCookieTooLarge`) goes to
Falcon's error handlers, as any error of the app does; a session store that is
down becomes Falcon's ``HTTPServiceUnavailable``. The middleware then adds
the session's headers when Falcon calls ``start_response``, without saving
again. Falcon's ASGI app (``falcon.asgi``) is out of scope: the middleware is
WSGI only.
"""

from __future__ import annotations

import logging

import falcon

from wsgi_sessions import SessionStoreError, get_session
from wsgi_sessions._early_save import save_early
from wsgi_sessions.settings import DEFAULT_ENVIRON_KEY

__all__ = ["SessionComponent"]

logger = logging.getLogger("wsgi_sessions")


class SessionComponent:
    """Expose the session that :class:`SessionMiddleware` opened to responders,
    hooks and the middleware components listed after this one, and save it in
    Falcon's response phase."""

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
        """Save the session, so that Falcon's error handlers get what that raises."""
        self._explain_order(req, resp, req_succeeded)
        try:
            save_early(req.env, self.environ_key, resp.headers.items())
        except SessionStoreError:  # logged where it was caught
            raise falcon.HTTPServiceUnavailable(
                description="The session store could not be reached. Try again shortly.",
                retry_after=5,
            ) from None

    def _explain_order(
        self, req: falcon.Request, resp: falcon.Response, req_succeeded: bool
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
