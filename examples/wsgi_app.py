"""Plain WSGI, no framework: the session from ``get_session(environ)``.

Run it::

    .venv/bin/pip install -q -e . && .venv/bin/python examples/wsgi_app.py

(the standard library's server; in production serve ``make_app()`` with any WSGI
server). ``examples/demo.py`` is a longer tour of the same ideas.
"""

from __future__ import annotations

import html
import os
import secrets
import typing as t
from urllib.parse import parse_qs
from wsgiref.simple_server import make_server

from wsgi_sessions import SessionMiddleware, SessionMixin, get_session

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

MAX_FORM = 64 * 1024


def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    """Route by method and path; every POST must carry the session's CSRF token."""
    session = get_session(environ)
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO") or "/"
    if method == "GET" and path == "/":
        return page(start_response, index(session))
    if method != "POST" or path not in ("/login", "/logout"):
        return page(start_response, "<p>Not found.</p>", "404 Not Found")
    form = read_form(environ)
    if not session.check_csrf(form.get("csrf_token")):
        return page(
            start_response, "<p>The form's CSRF token is missing or wrong.</p>", "400 Bad Request"
        )
    if path == "/login":
        name = form.get("name", "").strip()
        if name:
            session["user"] = name
            session.new_csrf_token()
            session.flash(f"Welcome, {name}!")
    else:
        session.clear()
        session.flash("You are logged out.")
    start_response("303 See Other", [("Location", "/"), ("Content-Length", "0")])
    return []


def index(session: SessionMixin) -> str:
    session["visits"] = session.get("visits", 0) + 1
    hidden = f'<input type="hidden" name="csrf_token" value="{session.csrf_token()}">'
    parts = [f'<p class="flash">{html.escape(m)}</p>' for m in session.pop_flash()]
    parts.append(f'<p>Visits: <b id="visits">{session["visits"]}</b></p>')
    if user := session.get("user"):
        parts.append(f'<p>Logged in as <b id="user">{html.escape(user)}</b>.</p>')
        parts.append(
            f'<form method="post" action="/logout">{hidden}<button>Log out</button></form>'
        )
    else:
        parts.append(
            f'<form method="post" action="/login">{hidden}<input name="name">'
            "<button>Log in</button></form>"
        )
    return "".join(parts)


def read_form(environ: WSGIEnvironment) -> dict[str, str]:
    try:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_FORM)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length).decode("utf-8", "replace") if length > 0 else ""
    return {key: values[0] for key, values in parse_qs(body).items()}


def page(start_response: StartResponse, body: str, status: str = "200 OK") -> list[bytes]:
    data = f"<!doctype html><title>WSGI + wsgi-sessions</title>{body}".encode()
    headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(data)))]
    start_response(status, headers)
    return [data]


def make_app(settings: t.Mapping[str, t.Any] | None = None) -> SessionMiddleware:
    """The WSGI app to serve: ``app`` inside the middleware that opens and saves sessions."""
    secret = os.environ.get("WSGI_SESSIONS_SECRET_KEY") or secrets.token_hex(32)
    return SessionMiddleware(app, settings or {"secret_key": secret})


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    with make_server("127.0.0.1", port, make_app()) as server:
        print(f"Serving on http://127.0.0.1:{port}/ (Ctrl+C to stop)", flush=True)
        server.serve_forever()
