"""The demo under a real WSGI server (waitress), driven by headless Chromium.

Needs Debian's ``chromium`` and ``chromium-driver`` (.ci/run installs them) and
selenium (a test dependency). Without them the test skips, or fails under
WSGI_SESSIONS_REQUIRE_SERVICES=1. Nothing is downloaded: the driver path is
given explicitly, so selenium-manager never runs.
"""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def serve(app: t.Any) -> t.Iterator[str]:
    """``app`` served by waitress (in a thread) on a free port of 127.0.0.1.

    The socket listens once ``create`` returns, so no polling is needed (and
    WebTest's ``wait()`` would leak its probe's socket).
    """
    server = StopableWSGIServer.create(app, host="127.0.0.1")
    try:
        yield server.application_url.rstrip("/")
    finally:
        server.shutdown()


@pytest.fixture
def demo_url() -> t.Iterator[str]:
    """The demo, with signed cookie sessions."""
    with serve(demo.make_app({"secret_key": secrets.token_hex(32)})) as url:
        yield url


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


def submitter(browser: t.Any) -> t.Callable[[str, str], None]:
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

    return submit


def test_login_counter_csrf_and_logout_in_a_real_browser(demo_url: str, browser: t.Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_SECONDS)
    submit = submitter(browser)

    def text(element_id: str) -> str:
        return str(browser.find_element(By.ID, element_id).text)

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

    # log out: the cookie is gone from the browser's own jar
    submit("logout", "Logged out")
    assert browser.get_cookie("session") is None
    assert browser.get_cookies() == []


def test_your_sessions_and_ending_the_others_in_a_real_browser(browser: t.Any) -> None:
    """With a store: Chromium and another client (WebTest, in process) log in as
    Ada; Chromium lists both and ends the other, which is logged out."""
    from selenium.webdriver.common.by import By
    from webtest import TestApp

    from pages import csrf_token, user

    app = demo.make_app({"secret_key": secrets.token_hex(32), "store": "memory://"})
    submit = submitter(browser)
    with serve(app) as url:
        browser.get(url + "/")
        browser.find_element(By.ID, "name").send_keys("Ada")
        submit("login", "Welcome, Ada!")
        phone = TestApp(app)
        phone.post("/login", {"name": "Ada", "csrf_token": csrf_token(phone.get("/").text)})
        assert user(phone.get("/").text) == "Ada"

        browser.get(url + "/")
        listed = browser.find_elements(By.CSS_SELECTOR, "#sessions li")
        assert len(listed) == 2
        assert [item.text.endswith("(this one)") for item in listed].count(True) == 1
        submit("end-others", "Ended 1 other session(s).")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#sessions li")) == 1
        assert user(phone.get("/").text) is None
        assert browser.find_element(By.ID, "user").text == "Ada"
