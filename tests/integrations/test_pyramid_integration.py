"""wsgi_sessions.integrations.pyramid: ISession, both ways of getting a session,
Pyramid's CSRF policy, and settings validated at config time."""

from __future__ import annotations

import logging
import typing as t

import pytest
from pyramid.config import Configurator
from pyramid.csrf import get_csrf_token
from pyramid.httpexceptions import HTTPServiceUnavailable
from pyramid.interfaces import ISession
from pyramid.request import Request
from pyramid.response import Response
from webtest import TestApp
from zope.interface.verify import verifyObject

from cookies import parse_set_cookie
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
from wsgi_sessions import SecureCookieSession, SessionCookieTooLarge, SessionMiddleware, get_session
from wsgi_sessions.integrations.pyramid import PyramidSession, session_factory_from_settings

SECRET = "pyramid-test-" + "k" * 32
Results = dict[str, t.Any]


def make_app(settings: dict[str, t.Any], results: Results, *, csrf: bool = False) -> t.Any:
    """A Pyramid app whose views record what they saw in ``results``."""

    def check(request: Request) -> Response:
        session = request.session
        results["verified"] = verifyObject(ISession, session)
        results["session"] = session
        results["environ_session"] = request.environ.get("wsgi_sessions.session")
        return Response("ok")

    def write(request: Request) -> Response:
        request.session["n"] = request.session.get("n", 0) + 1
        request.session.flash("dup", allow_duplicate=False)
        request.session.flash("dup", allow_duplicate=False)
        request.session.flash("careful", queue="warn")
        return Response(str(request.session["n"]))

    def read(request: Request) -> Response:
        session = request.session
        results["created"] = session.created
        return Response(
            f"{session.get('n')}|{session.pop_flash()}|{session.peek_flash('warn')}"
            f"|{session.pop_flash('warn')}"
        )

    def inspect(request: Request) -> Response:
        session = request.session
        results["new"] = session.new
        results["created"] = session.created
        results["seen"] = (list(session), list(session.keys()), list(session.items()), len(session))
        results["underlying"] = dict(session.session.items())
        return Response("ok")

    def invalidate(request: Request) -> Response:
        request.session.invalidate()
        return Response("gone")

    def token(request: Request) -> Response:
        return Response(get_csrf_token(request))

    def post(request: Request) -> Response:
        return Response("accepted")

    with Configurator(settings=settings) as config:
        config.include("wsgi_sessions.integrations.pyramid")
        if csrf:
            config.set_default_csrf_options(require_csrf=True)
        for name, view in [
            ("check", check),
            ("write", write),
            ("read", read),
            ("inspect", inspect),
            ("invalidate", invalidate),
            ("token", token),
            ("post", post),
        ]:
            config.add_route(name, f"/{name}")
            config.add_view(view, route_name=name)
        return config.make_wsgi_app()


def test_without_middleware_the_session_is_opened_from_the_settings() -> None:
    results: Results = {}
    client = TestApp(
        make_app({"session.secret_key": SECRET, "session.cookie_name": "pyr"}, results)
    )
    client.get("/check")
    assert results["verified"] is True
    assert isinstance(results["session"], PyramidSession)
    assert isinstance(results["session"].session, SecureCookieSession)
    response = client.get("/write")
    assert response.text == "1"
    cookies = response.headers.getall("Set-Cookie")
    assert len(cookies) == 1
    assert cookies[0].startswith("pyr=")
    assert response.headers["Vary"] == "Cookie"
    assert client.get("/read").text == "1|['dup']|['careful']|['careful']"
    assert client.get("/read").text == "1|[]|[]|[]"


