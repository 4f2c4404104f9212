"""Flask (a test dependency only): cookies move both ways, and our interface
works as a Flask app's ``session_interface``."""

from __future__ import annotations

import typing as t
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from uuid import UUID

import flask
import pytest
from markupsafe import Markup
from webtest import TestApp
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from cookies import parse_set_cookie
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
    name, value, _ = parse_set_cookie(header)
    assert name == "session"
    return value


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


# -- Flask 3.1's own session tests (in Flask's test_basic.py), as behaviour ------------------------
# Each test below checks what one of Flask's session tests checks, with our interface as the
# app's session_interface; the Flask test's name is given in the docstring.


class Recording(SecureCookieSessionInterface):
    """Our interface, noting each session's flags as they are after it was saved."""

    def __init__(self) -> None:
        self.saved: list[tuple[bool, bool]] = []

    def save_session(self, app: t.Any, session: t.Any, response: t.Any) -> None:
        super().save_session(app, session, response)
        self.saved.append((session.accessed, session.modified))


def flask_with(interface: SessionInterface | None = None, **config: t.Any) -> flask.Flask:
    """A bare Flask app in testing mode with our interface (Flask's test fixture)."""
    app = flask.Flask(__name__)
    app.config.update({"TESTING": True, "SECRET_KEY": "flask test key", **config})
    app.session_interface = interface or SecureCookieSessionInterface()  # type: ignore[assignment]
    return app


def test_an_untouched_session_is_not_accessed_even_with_a_cookie(no_warnings: None) -> None:
    """test_session_accessed: ``accessed`` is True exactly when the view used the
    session, ``modified`` when it wrote; ``Vary: Cookie`` follows ``accessed``."""
    interface = Recording()
    app = flask_with(interface)

    @app.post("/")
    def store() -> str:
        flask.session["value"] = flask.request.form["value"]
        return "stored"

    @app.get("/")
    def show() -> str:
        return str(flask.session.get("value", "nothing"))

    @app.get("/untouched")
    def untouched() -> str:
        return ""

    client = app.test_client()
    expected = [
        (client.get("/untouched"), (False, False), ""),
        (client.post("/", data={"value": "42"}), (True, True), "stored"),
        (client.get("/"), (True, False), "42"),
        (client.get("/untouched"), (False, False), ""),  # a valid cookie, never read
    ]
    for (response, flags, text), saved in zip(expected, interface.saved):
        assert response.text == text
        assert saved == flags, text
        assert ("cookie" in response.vary) is flags[0]


def test_an_invalid_samesite_fails_when_the_cookie_is_written(no_warnings: None) -> None:
    """test_session_using_samesite_attribute: Flask's config is not validated at
    start-up, so a bad value set later is a ValueError when the cookie is set."""
    app = flask_with()

    @app.route("/")
    def write() -> str:
        flask.session["n"] = 1
        return ""

    client = app.test_client()
    app.config["SESSION_COOKIE_SAMESITE"] = "sometimes"
    with pytest.raises(ValueError, match="SameSite"):
        client.get("/")
    for value, attribute in [(None, None), ("Strict", "samesite=strict"), ("lax", "samesite=lax")]:
        app.config["SESSION_COOKIE_SAMESITE"] = value
        header = client.get("/").headers["Set-Cookie"].lower()
        assert (attribute in header) if attribute else ("samesite" not in header)


