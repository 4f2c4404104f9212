"""The wsgi-sessions demo: a plain WSGI app that shows its session at work.

Run it (from a clone of the repository)::

    python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/python examples/demo.py

then open http://127.0.0.1:8000/. It counts your visits, logs a name in and
out with CSRF-protected forms and flash messages, shows the session cookie as
your browser holds it and what is inside it, and has a button that changes one
character of that cookie: the server then starts a fresh, empty session. With
a store it also lists "your sessions" (every browser logged in under the same
name) and ends all the others. Flags choose where the session lives::

    examples/demo.py                            # a signed cookie: anyone can read it
    examples/demo.py --encrypt                  # encrypted (pip install -e '.[encryption]')
    examples/demo.py --store sqlite:///demo.db  # server-side; or memory://, redis://host:6379/0

The secret key comes from ``WSGI_SESSIONS_SECRET_KEY``, else a random one is
made at start (every restart then logs everyone out); ``PORT`` picks the port.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import html
import json
import os
import secrets
import sys
import typing as t
import zlib
from functools import partial
from socketserver import ThreadingMixIn
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIServer, make_server

from werkzeug.http import dump_cookie

from wsgi_sessions import (
    ServerSideSessionInterface,
    SessionConfig,
    SessionMiddleware,
    SessionMixin,
    get_session,
)
from wsgi_sessions.middleware import default_interface
from wsgi_sessions.stores import mask_url

if t.TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from _typeshed.wsgi import StartResponse, WSGIEnvironment

HOST, PORT = "127.0.0.1", int(os.environ.get("PORT", "8000"))
_HTML = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
_MAX_FORM = 64 * 1024
_MAX_SHOWN = 8 * 1024  # what a page shows of a cookie, and of what it decodes to


class Setup(t.NamedTuple):
    """What the pages need to know of the session configuration, fixed at start-up."""

    kind: str  # "signed", "encrypted" or "server-side"
    store: str | None  # the store's URL, any password masked
    cookie_name: str
    cookie_attributes: dict[str, t.Any]  # dump_cookie's keywords: a tampered copy keeps them
    owners: ServerSideSessionInterface | None = None  # lists and ends a user's sessions


class View(t.NamedTuple):
    """One request, as the panels of the home page see it."""

    session: SessionMixin
    setup: Setup
    cookie: str | None  # the session cookie as the browser sent it
    rejected: bool  # a cookie came, but it opened no session
    hidden: str  # the CSRF field every form carries


def make_app(settings: t.Mapping[str, t.Any] | None = None) -> SessionMiddleware:
    """The demo wrapped in SessionMiddleware; ``settings`` as in the README's table."""
    config = SessionConfig(settings)
    interface = default_interface(config)
    owners = interface if isinstance(interface, ServerSideSessionInterface) else None
    setup = _setup(config)._replace(owners=owners)
    return SessionMiddleware(partial(demo_app, setup=setup), config, interface=interface)


def _setup(config: SessionConfig) -> Setup:
    c = config.config
    store = c["SESSION_STORE"]
    kind = "server-side" if store else "encrypted" if c["SESSION_COOKIE_ENCRYPTION"] else "signed"
    attributes = {
        "path": c["SESSION_COOKIE_PATH"] or c["APPLICATION_ROOT"],
        "domain": c["SESSION_COOKIE_DOMAIN"],
        "secure": c["SESSION_COOKIE_SECURE"],
        "httponly": c["SESSION_COOKIE_HTTPONLY"],
        "samesite": c["SESSION_COOKIE_SAMESITE"],
    }
    shown = mask_url(store) if isinstance(store, str) else type(store).__name__
    return Setup(kind, shown if store else None, c["SESSION_COOKIE_NAME"], attributes)


def demo_app(environ: WSGIEnvironment, start_response: StartResponse, setup: Setup) -> list[bytes]:
    """Route by method and path; every POST must carry the session's CSRF token."""
    session = get_session(environ)
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO") or "/"
    if method == "GET" and path == "/":
        return _page(start_response, _home(_view(environ, session, setup)))
    action = ACTIONS.get(path)
    if method != "POST" or action is None:
        return _page(start_response, "<p>Not found. <a href='/'>Home</a></p>", "404 Not Found")
    form = _read_form(environ)
    if not session.check_csrf(form.get("csrf_token")):
        body = "<p>The form expired or did not come from this site. <a href='/'>Try again</a></p>"
        return _page(start_response, body, "400 Bad Request")
    cookie = _sent_cookie(environ, setup.cookie_name)
    return action(Post(session, form, cookie, setup, start_response))


