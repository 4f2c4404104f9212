"""Flask with our interface as app.session_interface: flash, the test client's
session_transaction(), and the session's own flash/CSRF helpers."""

from __future__ import annotations

import flask
import flask_app
import pytest
from flask.testing import FlaskClient

from wsgi_sessions import SecureCookieSession, SecureCookieSessionInterface, parse_settings

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
