"""The WSGI plumbing: session in the environ, exact pass-through, threads."""

from __future__ import annotations

import json
import logging
import sys
import threading
import typing as t
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta

import pytest
from webtest import TestApp
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from cookies import parse_set_cookie
from wsgi_sessions import (
    EncryptedCookieSessionInterface,
    NullSession,
    SecureCookieSession,
    SecureCookieSessionInterface,
    ServerSideSessionInterface,
    SessionConfig,
    SessionMiddleware,
    SessionStoreError,
    _wsgi,
    get_session,
)
from wsgi_sessions.middleware import default_interface
from wsgi_sessions.sessions import SessionMixin
from wsgi_sessions.stores import MemoryStore

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

SECRET = {"secret_key": "middleware-test-secret"}


class Recorder:
    """A start_response that records what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[tuple[str, str]], t.Any]] = []
        self.written: list[bytes] = []

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
    ) -> t.Callable[[bytes], object]:
        self.calls.append((status, headers, exc_info))
        return self.written.append


def environ(cookie: str | None = None, path: str = "/") -> WSGIEnvironment:
    headers = {"Cookie": cookie} if cookie else {}
    return EnvironBuilder(path, headers=headers).get_environ()


class Body:
    """A body iterable that notes whether the server closed it."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        self.closed = True


# -- the session in the environ ----------------------------------------------------------


def test_get_session_returns_the_requests_session() -> None:
    seen: list[SessionMixin] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        session = get_session(environ)
        assert session is environ["wsgi_sessions.session"]
        seen.append(session)
        start_response("200 OK", [])
        return [b""]

    TestApp(SessionMiddleware(app, SECRET)).get("/")
    TestApp(SessionMiddleware(app, SECRET)).get("/")
    assert [type(session) for session in seen] == [SecureCookieSession] * 2
    assert seen[0] is not seen[1]


def test_get_session_without_middleware_is_a_clear_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="SessionMiddleware") as info:
        get_session({})
    assert "wsgi_sessions.session" in str(info.value)
    with pytest.raises(RuntimeError, match="'mine'"):
        get_session({"wsgi_sessions.session": SecureCookieSession()}, "mine")


def test_environ_key_setting() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        get_session(environ, "my.session")["n"] = 1
        assert "wsgi_sessions.session" not in environ
        start_response("200 OK", [])
        return [b""]

    response = TestApp(SessionMiddleware(app, {**SECRET, "environ_key": "my.session"})).get("/")
    assert "session=" in response.headers["Set-Cookie"]


def test_no_secret_key_gives_a_null_session_and_no_headers() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        session = get_session(environ)
        assert isinstance(session, NullSession)
        assert session.get("user") is None
        if environ["PATH_INFO"] == "/write":
            session["user"] = "ada"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"read"]

    client = TestApp(SessionMiddleware(app))
    response = client.get("/")
    assert response.text == "read"
    assert "Set-Cookie" not in response.headers
    assert "Vary" not in response.headers
    with pytest.raises(RuntimeError, match="no secret key") as info:
        client.get("/write")
    assert "the setting 'secret_key'" in str(info.value)  # as this user writes it
    assert "Flask" not in str(info.value)


def secure_cookie_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    get_session(environ)["n"] = 1
    start_response("200 OK", [])
    return [b""]


@pytest.fixture
def secure_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Callable[[], list[str]]:
    """The warnings about Secure cookies on plain HTTP, this process having sent none yet."""
    monkeypatch.setattr(_wsgi, "_warned_secure_over_http", False)

    def messages() -> list[str]:
        return [r.getMessage() for r in caplog.records if "plain-HTTP" in r.getMessage()]

    caplog.set_level(logging.WARNING, logger="wsgi_sessions")
    return messages


@pytest.mark.parametrize("store", [None, "memory://"], ids=["cookie", "server-side"])
def test_a_secure_cookie_on_plain_http_is_logged_once(
    secure_warning: Callable[[], list[str]], store: str | None
) -> None:
    settings = {**SECRET, "cookie_secure": True, "store": store}
    client = TestApp(SessionMiddleware(secure_cookie_app, settings))
    client.get("/", extra_environ={"HTTP_HOST": "staging.example.test:8080"})
    client.get("/", extra_environ={"HTTP_HOST": "staging.example.test:8080"})
    (message,) = secure_warning()  # once per process, not once per request
    assert "'staging.example.test'" in message
    assert "cookie_secure" in message


