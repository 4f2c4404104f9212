"""Flask with our interface as app.session_interface: flash, the test client's
session_transaction(), and the session's own flash/CSRF helpers."""

from __future__ import annotations

import flask
import flask_app
import pytest
from flask.testing import FlaskClient

from wsgi_sessions import (
    EncryptedCookieSessionInterface,
    SecureCookieSession,
    SecureCookieSessionInterface,
    parse_settings,
)

SECRET = "flask-test-" + "k" * 32


def make_client() -> FlaskClient:
    return flask_app.create_app({"SECRET_KEY": SECRET}).test_client()


def test_the_example_uses_our_interface() -> None:
    app = flask_app.create_app({"SECRET_KEY": SECRET})
    assert isinstance(app.session_interface, SecureCookieSessionInterface)


def test_session_transaction_reads_and_writes_our_session() -> None:
    client = make_client()
    with client.session_transaction() as session:
        assert isinstance(session, SecureCookieSession)
        session["user"] = "Grace"
        session["visits"] = 41
    page = client.get("/").text
    assert 'id="user">Grace<' in page
    assert 'id="visits">42<' in page
    with client.session_transaction() as session:
        assert session["visits"] == 42


def test_flask_flash_lands_in_our_session_and_is_shown_once() -> None:
    client = make_client()
    with client.session_transaction() as session:
        token = session.csrf_token()
    response = client.post("/login", data={"name": "Ada", "csrf_token": token})
    assert response.status_code == 303
    with client.session_transaction() as session:
        assert session["_flashes"] == [("message", "Welcome, Ada!")]
    assert '<p class="flash">Welcome, Ada!</p>' in client.get("/").text
    assert "Welcome" not in client.get("/").text


def test_the_csrf_check_refuses_a_post_without_the_token() -> None:
    client = make_client()
    assert client.post("/login", data={"name": "Mallory"}).status_code == 400
    with client.session_transaction() as session:
        assert "user" not in session


def test_flask_without_a_secret_key_gets_our_null_session_message() -> None:
    app = flask.Flask(__name__)
    app.session_interface = SecureCookieSessionInterface()

    @app.get("/")
    def index() -> str:
        flask.session.flash("hi")
        return ""

    app.testing = True
    with pytest.raises(RuntimeError, match="no secret key was set"):
        app.test_client().get("/")


def test_a_flask_app_takes_parse_settings_as_its_config() -> None:
    """The README's way to configure Flask from a shared ini section."""
    ini_settings = {"session.secret_key": SECRET, "session.cookie_name": "sid", "debug": "1"}
    app = flask.Flask(__name__)
    app.config.update(parse_settings(ini_settings, prefix="session."))
    app.session_interface = SecureCookieSessionInterface()

    @app.route("/")
    def index() -> str:
        flask.session["n"] = flask.session.get("n", 0) + 1
        return str(flask.session["n"])

    client = app.test_client()
    response = client.get("/")
    assert response.headers["Set-Cookie"].startswith("sid=")
    assert "SameSite=Lax" in response.headers["Set-Cookie"]
    assert client.get("/").text == "2"


def encrypted_flask_app(**config: object) -> flask.Flask:
    """A Flask app whose only change is the encrypted interface."""
    app = flask.Flask(__name__)
    app.config.update({"SECRET_KEY": SECRET, **config})
    app.session_interface = EncryptedCookieSessionInterface()

    @app.route("/login/<name>")
    def login(name: str) -> str:
        flask.session["user"] = name
        flask.session.permanent = True
        flask.flash(f"Welcome, {name}!")
        return flask.session.csrf_token()  # type: ignore[attr-defined, no-any-return]

    @app.route("/")
    def index() -> str:
        messages = flask.get_flashed_messages()
        return f"{flask.session.get('user')}|{'/'.join(messages)}"

    @app.post("/check")
    def check() -> str:
        return str(flask.session.check_csrf(flask.request.form.get("csrf_token")))  # type: ignore[attr-defined]

    return app