@pytest.mark.parametrize(
    ("settings", "prefix"),
    [
        ({"session.secret_key": SECRET, "session.cookie_name": "pyr"}, "session."),
        ({"secret_key": SECRET, "cookie_name": "pyr"}, ""),
    ],
)
def test_the_factory_style_without_the_include(settings: dict[str, str], prefix: str) -> None:
    def write(request: Request) -> Response:
        request.session["n"] = request.session.get("n", 0) + 1
        return Response(str(request.session["n"]))

    with Configurator() as config:
        config.set_session_factory(session_factory_from_settings(settings, prefix))
        config.add_route("write", "/write")
        config.add_view(write, route_name="write")
        client = TestApp(config.make_wsgi_app())
    response = client.get("/write")
    assert response.headers["Set-Cookie"].startswith("pyr=")
    assert client.get("/write").text == "2"
    with pytest.raises(ValueError, match=r"'session\.cookie_nmae'"):
        session_factory_from_settings({"session.cookie_nmae": "x"})


def test_an_untouched_session_sends_no_cookie() -> None:
    client = TestApp(make_app({"session.secret_key": SECRET}, {}))
    response = client.get("/post")
    assert "Set-Cookie" not in response.headers
    assert "Vary" not in response.headers


def test_with_middleware_the_environ_session_is_used_and_saved_once() -> None:
    results: Results = {}
    app = SessionMiddleware(make_app({}, results), {"secret_key": SECRET})
    client = TestApp(app)
    client.get("/check")
    assert results["verified"] is True
    assert results["session"].session is results["environ_session"]
    response = client.get("/write")
    assert len(response.headers.getall("Set-Cookie")) == 1
    assert client.get("/write").text == "2"


def test_created_is_stable_across_requests() -> None:
    results: Results = {}
    client = TestApp(make_app({"session.secret_key": SECRET}, results))
    client.get("/write")
    client.get("/read")
    first = results["created"]
    assert isinstance(first, float)
    client.get("/read")
    assert results["created"] == first


def test_invalidate_deletes_the_cookie() -> None:
    client = TestApp(make_app({"session.secret_key": SECRET}, {}))
    client.get("/write")
    response = client.get("/invalidate")
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    assert "session" not in client.cookies
    assert client.get("/read").text.startswith("None|")


def test_changed_marks_an_in_place_change() -> None:
    session = PyramidSession(SecureCookieSession({"cart": [1]}))
    assert session.modified is False
    session.changed()
    assert session.session.modified is True


def test_pyramids_default_csrf_policy_uses_the_session_token() -> None:
    client = TestApp(make_app({"session.secret_key": SECRET}, {}, csrf=True))
    token = client.get("/token").text
    assert client.get("/token").text == token
    client.post("/post", {}, status=400)
    client.post("/post", {"csrf_token": "forged"}, status=400)
    assert client.post("/post", {"csrf_token": token}).text == "accepted"
    assert client.post("/post", headers={"X-CSRF-Token": token}).text == "accepted"


def test_without_a_secret_key_reads_are_empty_and_writes_explain() -> None:
    results: Results = {}
    TestApp(make_app({}, results)).get("/check")
    assert results["verified"] is True
    assert dict(results["session"]) == {}
    with pytest.raises(RuntimeError, match="secret key") as info:
        results["session"]["x"] = 1
    # Named as a Pyramid user writes it in the ini file, not as Flask or the middleware would.
    assert "'session.secret_key'" in str(info.value)
    assert "Flask" not in str(info.value)


def test_a_misspelt_setting_fails_at_config_time() -> None:
    with pytest.raises(ValueError, match=r"session\.secret_kee"):
        make_app({"session.secret_kee": SECRET}, {})
    with pytest.raises(ValueError, match=r"session\.cookie_samesite"):
        make_app({"session.secret_key": SECRET, "session.cookie_samesite": "sometimes"}, {})


def test_the_environ_session_is_reachable_with_get_session() -> None:
    results: Results = {}
    client = TestApp(make_app({"session.secret_key": SECRET}, results))
    client.get("/check")
    assert results["environ_session"] is results["session"].session
    assert get_session({"wsgi_sessions.session": results["environ_session"]}) is not None


def test_the_state_flags_are_the_underlying_sessions() -> None:
    inner = SecureCookieSession()
    session = PyramidSession(inner)
    for name in ("new", "modified", "accessed"):
        for value in (True, False):
            setattr(session, name, value)
            assert getattr(inner, name) is value
            assert getattr(session, name) is value