@pytest.mark.parametrize(
    "environ",
    [
        {"wsgi.url_scheme": "https", "HTTP_HOST": "example.test"},
        {"HTTP_HOST": "localhost:8000"},
        {"HTTP_HOST": "127.0.0.1:8000"},
        {"HTTP_HOST": "[::1]:8000"},
        {"HTTP_HOST": "app.localhost"},
        {"HTTP_HOST": "example.test", "HTTP_X_FORWARDED_PROTO": "https"},
        {"HTTP_HOST": "example.test", "HTTP_FORWARDED": "for=1.2.3.4; proto=https"},
    ],
    ids=["https", "localhost", "127.0.0.1", "::1", "dot-localhost", "x-forwarded", "forwarded"],
)
def test_a_secure_cookie_where_the_browser_keeps_it_is_not_logged(
    secure_warning: Callable[[], list[str]], environ: dict[str, str]
) -> None:
    client = TestApp(SessionMiddleware(secure_cookie_app, {**SECRET, "cookie_secure": True}))
    assert "Secure" in client.get("/", extra_environ=environ).headers["Set-Cookie"]
    assert secure_warning() == []


def test_an_insecure_cookie_or_no_cookie_on_plain_http_is_not_logged(
    secure_warning: Callable[[], list[str]],
) -> None:
    host = {"HTTP_HOST": "staging.example.test"}
    TestApp(SessionMiddleware(secure_cookie_app, SECRET)).get("/", extra_environ=host)

    def untouched(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return [b""]

    secure = SessionMiddleware(untouched, {**SECRET, "cookie_secure": True})
    TestApp(secure).get("/", extra_environ=host)
    assert secure_warning() == []


@pytest.mark.parametrize(
    ("prefix", "named"), [("", "'secret_key'"), ("session.", "'session.secret_key'")]
)
def test_no_secret_key_logs_one_warning_at_start_up(
    caplog: pytest.LogCaptureFixture, prefix: str, named: str
) -> None:
    with caplog.at_level(logging.DEBUG, logger="wsgi_sessions"):
        middleware = SessionMiddleware(
            error_page_app(lambda session: session.get("user"), twice=False),
            {f"{prefix}cookie_secure": "true"},
            prefix=prefix,
        )
        client = TestApp(middleware)
        client.get("/")  # requests add nothing
        client.get("/")
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.name == "wsgi_sessions"
    message = record.getMessage()
    assert named in message
    assert "wsgi-sessions secret" in message
    if not prefix:
        assert "session." not in message


def test_a_secret_key_logs_nothing_at_start_up(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="wsgi_sessions"):
        SessionMiddleware(lambda e, s: [], SECRET)
    assert caplog.records == []


def test_middleware_shows_its_session_config() -> None:
    middleware = SessionMiddleware(lambda e, s: [], {**SECRET, "permanent_lifetime": "2h"})
    assert isinstance(middleware.session_config, SessionConfig)
    assert middleware.config is middleware.session_config.config
    assert middleware.secret_key == "middleware-test-secret"
    assert middleware.permanent_session_lifetime == timedelta(hours=2)
    middleware.config["PERMANENT_SESSION_LIFETIME"] = timedelta(minutes=5)
    assert middleware.permanent_session_lifetime == timedelta(minutes=5)
    middleware.config["SECRET_KEY"] = "other"
    assert middleware.secret_key == "other"
    middleware.config = {**middleware.config, "SECRET_KEY": "third"}
    assert middleware.session_config.secret_key == "third"


def test_the_interface_gets_the_session_config_as_its_app() -> None:
    seen: list[t.Any] = []

    class Recording(SecureCookieSessionInterface):
        def open_session(self, app: t.Any, request: t.Any) -> t.Any:
            seen.append(app)
            return super().open_session(app, request)

        def save_session(self, app: t.Any, session: t.Any, response: t.Any) -> None:
            seen.append(app)
            super().save_session(app, session, response)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        get_session(environ)["n"] = 1
        start_response("200 OK", [])
        return [b""]

    middleware = SessionMiddleware(app, SECRET, interface=Recording())
    middleware.config["SESSION_COOKIE_NAME"] = "changed"  # read on the next request
    assert TestApp(middleware).get("/").headers["Set-Cookie"].startswith("changed=")
    assert seen == [middleware.session_config] * 2


def test_prefix_reads_an_ini_section() -> None:
    settings = {"session.secret_key": "k", "session.cookie_name": "sid", "debug": "true"}
    middleware = SessionMiddleware(lambda e, s: [], settings, prefix="session.")
    assert middleware.config["SESSION_COOKIE_NAME"] == "sid"
    assert middleware.secret_key == "k"


def test_misconfiguration_fails_at_start_up() -> None:
    with pytest.raises(ValueError, match="cookie_nmae"):
        SessionMiddleware(lambda e, s: [], {"cookie_nmae": "x"})
    with pytest.raises(TypeError, match="WSGI callable"):
        SessionMiddleware(None, SECRET)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="SessionInterface"):
        SessionMiddleware(lambda e, s: [], SECRET, interface=object())  # type: ignore[arg-type]


