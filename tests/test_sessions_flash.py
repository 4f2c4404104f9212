"""Flash messages and CSRF tokens on every session object (SessionMixin)."""

from __future__ import annotations

import typing as t

import pytest
from webtest import TestApp

from wsgi_sessions import NullSession, SecureCookieSession, SessionMiddleware, get_session
from wsgi_sessions.sessions import CSRF_KEY, FLASH_KEY


def test_flash_then_pop_returns_messages_once_in_order() -> None:
    session = SecureCookieSession()
    session.flash("one")
    session.flash("two")
    assert session.pop_flash() == ["one", "two"]
    assert session.pop_flash() == []
    assert FLASH_KEY not in session


def test_queues_are_separate() -> None:
    session = SecureCookieSession()
    session.flash("saved", queue="info")
    session.flash("careful", queue="warning")
    session.flash("plain")
    assert session.peek_flash("warning") == ["careful"]
    assert session.pop_flash("info") == ["saved"]
    assert session.pop_flash("info") == []
    assert session.pop_flash() == ["plain"]
    assert session.pop_flash("warning") == ["careful"]


def test_peek_leaves_messages_and_does_not_modify() -> None:
    session = SecureCookieSession({FLASH_KEY: [("", "hello")]})
    assert session.peek_flash() == ["hello"]
    assert session.peek_flash() == ["hello"]
    assert session.modified is False
    assert session.accessed is True


def test_pop_of_an_empty_queue_does_not_modify() -> None:
    session = SecureCookieSession({FLASH_KEY: [("info", "kept")]})
    assert session.pop_flash("other") == []
    assert session.modified is False
    assert session.peek_flash("info") == ["kept"]


def test_pop_modifies_the_session() -> None:
    session = SecureCookieSession({FLASH_KEY: [("", "x")]})
    session.pop_flash()
    assert session.modified is True


def test_allow_duplicate_false_skips_a_message_already_queued() -> None:
    session = SecureCookieSession()
    session.flash("same", allow_duplicate=False)
    session.flash("same", allow_duplicate=False)
    session.flash("same", queue="other", allow_duplicate=False)
    assert session.pop_flash() == ["same"]
    assert session.pop_flash("other") == ["same"]
    session.flash("twice")
    session.flash("twice")
    assert session.pop_flash() == ["twice", "twice"]


def test_csrf_token_is_stable_until_renewed() -> None:
    session = SecureCookieSession()
    token = session.csrf_token()
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    assert session.csrf_token() == token
    assert session[CSRF_KEY] == token
    renewed = session.new_csrf_token()
    assert renewed != token
    assert session.csrf_token() == renewed


@pytest.mark.parametrize("bad", [None, "", "wrong", 123, b"bytes", "é" * 43])
def test_check_csrf_rejects_anything_but_the_token(bad: object) -> None:
    session = SecureCookieSession()
    token = session.csrf_token()
    assert session.check_csrf(token) is True
    assert session.check_csrf(bad) is False
    assert session.check_csrf(token[:-1]) is False


def test_check_csrf_without_a_token_in_the_session_is_false_and_writes_nothing() -> None:
    session = SecureCookieSession()
    assert session.check_csrf("anything") is False
    assert session.check_csrf("") is False
    assert session.modified is False
    assert CSRF_KEY not in session


def test_null_session_reads_empty_and_refuses_to_flash() -> None:
    session = NullSession()
    assert session.peek_flash() == []
    assert session.pop_flash() == []
    assert session.check_csrf("x") is False
    with pytest.raises(RuntimeError, match="secret key"):
        session.flash("hi")
    with pytest.raises(RuntimeError, match="secret key"):
        session.csrf_token()


def _flash_app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
    session = get_session(environ)
    path = environ["PATH_INFO"]
    if path == "/flash":
        session.flash("hello <you>", queue="info")
        body = ""
    elif path == "/token":
        body = session.csrf_token()
    elif path == "/check":
        body = str(session.check_csrf(environ.get("HTTP_X_CSRF_TOKEN")))
    else:
        body = "|".join(session.pop_flash("info"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]


@pytest.mark.parametrize("encryption", [False, True], ids=["signed", "encrypted"])
def test_flash_and_csrf_survive_the_cookie_round_trip(encryption: bool) -> None:
    settings = {"secret_key": "k" * 32, "cookie_encryption": encryption}
    client = TestApp(SessionMiddleware(_flash_app, settings))
    client.get("/flash")
    assert client.get("/show").text == "hello <you>"
    assert client.get("/show").text == ""
    token = client.get("/token").text
    assert client.get("/token").text == token
    assert client.get("/check", headers={"X-CSRF-Token": token}).text == "True"
    assert client.get("/check", headers={"X-CSRF-Token": token + "x"}).text == "False"
    assert client.get("/check").text == "False"


def test_flash_is_compatible_with_flask() -> None:
    flask = pytest.importorskip("flask")
    from wsgi_sessions import SecureCookieSessionInterface

    app = flask.Flask(__name__)
    app.secret_key = "k" * 32
    app.session_interface = SecureCookieSessionInterface()

    @app.route("/ours")
    def ours() -> str:
        flask.session.flash("from us", queue="message")
        return ""

    @app.route("/flask")
    def flask_flash() -> str:
        flask.flash("from flask", "warning")
        return ""

    @app.route("/flask-read")
    def flask_read() -> str:
        return repr(flask.get_flashed_messages(with_categories=True))

    @app.route("/ours-read")
    def ours_read() -> str:
        return "|".join(flask.session.pop_flash("warning"))

    client = app.test_client()
    client.get("/ours")
    assert client.get("/flask-read").text == "[('message', 'from us')]"
    client.get("/flask")
    assert client.get("/ours-read").text == "from flask"
    assert client.get("/ours-read").text == ""