def test_the_encrypted_interface_is_a_flask_drop_in() -> None:
    client = encrypted_flask_app(SESSION_COOKIE_NAME="sid").test_client()
    response = client.get("/login/Grace")
    token = response.text
    header = response.headers["Set-Cookie"]
    assert header.startswith("sid=")
    assert "Expires=" in header  # permanent, with Flask's lifetime
    value = header.split(";", 1)[0].removeprefix("sid=")
    assert "Grace" not in value and "." not in value  # sealed, not base64 of JSON
    assert "private" in response.headers["Cache-Control"]
    assert client.get("/").text == "Grace|Welcome, Grace!"
    assert client.get("/").text == "Grace|"  # the flash was shown once
    assert client.post("/check", data={"csrf_token": token}).text == "True"
    assert client.post("/check", data={"csrf_token": token + "x"}).text == "False"
    with client.session_transaction() as session:
        assert isinstance(session, SecureCookieSession)
        assert session["user"] == "Grace"
        session["user"] = "Ada"
    assert client.get("/").text == "Ada|"
    # Flask's config is followed: another cookie name does not open this token
    renamed = encrypted_flask_app(SESSION_COOKIE_NAME="other").test_client()
    renamed.set_cookie("other", value)
    assert renamed.get("/").text == "None|"


def test_the_encrypted_interface_follows_flask_key_rotation() -> None:
    old = encrypted_flask_app(SECRET_KEY="old-flask-key").test_client()
    old.get("/login/Grace")
    cookie = old.get_cookie("session")
    assert cookie is not None
    rotated = encrypted_flask_app(
        SECRET_KEY="new-flask-key", SECRET_KEY_FALLBACKS=["old-flask-key"]
    ).test_client()
    rotated.set_cookie("session", cookie.value)
    response = rotated.get("/")
    assert response.text == "Grace|Welcome, Grace!"
    resealed = rotated.get_cookie("session")
    assert resealed is not None
    assert resealed.value != cookie.value
    current_only = encrypted_flask_app(SECRET_KEY="new-flask-key").test_client()
    current_only.set_cookie("session", resealed.value)
    assert current_only.get("/").text == "Grace|"
    current_only.set_cookie("session", cookie.value)
    assert current_only.get("/").text == "None|"


@pytest.mark.parametrize(
    "interface_class", [SecureCookieSessionInterface, EncryptedCookieSessionInterface]
)
def test_a_flask_response_that_sets_or_deletes_the_cookie_is_private(
    interface_class: type[SecureCookieSessionInterface],
) -> None:
    app = flask.Flask(__name__)
    app.secret_key = SECRET
    app.session_interface = interface_class()

    def shared(body: str) -> flask.Response:
        response = flask.make_response(body)
        response.cache_control.public = True
        response.cache_control.max_age = 600
        response.cache_control.s_maxage = 3600
        return response

    @app.route("/write")
    def write() -> flask.Response:
        flask.session["n"] = 1
        return shared("written")

    @app.route("/read")
    def read() -> flask.Response:
        return shared(str(flask.session.get("n")))

    @app.route("/clear")
    def clear() -> flask.Response:
        flask.session.clear()
        return shared("cleared")

    client = app.test_client()
    written = client.get("/write")
    assert written.headers.getlist("Set-Cookie")
    assert written.cache_control.private is True
    assert written.cache_control.public is False
    assert written.cache_control.s_maxage is None
    assert written.headers.getlist("Cache-Control") == ["max-age=600, private"]
    assert written.headers["Vary"] == "Cookie"
    only_read = client.get("/read")
    assert only_read.text == "1"
    assert only_read.cache_control.public is True  # no cookie on it: the app's own
    cleared = client.get("/clear")
    assert "Max-Age=0" in cleared.headers["Set-Cookie"]
    assert cleared.headers.getlist("Cache-Control") == ["max-age=600, private"]
    app.config["SESSION_COOKIE_CACHE_CONTROL"] = False
    assert client.get("/write").cache_control.public is True