def test_interface_argument_is_used() -> None:
    class Renamed(SecureCookieSessionInterface):
        def get_cookie_name(self, app: t.Any) -> str:
            return "renamed"

    interface = Renamed()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        get_session(environ)["n"] = 1
        start_response("200 OK", [])
        return [b""]

    middleware = SessionMiddleware(app, SECRET, interface=interface)
    assert middleware.session_interface is interface
    assert TestApp(middleware).get("/").headers["Set-Cookie"].startswith("renamed=")


def test_default_interface_is_the_signed_cookie() -> None:
    middleware = SessionMiddleware(lambda e, s: [], SECRET)
    assert type(middleware.session_interface) is SecureCookieSessionInterface


def test_default_interface_follows_the_store_setting() -> None:
    assert type(default_interface(SessionConfig(SECRET))) is SecureCookieSessionInterface
    interface = default_interface(SessionConfig({**SECRET, "store": "memory://"}))
    assert type(interface) is ServerSideSessionInterface


# -- pass-through --------------------------------------------------------------------------


@pytest.mark.parametrize("touch", [False, True])
@pytest.mark.parametrize("status", ["200 OK", "201 Created", "404 Not Found", "302 Found"])
def test_status_headers_and_body_pass_through(status: str, touch: bool) -> None:
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("X-Custom", "1"),
        ("Set-Cookie", "other=1; Path=/"),
        ("X-Custom", "2"),
    ]
    body = Body([b"hello ", b"world"])

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if touch:
            get_session(environ)["n"] = 1
        start_response(status, list(headers))
        return body

    recorder = Recorder()
    result = SessionMiddleware(app, SECRET)(environ(), recorder)
    assert result is body  # the app's iterable itself, not a copy
    ((sent_status, sent_headers, exc_info),) = recorder.calls
    assert sent_status == status
    assert exc_info is None
    if touch:
        assert sent_headers[: len(headers)] == headers
        added = sent_headers[len(headers) :]
        assert added == [
            ("Vary", "Cookie"),
            ("Set-Cookie", added[1][1]),
            ("Cache-Control", "private"),  # a response with a session cookie: no shared cache
        ]
    else:
        assert sent_headers == headers


def test_body_close_is_called() -> None:
    body = Body([b"x"])

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        get_session(environ)["n"] = 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    assert TestApp(SessionMiddleware(app, SECRET)).get("/").text == "x"
    assert body.closed


def test_generator_app_starting_lazily_is_saved_and_closed() -> None:
    closed: list[bool] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        try:
            get_session(environ)["n"] = 1
            start_response("200 OK", [("Content-Type", "text/plain")])
            yield b"chunk1"
            yield b"chunk2"
        finally:
            closed.append(True)

    response = TestApp(SessionMiddleware(app, SECRET)).get("/")
    assert response.text == "chunk1chunk2"
    assert "session=" in response.headers["Set-Cookie"]
    assert closed == [True]


