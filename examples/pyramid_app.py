"""Pyramid, with ``config.include("wsgi_sessions.integrations.pyramid")``.

Run it on its own (the session comes from the ``session.*`` settings)::

    .venv/bin/pip install -q -e '.[pyramid]' waitress && .venv/bin/python examples/pyramid_app.py

or behind the PasteDeploy filter (the session comes from the middleware)::

    .venv/bin/pip install -q -e '.[pyramid,paste]' waitress
    PYTHONPATH=examples .venv/bin/pserve examples/pyramid.ini session_secret=$(openssl rand -hex 32)
"""

from __future__ import annotations

import html
import os
import secrets
import typing as t

from pyramid.config import Configurator
from pyramid.csrf import get_csrf_token
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.request import Request
from pyramid.response import Response


def index(request: Request) -> Response:
    session = request.session
    session["visits"] = session.get("visits", 0) + 1
    hidden = f'<input type="hidden" name="csrf_token" value="{get_csrf_token(request)}">'
    parts = [f'<p class="flash">{html.escape(m)}</p>' for m in session.pop_flash()]
    parts.append(f'<p>Visits: <b id="visits">{session["visits"]}</b></p>')
    if user := session.get("user"):
        parts.append(f'<p>Logged in as <b id="user">{html.escape(user)}</b>.</p>')
        logout = request.route_path("logout")
        parts.append(
            f'<form method="post" action="{logout}">{hidden}<button>Log out</button></form>'
        )
    else:
        login = request.route_path("login")
        parts.append(
            f'<form method="post" action="{login}">{hidden}<input name="name">'
            "<button>Log in</button></form>"
        )
    return Response("<!doctype html><title>Pyramid + wsgi-sessions</title>" + "".join(parts))


def login(request: Request) -> HTTPSeeOther:
    # Pyramid's CSRF policy (require_csrf=True) has checked the token already.
    name = request.POST.get("name", "").strip()
    if name:
        request.session["user"] = name
        request.session.new_csrf_token()
        request.session.flash(f"Welcome, {name}!")
    return HTTPSeeOther(request.route_path("index"))


def logout(request: Request) -> HTTPSeeOther:
    request.session.invalidate()
    request.session.flash("You are logged out.")
    return HTTPSeeOther(request.route_path("index"))


def main(global_config: t.Mapping[str, str] | None = None, **settings: t.Any) -> t.Any:
    """The PasteDeploy app factory (``use = call:pyramid_app:main``)."""
    with Configurator(settings=settings) as config:
        config.include("wsgi_sessions.integrations.pyramid")
        config.set_default_csrf_options(require_csrf=True)
        config.add_route("index", "/")
        config.add_route("login", "/login")
        config.add_route("logout", "/logout")
        config.add_view(index, route_name="index", request_method="GET")
        config.add_view(login, route_name="login", request_method="POST")
        config.add_view(logout, route_name="logout", request_method="POST")
        return config.make_wsgi_app()


if __name__ == "__main__":
    from waitress import serve

    secret = os.environ.get("WSGI_SESSIONS_SECRET_KEY") or secrets.token_hex(32)
    port = int(os.environ.get("PORT", "8000"))
    # waitress logs its address at INFO, which nothing shows unless logging is configured.
    print(f"Serving on http://127.0.0.1:{port}/ (Ctrl+C to stop)", flush=True)
    serve(main(**{"session.secret_key": secret}), host="127.0.0.1", port=port)
