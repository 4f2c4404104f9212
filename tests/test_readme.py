"""The README against the code: its quick-start snippet runs as written.

The README is read as a user reads it: a snippet is taken verbatim from its
fenced block and executed. The settings table moved to the docs, where it is
generated from the code (tests/test_docs.py checks it, and runs every snippet
of the README and the docs).
"""

from __future__ import annotations

import re
import typing as t
from pathlib import Path

import webtest

from wsgi_sessions import (
    SessionMiddleware,
)

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def section(title: str) -> str:
    """The text of the README section ``## title``, up to the next ``## ``."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.S | re.M)
    assert match is not None, f"README has no section {title!r}"
    return match[1]


def python_blocks(text: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(text) if lang == "python"]


def test_the_plain_wsgi_quick_start_runs_as_written() -> None:
    (snippet, *_) = python_blocks(section("Quick start"))
    assert "get_session" in snippet  # the plain WSGI one comes first
    namespace: dict[str, t.Any] = {}
    exec(compile(snippet, "README.md quick start", "exec"), namespace)
    app = namespace["app"]
    assert isinstance(app, SessionMiddleware)
    # The snippet sets cookie_secure: a client sends the cookie back over HTTPS only.
    client = webtest.TestApp(app, extra_environ={"wsgi.url_scheme": "https"})
    first = client.get("https://localhost/")
    assert first.text == "visit 1"
    cookie = first.headers["Set-Cookie"]
    for attribute in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in cookie.split("; ")
    assert first.headers["Vary"] == "Cookie"
    assert client.get("https://localhost/").text == "visit 2"
    assert client.get("https://localhost/").text == "visit 3"
    # Another browser starts at 1: the count lives in the cookie, not the app.
    assert webtest.TestApp(app).get("/").text == "visit 1"


def test_every_python_snippet_in_the_readme_compiles() -> None:
    blocks = python_blocks(README)
    assert len(blocks) >= 2  # the quick start's plain WSGI and Flask
    for number, block in enumerate(blocks):
        compile(block, f"README.md python block {number}", "exec")
