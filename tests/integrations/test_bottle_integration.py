"""wsgi_sessions.integrations.bottle: the plugin and the one-liner."""

from __future__ import annotations

import functools
import threading
import typing as t

import bottle
import pytest
from webtest import TestApp, TestResponse

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
from wsgi_sessions import SessionMiddleware, SessionMixin, get_session
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


# -- finding a callback's parameters, whatever its shape ---------------------------------


def get_within(client: TestApp, path: str, timeout: float = 5.0) -> TestResponse:
    """GET ``path`` in a thread: a hang fails the test instead of stopping the suite."""
    outcome: list[t.Any] = []

    def run() -> None:
        try:
            outcome.append(client.get(path))
        except BaseException as exc:  # reported below, in the test's thread
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"GET {path} did not finish within {timeout}s"
    (result,) = outcome
    if isinstance(result, BaseException):
        raise result
    return t.cast(TestResponse, result)


def helper(n: int) -> str:
    return f"n={n}"


def make_app_factory() -> bottle.Bottle:
    """Routes defined in an app factory, as closures over its locals."""
    config = {"greeting": "hi"}
    app = bottle.Bottle()
    app.install(SessionPlugin())

    @app.get("/closure")
    def closure(session: SessionMixin) -> str:  # closes over a dict only
        session["n"] = session.get("n", 0) + 1
        return f"{config['greeting']} {session['n']}"

    @app.get("/helper-first")
    def helper_first(session: SessionMixin) -> str:  # the first cell is a function
        session["n"] = session.get("n", 0) + 1
        return format_count(session["n"]) + config["greeting"]

    @app.get("/no-session")
    def no_session(**kwargs: t.Any) -> str:
        return f"{config['greeting']} {sorted(kwargs)}"

    format_count = helper
    return app


@pytest.mark.parametrize(
    ("path", "first", "second"),
    [("/closure", "hi 1", "hi 2"), ("/helper-first", "n=1hi", "n=2hi")],
)
def test_a_closure_route_gets_its_session_and_never_hangs(
    path: str, first: str, second: str
) -> None:
    client = TestApp(SessionMiddleware(make_app_factory(), {"secret_key": SECRET}))
    assert get_within(client, path).text == first
    assert get_within(client, path).text == second


def test_a_closure_route_without_the_keyword_is_left_alone() -> None:
    client = TestApp(SessionMiddleware(make_app_factory(), {"secret_key": SECRET}))
    response = get_within(client, "/no-session")
    assert response.text == "hi []"
    assert "Set-Cookie" not in response.headers


def logged(callback: t.Callable[..., str]) -> t.Callable[..., str]:
    """A decorator done right: functools.wraps sets __wrapped__."""
    prefix = ">"

    @functools.wraps(callback)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> str:
        return prefix + callback(*args, **kwargs)

    return wrapper


def test_a_decorated_callback_is_read_through_wraps() -> None:
    app = bottle.Bottle()
    app.install(SessionPlugin())

    @app.get("/")
    @logged
    @logged
    def index(session: SessionMixin) -> str:
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    @app.get("/plain")
    @logged
    def plain(**kwargs: t.Any) -> str:
        return str(sorted(kwargs))

    client = TestApp(SessionMiddleware(app, {"secret_key": SECRET}))
    assert get_within(client, "/").text == ">>1"
    assert get_within(client, "/").text == ">>2"
    assert get_within(client, "/plain").text == ">[]"


class Views:
    def __init__(self, greeting: str) -> None:
        self.greeting = greeting

    def count(self, session: SessionMixin) -> str:
        session["n"] = session.get("n", 0) + 1
        return f"{self.greeting} {session['n']}"

    def plain(self, **kwargs: t.Any) -> str:
        return f"{self.greeting} {sorted(kwargs)}"

    def __call__(self, session: SessionMixin) -> str:
        return f"{self.greeting} {type(session).__name__}"


def test_a_bound_method_or_callable_object_route_gets_its_session() -> None:
    views = Views("hello")
    app = bottle.Bottle()
    app.install(SessionPlugin())
    app.route("/count", callback=views.count)
    app.route("/plain", callback=views.plain)
    app.route("/call", callback=views)
    client = TestApp(SessionMiddleware(app, {"secret_key": SECRET}))
    assert get_within(client, "/count").text == "hello 1"
    assert get_within(client, "/count").text == "hello 2"
    assert get_within(client, "/plain").text == "hello []"
    assert get_within(client, "/call").text == "hello SecureCookieSession"


