"""wsgi_sessions.integrations.bottle: the plugin and the one-liner."""

from __future__ import annotations

import typing as t

import bottle
import pytest
from webtest import TestApp

from wsgi_sessions import SessionMiddleware, SessionMixin
from wsgi_sessions.integrations.bottle import SessionPlugin, with_sessions

SECRET = "bottle-test-" + "k" * 32


def test_only_callbacks_that_name_the_keyword_get_the_session() -> None:
    app = bottle.Bottle()
    app.install(SessionPlugin())

    @app.get("/count")
    def count(session: SessionMixin) -> str:
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    @app.get("/plain/<name>")
    def plain(name: str, **kwargs: t.Any) -> str:
        return f"{name}:{sorted(kwargs)}"

    client = TestApp(SessionMiddleware(app, {"secret_key": SECRET}))
    assert client.get("/count").text == "1"
    assert client.get("/count").text == "2"
    response = client.get("/plain/x")
    assert response.text == "x:[]"
    assert "Set-Cookie" not in response.headers


def test_a_custom_keyword_and_environ_key() -> None:
    app = bottle.Bottle()
    app.install(SessionPlugin(keyword="sess", environ_key="my.session"))

    @app.get("/")
    def index(sess: SessionMixin) -> str:
        sess["seen"] = True
        return type(sess).__name__

    client = TestApp(SessionMiddleware(app, {"secret_key": SECRET, "environ_key": "my.session"}))
    assert client.get("/").text == "SecureCookieSession"


def test_installing_two_plugins_for_one_keyword_is_refused() -> None:
    app = bottle.Bottle()
    app.install(SessionPlugin())
    with pytest.raises(bottle.PluginError, match="session"):
        app.install(SessionPlugin())
    app.install(SessionPlugin(keyword="other"))


def test_without_the_middleware_the_error_says_what_to_do() -> None:
    app = bottle.Bottle()
    app.config["catchall"] = False
    app.install(SessionPlugin())

    @app.get("/")
    def index(session: SessionMixin) -> str:
        return ""

    with pytest.raises(RuntimeError, match="SessionMiddleware"):
        TestApp(app).get("/")


def test_with_sessions_wraps_the_default_app() -> None:
    app = bottle.default_app.push()
    try:

        @bottle.get("/")
        def index(session: SessionMixin) -> str:
            session["n"] = session.get("n", 0) + 1
            return str(session["n"])

        application = with_sessions(settings={"secret_key": SECRET})
        assert isinstance(application, SessionMiddleware)
        assert application.app is app
        client = TestApp(application)
        assert client.get("/").text == "1"
        assert client.get("/").text == "2"
    finally:
        bottle.default_app.pop()
