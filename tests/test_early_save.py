"""Saving in the framework's response phase: still the request's one save.

The app here stands in for a framework adapter: it calls ``save_early`` where
a framework's response phase would, then starts its response.
"""

from __future__ import annotations

import sys
import typing as t
from collections.abc import Mapping

import pytest
from webtest import TestApp

from framework_saving import UNSTORABLE, count_dumps
from wsgi_sessions import SessionMiddleware, get_session
from wsgi_sessions._early_save import save_early
from wsgi_sessions.settings import DEFAULT_ENVIRON_KEY
from wsgi_sessions.stores import MemoryStore

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

SECRET = "early-save-test-secret"
KEY = DEFAULT_ENVIRON_KEY


class CountingStore(MemoryStore):
    """A memory store that counts the writes of a new session."""

    def __init__(self) -> None:
        super().__init__()
        self.creates = 0

    def _create(self, key: str, fields: Mapping[str, str], lifetime: int) -> bool:
        self.creates += 1
        return super()._create(key, fields, lifetime)


@pytest.fixture(params=["cookie", "server-side"])
def settings(request: pytest.FixtureRequest) -> dict[str, t.Any]:
    if request.param == "cookie":  # the middleware's short path for the stock cookie
        return {"secret_key": SECRET}
    return {"secret_key": SECRET, "store": CountingStore()}


def error_page_after_early_save(
    environ: WSGIEnvironment, start_response: StartResponse
) -> list[bytes]:
    """Saves early, starts a response, then replaces it with an error page."""
    get_session(environ)["n"] = 1
    save_early(environ, KEY, [("Content-Type", "text/plain")])
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise ValueError("boom")
    except ValueError:
        start_response("500 Internal Server Error", [("Vary", "Accept")], sys.exc_info())
    return [b"error page"]


def test_an_error_page_after_an_early_save_gets_the_same_headers(
    settings: dict[str, t.Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_dumps(monkeypatch)
    client = TestApp(SessionMiddleware(error_page_after_early_save, settings))
    response = client.get("/", status=500)
    assert len(response.headers.getall("Set-Cookie")) == 1
    assert response.headers["Vary"] == "Accept, Cookie"
    assert response.headers["Cache-Control"] == "private"
    assert len(calls) == 1  # saved once, early; replayed twice
    store = settings.get("store")
    if store is not None:
        assert store.creates == 1


def test_a_failed_early_save_is_not_tried_again(
    settings: dict[str, t.Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The framework's error page goes out as it is; start_response does not
    save again (which would raise again, past the framework)."""
    calls = count_dumps(monkeypatch)
    caught: list[Exception] = []
    made: list[int] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        get_session(environ)["tags"] = UNSTORABLE
        try:
            save_early(environ, KEY)
        except TypeError as exc:  # the framework's error handling
            caught.append(exc)
            made.append(len(calls))
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"the framework's error page"]
        raise AssertionError("a set was saved")

    response = TestApp(SessionMiddleware(app, settings)).get("/", status=500)
    assert response.text == "the framework's error page"
    assert "Set-Cookie" not in response.headers
    assert len(caught) == 1
    assert len(calls) == made[0] > 0  # no call since the failed save


def test_an_environ_copied_on_the_way_down_still_saves_once() -> None:
    """A server-side save must stay one (a second would undo a regenerate)."""
    store = CountingStore()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        copy = dict(environ)  # what a dispatching middleware may do
        get_session(copy)["n"] = 1
        first = save_early(copy, KEY)
        assert first is not None
        assert save_early(copy, KEY) is first  # saved already: the same record
        assert save_early(environ, KEY) is first
        start_response("200 OK", [])
        return [b"ok"]

    response = TestApp(SessionMiddleware(app, {"secret_key": SECRET, "store": store})).get("/")
    assert len(response.headers.getall("Set-Cookie")) == 1
    assert store.creates == 1


def test_a_copied_environ_on_the_cookie_path_still_sends_one_cookie() -> None:
    """The stock cookie's short path saves again instead: the same headers, once."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        copy = dict(environ)
        get_session(copy)["n"] = 1
        assert save_early(copy, KEY) is not None
        start_response("200 OK", [])
        return [b"ok"]

    client = TestApp(SessionMiddleware(app, {"secret_key": SECRET}))
    response = client.get("/")
    assert len(response.headers.getall("Set-Cookie")) == 1
    assert response.headers["Vary"] == "Cookie"


def test_a_late_early_save_does_not_save_again() -> None:
    """Called after the middleware saved on start_response: nothing is written twice."""
    store = CountingStore()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        get_session(environ)["n"] = 1
        start_response("200 OK", [])
        save_early(environ, KEY)
        return [b"ok"]

    response = TestApp(SessionMiddleware(app, {"secret_key": SECRET, "store": store})).get("/")
    assert len(response.headers.getall("Set-Cookie")) == 1
    assert store.creates == 1


def test_without_the_middleware_there_is_nothing_to_save() -> None:
    assert save_early({}, KEY) is None


def test_without_a_secret_key_there_is_nothing_to_save() -> None:
    seen: list[object] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        seen.append(save_early(environ, KEY))
        start_response("200 OK", [])
        return [b"ok"]

    TestApp(SessionMiddleware(app, {})).get("/")
    TestApp(SessionMiddleware(app, {"store": "memory://"})).get("/")
    assert seen == [None, None]
