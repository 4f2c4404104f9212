"""What the migration guides (docs/migration/) claim about users' existing cookies.

Flask's cookies are read as they are (tests/test_flask_compat.py). The other
peers' cookies are made here by the peer itself, then sent to us: each must be
a fresh empty session (never an error), replaced by our cookie on the next write.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from webtest import TestApp

from cookies import parse_set_cookie
from wsgi_sessions import SessionMiddleware, get_session

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse, WSGIEnvironment

SECRET = "migration-test-" + "k" * 32


def our_app(**settings: t.Any) -> TestApp:
    """/ shows the session's keys; /write also stores one."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        session = get_session(environ)
        if environ["PATH_INFO"] == "/write":
            session["ours"] = 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [",".join(sorted(session)).encode()]

    return TestApp(SessionMiddleware(app, {"secret_key": SECRET, **settings}))


def assert_fresh_session_for(cookie_name: str, value: str, **settings: t.Any) -> None:
    ours = our_app(cookie_name=cookie_name, **settings)
    cookie = {"Cookie": f"{cookie_name}={value}"}
    assert ours.get("/", headers=cookie).text == ""
    written = ours.get("/write", headers=cookie)
    assert written.text == "ours"
    name, new_value, _ = parse_set_cookie(written.headers["Set-Cookie"])
    assert name == cookie_name
    assert new_value != value
    # The same with a store: the cookie is not an id we issued.
    with_store = our_app(cookie_name=cookie_name, store="memory://", **settings)
    assert with_store.get("/", headers={"Cookie": f"{cookie_name}={value}"}).text == ""


def cookie_from(set_cookie: str) -> tuple[str, str]:
    name, value, _ = parse_set_cookie(set_cookie)
    return name, value


def test_a_flask_session_cookie_is_a_fresh_session(tmp_path: Path) -> None:
    flask = pytest.importorskip("flask")
    flask_session = pytest.importorskip("flask_session")
    from cachelib import FileSystemCache

    app = flask.Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET,
        SESSION_TYPE="cachelib",
        SESSION_CACHELIB=FileSystemCache(str(tmp_path / "flask_session")),
    )
    flask_session.Session(app)

    @app.get("/")
    def login() -> str:
        flask.session["user"] = "ada"
        return "ok"

    name, value = cookie_from(app.test_client().get("/").headers["Set-Cookie"])
    assert name == "session"  # Flask's cookie name: the same as ours
    assert_fresh_session_for(name, value)


def test_a_beaker_cookie_is_a_fresh_session() -> None:
    beaker = pytest.importorskip("beaker.middleware")

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ["beaker.session"]["user"] = "ada"
        environ["beaker.session"].save()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    options = {"session.type": "cookie", "session.validate_key": SECRET, "session.auto": False}
    response = TestApp(beaker.SessionMiddleware(app, options)).get("/")
    name, value = cookie_from(response.headers["Set-Cookie"])
    assert name == "beaker.session.id"
    # Even under Beaker's cookie name, its cookie is not ours.
    assert_fresh_session_for(name, value)


def test_a_pyramid_signed_cookie_is_a_fresh_session() -> None:
    from pyramid.config import Configurator
    from pyramid.session import SignedCookieSessionFactory

    def login(request: t.Any) -> t.Any:
        request.session["user"] = "ada"
        return request.response

    with Configurator(session_factory=SignedCookieSessionFactory(SECRET)) as config:
        config.add_route("login", "/")
        config.add_view(login, route_name="login")
        app = config.make_wsgi_app()
    name, value = cookie_from(TestApp(app).get("/").headers["Set-Cookie"])
    assert name == "session"  # Pyramid's default name: the same as ours
    assert_fresh_session_for(name, value)
