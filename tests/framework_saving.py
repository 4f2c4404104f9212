"""What the adapters' tests share about saving in the framework's response phase:
values that cannot be saved, a count of serializations, a clock that stands
still, and the app as it was served before adapters saved early."""

from __future__ import annotations

import logging
import secrets
import time
import typing as t

import pytest
from webtest import TestApp, TestResponse

from wsgi_sessions import SessionCookieTooLarge
from wsgi_sessions._early_save import request_save_key
from wsgi_sessions.serialization import session_json_serializer
from wsgi_sessions.settings import DEFAULT_ENVIRON_KEY

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

#: JSON has no sets: storing one fails when the session is serialized.
UNSTORABLE = {"a", "set"}

COOKIE = {"secret_key": "framework-saving-" + "k" * 32}
SERVER_SIDE = {**COOKIE, "store": "memory://"}
#: (path, settings, what saving raises): each adapter's test app writes a set
#: at /set and an oversize value at /big (too big only for a cookie).
UNSAVEABLE = [
    ("/set", COOKIE, TypeError),
    ("/set", SERVER_SIDE, TypeError),
    ("/big", COOKIE, SessionCookieTooLarge),
]


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


def assert_serialized_once(client: TestApp, calls: list[object]) -> None:
    """Two requests to ``/count`` (which writes the session): one ``dumps`` each."""
    assert client.get("/count").headers.getall("Set-Cookie")
    assert len(calls) == 1
    assert client.get("/count").text == "2"
    assert len(calls) == 2


def get_with_the_store_down(
    server: t.Any, serve: t.Callable[[dict[str, str]], TestApp], caplog: pytest.LogCaptureFixture
) -> TestResponse:
    """GET ``/count`` (which writes the session) from the app that ``serve``
    makes for settings with a store on ``server`` (the ``own_redis`` fixture),
    after stopping it: a 503, logged as a failure while saving, with no cookie."""
    client = serve({**COOKIE, "store": server.url})
    server.stop()
    with caplog.at_level(logging.ERROR, logger="wsgi_sessions"):
        response = client.get("/count", status=503)
    assert "Set-Cookie" not in response.headers
    assert "saving" in caplog.text
    return response


def assert_same_responses(now: TestApp, before: TestApp, path: str) -> None:
    """A first visit to ``path``, then one with the cookie: the same headers,
    in the same order, and body, from both apps."""
    for _ in range(2):
        ours, theirs = now.get(path), before.get(path)
        assert ours.headerlist == theirs.headerlist
        assert ours.body == theirs.body
    assert now.cookies == before.cookies


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
