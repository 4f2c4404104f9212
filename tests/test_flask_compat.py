"""Flask (a test dependency only): cookies move both ways, and our interface
works as a Flask app's ``session_interface``."""

from __future__ import annotations

import typing as t
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from uuid import UUID

import flask
import pytest
from markupsafe import Markup
from webtest import TestApp
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from wsgi_sessions import (
    NullSession,
    SecureCookieSession,
    SecureCookieSessionInterface,
    SessionInterface,
    SessionMiddleware,
    get_session,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse, WSGIEnvironment

SECRET = "shared-secret-between-flask-and-us"

DATA: dict[str, t.Any] = {
    "user": "ada",
    "n": 3,
    "pair": (1, "two"),
    "raw": b"\x00\xff",
    "id": UUID("12345678-1234-5678-1234-567812345678"),
    "when": datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc),
    "html": Markup("<b>hi</b>"),
    "nested": {"cart": [1, (2, 3)], " t": "not a tag"},
    "looks_like_tag": {" t": [1]},
}


def flask_app(**config: t.Any) -> flask.Flask:
    """A Flask app whose /set stores DATA and whose / shows the session."""
    app = flask.Flask(__name__)
    app.config.update({"SECRET_KEY": SECRET, **config})

    @app.route("/set")
    def set_data() -> str:
        flask.session.update(DATA)
        flask.session.permanent = flask.request.args.get("permanent") == "1"
        return "ok"

    @app.route("/")
    def show() -> str:
        return shown(flask.session)

    @app.route("/incr")
    def incr() -> str:
        flask.session["n"] = flask.session.get("n", 0) + 1
        return str(flask.session["n"])

    @app.route("/append")
    def append() -> str:
        flask.session.setdefault("cart", []).append(len(flask.session.get("cart", [])))
        return repr(flask.session["cart"])

    return app