def test_exc_info_is_passed_on() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        get_session(environ)["n"] = 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("boom")
        except ValueError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b"error page"]

    recorder = Recorder()
    body = SessionMiddleware(app, SECRET)(environ(), recorder)
    assert list(body) == [b"error page"]
    first, second = recorder.calls
    assert first[2] is None
    assert second[0] == "500 Internal Server Error"
    exc_info = second[2]
    assert exc_info[0] is ValueError
    assert str(exc_info[1]) == "boom"


class CallLog(MemoryStore):
    """A memory store that notes every call made to it, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __getattribute__(self, name: str) -> t.Any:
        value = super().__getattribute__(name)
        if callable(value) and not name.startswith("_"):
            super().__getattribute__("calls").append(name)
        return value


def error_page_app(action: t.Callable[[SessionMixin], object], twice: bool) -> WSGIApplication:
    """Change the session, start a 200, then (if ``twice``) swap in an error page."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        action(get_session(environ))
        start_response("200 OK", [("Content-Type", "text/plain")])
        if not twice:
            return [b"page"]
        try:
            raise ValueError("boom")
        except ValueError:
            start_response("500 Internal Server Error", [("Vary", "Accept")], sys.exc_info())
        return [b"error page"]

    return app


def session_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers if name in ("Set-Cookie", "Vary")]


def test_a_second_start_response_sends_the_one_saves_headers_again() -> None:
    def login(session: SessionMixin) -> None:
        session["user"] = "ada"

    recorder = Recorder()
    body = SessionMiddleware(error_page_app(login, twice=True), SECRET)(environ(), recorder)
    assert list(body) == [b"error page"]
    (_, first, _), (status, sent, _) = recorder.calls
    assert status == "500 Internal Server Error"
    cookies = [value for name, value in first if name == "Set-Cookie"]
    assert len(cookies) == 1
    assert cookies[0].startswith("session=")
    # The same cookie, and Cookie merged into the error page's own Vary header.
    assert session_headers(sent) == [("Vary", "Accept, Cookie"), ("Set-Cookie", cookies[0])]


def test_a_regenerated_session_is_saved_once_and_its_cookie_sent_with_the_error_page() -> None:
    def login(session: SessionMixin) -> None:
        session["user"] = "ada"
        session.regenerate()  # type: ignore[attr-defined]

    def run(twice: bool) -> tuple[list[str], list[tuple[str, str]], CallLog]:
        store = CallLog()
        client = TestApp(SessionMiddleware(view_app, {**SECRET, "store": store}))
        client.get("/", {"cart": "book"})
        store.calls.clear()
        middleware = SessionMiddleware(error_page_app(login, twice), {**SECRET, "store": store})
        recorder = Recorder()
        cookie = client.cookies["session"]
        list(middleware(environ(cookie=f"session={cookie}"), recorder))
        return store.calls, recorder.calls[-1][1], store

    once_calls, _, _ = run(twice=False)
    calls, sent, store = run(twice=True)
    assert calls == once_calls  # the store was written as by a single save
    cookies = [value for name, value in sent if name == "Set-Cookie"]
    assert len(cookies) == 1, sent
    name, value, _ = parse_set_cookie(cookies[0])
    client = TestApp(SessionMiddleware(view_app, {**SECRET, "store": store}))
    response = client.get("/", headers={"Cookie": f"{name}={value}"})
    assert response.text == "[('cart', 'book'), ('user', 'ada')]"


def test_a_failed_save_is_a_503_for_every_start_response() -> None:
    def touch(session: SessionMixin) -> None:
        session["n"] = 1

    class FailingOnce(FailingInterface):
        def save_session(self, app: t.Any, session: t.Any, response: t.Any) -> None:
            when, self.when = self.when, "never"  # a second save would succeed
            if when == "save":
                raise SessionStoreError("store down")

    app = error_page_app(touch, twice=True)
    recorder = Recorder()
    middleware = SessionMiddleware(app, SECRET, interface=FailingOnce("save"))
    body = middleware(environ(), recorder)
    assert b"".join(body).startswith(b"503")
    assert [status for status, _, _ in recorder.calls] == ["503 Service Unavailable"] * 2
    for _, headers, _ in recorder.calls:
        assert "Set-Cookie" not in dict(headers)


