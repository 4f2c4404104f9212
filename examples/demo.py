"""The wsgi-sessions demo: a plain WSGI app with a signed-cookie session.

Run it (from a clone of the repository)::

    python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/python examples/demo.py

then open http://127.0.0.1:8000/. It counts your visits, logs a name in and
out with CSRF-protected forms and flash messages, and shows what the session
holds. With a store (``WSGI_SESSIONS_STORE=memory://``) it also lists "your
sessions" (every browser logged in under the same name) and ends the others.
The secret key comes from ``WSGI_SESSIONS_SECRET_KEY``, else a random one is
made at start (every restart then logs everyone out).
"""

from __future__ import annotations

import html
import json
import os
import secrets
import sys
import typing as t
from socketserver import ThreadingMixIn
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIServer, make_server

from wsgi_sessions import (
    ServerSideSessionInterface,
    SessionInterface,
    SessionMiddleware,
    SessionMixin,
    get_session,
)

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

HOST, PORT = "127.0.0.1", int(os.environ.get("PORT", "8000"))
_HTML = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
_MAX_FORM = 64 * 1024


def make_app(settings: t.Mapping[str, t.Any] | None = None) -> WSGIApplication:
    """The demo wrapped in SessionMiddleware; ``settings`` as in the README's table."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        return demo_app(environ, start_response, middleware.session_interface)

    middleware = SessionMiddleware(app, settings)
    return middleware


def demo_app(
    environ: WSGIEnvironment,
    start_response: StartResponse,
    interface: SessionInterface | None = None,
) -> list[bytes]:
    """Route by method and path; every POST must carry the session's CSRF token."""
    session = get_session(environ)
    # A user's sessions can be listed and ended only when they live in a store.
    owners = interface if isinstance(interface, ServerSideSessionInterface) else None
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO") or "/"
    if method == "GET" and path == "/":
        return _page(start_response, _home(session, owners))
    if method != "POST" or path not in ("/login", "/note", "/logout", "/end-others"):
        return _page(start_response, "<p>Not found. <a href='/'>Home</a></p>", "404 Not Found")
    form = _read_form(environ)
    if not session.check_csrf(form.get("csrf_token")):
        body = "<p>The form expired or did not come from this site. <a href='/'>Try again</a></p>"
        return _page(start_response, body, "400 Bad Request")
    if path == "/login":
        name = form.get("name", "").strip()[:40]
        if not name:
            session.flash("Please enter a name.", queue="error")
        else:
            # A new id (server-side) and a new CSRF token: whatever was planted
            # or seen before the login is worthless after it.
            session.regenerate()
            session["user"] = name
            if owners:
                session.owner = name  # a real app: str(user.id)
            session.flash(f"Welcome, {name}!")
    elif path == "/note":
        session["note"] = form.get("note", "")[:200]
        session.flash("Note saved.")
    elif path == "/end-others" and owners and session.owner:
        ended = owners.end_sessions_of(session.owner, keep=session)
        session.flash(f"Ended {ended} other session(s).")
    elif path == "/end-others":
        session.flash("Log in first.", queue="error")
    else:  # logout: the data goes, the cookie is deleted (and the id is dead in a store)
        session.invalidate()
        body = "<h1>Logged out</h1><p>Your session is gone. <a href='/'>Start again</a></p>"
        return _page(start_response, body)
    start_response("303 See Other", [("Location", "/"), ("Content-Length", "0")])
    return []


def _home(session: SessionMixin, owners: ServerSideSessionInterface | None) -> str:
    session["visits"] = session.get("visits", 0) + 1
    messages = [("error", text) for text in session.pop_flash("error")]
    messages += [("info", text) for text in session.pop_flash()]
    token = html.escape(session.csrf_token())
    hidden = f"<input type='hidden' name='csrf_token' value='{token}'>"
    parts = [f"<p class='{kind}'>{html.escape(text)}</p>" for kind, text in messages]
    parts.append(f"<p>Visits in this session: <b id='visits'>{session['visits']}</b></p>")
    user = session.get("user")
    if user:
        parts.append(f"<p>Logged in as <b id='user'>{html.escape(user)}</b>.</p>")
        parts.append(
            f"<form method='post' action='/note'>{hidden}<input name='note' id='note'>"
            "<button id='save-note'>Save note</button></form>"
            f"<form method='post' action='/logout'>{hidden}"
            "<button id='logout'>Log out</button></form>"
        )
        if owners and session.owner:
            rows = "".join(
                f"<li>since {r.created:%H:%M:%S} UTC, last seen {r.last_seen:%H:%M:%S}"
                f"{' (this one)' if r.current else ''}</li>"
                for r in owners.sessions_of(session.owner, current=session)
            )
            parts.append(
                f"<h2>Your sessions</h2><ul id='sessions'>{rows}</ul>"
                f"<form method='post' action='/end-others'>{hidden}"
                "<button id='end-others'>End all other sessions</button></form>"
            )
    else:
        parts.append(
            f"<form method='post' action='/login'>{hidden}"
            "<label>Name <input name='name' id='name'></label>"
            "<button id='login'>Log in</button></form>"
        )
    contents = json.dumps(dict(session), indent=2, sort_keys=True, default=repr)
    parts.append(f"<h2>The session holds</h2><pre id='contents'>{html.escape(contents)}</pre>")
    return "<h1>wsgi-sessions demo</h1>" + "".join(parts)


def _read_form(environ: WSGIEnvironment) -> dict[str, str]:
    try:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), _MAX_FORM)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    fields = parse_qs(raw.decode("utf-8", "replace"))
    return {key: values[0] for key, values in fields.items()}


def _page(start_response: StartResponse, body: str, status: str = "200 OK") -> list[bytes]:
    data = f"<!doctype html><title>wsgi-sessions demo</title>{body}".encode()
    start_response(status, [*_HTML, ("Content-Length", str(len(data)))])
    return [data]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """A browser opens several connections at once; one thread each keeps it from stalling."""

    daemon_threads = True


def secret_key() -> str:
    """From the environment, else random: a key in the source would be public."""
    return os.environ.get("WSGI_SESSIONS_SECRET_KEY") or secrets.token_hex(32)


def main() -> None:
    # WSGI_SESSIONS_STORE=sqlite:///sessions.db keeps the sessions server-side.
    app = make_app({"secret_key": secret_key(), "store": os.environ.get("WSGI_SESSIONS_STORE")})
    with make_server(HOST, PORT, app, server_class=_ThreadingServer) as server:
        print(f"wsgi-sessions demo on http://{HOST}:{PORT}/ (Ctrl+C to stop)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)


if __name__ == "__main__":
    main()
