"""Flask, with wsgi-sessions' signed-cookie session interface as a drop-in.

Run it::

    .venv/bin/pip install -q -e . flask && .venv/bin/python examples/flask_app.py

(``WSGI_SESSIONS_STORE=sqlite:///sessions.db`` in the environment keeps the
sessions server-side instead.)

Only ``app.session_interface`` changes: ``flask.session``, ``flask.flash`` and the
test client's ``session_transaction()`` work as before, and the cookies are
interchangeable with Flask's own. The session also has ``csrf_token()`` and
``check_csrf()``.
"""

from __future__ import annotations

import os
import secrets
import typing as t

from flask import (
    Flask,
    abort,
    flash,
    get_flashed_messages,
    redirect,
    render_template_string,
    request,
    session,
    url_for,
)

from wsgi_sessions import SecureCookieSessionInterface, ServerSideSessionInterface

PAGE = """<!doctype html><title>Flask + wsgi-sessions</title>
{% for message in messages %}<p class="flash">{{ message }}</p>{% endfor %}
<p>Visits: <b id="visits">{{ visits }}</b></p>
{% if user %}<p>Logged in as <b id="user">{{ user }}</b>.</p>
<form method="post" action="{{ url_for('logout') }}">
<input type="hidden" name="csrf_token" value="{{ csrf_token }}"><button>Log out</button></form>
{% else %}<form method="post" action="{{ url_for('login') }}">
<input type="hidden" name="csrf_token" value="{{ csrf_token }}">
<input name="name"><button>Log in</button></form>{% endif %}
"""


def create_app(config: t.Mapping[str, t.Any] | None = None, store: str | None = None) -> Flask:
    """The app; ``store`` (e.g. ``sqlite:///sessions.db``) keeps sessions server-side."""
    app = Flask(__name__)
    app.secret_key = os.environ.get("WSGI_SESSIONS_SECRET_KEY") or secrets.token_hex(32)
    app.config.update(SESSION_COOKIE_SAMESITE="Lax", **(config or {}))
    if store:
        app.session_interface = ServerSideSessionInterface(store)
    else:
        app.session_interface = SecureCookieSessionInterface()

    @app.before_request
    def require_csrf_token() -> None:
        if request.method == "POST" and not session.check_csrf(request.form.get("csrf_token")):
            abort(400, "The form's CSRF token is missing or wrong.")

    @app.get("/")
    def index() -> str:
        session["visits"] = session.get("visits", 0) + 1
        return render_template_string(
            PAGE,
            messages=get_flashed_messages(),
            visits=session["visits"],
            user=session.get("user"),
            csrf_token=session.csrf_token(),
        )

    @app.post("/login")
    def login() -> t.Any:
        name = request.form.get("name", "").strip()
        if name:
            session["user"] = name
            session.new_csrf_token()
            flash(f"Welcome, {name}!")
        return redirect(url_for("index"), 303)

    @app.post("/logout")
    def logout() -> t.Any:
        session.clear()
        flash("You are logged out.")
        return redirect(url_for("index"), 303)

    return app


if __name__ == "__main__":
    # Flask prints " * Running on http://127.0.0.1:8000"; PORT picks another port.
    port = int(os.environ.get("PORT", "8000"))
    create_app(store=os.environ.get("WSGI_SESSIONS_STORE")).run(host="127.0.0.1", port=port)
