"""The demo (examples/demo.py) driven through WebTest, as a visitor would use it."""

from __future__ import annotations

from pathlib import Path

import demo
import pytest
from webtest import TestApp

from pages import csrf_token as _token
from pages import visits as _visits
from wsgi_sessions import ServerSideSessionInterface


@pytest.fixture(params=["cookie", "sqlite"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> TestApp:
    store = f"sqlite:///{tmp_path / 'sessions.db'}" if request.param == "sqlite" else None
    return TestApp(demo.make_app({"secret_key": "demo-test-" + "k" * 32, "store": store}))


def test_counts_visits_per_session(client: TestApp) -> None:
    assert _visits(client.get("/").text) == 1
    assert _visits(client.get("/").text) == 2
    other = TestApp(client.app)
    assert _visits(other.get("/").text) == 1
    assert _visits(client.get("/").text) == 3


def test_login_flashes_once_and_renews_the_csrf_token(client: TestApp) -> None:
    token = _token(client.get("/").text)
    response = client.post("/login", {"name": "Ada", "csrf_token": token}, status=303)
    page = response.follow().text
    assert "<p class='info'>Welcome, Ada!</p>" in page
    assert "<b id='user'>Ada</b>" in page
    assert "Welcome" not in client.get("/").text
    assert _token(page) != token
    # the pre-login token no longer works
    client.post("/note", {"note": "x", "csrf_token": token}, status=400)


def test_post_without_or_with_a_wrong_token_is_refused(client: TestApp) -> None:
    token = _token(client.get("/").text)
    client.post("/login", {"name": "Mallory"}, status=400)
    client.post("/login", {"name": "Mallory", "csrf_token": token + "x"}, status=400)
    assert "Mallory" not in client.get("/").text


def test_empty_name_is_an_error_flash(client: TestApp) -> None:
    token = _token(client.get("/").text)
    page = client.post("/login", {"name": " ", "csrf_token": token}).follow().text
    assert "<p class='error'>Please enter a name.</p>" in page
    assert "id='user'" not in page


def test_session_contents_are_html_escaped(client: TestApp) -> None:
    token = _token(client.get("/").text)
    page = client.post("/login", {"name": "<b>Eve</b>", "csrf_token": token}).follow().text
    assert "<b>Eve</b>" not in page
    assert "&lt;b&gt;Eve&lt;/b&gt;" in page
    page = client.post(
        "/note", {"note": "<script>alert(1)</script>", "csrf_token": _token(page)}
    ).follow()
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "Note saved." in page.text


def test_logout_deletes_the_cookie(client: TestApp) -> None:
    page = client.post("/login", {"name": "Ada", "csrf_token": _token(client.get("/").text)})
    page = page.follow()
    assert "session" in client.cookies
    response = client.post("/logout", {"csrf_token": _token(page.text)}, status=200)
    assert "Logged out" in response.text
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    assert "session" not in client.cookies
    assert _visits(client.get("/").text) == 1


def test_unknown_paths_are_404(client: TestApp) -> None:
    client.get("/nowhere", status=404)
    client.post("/", status=404)


def test_secret_key_from_the_environment_else_random(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSGI_SESSIONS_SECRET_KEY", "from-env")
    assert demo.secret_key() == "from-env"
    monkeypatch.delenv("WSGI_SESSIONS_SECRET_KEY")
    first, second = demo.secret_key(), demo.secret_key()
    assert first != second
    assert len(first) == 64


def test_with_a_store_your_sessions_are_listed_and_the_others_ended() -> None:
    app = demo.make_app({"secret_key": "demo-test-" + "k" * 32, "store": "memory://"})
    laptop, phone = TestApp(app), TestApp(app)
    for browser in (laptop, phone):
        browser.post("/login", {"name": "Ada", "csrf_token": _token(browser.get("/").text)})
    page = laptop.get("/").text
    assert page.count("<li>since ") == 2
    assert page.count("(this one)") == 1
    page = laptop.post("/end-others", {"csrf_token": _token(page)}).follow().text
    assert "Ended 1 other session(s)." in page
    assert page.count("<li>since ") == 1
    assert "id='user'" not in phone.get("/").text  # logged out
    assert "id='user'" in laptop.get("/").text


def test_the_sessions_list_is_shown_only_with_a_store(client: TestApp) -> None:
    page = client.post("/login", {"name": "Ada", "csrf_token": _token(client.get("/").text)})
    server_side = isinstance(client.app.session_interface, ServerSideSessionInterface)  # type: ignore[attr-defined]
    assert ("id='sessions'" in page.follow().text) is server_side
    assert ("id='end-others'" in client.get("/").text) is server_side
