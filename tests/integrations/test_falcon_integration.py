"""wsgi_sessions.integrations.falcon: the session at req.context.session."""

from __future__ import annotations

import falcon
import pytest
from webtest import TestApp

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
    with pytest.raises(RuntimeError, match="SessionMiddleware"):
        TestApp(app).get("/count")