def test_created_on_an_empty_session_writes_nothing() -> None:
    inner = SecureCookieSession()
    session = PyramidSession(inner)
    assert isinstance(session.created, float)
    assert inner.modified is False
    assert dict(inner) == {}


def test_without_a_secret_key_the_include_logs_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="wsgi_sessions"):
        client = TestApp(make_app({"session.cookie_secure": "true"}, {}))
        client.get("/check")
        client.get("/check")
    (record,) = caplog.records  # once, when the factory opens a session itself
    assert record.levelno == logging.WARNING
    assert "'session.secret_key'" in record.getMessage()


def test_behind_the_middleware_a_missing_include_key_is_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The middleware (a PasteDeploy filter, say) opens every session with its key."""
    results: Results = {}
    with caplog.at_level(logging.DEBUG, logger="wsgi_sessions"):
        app = SessionMiddleware(make_app({}, results), {"secret_key": SECRET})
        TestApp(app).get("/check")
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert results["environ_session"] is results["session"].session


def test_an_empty_secret_key_fails_at_config_time() -> None:
    with pytest.raises(ValueError, match=r"'session\.secret_key' is empty"):
        make_app({"session.secret_key": ""}, {})


def test_new_is_true_until_the_request_brings_a_valid_cookie() -> None:
    results: Results = {}
    client = TestApp(make_app({"session.secret_key": SECRET}, results))
    client.get("/inspect")
    assert results["new"] is True
    client.get("/write")
    client.get("/inspect")
    assert results["new"] is False
    client.reset()
    client.get("/inspect", headers={"Cookie": "session=forged.AAAAAA.AAAA"})
    assert results["new"] is True


@pytest.mark.parametrize("store", [None, "memory://"])
def test_created_is_fixed_and_hidden_from_the_mapping(store: str | None) -> None:
    results: Results = {}
    settings = {"session.secret_key": SECRET, **({"session.store": store} if store else {})}
    client = TestApp(make_app(settings, results))
    client.get("/inspect")  # an empty session: created now, nothing written
    client.get("/write")
    client.get("/inspect")
    first = results["created"]
    for _ in range(2):
        client.get("/write")
        client.get("/inspect")
        assert results["created"] == first
    keys, keys_view, items, length = results["seen"]
    assert sorted(keys) == ["_flashes", "n"]
    assert keys_view == keys
    assert [key for key, _ in items] == keys
    assert length == 2
    if store is None:  # a cookie session keeps it out of its own mapping too
        assert sorted(results["underlying"]) == ["_flashes", "n"]


def test_created_round_trips_through_flask_and_a_flask_cookie_gets_one() -> None:
    import flask

    flask_app = flask.Flask(__name__)
    flask_app.secret_key = SECRET

    @flask_app.route("/bump")
    def bump() -> str:
        flask.session["n"] = flask.session.get("n", 0) + 1
        return str(flask.session["n"])

    def cookie_of(response: t.Any) -> str:
        return parse_set_cookie(response.headers["Set-Cookie"])[1]

    results: Results = {}
    ours = TestApp(make_app({"session.secret_key": SECRET}, results))
    flask_client = flask_app.test_client()
    # A cookie written by Flask has no created time: stamped on the first read, then fixed.
    flask_cookie = cookie_of(flask_client.get("/bump"))
    response = ours.get("/inspect", headers={"Cookie": f"session={flask_cookie}"})
    stamped = results["created"]
    assert results["underlying"] == {"n": 1}
    ours.reset()
    ours.get("/inspect", headers={"Cookie": f"session={cookie_of(response)}"})
    assert results["created"] == stamped
    # Through Flask and back: Flask keeps what it does not know.
    flask_client.set_cookie("session", cookie_of(response))
    through_flask = cookie_of(flask_client.get("/bump"))
    ours.reset()
    ours.get("/inspect", headers={"Cookie": f"session={through_flask}"})
    assert results["created"] == stamped
    assert results["underlying"] == {"n": 2}


def test_a_secure_cookie_on_plain_http_is_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from wsgi_sessions import _wsgi

    monkeypatch.setattr(_wsgi, "_warned_secure_over_http", False)
    settings = {"session.secret_key": SECRET, "session.cookie_secure": "true"}
    client = TestApp(make_app(settings, {}))
    with caplog.at_level(logging.WARNING, logger="wsgi_sessions"):
        client.get("/write", extra_environ={"HTTP_HOST": "localhost:6543"})
        assert caplog.records == []  # the browser keeps it on localhost
        client.get("/write", extra_environ={"HTTP_HOST": "staging.example.test"})
        client.get("/write", extra_environ={"HTTP_HOST": "staging.example.test"})
    (record,) = caplog.records
    assert "plain-HTTP" in record.getMessage()


def cache_control_app(settings: dict[str, t.Any]) -> t.Any:
    """A Pyramid app whose views ask shared caches to keep their responses."""

    def shared(request: Request, response: Response) -> Response:
        response.cache_control.public = True
        response.cache_control.max_age = 600
        response.cache_control.s_maxage = 3600
        return response

    def write(request: Request) -> Response:
        request.session["n"] = 1
        return shared(request, Response("written"))

    def read(request: Request) -> Response:
        return shared(request, Response(str(request.session.get("n"))))

    def invalidate(request: Request) -> Response:
        request.session.invalidate()
        return shared(request, Response("gone"))

    with Configurator(settings=settings) as config:
        config.include("wsgi_sessions.integrations.pyramid")
        for name, view in [("write", write), ("read", read), ("invalidate", invalidate)]:
            config.add_route(name, f"/{name}")
            config.add_view(view, route_name=name)
        return config.make_wsgi_app()


@pytest.mark.parametrize("way", ["include", "middleware"])
def test_responses_that_set_or_delete_the_cookie_are_private(way: str) -> None:
    if way == "include":
        client = TestApp(cache_control_app({"session.secret_key": SECRET}))
    else:
        client = TestApp(SessionMiddleware(cache_control_app({}), {"secret_key": SECRET}))
    written = client.get("/write")
    assert written.headers.getall("Set-Cookie")
    assert written.headers.getall("Cache-Control") == ["max-age=600, private"]
    assert written.headers["Vary"] == "Cookie"
    read = client.get("/read")
    assert "Set-Cookie" not in read.headers
    assert read.headers["Cache-Control"].split(", ") == ["max-age=600", "public", "s-maxage=3600"]
    deleted = client.get("/invalidate")
    assert "Max-Age=0" in deleted.headers["Set-Cookie"]
    assert deleted.headers.getall("Cache-Control") == ["max-age=600, private"]


def test_the_include_seals_the_cookie_with_cookie_encryption() -> None:
    results: Results = {}
    settings = {"session.secret_key": SECRET, "session.cookie_encryption": "true"}
    client = TestApp(make_app(settings, results))
    response = client.get("/write")
    value = parse_set_cookie(response.headers["Set-Cookie"])[1]
    assert "." not in value  # one sealed token, not payload.time.signature
    assert client.get("/read").text == "1|['dup']|['careful']|['careful']"
    client.get("/inspect")
    assert results["seen"][0] == ["n"]  # `created` is kept sealed in the cookie, out of sight
    assert isinstance(results["created"], float)


# -- saving in Pyramid's response phase: errors reach its exception views -----------------


def unsaveable_app(
    settings: dict[str, t.Any], handled: list[Exception], *, include: bool = True
) -> t.Any:
    """Views that write what the session cannot save, and exception views that
    record what reached them (``include=False``: the factory without the tween)."""

    def unstorable(request: Request) -> Response:
        request.session["tags"] = UNSTORABLE
        return Response("stored?")

    def big(request: Request) -> Response:
        request.session["big"] = oversize()
        return Response("stored?")

    def count(request: Request) -> Response:
        request.session["n"] = request.session.get("n", 0) + 1
        return Response(str(request.session["n"]))

    def cached(request: Request) -> Response:
        request.session["n"] = 1
        response = Response("cached")
        response.cache_control.public = True
        response.cache_control.max_age = 600
        response.vary = ["Accept-Encoding"]
        return response

    def failed(exc: Exception, request: Request) -> Response:
        handled.append(exc)
        return Response(f"handled {type(exc).__name__}", status=500)

    def unavailable(exc: HTTPServiceUnavailable, request: Request) -> Response:
        handled.append(exc)
        return Response("come back soon", status=503, headers={"Retry-After": "5"})

    with Configurator(settings=settings) as config:
        if include:
            config.include("wsgi_sessions.integrations.pyramid")
        else:
            config.set_session_factory(session_factory_from_settings(settings))
        for name, view in [("set", unstorable), ("big", big), ("count", count), ("cached", cached)]:
            config.add_route(name, f"/{name}")
            config.add_view(view, route_name=name)
        config.add_exception_view(failed, context=TypeError)
        config.add_exception_view(failed, context=SessionCookieTooLarge)
        config.add_exception_view(unavailable, context=HTTPServiceUnavailable)
        return config.make_wsgi_app()


PYRAMID_COOKIE = {"session.secret_key": SECRET}


def serve(way: str, settings: dict[str, t.Any], handled: list[Exception]) -> TestApp:
    """The app, its session from the ``session.*`` settings (``include``) or
    from SessionMiddleware around it (``middleware``)."""
    if way == "include":
        prefixed = {f"session.{name}": value for name, value in settings.items()}
        return TestApp(unsaveable_app(prefixed, handled))
    return TestApp(SessionMiddleware(unsaveable_app({}, handled), settings))


@pytest.mark.parametrize("way", ["include", "middleware"])
@pytest.mark.parametrize(("path", "settings", "error"), UNSAVEABLE)
def test_a_session_that_cannot_be_saved_reaches_an_exception_view(
    way: str, path: str, settings: dict[str, t.Any], error: type[Exception]
) -> None:
    handled: list[Exception] = []
    response = serve(way, settings, handled).get(path, status=500)
    assert response.text == f"handled {error.__name__}"
    (exception,) = handled
    assert isinstance(exception, error)
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("way", ["include", "middleware"])
def test_a_store_that_is_down_while_saving_is_pyramids_503(
    own_redis: t.Any, way: str, caplog: pytest.LogCaptureFixture
) -> None:
    handled: list[Exception] = []
    response = get_with_the_store_down(
        own_redis, lambda settings: serve(way, settings, handled), caplog
    )
    assert response.text == "come back soon"  # the app's own exception view
    (exception,) = handled
    assert isinstance(exception, HTTPServiceUnavailable)


@pytest.mark.parametrize("way", ["include", "middleware"])
@pytest.mark.parametrize("settings", [COOKIE, SERVER_SIDE])
def test_the_session_is_serialized_once_per_request(
    monkeypatch: pytest.MonkeyPatch, way: str, settings: dict[str, t.Any]
) -> None:
    calls = count_dumps(monkeypatch)
    assert_serialized_once(serve(way, settings, []), calls)


@pytest.mark.parametrize("path", ["/count", "/cached"])
def test_a_normal_response_is_byte_for_byte_what_it_was(
    monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    freeze_clock(monkeypatch)
    # Saved by the tween (include), against the response callback alone (no tween).
    now = TestApp(unsaveable_app(PYRAMID_COOKIE, []))
    before = TestApp(unsaveable_app(PYRAMID_COOKIE, [], include=False))
    # Around SessionMiddleware: saved by the tween, against saved on start_response.
    wrapped_now = TestApp(SessionMiddleware(unsaveable_app({}, []), {"secret_key": SECRET}))
    wrapped_before = TestApp(
        SessionMiddleware(saved_on_start_response(unsaveable_app({}, [])), {"secret_key": SECRET})
    )
    assert_same_responses(now, before, path)
    assert_same_responses(wrapped_now, wrapped_before, path)