# -- actions: POST /path, CSRF-checked; each answers itself ---------------------------------------


class Post(t.NamedTuple):
    """A form post that passed its CSRF check, as an action sees it."""

    session: SessionMixin
    form: dict[str, str]
    cookie: str | None  # the session cookie as the browser sent it
    setup: Setup
    start_response: StartResponse


def _login(post: Post) -> list[bytes]:
    name = post.form.get("name", "").strip()[:40]
    if not name:
        post.session.flash("Please enter a name.", queue="error")
    else:
        # A new id (server-side) and a new CSRF token: whatever was planted
        # or seen before the login is worthless after it.
        post.session.regenerate()
        post.session["user"] = name
        if post.setup.owners:  # a real app: str(user.id)
            post.session.owner = name
        post.session.flash(f"Welcome, {name}!")
    return _see_other(post.start_response)


def _note(post: Post) -> list[bytes]:
    post.session["note"] = post.form.get("note", "")[:200]
    post.session.flash("Note saved.")
    return _see_other(post.start_response)


def _logout(post: Post) -> list[bytes]:
    # The data goes, the cookie is deleted (and the id is dead in a store).
    post.session.invalidate()
    body = "<h1>Logged out</h1><p>Your session is gone. <a href='/'>Start again</a></p>"
    return _page(post.start_response, body)


def _tamper(post: Post) -> list[bytes]:
    """Hand the browser its cookie back with one character changed, as someone
    editing it would (it stays HttpOnly: no script on the page ever sees it).
    The next request shows what the server makes of it."""
    cookie = post.cookie
    if not cookie:  # cannot be, after a CSRF check: the token lives in the session
        return _see_other(post.start_response)
    middle = len(cookie) // 2
    changed = cookie[:middle] + ("B" if cookie[middle] == "A" else "A") + cookie[middle + 1 :]
    header = dump_cookie(post.setup.cookie_name, changed, **post.setup.cookie_attributes)
    return _see_other(post.start_response, ("Set-Cookie", header), ("Cache-Control", "no-store"))


def _end_others(post: Post) -> list[bytes]:
    """What a password change does: end every session of this user but this one."""
    owners, owner = post.setup.owners, post.session.owner
    if owners and owner:
        ended = owners.end_sessions_of(owner, keep=post.session)
        post.session.flash(f"Ended {ended} other session(s).")
    return _see_other(post.start_response)


ACTIONS: dict[str, Callable[[Post], list[bytes]]] = {
    "/login": _login,
    "/note": _note,
    "/logout": _logout,
    "/tamper": _tamper,
    "/end-others": _end_others,
}


# -- the home page: one small function per panel --------------------------------------------------


def _view(environ: WSGIEnvironment, session: SessionMixin, setup: Setup) -> View:
    cookie = _sent_cookie(environ, setup.cookie_name)
    rejected = cookie is not None and not session  # before anything is written to it
    token = html.escape(session.csrf_token())
    hidden = f"<input type='hidden' name='csrf_token' value='{token}'>"
    return View(session, setup, cookie, rejected, hidden)


def _home(view: View) -> str:
    view.session["visits"] = view.session.get("visits", 0) + 1
    return "<h1>wsgi-sessions demo</h1>" + "".join(panel(view) for panel in PANELS)


def _messages(view: View) -> str:
    session = view.session
    messages = [("error", text) for text in session.pop_flash("error")]
    messages += [("info", text) for text in session.pop_flash()]
    parts = [f"<p class='{kind}'>{html.escape(text)}</p>" for kind, text in messages]
    if view.rejected:
        parts.append(
            "<p class='error' id='rejected'>Your browser sent a session cookie that the server"
            " did not accept (changed, expired, or made with another secret key), so this is a"
            " fresh, empty session: nothing of the old one is used, and nothing failed.</p>"
        )
    return "".join(parts)


