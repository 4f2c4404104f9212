"""wsgi_sessions.integrations.falcon: the session at req.context.session."""

from __future__ import annotations

import logging
import typing as t

import falcon
import pytest
from webtest import TestApp

from framework_saving import (
    COOKIE,
    SERVER_SIDE,
    UNSAVEABLE,
    UNSTORABLE,
    assert_same_responses,
    assert_serialized_once,
    count_dumps,
    freeze_clock,
    get_with_the_store_down,
    oversize,
    saved_on_start_response,
)
from wsgi_sessions import SessionMiddleware
from wsgi_sessions.integrations.falcon import SessionComponent

SECRET = "falcon-test-" + "k" * 32


class Counter:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        session = req.context.session
        session["n"] = session.get("n", 0) + 1
        resp.text = str(session["n"])


class Untouched:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.text = "ok"


def make_app(environ_key: str = "wsgi_sessions.session") -> falcon.App:
    app = falcon.App(middleware=[SessionComponent(environ_key)])
    app.add_route("/count", Counter())
    app.add_route("/untouched", Untouched())
    return app


def test_responders_see_and_change_the_session() -> None:
    client = TestApp(SessionMiddleware(make_app(), {"secret_key": SECRET}))
    assert client.get("/count").text == "1"
    assert client.get("/count").text == "2"
    response = client.get("/untouched")
    assert "Set-Cookie" not in response.headers


def test_a_custom_environ_key() -> None:
    app = SessionMiddleware(make_app("s"), {"secret_key": SECRET, "environ_key": "s"})
    assert TestApp(app).get("/count").text == "1"


def test_without_the_middleware_the_error_says_what_to_do() -> None:
    app = make_app()

    def reraise(req: falcon.Request, resp: falcon.Response, ex: Exception, params: object) -> None:
        raise ex

    app.add_error_handler(RuntimeError, reraise)
    with pytest.raises(RuntimeError, match="SessionMiddleware") as info:
        TestApp(app).get("/count")
    # Says which object to serve, in Falcon's terms.
    assert "falcon.App" in str(info.value)
    assert "SessionComponent" in str(info.value)


class ReadsSession:
    """A component that needs the session, e.g. to load the logged-in user."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.user = req.context.session.get("user")


class Rejects:
    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPUnauthorized()


def test_a_component_listed_before_session_component_gets_an_explanation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = falcon.App(middleware=[ReadsSession(), SessionComponent()])
    app.add_route("/count", Counter())
    client = TestApp(SessionMiddleware(app, {"secret_key": SECRET}))
    with caplog.at_level(logging.DEBUG, logger="wsgi_sessions"):
        client.get("/count", status=500, expect_errors=True)
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert "SessionComponent" in message
    assert "first" in message  # the fix: list it first


def test_in_the_right_order_the_component_sees_the_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = falcon.App(middleware=[SessionComponent(), ReadsSession()])
    app.add_route("/count", Counter())
    client = TestApp(SessionMiddleware(app, {"secret_key": SECRET}))
    with caplog.at_level(logging.DEBUG, logger="wsgi_sessions"):
        assert client.get("/count").text == "1"
    assert caplog.records == []


def test_an_earlier_component_that_rejects_the_request_is_not_misreported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = falcon.App(middleware=[Rejects(), SessionComponent()])
    app.add_route("/count", Counter())
    client = TestApp(SessionMiddleware(app, {"secret_key": SECRET}))
    with caplog.at_level(logging.DEBUG, logger="wsgi_sessions"):
        client.get("/count", status=401)
    assert caplog.records == []


class Cached:
    """Writes the session on a response that asks shared caches to keep it."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.session["n"] = 1
        resp.cache_control = ["public", "max-age=600", "s-maxage=60"]
        resp.text = "ok"

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.session.clear()
        resp.cache_control = ["public", "max-age=600"]


def test_responses_that_set_or_delete_the_cookie_are_private() -> None:
    app = make_app()
    app.add_route("/cached", Cached())
    client = TestApp(SessionMiddleware(app, {"secret_key": SECRET}))
    response = client.get("/cached")
    assert response.headers.getall("Set-Cookie")
    assert response.headers.getall("Cache-Control") == ["max-age=600, private"]
    assert response.headers["Vary"] == "Cookie"
    deleted = client.delete("/cached")
    assert "Max-Age=0" in deleted.headers["Set-Cookie"]
    assert deleted.headers.getall("Cache-Control") == ["max-age=600, private"]


# -- saving in Falcon's response phase: errors reach Falcon's handlers --------------------


class Unsaveable:
    """Writes what the session cannot save: a set, or a cookie over the limit."""

    def on_get_set(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.session["tags"] = UNSTORABLE
        resp.text = "stored?"

    def on_get_big(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.session["big"] = oversize()
        resp.text = "stored?"


def unsaveable_app() -> falcon.App:
    app = make_app()
    app.add_route("/set", Unsaveable(), suffix="set")
    app.add_route("/big", Unsaveable(), suffix="big")
    return app


@pytest.mark.parametrize(("path", "settings", "error"), UNSAVEABLE)
def test_a_session_that_cannot_be_saved_gets_falcons_json_error(
    path: str, settings: dict[str, str], error: type[Exception]
) -> None:
    client = TestApp(SessionMiddleware(unsaveable_app(), settings))
    response = client.get(path, status=500, expect_errors=True)
    assert response.json == {"title": "500 Internal Server Error"}  # Falcon's, not the server's
    assert error.__name__ in response.errors  # Falcon logged the traceback to wsgi.errors
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize(("path", "settings", "error"), UNSAVEABLE)
def test_the_error_while_saving_reaches_a_custom_error_handler(
    path: str, settings: dict[str, str], error: type[Exception]
) -> None:
    handled: list[Exception] = []

    def handler(req: falcon.Request, resp: falcon.Response, ex: Exception, params: object) -> None:
        handled.append(ex)
        resp.status = falcon.HTTP_422
        resp.media = {"error": "your session could not be saved"}

    app = unsaveable_app()
    app.add_error_handler(error, handler)
    response = TestApp(SessionMiddleware(app, settings)).get(path, status=422)
    assert response.json == {"error": "your session could not be saved"}
    (exception,) = handled
    assert isinstance(exception, error)
    assert "Set-Cookie" not in response.headers


def test_a_store_that_is_down_while_saving_is_falcons_503(
    own_redis: t.Any, caplog: pytest.LogCaptureFixture
) -> None:
    response = get_with_the_store_down(
        own_redis, lambda settings: TestApp(SessionMiddleware(make_app(), settings)), caplog
    )
    assert response.json["title"] == "503 Service Unavailable"  # Falcon's own error body
    assert response.headers["Retry-After"]


@pytest.mark.parametrize("settings", [COOKIE, SERVER_SIDE])
def test_the_session_is_serialized_once_per_request(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, str]
) -> None:
    calls = count_dumps(monkeypatch)
    assert_serialized_once(TestApp(SessionMiddleware(make_app(), settings)), calls)


@pytest.mark.parametrize("path", ["/count", "/cached", "/untouched"])
def test_a_normal_response_is_byte_for_byte_what_it_was(
    monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    freeze_clock(monkeypatch)
    app = make_app()
    app.add_route("/cached", Cached())
    now = TestApp(SessionMiddleware(app, COOKIE))
    before = TestApp(SessionMiddleware(saved_on_start_response(app), COOKIE))
    assert_same_responses(now, before, path)
