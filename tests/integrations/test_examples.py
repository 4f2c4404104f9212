"""Every framework example, driven the same way through WebTest: a visitor
counts visits, is refused without the CSRF token, logs in and out, and sees
each flash message once."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from webtest import TestApp

from pages import csrf_token, flashes, user, visits

SECRET = "examples-test-" + "k" * 32
EXAMPLES = Path(__file__).parents[2] / "examples"


# Each example takes a store URL: None keeps the session in the signed cookie.


def wsgi_example(store: str | None) -> t.Any:
    import wsgi_app

    return wsgi_app.make_app({"secret_key": SECRET, "store": store})


def flask_example(store: str | None) -> t.Any:
    import flask_app

    return flask_app.create_app({"SECRET_KEY": SECRET}, store=store)


def pyramid_example(store: str | None) -> t.Any:
    import pyramid_app

    settings = {"session.secret_key": SECRET}
    if store:
        settings["session.store"] = store
    return pyramid_app.main({}, **settings)


def pyramid_ini_example(store: str | None) -> t.Any:
    from paste.deploy import loadapp

    ini = EXAMPLES / "pyramid.ini"
    if store:  # the same file with one more line in [filter:session]
        text = ini.read_text().replace("[filter:session]\n", f"[filter:session]\nstore = {store}\n")
        ini = Path(store.removeprefix("sqlite:///")).with_suffix(".ini")
        ini.write_text(text)
    return loadapp(f"config:{ini}", global_conf={"session_secret": SECRET}, relative_to=EXAMPLES)


def bottle_example(store: str | None) -> t.Any:
    import bottle_app

    return bottle_app.make_app({"secret_key": SECRET, "store": store})


def falcon_example(store: str | None) -> t.Any:
    import falcon_app

    return falcon_app.make_app({"secret_key": SECRET, "store": store})


EXAMPLE_APPS = [
    wsgi_example,
    flask_example,
    pyramid_example,
    pyramid_ini_example,
    bottle_example,
    falcon_example,
]


@pytest.fixture(params=["cookie", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    return f"sqlite:///{tmp_path / 'sessions.db'}" if request.param == "sqlite" else None


@pytest.fixture(params=EXAMPLE_APPS, ids=lambda factory: factory.__name__)
def client(request: pytest.FixtureRequest, store: str | None) -> TestApp:
    return TestApp(request.param(store))


def test_sqlite_examples_keep_only_an_id_in_the_cookie(
    request: pytest.FixtureRequest, client: TestApp, store: str | None
) -> None:
    client.get("/")
    (cookie,) = [c for c in client.cookiejar if c.name == "session"]
    if store is None:
        assert len(cookie.value) > 40  # the whole signed session
    else:
        assert Path(store.removeprefix("sqlite:///")).is_file()
        assert "visits" not in cookie.value and "." in cookie.value


def test_visits_are_counted_per_visitor(client: TestApp) -> None:
    assert visits(client.get("/").text) == 1
    assert visits(client.get("/").text) == 2
    assert visits(TestApp(client.app).get("/").text) == 1
    assert visits(client.get("/").text) == 3


def test_the_session_cookie_has_safe_attributes(client: TestApp) -> None:
    cookie = client.get("/").headers["Set-Cookie"]
    assert cookie.startswith("session=")
    assert "; HttpOnly" in cookie
    assert "; SameSite=Lax" in cookie
    assert "; Path=/" in cookie


def test_a_post_without_the_csrf_token_is_refused(client: TestApp) -> None:
    token = csrf_token(client.get("/").text)
    client.post("/login", {"name": "Mallory"}, status=400)
    client.post("/login", {"name": "Mallory", "csrf_token": token[::-1]}, status=400)
    assert user(client.get("/").text) is None


def test_login_and_logout_with_flash_messages(client: TestApp) -> None:
    token = csrf_token(client.get("/").text)
    page = client.post("/login", {"name": "Ada <3", "csrf_token": token}, status=303).follow()
    assert flashes(page.text) == ["Welcome, Ada &lt;3!"]
    assert user(page.text) == "Ada &lt;3"
    assert visits(page.text) == 2
    again = client.get("/").text
    assert flashes(again) == []
    # the token changed at login: the old one is refused
    assert csrf_token(again) != token
    client.post("/logout", {"csrf_token": token}, status=400)
    page = client.post("/logout", {"csrf_token": csrf_token(again)}, status=303).follow()
    assert flashes(page.text) == ["You are logged out."]
    assert user(page.text) is None
    assert visits(page.text) == 1