def test_the_cookie_path_is_the_application_root(no_warnings: None) -> None:
    """test_session_path, test_session_using_application_root."""
    app = flask_with(APPLICATION_ROOT="/shop")

    @app.route("/")
    def write() -> str:
        flask.session["n"] = 1
        return ""

    inner = app.wsgi_app

    def mounted(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ["SCRIPT_NAME"] = "/shop"
        return inner(environ, start_response)

    assert "path=/shop" in app.test_client().get("/").headers["Set-Cookie"].lower()
    app.wsgi_app = mounted  # type: ignore[method-assign]
    assert "path=/shop" in app.test_client().get("/").headers["Set-Cookie"].lower()


def test_every_cookie_setting_is_on_the_set_and_the_delete(no_warnings: None) -> None:
    """test_session_using_session_settings."""
    app = flask_with(
        SERVER_NAME="www.example.test:8080",
        APPLICATION_ROOT="/app",
        SESSION_COOKIE_DOMAIN=".example.test",
        SESSION_COOKIE_HTTPONLY=False,
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_PARTITIONED=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/",
    )

    @app.route("/")
    def write() -> str:
        flask.session["n"] = 1
        return ""

    @app.route("/forget")
    def forget() -> str:
        flask.session.pop("n", None)
        return ""

    client = app.test_client()
    for path in ("/", "/forget"):
        header = client.get(path, "http://www.example.test:8080/app/").headers["Set-Cookie"]
        attributes = set(parse_set_cookie(header)[2])
        assert {"domain", "path", "secure", "samesite", "partitioned"} <= attributes, path
        assert "httponly" not in attributes
        assert "example.test" in header
    assert header.startswith("session=;")


def test_without_a_secret_key_reads_work_and_writes_explain(no_warnings: None) -> None:
    """test_missing_session."""
    app = flask_with(SECRET_KEY=None)
    with app.test_request_context():
        assert flask.session.get("anything") is None
        with pytest.raises(RuntimeError, match="session is unavailable"):
            flask.session["n"] = 1
        with pytest.raises(RuntimeError, match="session is unavailable"):
            flask.session.pop("n")


def test_fallback_keys_follow_a_rotation(no_warnings: None) -> None:
    """test_session_secret_key_fallbacks."""
    app = flask_with()

    @app.post("/")
    def write() -> str:
        flask.session["a"] = 1
        return ""

    @app.get("/")
    def show() -> dict[str, t.Any]:
        return dict(flask.session)

    client = app.test_client()
    app.secret_key, app.config["SECRET_KEY_FALLBACKS"] = "key 0", ["key -1", "key -2"]
    client.post("/")
    assert client.get("/").json == {"a": 1}
    app.secret_key = "unrelated"
    assert client.get("/").json == {}
    app.secret_key, app.config["SECRET_KEY_FALLBACKS"] = "key +1", ["key 0", "key -1"]
    assert client.get("/").json == {"a": 1}


def test_only_a_permanent_cookie_expires(no_warnings: None) -> None:
    """test_session_expiration."""
    app = flask_with()
    permanent = [True]

    @app.route("/")
    def write() -> str:
        flask.session["n"] = 1
        flask.session.permanent = permanent[0]
        return ""

    @app.route("/permanent")
    def is_permanent() -> str:
        return str(flask.session.permanent)

    client = app.test_client()
    header = client.get("/").headers["Set-Cookie"]
    expires = parsedate_to_datetime(parse_set_cookie(header)[2]["expires"])
    assert expires.date() == (datetime.now(timezone.utc) + app.permanent_session_lifetime).date()
    assert client.get("/permanent").text == "True"
    permanent[0] = False
    assert "expires=" not in client.get("/").headers["Set-Cookie"].lower()


def test_a_change_in_after_request_is_saved(no_warnings: None) -> None:
    """test_session_stored_last."""
    app = flask_with()

    @app.after_request
    def late(response: flask.Response) -> flask.Response:
        flask.session["late"] = 42
        return response

    @app.route("/")
    def show() -> str:
        return repr(flask.session.get("late"))

    client = app.test_client()
    assert client.get("/").text == "None"
    assert client.get("/").text == "42"


@pytest.mark.parametrize(("permanent", "refresh"), [(True, True), (True, False), (False, True)])
def test_a_read_re_sends_only_a_permanent_cookie_with_refresh_on(
    no_warnings: None, permanent: bool, refresh: bool
) -> None:
    """test_session_cookie_setting."""
    app = flask_with(SESSION_REFRESH_EACH_REQUEST=refresh)

    @app.route("/bump")
    def bump() -> str:
        flask.session["n"] = flask.session.get("n", 0) + 1
        flask.session.permanent = permanent
        return str(flask.session["n"])

    @app.route("/read")
    def read() -> str:
        return str(flask.session.get("n", 0))

    client = app.test_client()
    assert [client.get("/bump").text for _ in range(3)] == ["1", "2", "3"]
    response = client.get("/read")
    assert response.text == "3"
    assert ("Set-Cookie" in response.headers) is (permanent and refresh)


def test_every_use_of_the_session_varies_on_cookie_once(no_warnings: None) -> None:
    """test_session_vary_cookie, test_session_refresh_vary."""
    app = flask_with()
    uses: dict[str, t.Callable[[], object]] = {
        "/set": lambda: flask.session.__setitem__("k", "v"),
        "/get": lambda: flask.session.get("k"),
        "/getitem": lambda: flask.session["k"],
        "/setdefault": lambda: flask.session.setdefault("k", "default"),
        "/clear": lambda: flask.session.clear(),  # noqa: PLW0108 - the proxy needs a request
    }
    for path, use in uses.items():
        app.add_url_rule(path, path, lambda use=use: str(use()) and "")

    @app.route("/vary-already")
    def vary_already() -> flask.Response:
        response = flask.Response()
        response.vary.update(("Accept-Encoding", "Accept-Language"))
        flask.session["k"] = "v"
        return response

    @app.route("/login")
    def login() -> str:
        flask.session["user"] = 1
        flask.session.permanent = True
        return ""

    @app.route("/untouched")
    def untouched() -> str:
        return ""

    client = app.test_client()
    for path in uses:
        assert client.get(path).headers.getlist("Vary") == ["Cookie"], path
    vary = client.get("/vary-already").headers.getlist("Vary")
    assert vary == ["Accept-Encoding, Accept-Language, Cookie"]
    client.get("/clear")
    assert "Vary" not in client.get("/untouched").headers
    client.get("/login")
    # the permanent cookie is re-sent, so the response varies though the view ignored it
    assert client.get("/untouched").headers.getlist("Vary") == ["Cookie"]


def test_flashing_marks_the_session_modified(no_warnings: None) -> None:
    """test_flashes, test_extended_flashing."""
    app = flask_with()

    @app.route("/flash")
    def flash() -> str:
        flask.flash("plain")
        flask.flash(Markup("<em>marked</em>"), "warning")
        return ""

    @app.route("/show")
    def show() -> str:
        return repr(flask.get_flashed_messages(with_categories=True))

    with app.test_request_context():
        assert not flask.session.modified
        flask.flash("one")
        flask.session.modified = False
        flask.flash("two")
        assert flask.session.modified
        assert flask.get_flashed_messages() == ["one", "two"]
    client = app.test_client()
    client.get("/flash")
    shown = "[('message', 'plain'), ('warning', Markup('<em>marked</em>'))]"
    assert client.get("/show").text == shown
    assert client.get("/show").text == "[]"
