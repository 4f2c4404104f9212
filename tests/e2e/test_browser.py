"""The demo under a real WSGI server (waitress), driven by headless Chromium.

Needs Debian's ``chromium`` and ``chromium-driver`` (.ci/run installs them) and
selenium (a test dependency). Without them the test skips, or fails under
WSGI_SESSIONS_REQUIRE_SERVICES=1. Nothing is downloaded: the driver path is
given explicitly, so selenium-manager never runs.
"""

from __future__ import annotations

import secrets
import shutil
import typing as t
from pathlib import Path

import demo
import pytest
from webtest.http import StopableWSGIServer

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WAIT_SECONDS = 20  # an upper bound for a page to appear, never a measured duration


@pytest.fixture
def demo_url(request: pytest.FixtureRequest) -> t.Iterator[str]:
    """The demo served by waitress (in a thread) on a free port of 127.0.0.1,
    with the settings of an indirect parameter, if any.

    The socket listens once ``create`` returns, so no polling is needed (and
    WebTest's ``wait()`` would leak its probe's socket).
    """
    settings = getattr(request, "param", {})
    app = demo.make_app({"secret_key": secrets.token_hex(32), **settings})
    server = StopableWSGIServer.create(app, host="127.0.0.1")
    try:
        yield server.application_url.rstrip("/")
    finally:
        server.shutdown()


@pytest.fixture
def browser(
    tmp_path: Path, service_unavailable: t.Callable[[str], t.NoReturn]
) -> t.Iterator[t.Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        service_unavailable("selenium is not installed: pip install -e '.[test]'")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        service_unavailable(
            "no Chromium and chromedriver: apt-get install chromium chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (*CHROMIUM_ARGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class Page(t.NamedTuple):
    """Small steps on the demo's pages."""

    submit: t.Callable[[str, str], None]
    text: t.Callable[[str], str]
    wait: t.Any


def _page(browser: t.Any) -> Page:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    # While a page is replaced, the driver may answer with transient errors.
    navigation = WebDriverWait(browser, WAIT_SECONDS, ignored_exceptions=(WebDriverException,))

    def submit(button_id: str, expected_text: str) -> None:
        """Click, then wait for the next document (the old one's marker gone)."""
        browser.execute_script("window.beforeSubmit = true;")
        browser.find_element(By.ID, button_id).click()
        navigation.until(lambda driver: driver.execute_script("return !window.beforeSubmit;"))
        navigation.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), expected_text))

    def text(element_id: str) -> str:
        return str(browser.find_element(By.ID, element_id).text)

    return Page(submit, text, WebDriverWait(browser, WAIT_SECONDS))