def ours(**settings: t.Any) -> TestApp:
    """Our middleware around a WSGI app: /set stores DATA, / shows the session."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        session = get_session(environ)
        if environ["PATH_INFO"] == "/set":
            session.update(DATA)
            session.permanent = "permanent=1" in environ.get("QUERY_STRING", "")
            body = "ok"
        else:
            body = shown(session)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body.encode()]

    return TestApp(SessionMiddleware(app, {"secret_key": SECRET, **settings}))


def shown(session: t.Mapping[str, t.Any]) -> str:
    """The session as text that does not depend on key order (Flask's JSON
    provider sorts keys; ours keeps insertion order)."""

    def normal(value: t.Any) -> t.Any:
        if type(value) is dict:
            return sorted((key, normal(item)) for key, item in value.items())
        if type(value) in (list, tuple):
            return type(value)(normal(item) for item in value)
        return value

    return repr(normal(dict(session)))


def cookie_value(header: str) -> str:
    name, _, rest = header.partition("=")
    assert name == "session"
    return rest.split(";")[0]


EXPECTED = shown({**DATA, "_permanent": False})
EXPECTED_PERMANENT = shown({**DATA, "_permanent": True})


@pytest.mark.parametrize("permanent", [False, True])
def test_flask_cookie_is_read_by_us(permanent: bool) -> None:
    response = flask_app().test_client().get("/set", query_string={"permanent": int(permanent)})
    value = cookie_value(response.headers["Set-Cookie"])
    shown = ours().get("/", headers={"Cookie": f"session={value}"}).text
    assert shown == (EXPECTED_PERMANENT if permanent else EXPECTED)


@pytest.mark.parametrize("permanent", [False, True])
def test_our_cookie_is_read_by_flask(permanent: bool) -> None:
    response = ours().get("/set", {"permanent": int(permanent)})
    value = cookie_value(response.headers["Set-Cookie"])
    client = flask_app().test_client()
    client.set_cookie("session", value)
    assert client.get("/").text == (EXPECTED_PERMANENT if permanent else EXPECTED)


def test_a_user_moves_back_and_forth() -> None:
    value = ""
    counts = []
    for side in ["flask", "ours", "flask", "ours"]:
        if side == "flask":
            client = flask_app().test_client()
            if value:
                client.set_cookie("session", value)
            response = client.get("/incr")
            counts.append(response.text)
            value = cookie_value(response.headers["Set-Cookie"])
        else:

            def incr(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
                session = get_session(environ)
                session["n"] = session.get("n", 0) + 1
                start_response("200 OK", [])
                return [str(session["n"]).encode()]

            app = TestApp(SessionMiddleware(incr, {"secret_key": SECRET}))
            response = app.get("/", headers={"Cookie": f"session={value}"})
            counts.append(response.text)
            value = cookie_value(response.headers["Set-Cookie"])
    assert counts == ["1", "2", "3", "4"]


def test_rotated_keys_interoperate() -> None:
    old_cookie = cookie_value(ours(secret_key="old").get("/set").headers["Set-Cookie"])
    client = flask_app(SECRET_KEY="new", SECRET_KEY_FALLBACKS=["old"]).test_client()
    client.set_cookie("session", old_cookie)
    assert client.get("/").text == EXPECTED
    flask_cookie = cookie_value(client.get("/incr").headers["Set-Cookie"])
    # Flask re-signed with its current key; we read it with that key alone
    shown = ours(secret_key="new").get("/", headers={"Cookie": f"session={flask_cookie}"}).text
    assert "('n', 4)" in shown


def test_different_secret_is_not_accepted() -> None:
    value = cookie_value(flask_app().test_client().get("/set").headers["Set-Cookie"])
    assert ours(secret_key="other").get("/", headers={"Cookie": f"session={value}"}).text == "[]"


def test_our_interface_has_every_hook_of_flasks() -> None:
    from flask.sessions import SecureCookieSessionInterface as FlaskInterface
    from flask.sessions import SessionInterface as FlaskSessionInterface

    for flask_class, our_class in [
        (FlaskSessionInterface, SessionInterface),
        (FlaskInterface, SecureCookieSessionInterface),
    ]:
        hooks = {name for name in vars(flask_class) if not name.startswith("_")}
        hooks |= {name for name in dir(flask_class) if not name.startswith("_")}
        missing = {name for name in hooks if not hasattr(our_class, name)}
        assert missing == set()
    assert SecureCookieSessionInterface.salt == FlaskInterface.salt
    assert SecureCookieSessionInterface.key_derivation == FlaskInterface.key_derivation


# -- our interface inside Flask ---------------------------------------------------------------


@pytest.fixture
def no_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def with_our_interface(**config: t.Any) -> flask.Flask:
    app = flask_app(**config)
    app.session_interface = SecureCookieSessionInterface()  # type: ignore[assignment]
    return app


def test_our_interface_in_flask_works(no_warnings: None) -> None:
    app = with_our_interface()
    client = app.test_client()
    response = client.get("/set", query_string={"permanent": 1})
    header = response.headers["Set-Cookie"]
    assert "Expires=" in header
    assert "SameSite" not in header  # Flask's default config: SESSION_COOKIE_SAMESITE None
    assert response.headers["Vary"] == "Cookie"
    assert client.get("/").text == EXPECTED_PERMANENT
    assert client.get("/incr").text == "4"
    # and its cookie is Flask's own format
    plain = flask_app().test_client()
    plain.set_cookie("session", cookie_value(client.get("/incr").headers["Set-Cookie"]))
    assert "('n', 5)" in plain.get("/").text


def test_our_interface_in_flask_detects_nested_changes(no_warnings: None) -> None:
    client = with_our_interface().test_client()
    assert client.get("/append").text == "[0]"
    assert client.get("/append").text == "[0, 1]"
    assert client.get("/append").text == "[0, 1, 2]"


def test_our_interface_in_flask_sends_nothing_for_untouched(no_warnings: None) -> None:
    app = with_our_interface()

    @app.route("/static-like")
    def untouched() -> str:
        return "x"

    client = app.test_client()
    client.get("/set")
    response = client.get("/static-like")
    assert "Set-Cookie" not in response.headers
    assert "Vary" not in response.headers


def test_our_interface_reads_flask_config_each_request(no_warnings: None) -> None:
    app = with_our_interface()
    client = app.test_client()
    client.get("/set")
    assert client.get("/").text == EXPECTED
    app.config["SECRET_KEY"] = "rotated"
    assert client.get("/").text == "[]"
    app.config["SECRET_KEY_FALLBACKS"] = [SECRET]
    assert client.get("/").text == EXPECTED
    app.config.update(
        SESSION_COOKIE_NAME="renamed",
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=False,
        SESSION_COOKIE_PATH="/p",
    )
    header = client.get("/incr").headers["Set-Cookie"]
    assert header.startswith("renamed=")
    assert "SameSite=Strict" in header
    assert "HttpOnly" not in header
    assert "Path=/p" in header


def test_our_interface_returns_none_without_secret_key(no_warnings: None) -> None:
    app = with_our_interface(SECRET_KEY=None)
    interface = SecureCookieSessionInterface()
    request = Request(EnvironBuilder("/").get_environ())
    assert interface.open_session(app, request) is None
    assert interface.open_session(flask_app(), request) is not None

    @app.route("/write")
    def write() -> str:
        flask.session["x"] = 1
        return "unreachable"

    app.config["PROPAGATE_EXCEPTIONS"] = True
    client = app.test_client()
    response = client.get("/")
    assert response.text == "[]"
    assert "Set-Cookie" not in response.headers
    with pytest.raises(RuntimeError, match="no secret key"):
        client.get("/write")


def test_flask_uses_our_null_session(no_warnings: None) -> None:
    app = with_our_interface(SECRET_KEY=None)
    seen: list[type] = []

    @app.route("/type")
    def session_type() -> str:
        seen.append(type(flask.session._get_current_object()))  # type: ignore[attr-defined]
        return ""

    app.test_client().get("/type")
    assert seen == [NullSession]


def test_flask_session_transaction_with_our_interface(no_warnings: None) -> None:
    client = with_our_interface().test_client()
    with client.session_transaction() as session:
        assert isinstance(session, SecureCookieSession)
        session["n"] = 41
    assert client.get("/incr").text == "42"


def test_flask_max_cookie_size_is_respected(no_warnings: None) -> None:
    app = with_our_interface(MAX_COOKIE_SIZE=100)
    app.config["PROPAGATE_EXCEPTIONS"] = True
    from wsgi_sessions import SessionCookieTooLarge

    with pytest.raises(SessionCookieTooLarge):
        app.test_client().get("/set")