def _account(view: View) -> str:
    user, hidden = view.session.get("user"), view.hidden
    parts = [f"<p>Visits in this session: <b id='visits'>{view.session['visits']}</b></p>"]
    if user:
        parts.append(
            f"<p>Logged in as <b id='user'>{html.escape(user)}</b>.</p>"
            f"<form method='post' action='/note'>{hidden}<input name='note' id='note'>"
            "<button id='save-note'>Save note</button></form>"
            f"<form method='post' action='/logout'>{hidden}"
            "<button id='logout'>Log out</button></form>"
        )
    else:
        parts.append(
            f"<form method='post' action='/login'>{hidden}"
            "<label>Name <input name='name' id='name'></label>"
            "<button id='login'>Log in</button></form>"
        )
    return "".join(parts)


def _sessions(view: View) -> str:
    """Your sessions: every browser logged in under this name (server-side only)."""
    owners, owner = view.setup.owners, view.session.owner
    if not (owners and owner):
        return ""
    rows = "".join(
        f"<li>since {r.created:%H:%M:%S} UTC, last seen {r.last_seen:%H:%M:%S}"
        f"{' (this one)' if r.current else ''}</li>"
        for r in owners.sessions_of(owner, current=view.session)
    )
    return (
        f"<h2>Your sessions</h2><ul id='sessions'>{rows}</ul>"
        f"<form method='post' action='/end-others'>{view.hidden}"
        "<button id='end-others'>End all other sessions</button></form>"
    )


def _contents(view: View) -> str:
    contents = json.dumps(dict(view.session), indent=2, sort_keys=True, default=repr)
    return f"<h2>The session holds</h2><pre id='contents'>{html.escape(contents)}</pre>"


def _cookie(view: View) -> str:
    name = html.escape(view.setup.cookie_name)
    if view.cookie is None:
        return (
            f"<h2>The cookie</h2><p id='cookie-none'>Your browser sent no <code>{name}</code>"
            " cookie with this request; this page's response sets one.</p>"
        )
    shown = html.escape(view.cookie[:_MAX_SHOWN])
    return (
        f"<h2>The cookie</h2><p>The <code>{name}</code> cookie as your browser sent it with this"
        " request (HttpOnly: scripts on the page cannot read it; this response may replace"
        f" it):</p><pre id='cookie'>{shown}</pre>" + _INSIDE[view.setup.kind](view)
    )


def _inside_signed(view: View) -> str:
    payload = _decode_signed(t.cast(str, view.cookie))
    return (
        "<p id='inside'>Signed, <b>not encrypted</b>: anyone who holds this cookie can read it,"
        " without the secret key (the signature only stops changes). Its first part, decoded:"
        f"</p><pre id='payload'>{html.escape(payload)}</pre><p>The <code>--encrypt</code>"
        " flag (setting <code>cookie_encryption</code>) seals it instead.</p>"
    )


def _inside_encrypted(view: View) -> str:
    return (
        "<p id='inside'>Encrypted (AES-256-GCM, setting <code>cookie_encryption</code>):"
        " <b>nothing in it is readable</b> without the secret key, not even when it was"
        f" written; only its length shows ({len(t.cast(str, view.cookie))} characters).</p>"
    )


def _inside_server_side(view: View) -> str:
    return (
        "<p id='inside'>Server-side: the cookie holds <b>only a random session id and its"
        " signature</b>; the data stays in the store"
        f" (<code>{html.escape(view.setup.store or '')}</code>), under a keyed hash of the id.</p>"
    )


_INSIDE: dict[str, Callable[[View], str]] = {
    "signed": _inside_signed,
    "encrypted": _inside_encrypted,
    "server-side": _inside_server_side,
}


def _tamper_form(view: View) -> str:
    return (
        "<h2>Tamper with it</h2><form method='post' action='/tamper'>"
        f"{view.hidden}<button id='tamper'>Change one character of the cookie</button></form>"
        "<p>The server answers with your cookie, its middle character changed, and this page"
        " reloads: a changed cookie opens no session, so you get a fresh, empty one.</p>"
    )