def test_login_counter_csrf_tamper_and_logout_in_a_real_browser(
    demo_url: str, browser: t.Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    submit, text, wait = _page(browser)

    browser.get(demo_url + "/")
    assert text("visits") == "1"
    cookie = browser.get_cookie("session")
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["secure"] is False  # plain http on loopback; set cookie_secure behind TLS
    assert "session=" not in browser.execute_script("return document.cookie")

    # log in: a flash message, the name, the counter going on
    browser.find_element(By.ID, "name").send_keys("Ada")
    submit("login", "Welcome, Ada!")
    assert text("user") == "Ada"
    assert text("visits") == "2"

    # reload: the counter persists, the flash was shown once
    browser.refresh()
    wait.until(ec.text_to_be_present_in_element((By.ID, "visits"), "3"))
    assert "Welcome, Ada!" not in browser.find_element(By.TAG_NAME, "body").text

    # the CSRF-protected form: accepted with the page's token; markup stays text
    browser.find_element(By.ID, "note").send_keys("<b>bold?</b>")
    submit("save-note", "Note saved.")
    assert "<b>bold?</b>" in text("contents")
    assert browser.find_elements(By.CSS_SELECTOR, "#contents b") == []

    # ... and refused with a forged token
    browser.execute_script(
        "document.querySelectorAll('input[name=csrf_token]')"
        ".forEach(function (field) { field.value = 'forged'; });"
    )
    submit("save-note", "did not come from this site")
    browser.get(demo_url + "/")
    assert text("user") == "Ada"

    # the cookie panel: the value the browser holds, and what anyone can read in it
    browser.get(demo_url + "/")
    held = browser.get_cookie("session")["value"]
    browser.refresh()
    wait.until(ec.presence_of_element_located((By.ID, "cookie")))
    assert text("cookie") == held
    assert "not encrypted" in text("inside")
    assert '"user": "Ada"' in text("payload")

    # tamper: the server hands back the cookie with one character changed; the
    # browser sends it, and gets a fresh, empty session instead of an error
    held = browser.get_cookie("session")["value"]  # as the refresh's response left it
    submit("tamper", "did not accept")
    tampered = text("cookie")
    assert len(tampered) == len(held)
    assert sum(a != b for a, b in zip(tampered, held)) == 1
    assert text("visits") == "1"
    assert browser.find_elements(By.ID, "user") == []
    assert browser.get_cookie("session")["httpOnly"] is True
    assert "session=" not in browser.execute_script("return document.cookie")
    browser.refresh()
    wait.until(ec.text_to_be_present_in_element((By.ID, "visits"), "2"))
    assert browser.find_elements(By.ID, "rejected") == []

    # log in again, then log out: the cookie is gone from the browser's own jar
    browser.find_element(By.ID, "name").send_keys("Ada")
    submit("login", "Welcome, Ada!")
    submit("logout", "Logged out")
    assert browser.get_cookie("session") is None
    assert browser.get_cookies() == []


@pytest.mark.parametrize(
    ("demo_url", "inside"),
    [
        ({"cookie_encryption": True}, "nothing in it is readable"),
        ({"store": "memory://"}, "only a random session id"),
    ],
    indirect=["demo_url"],
    ids=["encrypted", "server-side"],
)
def test_tamper_with_an_encrypted_or_server_side_cookie(
    demo_url: str, inside: str, browser: t.Any
) -> None:
    from selenium.webdriver.common.by import By

    submit, text, _ = _page(browser)
    browser.get(demo_url + "/")
    browser.find_element(By.ID, "name").send_keys("Ada")
    submit("login", "Welcome, Ada!")
    assert text("user") == "Ada"
    assert inside in text("inside")
    assert browser.find_elements(By.ID, "payload") == []
    assert "Ada" not in text("cookie")
    held = browser.get_cookie("session")["value"]
    submit("tamper", "did not accept")
    assert sum(a != b for a, b in zip(text("cookie"), held)) == 1
    assert text("visits") == "1"
    assert browser.find_elements(By.ID, "user") == []


@pytest.mark.parametrize("demo_url", [{"store": "memory://"}], indirect=True, ids=["memory"])
def test_your_sessions_and_ending_the_others_in_a_real_browser(
    demo_url: str, browser: t.Any
) -> None:
    """Chromium and a second browser (a plain HTTP client with its own cookie)
    log in as Ada; Chromium lists both sessions and ends the other one."""
    import http.cookiejar
    import urllib.parse
    import urllib.request

    from selenium.webdriver.common.by import By

    from pages import csrf_token, user

    jar = http.cookiejar.CookieJar()
    phone = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def phone_page(path: str = "/", form: dict[str, str] | None = None) -> str:
        data = None if form is None else urllib.parse.urlencode(form).encode()
        with phone.open(demo_url + path, data, timeout=WAIT_SECONDS) as response:
            return str(response.read().decode())

    submit, text, _ = _page(browser)
    browser.get(demo_url + "/")
    browser.find_element(By.ID, "name").send_keys("Ada")
    submit("login", "Welcome, Ada!")
    phone_page("/login", {"name": "Ada", "csrf_token": csrf_token(phone_page())})
    assert user(phone_page()) == "Ada"

    browser.get(demo_url + "/")
    listed = browser.find_elements(By.CSS_SELECTOR, "#sessions li")
    assert len(listed) == 2
    assert [item.text.endswith("(this one)") for item in listed].count(True) == 1
    submit("end-others", "Ended 1 other session(s).")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#sessions li")) == 1
    assert text("user") == "Ada"
    assert user(phone_page()) is None  # the other browser is logged out
