"""wsgi_sessions.integrations.paste: the egg:wsgi-sessions#session filter."""

from __future__ import annotations

import logging
import typing as t
from datetime import timedelta
from pathlib import Path

import pytest
from paste.deploy import loadapp
from webtest import TestApp

from wsgi_sessions import SessionMiddleware, get_session
from wsgi_sessions.integrations.paste import filter_app_factory

SECRET = "paste-test-" + "k" * 32
INI = Path(__file__).parents[2] / "examples" / "pyramid.ini"


def counter(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
    session = get_session(environ)
    session["n"] = session.get("n", 0) + 1
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(session["n"]).encode()]


def test_the_example_ini_loads_our_filter_from_the_entry_point() -> None:
    app = loadapp(f"config:{INI}", global_conf={"session_secret": SECRET})
    assert isinstance(app, SessionMiddleware)
    assert app.secret_key == SECRET
    assert app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(hours=12)


def test_keys_are_the_settings_with_or_without_the_session_prefix() -> None:
    app = filter_app_factory(
        counter,
        {"here": "/somewhere"},
        secret_key=SECRET,
        **{"session.cookie_name": "sid", "secret_key_fallbacks": "old1, old2"},
    )
    assert app.config["SESSION_COOKIE_NAME"] == "sid"
    assert app.config["SECRET_KEY_FALLBACKS"] == ["old1", "old2"]
    client = TestApp(app)
    assert client.get("/").text == "1"
    assert client.get("/").text == "2"
    assert "sid" in client.cookies


def test_a_typo_or_a_duplicate_fails_at_load_time() -> None:
    with pytest.raises(ValueError, match=r"'secert_key'"):  # as written: no prefix added
        filter_app_factory(counter, {}, secert_key=SECRET)
    with pytest.raises(ValueError, match="given twice"):
        filter_app_factory(counter, {}, secret_key=SECRET, **{"session.secret_key": SECRET})
    with pytest.raises(ValueError, match="cookie_secure"):
        filter_app_factory(counter, {}, secret_key=SECRET, cookie_secure="perhaps")


@pytest.mark.parametrize(
    ("key", "named"),
    [("secret_key", "'secret_key'"), ("session.secret_key", "'session.secret_key'")],
)
def test_an_empty_secret_key_fails_at_load_time_named_as_written(key: str, named: str) -> None:
    with pytest.raises(ValueError, match="empty") as info:
        filter_app_factory(counter, {}, **{key: ""})
    message = str(info.value)
    assert named in message
    if not key.startswith("session."):
        assert "session." not in message


def test_a_prefixed_combination_error_keeps_the_names_as_written() -> None:
    with pytest.raises(ValueError) as info:
        filter_app_factory(counter, {}, secret_key=SECRET, cookie_samesite="None")
    assert "cookie_samesite='None' requires cookie_secure=true" in str(info.value)
    assert "session." not in str(info.value)


def test_no_secret_key_logs_one_warning_at_load_time(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="wsgi_sessions"):
        filter_app_factory(counter, {}, cookie_secure="true")
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "'secret_key'" in record.getMessage()
    assert "session." not in record.getMessage()  # the section wrote no prefix


@pytest.mark.parametrize(
    ("conf", "named"),
    [({}, "'secret_key'"), ({"session.cookie_secure": "true"}, "'secret_key'")],
)
def test_a_write_without_a_key_names_the_setting_as_the_section_spells_it(
    conf: dict[str, str], named: str
) -> None:
    testapp = TestApp(filter_app_factory(counter, {}, **conf))
    with pytest.raises(RuntimeError) as info:
        testapp.get("/")
    message = str(info.value)
    assert named in message
    assert "session." not in message and "Flask" not in message


def public_counter(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
    session = get_session(environ)
    session["n"] = session.get("n", 0) + 1
    start_response("200 OK", [("Content-Type", "text/plain"), ("Cache-Control", "public")])
    return [str(session["n"]).encode()]


def test_a_response_that_sets_the_cookie_is_private_unless_the_section_says_not() -> None:
    response = TestApp(filter_app_factory(public_counter, {}, secret_key=SECRET)).get("/")
    assert response.headers.getall("Set-Cookie")
    assert response.headers.getall("Cache-Control") == ["private"]
    off = filter_app_factory(
        public_counter, {}, secret_key=SECRET, **{"session.cookie_cache_control": "off"}
    )
    response = TestApp(off).get("/")
    assert response.headers.getall("Set-Cookie")
    assert response.headers.getall("Cache-Control") == ["public"]
