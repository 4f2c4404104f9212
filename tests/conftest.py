"""Shared fixtures. Each fixture is a self-contained function; helpers that tests
call are handed out by fixtures so that no test module imports this one."""

from __future__ import annotations

import os
import typing as t
from collections.abc import Callable, Iterable

import pytest
from webtest import TestApp

from wsgi_sessions import SessionMiddleware, get_session
from wsgi_sessions.sessions import SessionMixin

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

Action = Callable[[SessionMixin], object]
MakeTestApp = Callable[..., TestApp]
ParseSetCookie = Callable[[str], tuple[str, str, dict[str, str]]]


@pytest.fixture
def secret_key() -> str:
    """The secret key the test apps use unless a test sets another."""
    return "test-secret-key-that-is-long-enough-0123456789"


@pytest.fixture
def make_testapp(secret_key: str) -> MakeTestApp:
    """Build a WebTest app around ``SessionMiddleware``.

    ``action(session)`` runs inside the wrapped app on every request; what it
    returns (if a str) becomes the body. ``settings`` are passed as keywords;
    ``secret_key`` is set unless given (``None`` leaves it out) or a ``prefix``
    is given (then every setting is the test's). The
    middleware is at ``testapp.app``.
    """

    def make(
        action: Action | None = None,
        *,
        interface: t.Any = None,
        headers: list[tuple[str, str]] | None = None,
        prefix: str = "",
        **settings: t.Any,
    ) -> TestApp:
        if not prefix:
            settings.setdefault("secret_key", secret_key)
        if settings.get("secret_key", "") is None:
            del settings["secret_key"]

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            session = get_session(environ, middleware.environ_key)
            result = action(session) if action is not None else None
            body = result.encode() if isinstance(result, str) else b"ok"
            start_response(
                "200 OK",
                [("Content-Type", "text/plain"), *(headers or [])],
            )
            return [body]

        middleware = SessionMiddleware(app, settings, interface=interface, prefix=prefix)
        return TestApp(middleware)

    return make


@pytest.fixture
def parse_set_cookie() -> ParseSetCookie:
    """Split a ``Set-Cookie`` header into name, value and {attribute: value},
    attribute names lowercased, flags mapped to ``""``."""

    def parse(header: str) -> tuple[str, str, dict[str, str]]:
        first, *rest = header.split(";")
        name, _, value = first.strip().partition("=")
        attributes: dict[str, str] = {}
        for part in rest:
            key, _, attr_value = part.strip().partition("=")
            assert key.lower() not in attributes, f"attribute {key} twice in {header!r}"
            attributes[key.lower()] = attr_value
        return name, value, attributes

    return parse


#: Set by .ci/run: a test that needs a service or a browser must run, not skip.
REQUIRE_SERVICES_ENV = "WSGI_SESSIONS_REQUIRE_SERVICES"


def skip_or_fail(reason: str) -> t.NoReturn:
    """Skip for a missing service or browser, or fail under
    WSGI_SESSIONS_REQUIRE_SERVICES=1, where a skip would hide a broken CI."""
    if os.environ.get(REQUIRE_SERVICES_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_SERVICES_ENV}=1 requires it)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def service_unavailable() -> t.Callable[[str], t.NoReturn]:
    """:func:`skip_or_fail`, for tests: ``service_unavailable("no browser: ...")``."""
    return skip_or_fail
