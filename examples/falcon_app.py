"""Falcon (WSGI), with the session at ``req.context.session``.

Run it::

    .venv/bin/pip install -q -e '.[falcon]' && .venv/bin/python examples/falcon_app.py

(the standard library's server; in production serve ``make_app()`` with any WSGI server).
"""

from __future__ import annotations

import html
import os
import secrets
import typing as t
from wsgiref.simple_server import make_server

import falcon

from wsgi_sessions import SessionMiddleware
from wsgi_sessions.integrations.falcon import SessionComponent


class RequireCSRFToken:
    """Refuse any form POST that does not carry the session's CSRF token."""

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict[str, t.Any]
    ) -> None:
        if req.method == "POST":
            form = req.get_media(default_when_empty={})
            if not req.context.session.check_csrf(form.get("csrf_token")):
                raise falcon.HTTPBadRequest(
                    description="The form's CSRF token is missing or wrong."
                )


class Index:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        session = req.context.session
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
        resp.content_type = falcon.MEDIA_HTML
        resp.text = "<!doctype html><title>Falcon + wsgi-sessions</title>" + "".join(parts)


class Login:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        session = req.context.session
        name = str(req.get_media().get("name", "")).strip()
        if name:
            session["user"] = name
            session.new_csrf_token()
            session.flash(f"Welcome, {name}!")
        raise falcon.HTTPSeeOther("/")


class Logout:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.session.clear()
        req.context.session.flash("You are logged out.")
        raise falcon.HTTPSeeOther("/")


def make_app(settings: t.Mapping[str, t.Any] | None = None) -> SessionMiddleware:
    """The WSGI app to serve: the Falcon app inside the session middleware."""
    app = falcon.App(middleware=[SessionComponent(), RequireCSRFToken()])
    app.add_route("/", Index())
    app.add_route("/login", Login())
    app.add_route("/logout", Logout())
    secret = os.environ.get("WSGI_SESSIONS_SECRET_KEY") or secrets.token_hex(32)
    return SessionMiddleware(app, settings or {"secret_key": secret})


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    with make_server("127.0.0.1", port, make_app()) as server:
        # flush: when the output is a pipe (a container's log), show it now.
        print(f"Serving on http://127.0.0.1:{port}/ (Ctrl+C to stop)", flush=True)
        server.serve_forever()