def view_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Add the query's pairs to the session; show the session."""
    session = get_session(environ)
    session.update(Request(environ).args.items())
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [repr(sorted(session.items())).encode()]


def test_write_callable_works() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        get_session(environ)["n"] = 1
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"returned"]

    response = TestApp(SessionMiddleware(app, SECRET)).get("/")
    assert response.text == "written returned"
    assert "session=" in response.headers["Set-Cookie"]

    recorder = Recorder()
    body = SessionMiddleware(app, SECRET)(environ(), recorder)
    assert recorder.written == [b"written "]
    assert list(body) == [b"returned"]


def test_app_exception_propagates() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        get_session(environ)["n"] = 1
        raise KeyError("from the app")

    recorder = Recorder()
    with pytest.raises(KeyError, match="from the app"):
        SessionMiddleware(app, SECRET)(environ(), recorder)
    assert recorder.calls == []


def test_changes_after_start_response_are_not_saved() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        session = get_session(environ)
        if environ["PATH_INFO"] == "/set":
            session["before"] = 1
            start_response("200 OK", [("Content-Type", "text/plain")])
            session["after"] = 2  # too late: the headers are on their way
            yield b"streaming"
            session["during"] = 3
        else:
            start_response("200 OK", [("Content-Type", "text/plain")])
            yield repr(sorted(session.items())).encode()

    client = TestApp(SessionMiddleware(app, SECRET))
    client.get("/set")
    assert client.get("/").text == "[('before', 1)]"


def test_middleware_keeps_no_per_request_state() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        get_session(environ)["n"] = environ["PATH_INFO"]
        start_response("200 OK", [])
        return [b""]

    middleware = SessionMiddleware(app, SECRET)
    before = dict(vars(middleware))
    client = TestApp(middleware)
    client.get("/a")
    client.get("/b")
    assert vars(middleware) == before
    assert all(vars(middleware)[key] is value for key, value in before.items())


# -- threads ---------------------------------------------------------------------------------


def test_many_threads_many_sessions_no_cross_talk() -> None:
    """Each user increments their own counter and sees only their own data,
    while every thread runs through one middleware at the same time."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        session = get_session(environ)
        user = environ["PATH_INFO"].strip("/")
        if "user" not in session:
            session["user"] = user
            session["count"] = 0
            session["history"] = []
        session["count"] += 1
        session["history"].append(session["count"])  # a nested change, detected per request
        body = f"{session['user']} {session['count']} {len(session['history'])}"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body.encode()]

    middleware = SessionMiddleware(app, SECRET)
    threads_count, requests_count = 16, 40
    barrier = threading.Barrier(threads_count)
    errors: list[str] = []

    def user(index: int) -> None:
        client = TestApp(middleware)  # a browser of its own: its own cookie jar
        name = f"user{index}"
        barrier.wait()
        for expected in range(1, requests_count + 1):
            text = client.get(f"/{name}").text
            if text != f"{name} {expected} {expected}":
                errors.append(f"{name} request {expected} saw {text!r}")

    threads = [threading.Thread(target=user, args=(index,)) for index in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


# -- store failures become a 503 ---------------------------------------------------------------


class FailingInterface(SecureCookieSessionInterface):
    def __init__(self, when: str) -> None:
        self.when = when

    def open_session(self, app: t.Any, request: t.Any) -> t.Any:
        if self.when == "open":
            raise SessionStoreError("store down")
        return super().open_session(app, request)

    def save_session(self, app: t.Any, session: t.Any, response: t.Any) -> None:
        if self.when == "save":
            raise SessionStoreError("store down")
        super().save_session(app, session, response)


@pytest.mark.parametrize("when", ["open", "save"])
def test_store_failure_is_a_503_before_any_header(when: str) -> None:
    body = Body([b"the app's page"])

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        get_session(environ)["n"] = 1
        start_response("200 OK", [("Content-Type", "text/html")])
        return body

    middleware = SessionMiddleware(app, SECRET, interface=FailingInterface(when))
    response = TestApp(middleware).get("/", status=503)
    assert "store" in response.text
    assert "Set-Cookie" not in response.headers
    assert response.headers["Retry-After"]
    assert body.closed is (when == "save")


@pytest.mark.parametrize("chunks", [[b"page"], [b"a", b"b"], []])
def test_store_failure_with_a_lazily_starting_app(chunks: list[bytes]) -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        get_session(environ)["n"] = 1
        start_response("200 OK", [("Content-Type", "text/html")])
        yield from chunks

    middleware = SessionMiddleware(app, SECRET, interface=FailingInterface("save"))
    response = TestApp(middleware).get("/", status=503)
    assert "store" in response.text
    assert len(response.body) == int(response.headers["Content-Length"])


def test_store_failure_while_the_app_runs() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        raise SessionStoreError("lazy load failed")

    response = TestApp(SessionMiddleware(app, SECRET)).get("/", status=503)
    assert "store" in response.text


def test_store_failure_after_the_response_started_propagates() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        raise SessionStoreError("too late for a 503")

    recorder = Recorder()
    with pytest.raises(SessionStoreError):
        SessionMiddleware(app, SECRET)(environ(), recorder)
    assert [status for status, _, _ in recorder.calls] == ["200 OK"]


# -- the stock cookie interface's short way for a request without our cookie --------------
# A subclass of the interface takes the general way (open_session, save_session); each
# test runs both and expects the same headers.


class GeneralInterface(SecureCookieSessionInterface):
    """Nothing overridden, but not the stock class: the middleware's short way is off."""


