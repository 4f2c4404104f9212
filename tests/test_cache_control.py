"""A response that sets or deletes the session cookie is never stored by a shared cache.

A CDN or proxy that keeps such a response hands its ``Set-Cookie`` (so the
session) to the next visitor of the URL: ``Cache-Control`` gets ``private``,
merged into what the app set, unless ``cookie_cache_control`` is off. The
framework adapters are tested in tests/integrations/.
"""

from __future__ import annotations

import sys
import typing as t

import pytest
from webtest import TestApp
from werkzeug.wrappers import Response

from wsgi_sessions import (
    EncryptedCookieSessionInterface,
    SecureCookieSession,
    SecureCookieSessionInterface,
    ServerSideSessionInterface,
    SessionMiddleware,
    get_session,
)
from wsgi_sessions._cache_control import private_cache_control
from wsgi_sessions.sessions import SessionMixin

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

SECRET = "cache-control-test-" + "k" * 32

MERGED = {
    "none": ([], "private"),
    "empty": ([""], "private"),
    "private": (["private"], "private"),
    "public": (["public"], "private"),
    "public-max-age": (["public, max-age=600"], "max-age=600, private"),
    "s-maxage": (["max-age=60, s-maxage=3600"], "max-age=60, private"),
    "s-maxage-spelled": (["S-MaxAge=3600,Max-Age=60"], "Max-Age=60, private"),
    "no-store": (["no-store"], "no-store, private"),
    "no-store-public": (["public, no-store"], "no-store, private"),
    "no-cache-fields": (
        ['no-cache="Set-Cookie, X-Token", public'],
        'no-cache="Set-Cookie, X-Token", private',
    ),
    "qualified-private": (['private="Set-Cookie", max-age=5'], "private, max-age=5"),
    "private-kept-in-place": (
        ["max-age=5, private, must-revalidate"],
        ("max-age=5, private, must-revalidate"),
    ),
    "twice-private": (["private", "PRIVATE"], "private"),
    "several-headers": (
        ["public", "max-age=600", "s-maxage=60, immutable"],
        ("max-age=600, immutable, private"),
    ),
    "extensions": (
        ['stale-while-revalidate=30, community="UCI"'],
        ('stale-while-revalidate=30, community="UCI", private'),
    ),
}


@pytest.mark.parametrize(("values", "merged"), MERGED.values(), ids=MERGED.keys())
def test_the_merged_value(values: list[str], merged: str) -> None:
    assert private_cache_control(values) == merged


def write(session: SessionMixin) -> None:
    session["n"] = session.get("n", 0) + 1


def read(session: SessionMixin) -> None:
    session.get("n")


def clear(session: SessionMixin) -> None:
    session.clear()


def make_app(
    action: t.Callable[[SessionMixin], object],
    headers: list[tuple[str, str]],
    settings: dict[str, t.Any] | None = None,
    **options: t.Any,
) -> TestApp:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        action(get_session(environ))
        start_response("200 OK", [("Content-Type", "text/plain"), *headers])
        return [b"ok"]

    return TestApp(SessionMiddleware(app, {"secret_key": SECRET, **(settings or {})}, **options))


def cookie(interface: t.Any = None) -> str:
    """A valid session cookie, written by an app of ``interface``."""
    response = make_app(write, [], interface=interface).get("/")
    return response.headers["Set-Cookie"].split(";")[0].partition("=")[2]


INTERFACES: dict[str, t.Callable[[], t.Any]] = {
    "signed": SecureCookieSessionInterface,
    "encrypted": EncryptedCookieSessionInterface,
    "server-side": ServerSideSessionInterface,
}


@pytest.mark.parametrize("kind", INTERFACES)
@pytest.mark.parametrize(
    ("app_headers", "expected"),
    [
        ([], ["private"]),
        ([("Cache-Control", "public, max-age=600, s-maxage=3600")], ["max-age=600, private"]),
        ([("Cache-Control", "no-store")], ["no-store, private"]),
        (
            [("cache-control", "public"), ("X-Other", "1"), ("Cache-Control", "max-age=9")],
            ["max-age=9, private"],
        ),
    ],
)
def test_a_response_that_sets_the_cookie_is_private(
    kind: str, app_headers: list[tuple[str, str]], expected: list[str]
) -> None:
    app = make_app(write, app_headers, interface=INTERFACES[kind]())
    response = app.get("/")
    assert response.headers.getall("Set-Cookie")
    assert response.headers.getall("Cache-Control") == expected
    assert response.headers.getall("Vary") == ["Cookie"]  # and Vary: Cookie stays