#: The home page, top to bottom; a new panel is a function of the View.
PANELS: list[Callable[[View], str]] = [
    _messages,
    _account,
    _sessions,
    _contents,
    _cookie,
    _tamper_form,
]


# -- helpers --------------------------------------------------------------------------------------


def _decode_signed(value: str) -> str:
    """What a signed cookie says, read as anyone can: no key, no verification.

    Its form is ``payload.timestamp.signature``; the payload is base64 JSON,
    zlib-compressed when the cookie starts with ``.``. Decompression is bounded."""
    compressed = value.startswith(".")
    payload = (value[1:] if compressed else value).split(".")[0]
    try:
        data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        if compressed:
            data = zlib.decompressobj().decompress(data, _MAX_SHOWN)
    except (ValueError, zlib.error):
        return "(not base64 or zlib: the cookie was changed)"
    text = data.decode("utf-8", "replace")
    with contextlib.suppress(ValueError, RecursionError):  # changed bytes: shown as they are
        text = json.dumps(json.loads(text), indent=2, sort_keys=True)
    return text[:_MAX_SHOWN]


def _sent_cookie(environ: WSGIEnvironment, name: str) -> str | None:
    """The raw value of the cookie ``name`` in the request's Cookie header."""
    header: str = environ.get("HTTP_COOKIE", "")
    for pair in header.split(";"):
        key, equals, value = pair.strip().partition("=")
        if equals and key == name:
            return value
    return None


def _read_form(environ: WSGIEnvironment) -> dict[str, str]:
    try:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), _MAX_FORM)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    fields = parse_qs(raw.decode("utf-8", "replace"))
    return {key: values[0] for key, values in fields.items()}


def _see_other(start_response: StartResponse, *headers: tuple[str, str]) -> list[bytes]:
    start_response("303 See Other", [("Location", "/"), ("Content-Length", "0"), *headers])
    return []


def _page(start_response: StartResponse, body: str, status: str = "200 OK") -> list[bytes]:
    data = f"<!doctype html><title>wsgi-sessions demo</title>{body}".encode()
    start_response(status, [*_HTML, ("Content-Length", str(len(data)))])
    return [data]


# -- running it -----------------------------------------------------------------------------------

#: Settings as the command line spells them, so an error names what the user typed.
_FLAGS = {"setting 'store'": "--store", "setting 'cookie_encryption'": "--encrypt"}


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """A browser opens several connections at once; one thread each keeps it from stalling."""

    daemon_threads = True


def secret_key() -> str:
    """From the environment, else random: a key in the source would be public."""
    return os.environ.get("WSGI_SESSIONS_SECRET_KEY") or secrets.token_hex(32)


def app_from_args(argv: Sequence[str] | None = None) -> SessionMiddleware:
    """The demo as the command line asks for it; a bad flag exits with status 2."""
    parser = argparse.ArgumentParser(prog="demo.py", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--store",
        metavar="URL",
        default=os.environ.get("WSGI_SESSIONS_STORE") or None,
        help="keep sessions server-side: memory://, sqlite:///demo.db, "
        "redis://127.0.0.1:6379/0, ... (default: $WSGI_SESSIONS_STORE, else a signed cookie)",
    )
    parser.add_argument(
        "--encrypt", action="store_true", help="encrypt the cookie session (cookie_encryption)"
    )
    args = parser.parse_args(argv)
    if args.encrypt and args.store:
        parser.error(
            "--encrypt applies to cookie sessions: with --store the cookie holds only a signed "
            "session id and the data stays in the store; leave one of them out"
        )
    settings = {"secret_key": secret_key(), "store": args.store, "cookie_encryption": args.encrypt}
    try:
        return make_app(settings)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        for setting, flag in _FLAGS.items():
            message = message.replace(setting, flag)
        parser.error(message)


def main(argv: Sequence[str] | None = None) -> None:
    app = app_from_args(argv)
    with make_server(HOST, PORT, app, server_class=_ThreadingServer) as server:
        print(f"wsgi-sessions demo on http://{HOST}:{server.server_port}/ (Ctrl+C to stop)")
        setup = _setup(app.session_config)
        where = f" in {setup.store}" if setup.store else " cookie"
        print(f"sessions: {setup.kind}{where}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)


if __name__ == "__main__":
    main()
