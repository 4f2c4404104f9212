"""What the adapters' tests share about saving in the framework's response phase:
values that cannot be saved, a count of serializations, a clock that stands
still, and the app as it was served before adapters saved early."""

from __future__ import annotations

import secrets
import time
import typing as t

import pytest

from wsgi_sessions._early_save import request_save_key
from wsgi_sessions.serialization import session_json_serializer
from wsgi_sessions.settings import DEFAULT_ENVIRON_KEY

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

#: JSON has no sets: storing one fails when the session is serialized.
UNSTORABLE = {"a", "set"}


def oversize() -> str:
    """A value whose cookie is over the 4093-byte limit even compressed."""
    return secrets.token_urlsafe(6000)


def count_dumps(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record each call to the session serializer's ``dumps`` (the cookie
    payload, or one value of a server-side session) in the list returned.

    Not itsdangerous's probe, ``dumps({})``, made once per configuration when
    its serializer is built: a session's save never dumps an empty mapping.
    """
    calls: list[object] = []
    dumps = session_json_serializer.dumps

    def counting(value: t.Any) -> str:
        if value != {}:
            calls.append(value)
        return dumps(value)

    monkeypatch.setattr(session_json_serializer, "dumps", counting)
    return calls


def freeze_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop the clock, so that two requests sign their cookies alike."""
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now)


def saved_on_start_response(
    app: WSGIApplication, environ_key: str = DEFAULT_ENVIRON_KEY
) -> WSGIApplication:
    """``app`` with the middleware's offer to save early hidden from it: the
    adapter finds none, and the middleware saves on ``start_response``, as
    before adapters saved in the framework's response phase."""
    key = request_save_key(environ_key)

    def hidden(environ: WSGIEnvironment, start_response: StartResponse) -> t.Iterable[bytes]:
        environ.pop(key, None)
        return app(environ, start_response)

    return hidden