@pytest.mark.parametrize("kind", INTERFACES)
def test_a_response_that_deletes_the_cookie_is_private(kind: str) -> None:
    interface = INTERFACES[kind]()
    app = make_app(clear, [("Cache-Control", "public, max-age=600")], interface=interface)
    app.set_cookie("session", cookie(interface))
    response = app.get("/")
    (deletion,) = response.headers.getall("Set-Cookie")
    assert "Max-Age=0" in deletion
    assert response.headers.getall("Cache-Control") == ["max-age=600, private"]


@pytest.mark.parametrize("action", [read, lambda session: None], ids=["read", "untouched"])
def test_a_response_without_a_cookie_keeps_the_apps_cache_control(
    action: t.Callable[[SessionMixin], object],
) -> None:
    """Only a response that carries the cookie needs to stay private: a page
    that read the session says ``Vary: Cookie``, which keys a shared cache."""
    app = make_app(action, [("Cache-Control", "public, max-age=600")])
    app.set_cookie("session", cookie())
    response = app.get("/")
    assert "Set-Cookie" not in response.headers
    assert response.headers.getall("Cache-Control") == ["public, max-age=600"]


def test_the_setting_turns_it_off() -> None:
    headers = [("Cache-Control", "public, max-age=600")]
    app = make_app(write, headers, {"cookie_cache_control": "false"})
    response = app.get("/")
    assert response.headers.getall("Set-Cookie")
    assert response.headers.getall("Cache-Control") == ["public, max-age=600"]
    app.app.config["SESSION_COOKIE_CACHE_CONTROL"] = True  # followed on the next request
    assert app.get("/").headers.getall("Cache-Control") == ["max-age=600, private"]


def test_an_error_page_after_the_cookie_is_private_too() -> None:
    """A second start_response (exc_info) gets the same session headers; its
    own Cache-Control is merged, not replaced by the first response's."""
    calls: list[list[tuple[str, str]]] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        get_session(environ)["n"] = 1
        start_response("200 OK", [("Cache-Control", "public, max-age=600")])
        try:
            raise RuntimeError("the body failed")
        except RuntimeError:
            start_response(
                "500 Internal Server Error", [("Cache-Control", "s-maxage=5")], sys.exc_info()
            )
        return [b"error"]

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
    ) -> t.Any:
        calls.append(headers)
        return lambda data: None

    SessionMiddleware(app, {"secret_key": SECRET})({"REQUEST_METHOD": "GET"}, start_response)
    first, error_page = calls
    assert [v for k, v in first if k == "Cache-Control"] == ["max-age=600, private"]
    assert [v for k, v in error_page if k == "Cache-Control"] == ["private"]
    assert [k for k, _ in error_page].count("Set-Cookie") == 1


@pytest.mark.parametrize(
    "interface_class", [SecureCookieSessionInterface, EncryptedCookieSessionInterface]
)
def test_a_werkzeug_response_gets_it_through_its_headers(interface_class: t.Any) -> None:
    """Flask's path: save_session is given Flask's response object."""
    from wsgi_sessions import SessionConfig

    interface = interface_class()
    app = SessionConfig({"secret_key": SECRET})
    session = SecureCookieSession()
    session["n"] = 1
    response = Response("x")
    response.cache_control.public = True
    response.cache_control.s_maxage = 60
    response.cache_control.max_age = 600
    interface.save_session(app, session, response)
    assert response.cache_control.private is True
    assert response.cache_control.public is False
    assert response.cache_control.s_maxage is None
    assert response.cache_control.max_age == 600
    assert response.headers.getlist("Cache-Control") == ["max-age=600, private"]