class GeneralSealedInterface(EncryptedCookieSessionInterface):
    """The same for encrypted cookies."""


SEALED = {**SECRET, "cookie_encryption": True}
#: Signed and encrypted cookie settings: the short way serves both stock interfaces.
COOKIE_KINDS = pytest.mark.parametrize("kind", [SECRET, SEALED], ids=["signed", "sealed"])


def both_ways(app: WSGIApplication, settings: dict[str, t.Any] = SECRET) -> list[SessionMiddleware]:
    stock = SessionMiddleware(app, settings)
    sealed = settings.get("cookie_encryption", False)
    general_interface = GeneralSealedInterface() if sealed else GeneralInterface()
    general = SessionMiddleware(app, settings, interface=general_interface)
    assert stock._stock_cookie and not general._stock_cookie
    assert type(stock.session_interface) is type(general_interface).__mro__[1]
    return [stock, general]


def run_both(
    app: WSGIApplication, cookie: str | None = None, settings: dict[str, t.Any] = SECRET
) -> list[list[tuple[str, list[tuple[str, str]], t.Any]]]:
    results = []
    for middleware in both_ways(app, settings):
        recorder = Recorder()
        list(middleware(environ(cookie=cookie), recorder))
        results.append([(s, session_headers(h), e) for s, h, e in recorder.calls])
    return results


def touching(touch: t.Callable[[SessionMixin], None]) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        touch(get_session(environ))
        start_response("200 OK", [])
        return [b""]

    return app


@pytest.mark.parametrize(
    "touch",
    [
        lambda s: None,
        lambda s: s.get("x"),
        lambda s: setattr(s, "modified", True),  # an empty session to save: delete the cookie
        lambda s: s.__setitem__("x", 1),
        lambda s: dict.__setitem__(s, "_permanent", True),  # behind the mapping's back
        lambda s: setattr(s, "permanent", True),
    ],
    ids=["untouched", "read", "modified", "write", "dict-level", "permanent"],
)
@pytest.mark.parametrize("cookie", [None, "other=1; x=2"])
@COOKIE_KINDS
def test_a_fresh_session_is_saved_as_save_session_saves_it(
    touch: t.Callable[[SessionMixin], None], cookie: str | None, kind: dict[str, t.Any]
) -> None:
    stock, general = run_both(touching(touch), cookie, kind)
    assert [(s, without_cookie_value(h)) for s, h, _ in stock] == [
        (s, without_cookie_value(h)) for s, h, _ in general
    ]