def test_the_callback_is_read_as_written_not_as_other_plugins_wrapped_it() -> None:
    app = bottle.Bottle()
    app.install(SessionPlugin())

    def other_plugin(callback: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        def without_wraps(*args: t.Any, **kwargs: t.Any) -> t.Any:
            return callback(*args, **kwargs)

        return without_wraps

    app.install(other_plugin)  # applied first: the session plugin receives its wrapper

    @app.get("/")
    def index(session: SessionMixin) -> str:
        return type(session).__name__

    client = TestApp(SessionMiddleware(app, {"secret_key": SECRET}))
    assert get_within(client, "/").text == "SecureCookieSession"


@pytest.mark.parametrize("setting", ["true", "false"])
def test_a_response_that_sets_the_cookie_is_private(setting: str) -> None:
    app = bottle.Bottle()

    @app.get("/")
    def index(session: SessionMixin) -> str:
        session["n"] = 1
        bottle.response.set_header("Cache-Control", "public, max-age=600")
        return "ok"

    client = TestApp(with_sessions(app, {"secret_key": SECRET, "cookie_cache_control": setting}))
    response = client.get("/")
    assert response.headers.getall("Set-Cookie")
    expected = "max-age=600, private" if setting == "true" else "public, max-age=600"
    assert response.headers.getall("Cache-Control") == [expected]
    assert response.headers["Vary"] == "Cookie"


# -- saving in Bottle's response phase: errors reach its error pages ----------------------


def unsaveable_app(handled: list[Exception] | None = None) -> bottle.Bottle:
    """Routes that write what the session cannot save; with ``handled``, an
    ``@app.error(500)`` handler that records the exception it was given."""
    app = bottle.Bottle()

    @app.get("/set")
    def unstorable(session: SessionMixin) -> str:
        session["tags"] = UNSTORABLE
        return "stored?"

    @app.get("/big")
    def big(session: SessionMixin) -> str:
        session["big"] = oversize()
        return "stored?"

    @app.get("/count")
    def count(session: SessionMixin) -> str:
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    @app.get("/cached")
    def cached(session: SessionMixin) -> str:
        session["n"] = 1
        bottle.response.set_header("Cache-Control", "public, max-age=600")
        bottle.response.set_header("Vary", "Accept-Encoding")
        return "cached"

    @app.get("/login")
    def login(session: SessionMixin) -> str:
        session["user"] = "ada"
        bottle.redirect("/count")
        raise AssertionError("redirect raises")

    @app.get("/stream")
    def stream(session: SessionMixin) -> t.Iterator[str]:
        session["streamed"] = True  # written before the first chunk: saved
        yield "one "
        yield "two"

    @app.get("/show")
    def show(session: SessionMixin) -> str:
        return repr(sorted(session.items()))

    if handled is not None:

        @app.error(500)
        def failed(error: bottle.HTTPError) -> str:
            handled.append(error.exception)
            return f"handled {type(error.exception).__name__}"

    return app


@pytest.mark.parametrize(("path", "settings", "error"), UNSAVEABLE)
def test_a_session_that_cannot_be_saved_gets_bottles_error_page(
    path: str, settings: dict[str, str], error: type[Exception]
) -> None:
    client = TestApp(with_sessions(unsaveable_app(), settings))
    response = client.get(path, status=500, expect_errors=True)
    assert "Error: 500 Internal Server Error" in response.text  # Bottle's page, not the server's
    # Bottle logged the traceback to wsgi.errors.
    assert error.__name__ in response.errors
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize(("path", "settings", "error"), UNSAVEABLE)
def test_the_error_while_saving_reaches_an_error_handler(
    path: str, settings: dict[str, str], error: type[Exception]
) -> None:
    handled: list[Exception] = []
    client = TestApp(with_sessions(unsaveable_app(handled), settings))
    response = client.get(path, status=500, expect_errors=True)
    assert response.text == f"handled {error.__name__}"
    (exception,) = handled
    assert isinstance(exception, error)


def test_a_store_that_is_down_while_saving_is_bottles_503(
    own_redis: t.Any, caplog: pytest.LogCaptureFixture
) -> None:
    response = get_with_the_store_down(
        own_redis, lambda settings: TestApp(with_sessions(unsaveable_app(), settings)), caplog
    )
    assert "Error: 503 Service Unavailable" in response.text  # Bottle's error page


@pytest.mark.parametrize("settings", [COOKIE, SERVER_SIDE])
def test_the_session_is_serialized_once_per_request(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, str]
) -> None:
    calls = count_dumps(monkeypatch)
    assert_serialized_once(TestApp(with_sessions(unsaveable_app(), settings)), calls)


@pytest.mark.parametrize("settings", [COOKIE, SERVER_SIDE])
def test_writes_before_a_redirect_or_a_streamed_body_are_saved(settings: dict[str, str]) -> None:
    client = TestApp(with_sessions(unsaveable_app(), settings))
    assert client.get("/login", status=302).follow().text == "1"
    assert client.get("/stream").text == "one two"
    assert client.get("/show").text == "[('n', 1), ('streamed', True), ('user', 'ada')]"


@pytest.mark.parametrize("path", ["/count", "/cached", "/stream"])
def test_a_normal_response_is_byte_for_byte_what_it_was(
    monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    freeze_clock(monkeypatch)
    app = unsaveable_app()
    now = TestApp(with_sessions(app, COOKIE))
    before = TestApp(SessionMiddleware(saved_on_start_response(app), COOKIE))
    assert_same_responses(now, before, path)


def test_a_hook_added_after_the_plugin_runs_before_the_save() -> None:
    app = unsaveable_app()
    application = with_sessions(app, COOKIE)

    @app.hook("after_request")
    def stamp() -> None:
        get_session(bottle.request.environ)["stamped"] = True

    client = TestApp(application)
    client.get("/count")
    assert client.get("/show").text == "[('n', 1), ('stamped', True)]"


def test_uninstalling_the_plugin_removes_its_hook() -> None:
    app = bottle.Bottle()
    plugin = SessionPlugin()
    app.install(plugin)
    assert plugin.save_session in app._hooks["after_request"]
    app.uninstall(plugin)
    assert plugin.save_session not in app._hooks["after_request"]
