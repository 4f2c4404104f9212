"""A user's sessions: ``session.owner``, ``sessions_of``, ``end_session`` and
``end_sessions_of``, over every store (the shared ``store`` fixture).

Each WebTest app is one browser; the interface's clock is the test's, so
``last_seen`` and the timeouts move without sleeping. Threads are real where
requests overlap (an ended session's request in flight, concurrent logins).
"""

from __future__ import annotations

import json
import threading
import typing as t
from datetime import timezone
from urllib.parse import parse_qsl

import pytest
import webtest

from counting_store import CountingStore
from wsgi_sessions import (
    EncryptedCookieSessionInterface,
    SecureCookieSessionInterface,
    ServerSideSession,
    ServerSideSessionInterface,
    SessionConfig,
    SessionMiddleware,
    SessionRecord,
    get_session,
)
from wsgi_sessions.owners import SEEN_INTERVAL
from wsgi_sessions.stores import MemoryStore, SQLiteStore, Store

SECRET = "owners test secret, long enough to sign with"


class Clock:
    """The interface's (and, where a store takes one, the store's) time."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Counting(CountingStore):
    def index_writes(self) -> list[tuple[str, str]]:
        return [write for write in self.writes if "}owners:" in write[1]]


class Site:
    """An app with login, logout and the "your sessions" calls; each
    :meth:`browser` is a browser of it with its own cookies."""

    def __init__(self, store: Store, clock: Clock, **settings: t.Any) -> None:
        self.interface = ServerSideSessionInterface(store)
        self.interface.clock = clock
        self.clock = clock
        self.holds: dict[str, threading.Event] = {}
        self.middleware = SessionMiddleware(
            self.view, {"secret_key": SECRET, **settings}, interface=self.interface
        )

    def browser(self) -> webtest.TestApp:
        return webtest.TestApp(self.middleware)

    def view(self, environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        session = get_session(environ)
        query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        interface = self.interface
        path = environ["PATH_INFO"]
        result: t.Any = None
        if path == "/login":
            session.regenerate()
            session["user"] = query["user"]
            session.owner = query["user"]
        elif path == "/whoami":
            result = {"user": session.get("user"), "owner": session.owner}
        elif path == "/keys":
            result = sorted(session.keys())
        elif path == "/regenerate":
            session.regenerate()
        elif path == "/logout":
            session.invalidate()
        elif path == "/owner":  # set the owner to anything, without a login
            session.owner = query.get("to")
        elif path == "/list":
            records = interface.sessions_of(session.owner or "", current=session)
            result = [
                {
                    "handle": record.handle,
                    "created": record.created.timestamp(),
                    "last_seen": record.last_seen.timestamp(),
                    "current": record.current,
                }
                for record in records
            ]
        elif path == "/end":
            result = interface.end_session(session.owner or "", query["handle"])
        elif path == "/change-password":
            session.regenerate()
            result = interface.end_sessions_of(session.owner or "", keep=session)
        elif path == "/end-others":
            result = interface.end_sessions_of(session.owner or "", keep=session)
        elif path == "/hold":  # read, wait for the test, then write
            session.get("user")
            self.holds["entered"].set()
            assert self.holds["release"].wait(30)
            session["late"] = "written after the end"
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(result).encode()]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def site(store: Store, clock: Clock) -> Site:
    return Site(store, clock)


def login(site: Site, user: str) -> webtest.TestApp:
    browser = site.browser()
    browser.get("/login", {"user": user})
    return browser


def listing(browser: webtest.TestApp) -> list[dict[str, t.Any]]:
    return browser.get("/list").json  # type: ignore[no-any-return]


def whoami(browser: webtest.TestApp) -> dict[str, t.Any]:
    return browser.get("/whoami").json  # type: ignore[no-any-return]


def current_handle(browser: webtest.TestApp) -> str:
    (handle,) = [record["handle"] for record in listing(browser) if record["current"]]
    return handle  # type: ignore[no-any-return]


# -- listing ------------------------------------------------------------------------


def test_each_login_of_an_owner_is_listed_with_its_times(site: Site, clock: Clock) -> None:
    laptop = login(site, "ada")
    clock.advance(60)
    phone = login(site, "ada")
    login(site, "bob")  # another owner's session is not listed

    records = listing(laptop)
    assert len(records) == 2
    assert [record["current"] for record in records] == [True, False]
    assert [record["created"] for record in records] == [clock.now - 60, clock.now]
    assert records[0]["last_seen"] == clock.now - 60
    assert records[1]["handle"] == current_handle(phone)
    assert len({record["handle"] for record in records}) == 2


def test_records_are_frozen_with_aware_utc_datetimes(site: Site, clock: Clock) -> None:
    browser = login(site, "ada")
    (record,) = site.interface.sessions_of("ada", app=site.middleware.session_config)
    assert isinstance(record, SessionRecord)
    assert record.created.tzinfo is timezone.utc and record.last_seen.tzinfo is timezone.utc
    assert record.created.timestamp() == clock.now
    assert record.current is False  # no current= given
    with pytest.raises(AttributeError):
        record.handle = "x"  # type: ignore[misc]
    assert listing(browser)[0]["handle"] == record.handle


def test_the_owner_is_never_a_key_of_the_mapping(site: Site) -> None:
    browser = login(site, "ada")
    assert browser.get("/keys").json == ["user"]
    assert whoami(browser) == {"user": "ada", "owner": "ada"}


def test_last_seen_is_refreshed_every_few_minutes_not_on_every_request(
    store: Store, clock: Clock
) -> None:
    counting = Counting(store)
    site = Site(counting, clock)
    browser = login(site, "ada")
    login(site, "ada")
    # One write per login (the first login of an owner also creates its index).
    assert [op for op, _ in counting.index_writes()] == ["apply", "create", "apply"]
    for _ in range(4):
        clock.advance(SEEN_INTERVAL / 5)
        whoami(browser)  # an ordinary request
    assert len(counting.index_writes()) == 3
    assert [record["last_seen"] for record in listing(browser)] == [clock.now - 240] * 2
    clock.advance(SEEN_INTERVAL / 5)
    whoami(browser)  # SEEN_INTERVAL since the login: refreshed
    assert len(counting.index_writes()) == 4
    seen = [record["last_seen"] for record in listing(browser) if record["current"]]
    assert seen == [clock.now]


def test_a_session_without_an_owner_costs_the_index_nothing(store: Store, clock: Clock) -> None:
    counting = Counting(store)
    site = Site(counting, clock)
    browser = site.browser()
    browser.get("/regenerate")
    for _ in range(3):
        clock.advance(SEEN_INTERVAL)
        whoami(browser)
    assert counting.index_writes() == []
    assert listing(browser) == []


# -- ending -------------------------------------------------------------------------


def test_end_one_session_by_its_handle(site: Site) -> None:
    laptop, phone = login(site, "ada"), login(site, "ada")
    handle = current_handle(phone)
    assert laptop.get("/end", {"handle": handle}).json is True
    assert laptop.get("/end", {"handle": handle}).json is False  # already ended
    assert whoami(phone) == {"user": None, "owner": None}  # a fresh session
    assert [record["current"] for record in listing(laptop)] == [True]
    assert whoami(laptop)["user"] == "ada"


@pytest.mark.parametrize("handle", ["", "not a handle", "é" * 32, "\ud800"])
def test_a_handle_that_is_none_of_the_owners_ends_nothing(site: Site, handle: str) -> None:
    browser = login(site, "ada")
    config = site.middleware.session_config
    assert site.interface.end_session("ada", handle, app=config) is False
    assert whoami(browser)["user"] == "ada"


def test_a_handle_of_another_owner_ends_nothing(site: Site) -> None:
    ada, bob = login(site, "ada"), login(site, "bob")
    assert ada.get("/end", {"handle": current_handle(bob)}).json is False
    assert whoami(bob)["user"] == "bob"


def test_end_all_other_sessions_keeps_the_current_one(site: Site) -> None:
    browsers = [login(site, "ada") for _ in range(3)]
    bob = login(site, "bob")
    assert browsers[0].get("/end-others").json == 2
    assert whoami(browsers[0])["user"] == "ada"
    assert [whoami(browser)["user"] for browser in browsers[1:]] == [None, None]
    assert whoami(bob)["user"] == "bob"
    assert [record["current"] for record in listing(browsers[0])] == [True]
    assert browsers[0].get("/end-others").json == 0


def test_end_sessions_of_keeps_a_session_regenerated_in_the_same_request(site: Site) -> None:
    """A password change that also regenerates: the session being renamed is kept."""
    browser, other = login(site, "ada"), login(site, "ada")
    assert browser.get("/change-password").json == 1
    assert whoami(browser)["user"] == "ada"
    assert whoami(other)["user"] is None
    assert [record["current"] for record in listing(browser)] == [True]


def test_an_ended_sessions_request_in_flight_cannot_write_it_back(site: Site) -> None:
    laptop, phone = login(site, "ada"), login(site, "ada")
    site.holds = {"entered": threading.Event(), "release": threading.Event()}
    responses: list[webtest.TestResponse] = []
    held = threading.Thread(target=lambda: responses.append(phone.get("/hold")))
    held.start()
    try:
        assert site.holds["entered"].wait(30)
        assert laptop.get("/end-others").json == 1
    finally:
        site.holds["release"].set()
        held.join(30)
    assert not held.is_alive()
    assert "Set-Cookie" not in responses[0].headers  # its write was dropped
    assert whoami(phone) == {"user": None, "owner": None}
    assert phone.get("/keys").json == []  # "late" never landed anywhere
    assert len(listing(laptop)) == 1


def test_concurrent_logins_of_one_owner_are_all_listed(site: Site) -> None:
    count = 6
    browsers = [site.browser() for _ in range(count)]
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def log_in(browser: webtest.TestApp) -> None:
        try:
            barrier.wait(30)
            browser.get("/login", {"user": "ada"})
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=log_in, args=(browser,)) for browser in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    records = listing(browsers[0])
    assert len(records) == count
    assert sum(record["current"] for record in records) == 1


# -- the owner's life: regenerate, invalidate, change, expiry -----------------------------


def test_the_owner_survives_regenerate_under_a_new_handle(site: Site) -> None:
    browser = login(site, "ada")
    before = current_handle(browser)
    browser.get("/regenerate")
    assert whoami(browser)["owner"] == "ada"
    records = listing(browser)
    assert len(records) == 1 and records[0]["current"]
    assert records[0]["handle"] != before


def test_the_owner_ends_with_invalidate(site: Site) -> None:
    browser, other = login(site, "ada"), login(site, "ada")
    browser.get("/logout")
    assert whoami(browser) == {"user": None, "owner": None}
    assert [record["current"] for record in listing(other)] == [True]


def test_changing_or_clearing_the_owner_moves_the_listing(site: Site) -> None:
    browser, ada = login(site, "ada"), login(site, "ada")
    bob = login(site, "bob")
    browser.get("/owner", {"to": "bob"})
    assert len(listing(ada)) == 1
    assert len(listing(bob)) == 2
    browser.get("/owner", {"to": ""})
    assert whoami(browser)["owner"] is None
    assert len(listing(bob)) == 1


def test_an_idle_session_drops_out_of_the_listing(store: Store, clock: Clock) -> None:
    site = Site(store, clock, idle_timeout=600)
    old = login(site, "ada")
    clock.advance(590)
    fresh = login(site, "ada")
    clock.advance(20)  # `old` is over, `fresh` is not
    assert [record["current"] for record in listing(fresh)] == [True]
    assert whoami(old)["user"] is None


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_an_expired_session_drops_out_of_the_listing(
    kind: str, clock: Clock, tmp_path: t.Any
) -> None:
    store: Store = (
        MemoryStore(clock=clock)
        if kind == "memory"
        else SQLiteStore(tmp_path / "s.db", clock=clock)
    )
    site = Site(store, clock, idle_lifetime=3600)
    old = login(site, "ada")
    clock.advance(3000)
    fresh = login(site, "ada")
    clock.advance(700)  # past `old`'s expiry in the store
    assert [record["current"] for record in listing(fresh)] == [True]
    assert whoami(old)["user"] is None


# -- handles, types, cookie sessions -------------------------------------------------


def test_a_handle_is_not_a_cookie(site: Site) -> None:
    victim = login(site, "ada")
    handle = current_handle(victim)
    assert handle not in victim.cookies["session"]
    attacker = site.browser()
    attacker.set_cookie("session", handle)
    assert whoami(attacker) == {"user": None, "owner": None}
    assert whoami(victim)["user"] == "ada"


def test_handles_are_not_store_keys(store: Store, clock: Clock) -> None:
    counting = Counting(store)
    site = Site(counting, clock)
    browser = login(site, "ada")
    handle = current_handle(browser)
    keys = {key for _, key in counting.writes}
    assert all(handle not in key for key in keys)


@pytest.mark.parametrize("value", [5, b"ada", ["ada"]])
def test_an_owner_must_be_a_str(value: object) -> None:
    session = ServerSideSession()
    with pytest.raises(TypeError, match=r"session\.owner must be a str"):
        session.owner = value  # type: ignore[assignment]


@pytest.mark.parametrize(
    "interface", [SecureCookieSessionInterface, EncryptedCookieSessionInterface]
)
def test_a_cookie_session_cannot_have_an_owner(interface: type[t.Any]) -> None:
    config = SessionConfig({"secret_key": SECRET})
    session = interface().open_session(config, webtest.TestRequest.blank("/"))
    assert session.owner is None
    with pytest.raises(TypeError, match="needs a server-side store"):
        session.owner = "ada"


def test_sessions_of_needs_an_app_before_the_first_request(store: Store) -> None:
    interface = ServerSideSessionInterface(store)
    with pytest.raises(RuntimeError, match="pass app="):
        interface.sessions_of("ada")
    assert interface.sessions_of("ada", app=SessionConfig({"secret_key": SECRET})) == []
    assert interface.sessions_of("", app=SessionConfig({"secret_key": SECRET})) == []


def test_sessions_stay_listed_and_endable_after_a_key_rotation(store: Store, clock: Clock) -> None:
    site = Site(store, clock)
    old = login(site, "ada")
    config = site.middleware.session_config
    config.config["SECRET_KEY_FALLBACKS"] = [SECRET]
    config.config["SECRET_KEY"] = "the new key, as long as the old one was"
    new = login(site, "ada")
    assert len(listing(new)) == 2
    assert new.get("/end-others").json == 1
    assert whoami(old)["user"] is None