def without_cookie_value(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers with what may differ between two writes of the same session cut
    from a Set-Cookie value: a signed cookie's timestamp and signature (the
    second may turn between the two), all of a sealed one (a random nonce).
    Its payload, name and attributes must not differ."""
    kept = []
    for name, value in headers:
        if name == "Set-Cookie":
            cookie, _, attributes = value.partition(";")
            key, _, token = cookie.partition("=")
            payload = token.rsplit(".", 2)[0] if token.count(".") >= 2 else "sealed"
            kept.append((name, f"{key}={payload};{attributes}"))
        else:
            kept.append((name, value))
    return kept


def test_an_untouched_session_sends_nothing_and_a_touched_one_does() -> None:
    ((_, untouched, _),), _ = run_both(touching(lambda s: None))
    assert untouched == []
    ((_, written, _),), _ = run_both(touching(lambda s: s.__setitem__("x", 1)))
    assert [name for name, _ in written] == ["Vary", "Set-Cookie"]
    ((_, deleted, _),), _ = run_both(touching(lambda s: setattr(s, "modified", True)))
    assert [name for name, _ in deleted] == ["Set-Cookie", "Vary"]


def test_a_second_start_response_after_an_untouched_first_saves_nothing() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])  # untouched so far
        get_session(environ)["user"] = "ada"  # too late: the first call saved
        try:
            raise ValueError("boom")
        except ValueError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b"error page"]

    stock, general = run_both(app)
    assert [(s, h) for s, h, _ in stock] == [(s, h) for s, h, _ in general]
    assert [h for _, h, _ in stock] == [[], []]


def test_the_short_way_follows_config_changes_between_requests() -> None:
    def write(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        get_session(environ)["user"] = "ada"
        start_response("200 OK", [])
        return [b""]

    def show(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return [repr(dict(get_session(environ).items())).encode()]

    recorder = Recorder()
    list(SessionMiddleware(write, SECRET)(environ(), recorder))
    _, value, _ = parse_set_cookie(dict(recorder.calls[0][1])["Set-Cookie"])
    reader = SessionMiddleware(show, SECRET)
    reader.config["SESSION_COOKIE_NAME"] = "renamed"
    assert b"".join(reader(environ(cookie=f"renamed={value}"), Recorder())) == b"{'user': 'ada'}"
    assert b"".join(reader(environ(cookie=f"session={value}"), Recorder())) == b"{}"
    seen: list[SessionMixin] = []
    capture = SessionMiddleware(touching(seen.append), SECRET)
    list(capture(environ(), Recorder()))
    assert type(seen[-1]) is SecureCookieSession
    capture.config["SECRET_KEY"] = None
    list(capture(environ(), Recorder()))
    assert isinstance(seen[-1], NullSession)


def test_an_interface_changed_on_the_instance_takes_the_general_way() -> None:
    interface = SecureCookieSessionInterface()
    interface.get_cookie_name = lambda app: "mine"  # type: ignore[method-assign]
    assert not SessionMiddleware(
        touching(lambda s: None), SECRET, interface=interface
    )._stock_cookie


# -- and for a request with our cookie that the app never uses ------------------------------
# The short way answers save_session's first question itself (may an unread session need
# its cookie re-sent?); whatever the cookie and the app, both ways send the same headers.


def issued_cookie(data: dict[str, t.Any], settings: dict[str, t.Any] = SECRET) -> str:
    """The cookie value the middleware issues for a session holding ``data``."""
    recorder = Recorder()
    list(SessionMiddleware(touching(lambda s: s.update(data)), settings)(environ(), recorder))
    _, value, _ = parse_set_cookie(dict(recorder.calls[0][1])["Set-Cookie"])
    return value


@COOKIE_KINDS
@pytest.mark.parametrize("refresh", [True, False], ids=["refresh", "no-refresh"])
@pytest.mark.parametrize(
    "data",
    [
        {"user": "ada"},
        {"user": "ada", "_permanent": True},
        {"user": "ada", "note": "_permanent"},  # the text, not the key
        {"user": "ada", "history": [f"/page/{i}" for i in range(40)]},  # compressed
        {"user": "ada", "history": [f"/page/{i}" for i in range(40)], "_permanent": True},
    ],
    ids=["plain", "permanent", "text-only", "compressed", "compressed-permanent"],
)
@pytest.mark.parametrize(
    "touch",
    [
        lambda s: None,
        lambda s: s.get("user"),
        lambda s: s.__setitem__("x", 1),
        lambda s: s.clear(),
    ],
    ids=["untouched", "read", "write", "clear"],
)
def test_a_session_from_a_cookie_is_saved_as_save_session_saves_it(
    touch: t.Callable[[SessionMixin], None],
    data: dict[str, t.Any],
    refresh: bool,
    kind: dict[str, t.Any],
) -> None:
    settings = {**kind, "refresh_each_request": refresh}
    cookie = f"session={issued_cookie(data, kind)}"
    stock, general = run_both(touching(touch), cookie, settings)
    assert [(s, without_cookie_value(h)) for s, h, _ in stock] == [
        (s, without_cookie_value(h)) for s, h, _ in general
    ]


@COOKIE_KINDS
@pytest.mark.parametrize("refresh", [True, False], ids=["refresh", "no-refresh"])
@pytest.mark.parametrize("permanent", [True, False], ids=["permanent", "browser"])
@pytest.mark.parametrize("size", [1, 40], ids=["plain", "compressed"])
def test_an_unused_cookie_is_re_sent_only_to_refresh_a_permanent_session(
    refresh: bool, permanent: bool, size: int, kind: dict[str, t.Any]
) -> None:
    data: dict[str, t.Any] = {"history": [f"/page/{i}" for i in range(size)]}
    if permanent:
        data["_permanent"] = True
    cookie = f"session={issued_cookie(data, kind)}"
    settings = {**kind, "refresh_each_request": refresh}
    for ((_, headers, _),) in run_both(touching(lambda s: None), cookie, settings):
        assert [name for name, _ in headers] == (
            ["Set-Cookie", "Vary"] if permanent and refresh else []
        )


@pytest.mark.parametrize(
    "value",
    ["", "garbage", "a.b.c", ".eJwz.x.y", "eyJfcGVybWFuZW50Ijp0cnVlfQ.x.y", "é.x.y", "x" * 5000],
    ids=[
        "empty",
        "garbage",
        "three-parts",
        "compressed-garbage",
        "permanent-unsigned",
        "non-ascii",
        "too-long",
    ],
)
@pytest.mark.parametrize(
    "touch", [lambda s: None, lambda s: s.get("user")], ids=["untouched", "read"]
)
@COOKIE_KINDS
def test_a_bad_cookie_is_answered_alike_both_ways(
    touch: t.Callable[[SessionMixin], None], value: str, kind: dict[str, t.Any]
) -> None:
    stock, general = run_both(touching(touch), f"session={value}", kind)
    assert stock == general
    ((status, headers, _),) = stock
    assert status == "200 OK"
    assert "Set-Cookie" not in dict(headers)


def test_an_interface_replaced_after_start_up_is_the_one_used() -> None:
    seen: list[SessionMixin] = []
    middleware = SessionMiddleware(touching(seen.append), SECRET)
    assert middleware._stock_cookie is middleware.session_interface

    class Marked(SecureCookieSession):
        pass

    replacement = GeneralInterface()
    replacement.session_class = Marked
    middleware.session_interface = replacement
    assert middleware._stock_cookie is None
    list(middleware(environ(), Recorder()))
    assert type(seen[-1]) is Marked
    middleware.session_interface = SecureCookieSessionInterface()
    list(middleware(environ(), Recorder()))
    assert type(seen[-1]) is SecureCookieSession


@COOKIE_KINDS
def test_json_dumps_of_an_unused_cookie_session_holds_its_data(kind: dict[str, t.Any]) -> None:
    # The C JSON encoder looks at a dict's storage before asking for its items:
    # a session not loaded yet must not look empty to it (nor to Flask's jsonify).
    data = {"user": "ada", "cart": [1, 2], "history": [f"/page/{i}" for i in range(40)]}
    seen: list[str] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        session = get_session(environ)
        seen.append(repr(session))
        seen.append(json.dumps(session))
        start_response("200 OK", [])
        return [b""]

    for payload in ({"user": "ada"}, data):  # uncompressed, compressed
        seen.clear()
        list(
            SessionMiddleware(app, kind)(
                environ(cookie=f"session={issued_cookie(payload, kind)}"), Recorder()
            )
        )
        shown, dumped = seen
        assert "not loaded" in shown and "ada" not in shown  # repr does not load
        assert json.loads(dumped) == payload
