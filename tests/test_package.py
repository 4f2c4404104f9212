"""The package as users see it: its public names, its errors, what importing costs."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

import wsgi_sessions
from wsgi_sessions import SessionCookieTooLarge, SessionError, SessionStoreError

# The public names the README documents; more may be public.
PROMISED = {
    "SessionMixin",
    "SecureCookieSession",
    "NullSession",
    "SessionInterface",
    "SecureCookieSessionInterface",
    "TaggedJSONSerializer",
    "SessionMiddleware",
    "SessionConfig",
    "get_session",
    "parse_settings",
}


def test_public_names() -> None:
    assert set(wsgi_sessions.__all__) >= PROMISED
    for name in wsgi_sessions.__all__:
        assert getattr(wsgi_sessions, name).__module__.startswith("wsgi_sessions.")
    assert wsgi_sessions.__version__


def test_typed_package() -> None:
    assert resources.files("wsgi_sessions").joinpath("py.typed").is_file()


# Frameworks and optional dependencies: extras, never imported by the library itself.
FORBIDDEN = ("flask", "redis", "webob", "webtest", "pyramid", "bottle", "falcon", "beaker", "zope")


def _modules_imported_by(statement: str) -> set[str]:
    # Compared with what the interpreter had before: PasteDeploy's namespace
    # .pth file puts "paste" in sys.modules at start-up, before any import.
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        f"{statement}\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return set(output.split())


def test_import_pulls_in_no_framework_or_optional_dependency() -> None:
    imported = _modules_imported_by(
        "import wsgi_sessions, wsgi_sessions.stores, wsgi_sessions.server, "
        "wsgi_sessions.integrations"
    )
    top_level = {name.split(".")[0] for name in imported}
    assert not top_level & {*FORBIDDEN, "paste", "sqlite3"}
    own = {name for name in imported if name.startswith("wsgi_sessions.")}
    assert "wsgi_sessions.cli" not in own
    assert not [name for name in own if name.startswith("wsgi_sessions.integrations.")]
    # The server-side interface (public) defaults to the memory store; the
    # other stores load only when configured.
    assert not own & {"wsgi_sessions.stores.sqlite", "wsgi_sessions.stores.redis"}
    # The check itself can fail: importing an adapter does pull its framework in.
    assert "bottle" in _modules_imported_by("import wsgi_sessions.integrations.bottle")


def test_errors_share_a_base() -> None:
    assert issubclass(SessionCookieTooLarge, SessionError)
    assert issubclass(SessionStoreError, SessionError)
    assert issubclass(SessionError, Exception)


def test_too_large_message_says_what_to_do() -> None:
    error = SessionCookieTooLarge(5000, 4093)
    assert (error.size, error.limit) == (5000, 4093)
    message = str(error)
    assert "5000" in message
    assert "4093" in message
    assert "max_cookie_size" in message
    assert "server-side store" in message
