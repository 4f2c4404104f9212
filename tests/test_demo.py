"""The demo (examples/demo.py) driven through WebTest, as a visitor would use it."""

from __future__ import annotations

import base64
import html
import json
import re
import subprocess
import sys
import urllib.request
import zlib
from pathlib import Path

import demo
import pytest
from webtest import TestApp

from pages import csrf_token as _token
from pages import user as _user
from pages import visits as _visits
from wsgi_sessions import ServerSideSessionInterface

SECRET_KEY = "demo-test-" + "k" * 32
DEMO = Path(demo.__file__)


@pytest.fixture(params=["cookie", "encrypted", "sqlite"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> TestApp:
    store = f"sqlite:///{tmp_path / 'sessions.db'}" if request.param == "sqlite" else None
    settings = {"secret_key": SECRET_KEY, "store": store}
    if request.param == "encrypted":
        settings["cookie_encryption"] = True
    return TestApp(demo.make_app(settings))


def _block(page: str, element_id: str) -> str | None:
    """The text of the <pre> or <p> with this id, unescaped; None where there is none."""
    match = re.search(rf"<(pre|p)[^>]* id='{element_id}'>(.*?)</\1>", page, re.S)
    return html.unescape(match[2]) if match else None


def _log_in(client: TestApp, name: str = "Ada") -> str:
    page = client.get("/").text
    return str(client.post("/login", {"name": name, "csrf_token": _token(page)}).follow().text)


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


# -- the cookie panel -----------------------------------------------------------------------------


def test_the_cookie_panel_shows_the_cookie_the_browser_sent(client: TestApp) -> None:
    first = client.get("/")
    assert _block(first.text, "cookie") is None
    assert "id='cookie-none'" in first.text
    sent = client.cookies["session"]
    second = client.get("/").text
    assert _block(second, "cookie") == sent


def test_a_signed_cookie_is_decoded_on_the_page_without_the_key() -> None:
    client = TestApp(demo.make_app({"secret_key": SECRET_KEY}))
    _log_in(client, "<b>Ada</b>")
    cookie = client.cookies["session"]
    page = client.get("/").text
    assert "anyone who holds this cookie can read it" in page
    payload = json.loads(_block(page, "payload") or "")
    assert payload["user"] == "<b>Ada</b>"  # the session's own data, read from the cookie
    assert payload["visits"] == 2
    assert "<b>Ada</b>" not in page  # shown as text, never as markup
    # what the page decodes is what the cookie's first part says, for anyone
    part = cookie.split(".")[0]
    assert json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) == payload


def test_a_compressed_signed_cookie_is_decoded_too() -> None:
    client = TestApp(demo.make_app({"secret_key": SECRET_KEY}))
    page = _log_in(client)
    client.post("/note", {"note": "la " * 60, "csrf_token": _token(page)})
    assert client.cookies["session"].startswith(".")  # zlib-compressed
    payload = json.loads(_block(client.get("/").text, "payload") or "")
    assert payload["note"] == "la " * 60


def test_an_encrypted_cookie_shows_nothing_readable() -> None:
    client = TestApp(demo.make_app({"secret_key": SECRET_KEY, "cookie_encryption": True}))
    page = _log_in(client, "Ada-the-user")
    page = client.get("/").text
    assert "nothing in it is readable" in (_block(page, "inside") or "")
    assert "id='payload'" not in page
    assert page.count("Ada-the-user") == 2  # "logged in as" and the contents, not the cookie
    assert "Ada-the-user" not in (_block(page, "cookie") or "")


def test_a_server_side_cookie_holds_only_an_id(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    client = TestApp(demo.make_app({"secret_key": SECRET_KEY, "store": url}))
    _log_in(client)
    page = client.get("/").text
    inside = _block(page, "inside") or ""
    assert "only a random session id and its signature" in inside
    assert url in inside
    assert "id='payload'" not in page


def test_a_bomb_in_the_cookie_is_decoded_within_bounds(decompressed_sizes: list[int]) -> None:
    bomb = "." + base64.urlsafe_b64encode(zlib.compress(b"[" * 10_000_000)).decode().rstrip("=")
    shown = demo._decode_signed(bomb + ".AAAA.AAAA")
    assert len(shown) <= demo._MAX_SHOWN
    assert max(decompressed_sizes) <= demo._MAX_SHOWN
    client = TestApp(demo.make_app({"secret_key": SECRET_KEY}))
    for value in (bomb + ".AAAA.AAAA", "%%%", ".", "a.b.c"):
        client.set_cookie("session", value)
        page = client.get("/").text  # a fresh session, never an error
        assert "id='rejected'" in page
        assert _visits(page) == 1
        client.reset()


# -- tampering ------------------------------------------------------------------------------------


def test_tampering_with_the_cookie_gives_a_fresh_session(client: TestApp) -> None:
    _log_in(client)
    page = client.get("/").text
    assert _visits(page) == 3
    assert _user(page) == "Ada"
    sent = client.cookies["session"]
    response = client.post("/tamper", {"csrf_token": _token(page)}, status=303)
    (header,) = response.headers.getall("Set-Cookie")
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Path=/" in header
    tampered = client.cookies["session"]
    assert len(tampered) == len(sent)
    assert sum(a != b for a, b in zip(tampered, sent)) == 1
    page = response.follow().text  # no error: a fresh, empty session
    assert "id='rejected'" in page
    assert _visits(page) == 1
    assert _user(page) is None
    assert _block(page, "cookie") == tampered
    page = client.get("/").text  # ... which goes on as any other
    assert "id='rejected'" not in page
    assert _visits(page) == 2


def test_tampering_needs_the_csrf_token(client: TestApp) -> None:
    client.get("/")
    response = client.post("/tamper", {"csrf_token": "forged"}, status=400)
    assert "Set-Cookie" not in response.headers
    assert _visits(client.get("/").text) == 2


# -- the command line -----------------------------------------------------------------------------


def _inside(app: object) -> str:
    """What the page says is inside the cookie (the second page: the first gets none)."""
    visitor = TestApp(app)
    visitor.get("/")
    return _block(visitor.get("/").text, "inside") or ""


def test_flags_choose_the_session_kind(tmp_path: Path) -> None:
    assert "not encrypted" in _inside(demo.app_from_args([]))
    assert "nothing in it is readable" in _inside(demo.app_from_args(["--encrypt"]))
    assert "memory://" in _inside(demo.app_from_args(["--store", "memory://"]))
    database = tmp_path / "demo.db"
    assert f"sqlite:///{database}" in _inside(
        demo.app_from_args(["--store", f"sqlite:///{database}"])
    )
    assert database.exists()


def test_the_store_flag_takes_a_redis_url(redis_url: str, redis_prefix: str) -> None:
    import redis

    app = demo.app_from_args(["--store", f"{redis_url}?prefix={redis_prefix}"])
    assert "redis://" in _inside(app)
    client = redis.Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter(match=redis_prefix + "*"))  # the session is there
    finally:
        client.close()


def test_the_store_flag_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSGI_SESSIONS_STORE", "memory://")
    assert "memory://" in _inside(demo.app_from_args([]))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--encrypt", "--store", "memory://"], "--encrypt applies to cookie sessions"),
        (["--store", "nowhere://x"], "--store must be a memory://"),
        (["--store", "sqlite://demo.db"], "--store: an SQLite URL is"),
        (["--stroe", "memory://"], "unrecognized arguments: --stroe"),
    ],
)
def test_bad_flags_exit_with_a_clear_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        demo.app_from_args(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_encrypt_without_cryptography_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(SystemExit) as exit_:
        demo.app_from_args(["--encrypt"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--encrypt is on, but" in err
    assert "pip install 'wsgi-sessions[encryption]'" in err


def test_the_demo_runs_and_prints_its_url(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    process = subprocess.Popen(
        [sys.executable, str(DEMO), "--store", f"sqlite:///{database}"],
        env={"PORT": "0", "WSGI_SESSIONS_SECRET_KEY": SECRET_KEY, "PATH": ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first, second = process.stdout.readline(), process.stdout.readline()
        match = re.fullmatch(r"wsgi-sessions demo on (http://127\.0\.0\.1:\d+/) \(.*\)\n", first)
        assert match, first
        assert second == f"sessions: server-side in sqlite:///{database}\n"
        with urllib.request.urlopen(match[1], timeout=20) as response:  # loopback only
            assert _visits(response.read().decode()) == 1
        assert database.exists()
    finally:
        process.terminate()
        process.communicate(timeout=20)


def test_with_a_store_your_sessions_are_listed_and_the_others_ended() -> None:
    app = demo.make_app({"secret_key": SECRET_KEY, "store": "memory://"})
    laptop, phone = TestApp(app), TestApp(app)
    _log_in(phone)
    page = _log_in(laptop)
    assert page.count("<li>since ") == 2
    assert page.count("(this one)") == 1
    page = laptop.post("/end-others", {"csrf_token": _token(page)}).follow().text
    assert "Ended 1 other session(s)." in page
    assert page.count("<li>since ") == 1
    assert _user(phone.get("/").text) is None  # logged out
    assert _user(laptop.get("/").text) == "Ada"


def test_the_sessions_list_is_shown_only_with_a_store(client: TestApp) -> None:
    page = _log_in(client)
    server_side = isinstance(client.app.session_interface, ServerSideSessionInterface)  # type: ignore[attr-defined]
    assert ("id='sessions'" in page) is server_side
    assert ("id='end-others'" in page) is server_side
