"""Bottle, with the session handed to the routes that ask for it.

Run it::

    .venv/bin/pip install -q -e '.[bottle]' && .venv/bin/python examples/bottle_app.py
"""

from __future__ import annotations

import os
import secrets
import typing as t

import bottle

from wsgi_sessions import SessionMiddleware, SessionMixin
from wsgi_sessions.integrations.bottle import SessionPlugin

PAGE = """<!doctype html><title>Bottle + wsgi-sessions</title>
% for message in messages:
<p class="flash">{{message}}</p>
% end
<p>Visits: <b id="visits">{{visits}}</b></p>
% if user:
<p>Logged in as <b id="user">{{user}}</b>.</p>
<form method="post" action="/logout">
<input type="hidden" name="csrf_token" value="{{csrf_token}}"><button>Log out</button></form>
% else:
<form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{{csrf_token}}">
<input name="name"><button>Log in</button></form>
% end
"""

app = bottle.Bottle()
app.install(SessionPlugin())  # routes that name a `session` argument get it


def require_csrf_token(session: SessionMixin) -> None:
    if not session.check_csrf(bottle.request.forms.getunicode("csrf_token")):
        bottle.abort(400, "The form's CSRF token is missing or wrong.")


@app.get("/")
def index(session: SessionMixin) -> str:
    session["visits"] = session.get("visits", 0) + 1
    return bottle.template(
        PAGE,
        messages=session.pop_flash(),
        visits=session["visits"],
        user=session.get("user"),
        csrf_token=session.csrf_token(),
    )


@app.post("/login")
def login(session: SessionMixin) -> None:
    require_csrf_token(session)
    name = (bottle.request.forms.getunicode("name") or "").strip()
    if name:
        session["user"] = name
        session.new_csrf_token()
        session.flash(f"Welcome, {name}!")
    bottle.redirect("/", 303)


@app.post("/logout")
def logout(session: SessionMixin) -> None:
    require_csrf_token(session)
    session.clear()
    session.flash("You are logged out.")
    bottle.redirect("/", 303)


def make_app(settings: t.Mapping[str, t.Any] | None = None) -> SessionMiddleware:
    """The WSGI app to serve: ``app`` inside the middleware that opens and saves sessions."""
    secret = os.environ.get("WSGI_SESSIONS_SECRET_KEY") or secrets.token_hex(32)
    return SessionMiddleware(app, settings or {"secret_key": secret})


if __name__ == "__main__":
    # Bottle prints "Listening on http://127.0.0.1:8000/"; PORT picks another port.
    bottle.run(make_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
