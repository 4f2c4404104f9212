"""The README against the code: its quick-start snippet runs, and its settings
table is the settings that ``parse_settings`` accepts, with their defaults.

The README is read as a user reads it: a snippet is taken verbatim from its
fenced block and executed; each table row's default is handed to the parser
as the string an ini file would hold.
"""

from __future__ import annotations

import re
import typing as t
from pathlib import Path

import pytest
import webtest

from wsgi_sessions import (
    SecureCookieSessionInterface,
    SessionConfig,
    SessionMiddleware,
    parse_settings,
)
from wsgi_sessions.middleware import default_interface

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def section(title: str) -> str:
    """The text of the README section ``## title``, up to the next ``## ``."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.S | re.M)
    assert match is not None, f"README has no section {title!r}"
    return match[1]


def python_blocks(text: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(text) if lang == "python"]


class Row(t.NamedTuple):
    setting: str
    config_key: str | None
    default: str


def settings_table() -> list[Row]:
    """The rows of the table in "## Settings" (first three columns, backticks removed)."""
    rows = []
    for line in section("Settings").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue  # prose, the header row or the separator
        setting, key, default = (cell.strip("`") for cell in cells[:3])
        rows.append(Row(setting, None if key == "—" else key, default))
    return rows


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
    assert len(blocks) >= 10
    for number, block in enumerate(blocks):
        compile(block, f"README.md python block {number}", "exec")


def test_the_settings_table_lists_exactly_the_accepted_settings() -> None:
    documented = {row.setting for row in settings_table()}
    assert len(documented) == len(settings_table())  # no setting listed twice
    with pytest.raises(ValueError, match="the settings are: ") as info:
        parse_settings({"no_such_setting": "1"})
    accepted = set(str(info.value).split("the settings are: ", 1)[1].split(", "))
    assert documented == accepted


def test_the_settings_table_names_the_config_keys() -> None:
    config = parse_settings({})
    for row in settings_table():
        if row.config_key is not None:
            assert row.config_key in config, row


@pytest.mark.parametrize("row", settings_table(), ids=lambda row: row.setting)
def test_the_documented_default_is_the_default(row: Row) -> None:
    defaults = SessionConfig()
    if row.setting == "environ_key":
        assert defaults.environ_key == row.default
        return
    if row.setting == "store":
        assert row.default == "none"
        assert type(default_interface(defaults)) is SecureCookieSessionInterface
        return
    assert row.config_key is not None
    value = defaults.config[row.config_key]
    if row.default == "none":
        assert value is None
    elif row.default == "[]":
        assert value == []
    else:
        # The default written as an ini file would give it parses to the same value.
        given = parse_settings({row.setting: row.default})[row.config_key]
        assert given == value
        assert type(given) is type(value)


def test_the_encrypted_cookie_snippets_run() -> None:
    import flask

    from wsgi_sessions import EncryptedCookieSessionInterface

    wsgi, flask_snippet = python_blocks(section("Encrypted cookie sessions"))
    namespace: dict[str, t.Any] = {"app": lambda environ, start_response: [], **globals()}
    exec(compile(wsgi, "README.md encrypted cookies", "exec"), namespace)
    assert type(namespace["app"].session_interface) is EncryptedCookieSessionInterface
    flask_app = flask.Flask("readme")
    exec(compile(flask_snippet, "README.md encrypted cookies, Flask", "exec"), {"app": flask_app})
    assert type(flask_app.session_interface) is EncryptedCookieSessionInterface


def test_the_cache_control_examples_are_what_the_merge_gives() -> None:
    from wsgi_sessions._cache_control import private_cache_control

    text = section("Responses that set a cookie stay out of shared caches")
    examples = re.findall(r"`([^`]+)` becomes `([^`]+)`", text)
    assert examples
    for given, merged in examples:
        assert private_cache_control([given]) == merged
    assert private_cache_control([]) == "private"
    assert private_cache_control(["no-store"]) == "no-store, private"
