"""Saving the session in the framework's own response phase (the adapters' part).

Private: :class:`~wsgi_sessions.SessionMiddleware`, the Pyramid factory and the
adapters use it. The middleware saves the session when the app calls
``start_response``, after the framework has finished: an error while saving (a
value JSON cannot hold, :class:`~wsgi_sessions.SessionCookieTooLarge`, a store
that is down) would skip the framework's error handling, and the client would
get the server's bare 500. So an adapter calls :func:`save_early` from the
framework's response phase (Falcon's ``process_response``, a Pyramid tween, a
Bottle hook), where the framework handles what it raises.

It stays the request's one save. Whoever opened the session (the middleware,
or the Pyramid factory without it) offers it in the environ as a *request
save*; :func:`save_early` saves into a copy of the framework's headers and
keeps the :class:`HeaderResponse` that records what it added; on
``start_response`` the opener replays that record into the real header list,
as it replays its own save for a second ``start_response``. The client gets
the headers a save there would have written, byte for byte, and nothing is
serialized twice. A save that failed is not tried again: the framework's error
response goes out without session headers.
"""

from __future__ import annotations

import logging
import typing as t
from collections.abc import Iterable

from ._wsgi import HeaderResponse, warn_if_secure_cookie_over_http
from .errors import SessionStoreError

if t.TYPE_CHECKING:  # pragma: no cover
    from _typeshed.wsgi import WSGIEnvironment

    from .interface import SessionInterface
    from .sessions import SessionMixin
    from .settings import SessionConfig

__all__ = [
    "NOTHING_SAVED",
    "SAVED",
    "RequestSave",
    "request_save_key",
    "save_early",
]

logger = logging.getLogger("wsgi_sessions")

#: A request save: ``[opener, session, saved]``. The opener has the
#: ``session_interface`` and ``session_config`` to save with; ``saved`` is None
#: until the session is saved, then the record of what the save added. A list,
#: not a class: the middleware makes one per request, and a list is the cheapest
#: mutable holder. Held in the environ by reference, so an environ copied on the
#: way down shares it, and the save stays one (a second save of a regenerated
#: server-side session would undo the first).
#:
#: The middleware's stock-cookie path offers itself instead, and
#: :func:`save_early` makes the list when it is used: most requests never save
#: early, and S0 is timed in tenths of a microsecond. There an environ copied
#: on the way down costs a second save on ``start_response``, which for a
#: signed cookie only recomputes the same headers.
RequestSave = list[t.Any]
SAVED = 2

#: What an untouched session's save, or a failed one, added: nothing, to replay.
NOTHING_SAVED = HeaderResponse([])


class Opener(t.Protocol):
    """What opened the session, and saves it: the middleware, or Pyramid's factory."""

    session_interface: SessionInterface
    session_config: SessionConfig


def request_save_key(environ_key: str) -> str:
    """Where the environ holds the request save of the session at ``environ_key``."""
    return environ_key + ".save"


def save_early(
    environ: WSGIEnvironment, environ_key: str, headers: Iterable[tuple[str, str]] = ()
) -> HeaderResponse | None:
    """Save the request's session now, unless it was saved already.

    ``headers`` are the framework's response headers as they stand (an
    interface subclass may read them); they are copied, not changed. Returns
    the record of the request's one save (replayed into the real header list
    later), or None where no opener offered a save (no middleware around the
    app, no secret key). What saving raises propagates, for the framework's
    handlers; a store that is down is logged here, and the adapter turns it
    into the framework's own 503.
    """
    key = request_save_key(environ_key)
    request_save: RequestSave | Opener | None = environ.get(key)
    if request_save is None:
        return None
    if type(request_save) is not list:  # the middleware's stock-cookie path: itself
        request_save = environ[key] = [request_save, environ[environ_key], None]
    saved: HeaderResponse | None = request_save[SAVED]
    if saved is not None:
        return saved
    opener: Opener = request_save[0]
    session: SessionMixin = request_save[1]
    # One attempt: a save that raises is not tried again on start_response.
    request_save[SAVED] = NOTHING_SAVED
    saved = HeaderResponse(list(headers))
    try:
        opener.session_interface.save_session(opener.session_config, session, saved)
    except SessionStoreError:
        logger.exception("session store failed while saving the session")
        raise
    if saved.sets_cookie:
        warn_if_secure_cookie_over_http(environ, opener.session_config.config)
    request_save[SAVED] = saved
    return saved
