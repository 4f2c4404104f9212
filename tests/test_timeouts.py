"""``idle_timeout`` and ``absolute_timeout``: signed cookie sessions and
server-side sessions over every store, with a clock the test moves.

The interface's ``clock`` is the test's; the stores keep their own time (real
time, which barely moves), so what ends a session here is the times recorded
in it, not the store's expiry (one test checks that expiry separately).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import typing as t
from datetime import timedelta
from urllib.parse import parse_qsl

import flask
import pytest
import webtest
from itsdangerous import URLSafeTimedSerializer

from cookies import cookie_value
from wsgi_sessions import (
    SecureCookieSessionInterface,
    ServerSideSessionInterface,
    SessionConfig,
    SessionMiddleware,
    TaggedJSONSerializer,
    get_session,
    parse_settings,
)
from wsgi_sessions.interface import META_KEY, SessionInterface
from wsgi_sessions.server import store_key_for
from wsgi_sessions.stores import MemoryStore, SQLiteStore, Store
from wsgi_sessions.stores.base import Ended

if t.TYPE_CHECKING:
    from pathlib import Path

SECRET = "timeouts test secret, long enough to sign with"
IDLE = 600  # ten minutes: a use is recorded again after a tenth, 60 s
ABSOLUTE = 3600


class Clock:
    """The interface's time, moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def view(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
    """A plain WSGI app; the path says what it does with the session."""
    session = get_session(environ)
    path = environ["PATH_INFO"]
    query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
    result: t.Any = None
    if path == "/set":  # written, not read
        session.update(query)
    elif path == "/read":
        result = session.get(query.get("key", "a"))
    elif path == "/dump":
        result = {
            "items": dict(session.items()),
            "keys": sorted(session.keys()),
            "iter": sorted(session),
            "len": len(session),
            "eq": session == {"a": "1"},
            "meta_key_in": META_KEY in session,
        }
    elif path == "/login":
        session.regenerate()
        session["user"] = query["user"]
    elif path == "/permanent":
        session["a"] = "1"
        session.permanent = True
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(result).encode()]


#: What /dump shows of a session holding only a = "1": no trace of its times.
ONLY_A = {
    "items": {"a": "1"},
    "keys": ["a"],
    "iter": ["a"],
    "len": 1,
    "eq": True,
    "meta_key_in": False,
}


def sends_cookie(response: webtest.TestResponse) -> bool:
    return cookie_value(response.headers.getall("Set-Cookie")) is not None


class Client:
    """A browser (WebTest keeps its cookies) of the app the interface serves."""

    def __init__(self, interface: SessionInterface, clock: Clock, **settings: t.Any) -> None:
        interface.clock = clock
        self.interface = interface
        self.clock = clock
        self.middleware = SessionMiddleware(
            view, {"secret_key": SECRET, **settings}, interface=interface
        )
        self.app = webtest.TestApp(self.middleware)

    def get(self, path: str, **query: str) -> webtest.TestResponse:
        return self.app.get(path, query)

    def read(self, key: str = "a") -> t.Any:
        return self.get("/read", key=key).json

    def cookie(self) -> str:
        return self.app.cookies["session"]  # type: ignore[no-any-return]

    def browser(self) -> webtest.TestApp:
        """Another browser of the same app, with no cookie."""
        return webtest.TestApp(self.middleware)


@pytest.fixture
def clock() -> Clock:
    return Clock()


# -- the settings ---------------------------------------------------------------------


def test_timeouts_are_off_by_default() -> None:
    config = parse_settings({})
    assert config["SESSION_IDLE_TIMEOUT"] is None
    assert config["SESSION_ABSOLUTE_TIMEOUT"] is None


@pytest.mark.parametrize("name", ["idle_timeout", "absolute_timeout"])
@pytest.mark.parametrize(
    ("given", "seconds"),
    [("90", 90), ("30m", 1800), ("12h", 43200), (7200, 7200), (timedelta(days=1), 86400)],
)
def test_a_timeout_takes_a_duration(name: str, given: t.Any, seconds: int) -> None:
    key = f"SESSION_{name.upper()}"
    assert parse_settings({name: given})[key] == timedelta(seconds=seconds)
    assert parse_settings({f"session.{name}": given}, prefix="session.")[key] == timedelta(
        seconds=seconds
    )


@pytest.mark.parametrize("name", ["idle_timeout", "absolute_timeout"])
@pytest.mark.parametrize(
    "value", ["", " ", "abc", "12x", "1.5h", "-5", "0", "0d", 0, -1, 1.5, True, "3000000d", []]
)
def test_a_bad_timeout_is_refused_at_start_up_naming_it(name: str, value: t.Any) -> None:
    with pytest.raises(ValueError, match=rf"'{name}'"):
        SessionConfig({"secret_key": SECRET, name: value})
    with pytest.raises(ValueError, match=rf"'session\.{name}'"):
        SessionConfig({"session.secret_key": SECRET, f"session.{name}": value}, prefix="session.")


@pytest.mark.parametrize("key", ["SESSION_IDLE_TIMEOUT", "SESSION_ABSOLUTE_TIMEOUT"])
def test_a_bad_timeout_in_flasks_config_names_the_key(key: str) -> None:
    app = flask.Flask(__name__)
    app.secret_key = SECRET
    app.session_interface = SecureCookieSessionInterface()
    app.config[key] = "soon"

    @app.route("/")
    def index() -> str:
        flask.session["a"] = 1
        return "ok"

    app.testing = True
    with pytest.raises(ValueError, match=key):
        app.test_client().get("/")


# -- signed cookie sessions -------------------------------------------------------------


def cookie_client(clock: Clock, **settings: t.Any) -> Client:
    return Client(SecureCookieSessionInterface(), clock, **settings)


def payload(cookie: str) -> dict[str, t.Any]:
    """A cookie session's whole payload, as Flask's serializer reads it."""
    serializer = URLSafeTimedSerializer(
        SECRET,
        salt="cookie-session",
        serializer=TaggedJSONSerializer(),
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )
    return serializer.loads(cookie)  # type: ignore[no-any-return]


def encrypted_client(clock: Clock, **settings: t.Any) -> Client:
    pytest.importorskip("cryptography")
    from wsgi_sessions import EncryptedCookieSessionInterface

    return Client(EncryptedCookieSessionInterface(), clock, **settings)


#: Signed and encrypted cookies keep their times in the same payload layer.
COOKIE_CLIENTS = pytest.mark.parametrize(
    "make_client", [cookie_client, encrypted_client], ids=["signed", "encrypted"]
)


@COOKIE_CLIENTS
def test_cookie_idle_session_is_over(clock: Clock, make_client: t.Any) -> None:
    client = make_client(clock, idle_timeout=IDLE)
    client.get("/set", a="1")
    clock.advance(IDLE - 1)
    assert client.read() == "1"
    clock.advance(IDLE + 1)
    assert client.read() is None  # a fresh session, as if there were no cookie
    assert client.get("/dump").json["items"] == {}


def test_cookie_read_only_use_keeps_it_alive_without_a_cookie_on_every_request(
    clock: Clock,
) -> None:
    """Read every 20 s for ten idle periods: never over, and the cookie is
    re-sent only when its recorded use is a tenth of idle_timeout old."""
    client = cookie_client(clock, idle_timeout=IDLE)
    client.get("/set", a="1")
    recorded = clock.now
    sent = 0
    for _ in range(10 * IDLE // 20):
        clock.advance(20)
        response = client.get("/read")
        assert response.json == "1"
        due = clock.now - recorded >= IDLE // 10
        assert sends_cookie(response) == due
        if due:
            sent += 1
            recorded = clock.now
            assert payload(client.cookie())[META_KEY]["used"] == int(clock.now)
    assert sent == 10 * IDLE // 60  # one in three requests


def test_cookie_the_idle_guarantees_with_uses_at_any_intervals(clock: Clock) -> None:
    """Used at least every nine tenths of idle_timeout: never over, whatever
    the pattern (a use just after a recorded one is not recorded itself).
    Left alone for idle_timeout after its last use: always over."""
    client = cookie_client(clock, idle_timeout=IDLE)
    client.get("/set", a="1")
    longest = IDLE * 9 // 10
    for gap in [10, longest, 5, longest, 59, longest, 61, longest, 1, longest, longest]:
        clock.advance(gap)
        assert client.read() == "1", gap
    clock.advance(1)
    assert client.read() == "1"  # recorded (the last gap was long): a fresh IDLE from here
    clock.advance(IDLE + 1)
    assert client.read() is None


def test_cookie_untouched_requests_are_not_a_use_and_cost_no_crypto(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = cookie_client(clock, idle_timeout=IDLE)
    client.get("/set", a="1")
    cookie = client.cookie()
    loads: list[object] = []
    monkeypatch.setattr(SecureCookieSessionInterface, "_decode", lambda *a: loads.append(a))
    for _ in range(5):
        clock.advance(IDLE // 5 - 1)
        response = client.get("/nothing")
        assert not sends_cookie(response)
    assert loads == []  # never verified nor decoded
    monkeypatch.undo()
    assert client.cookie() == cookie
    clock.advance(10)  # IDLE + 5 s since the last use: untouched pages do not count
    assert client.read() is None


@COOKIE_CLIENTS
def test_cookie_absolute_timeout_ends_an_active_session(clock: Clock, make_client: t.Any) -> None:
    client = make_client(clock, idle_timeout=IDLE, absolute_timeout=ABSOLUTE)
    client.get("/set", a="1")
    for _ in range(ABSOLUTE // 300):
        clock.advance(300)
        assert client.read() == "1"
    clock.advance(1)
    assert client.read() is None


def test_cookie_regenerate_restarts_the_absolute_timeout(clock: Clock) -> None:
    client = cookie_client(clock, absolute_timeout=ABSOLUTE)
    client.get("/set", a="1")
    start = payload(client.cookie())[META_KEY]["start"]
    clock.advance(ABSOLUTE - 100)
    client.get("/login", user="ada")  # login: the session's age starts again
    assert payload(client.cookie())[META_KEY]["start"] == int(clock.now) > start
    clock.advance(ABSOLUTE)
    assert client.read("user") == "ada"
    assert client.read() == "1"
    clock.advance(1)
    assert client.read("user") is None


def test_cookie_times_are_invisible_to_the_mapping(clock: Clock) -> None:
    client = cookie_client(clock, idle_timeout=IDLE, absolute_timeout=ABSOLUTE)
    client.get("/set", a="1")
    meta = payload(client.cookie())[META_KEY]
    assert meta == {"start": int(clock.now), "used": int(clock.now)}
    assert client.get("/dump").json == ONLY_A


def test_cookie_tokens_without_timeouts_carry_no_times(clock: Clock) -> None:
    client = cookie_client(clock)
    client.get("/set", a="1")
    assert payload(client.cookie()) == {"a": "1"}  # Flask's payload, byte for byte
    client.get("/login", user="ada")
    assert META_KEY not in payload(client.cookie())


def flask_cookie(**data: t.Any) -> str:
    """A session cookie written by Flask itself (no times in it)."""
    app = flask.Flask(__name__)
    app.secret_key = SECRET

    @app.route("/")
    def index() -> str:
        flask.session.update(data)
        return "ok"

    response = app.test_client().get("/")
    value = cookie_value(response.headers.getlist("Set-Cookie"))
    assert value
    return value


def test_cookie_from_flask_without_times_is_taken_as_created_now(clock: Clock) -> None:
    client = cookie_client(clock, idle_timeout=IDLE, absolute_timeout=ABSOLUTE)
    cookie = flask_cookie(a="1")
    clock.advance(10 * ABSOLUTE)  # however old it really is
    response = client.app.get("/read", headers={"Cookie": f"session={cookie}"})
    assert response.json == "1"
    assert sends_cookie(response)  # once, to carry its times from now on
    assert payload(client.cookie())[META_KEY] == {"start": int(clock.now), "used": int(clock.now)}
    clock.advance(10)
    assert not sends_cookie(client.get("/read"))
    clock.advance(IDLE)
    assert client.read() is None


@pytest.mark.parametrize(
    "meta", [[1, 2], "x", 7, None, {"start": "yesterday", "used": True}, {"used": None}]
)
def test_cookie_with_other_data_where_the_times_go_is_taken_as_created_now(
    clock: Clock, meta: t.Any
) -> None:
    """A Flask app may store anything under the key where our times travel."""
    client = cookie_client(clock, idle_timeout=IDLE, absolute_timeout=ABSOLUTE)
    cookie = flask_cookie(a="1", **{META_KEY: meta})
    response = client.app.get("/read", headers={"Cookie": f"session={cookie}"})
    assert response.json == "1"
    assert payload(client.cookie())[META_KEY] == {"start": int(clock.now), "used": int(clock.now)}


def test_cookie_written_with_timeouts_is_read_when_they_are_turned_off(clock: Clock) -> None:
    client = cookie_client(clock, idle_timeout=IDLE)
    client.get("/set", a="1")
    client.middleware.config["SESSION_IDLE_TIMEOUT"] = None
    clock.advance(10 * IDLE)
    assert client.read() == "1"
    assert client.get("/dump").json["keys"] == ["a"]


def test_cookie_permanent_refresh_sends_the_times_but_an_untouched_request_is_no_use(
    clock: Clock,
) -> None:
    """With refresh_each_request a permanent cookie is re-sent on every
    request (Flask's behaviour): a request that never touched the session
    re-sends it with the recorded use unchanged."""
    client = cookie_client(clock, idle_timeout=IDLE)
    client.get("/permanent")
    used = payload(client.cookie())[META_KEY]["used"]
    clock.advance(IDLE - 1)
    response = client.get("/nothing")
    assert sends_cookie(response)
    assert payload(client.cookie())[META_KEY]["used"] == used
    clock.advance(2)
    assert client.read() is None


def test_flask_app_with_timeouts_in_its_config(clock: Clock) -> None:
    app = flask.Flask(__name__)
    app.secret_key = SECRET
    app.config["SESSION_IDLE_TIMEOUT"] = 60  # seconds, as Flask users write it
    interface = SecureCookieSessionInterface()
    interface.clock = clock
    app.session_interface = interface

    @app.route("/set")
    def set_a() -> str:
        flask.session["a"] = "1"
        return "ok"

    @app.route("/read")
    def read_a() -> str:
        return repr(sorted(flask.session.items()))

    browser = app.test_client()
    browser.get("/set")
    with browser.session_transaction() as session:
        assert dict(session) == {"a": "1"}
    assert browser.get("/read").text == "[('a', '1')]"
    clock.advance(61)
    assert browser.get("/read").text == "[]"


# -- server-side sessions, over every store -------------------------------------------


def server_client(store: Store, clock: Clock, **settings: t.Any) -> Client:
    return Client(ServerSideSessionInterface(store), clock, **settings)


def record(client: Client, store: Store, cookie: str | None = None) -> t.Any:
    """What the store holds for the browser's session (or ``cookie``)."""
    interface = t.cast(ServerSideSessionInterface, client.interface)
    keys = interface.get_id_keys(client.middleware.session_config)
    assert keys is not None
    sid = (cookie or client.cookie()).rsplit(".", 1)[0]
    return store.load(store_key_for(keys[0].hash_key, sid))


def recorded_times(client: Client, store: Store) -> dict[str, int]:
    fields = record(client, store)
    assert isinstance(fields, t.Mapping)
    return json.loads(fields[META_KEY])  # type: ignore[no-any-return]


def test_server_idle_session_is_over_and_its_id_dies(store: Store, clock: Clock) -> None:
    client = server_client(store, clock, idle_timeout=IDLE)
    client.get("/set", a="1")
    old = client.cookie()
    clock.advance(IDLE + 1)
    response = client.get("/read")
    assert response.json is None
    assert cookie_value(response.headers.getall("Set-Cookie")) == ""  # the dead id is deleted
    assert isinstance(record(client, store, old), Ended)  # a replay later finds it ended
    # A replay of the stolen cookie, now that the clock says nothing about it:
    thief = client.browser()
    thief.set_cookie("session", old)
    clock.advance(-IDLE)
    assert thief.get("/read").json is None
    client.get("/set", b="2")
    assert client.cookie() != old  # a new session has a new id
    assert client.get("/dump").json["items"] == {"b": "2"}


def test_server_a_blind_write_to_an_idle_session_starts_a_new_one(
    store: Store, clock: Clock
) -> None:
    client = server_client(store, clock, idle_timeout=IDLE)
    client.get("/set", a="1")
    old = client.cookie()
    clock.advance(IDLE + 1)
    client.get("/set", b="2")  # writes without reading
    assert client.cookie() != old
    assert client.get("/dump").json["items"] == {"b": "2"}
    assert isinstance(record(client, store, old), Ended)


def test_server_read_only_use_keeps_it_alive_with_few_writes(store: Store, clock: Clock) -> None:
    """Read every 20 s for ten idle periods: never over, no cookie (a browser
    session's cookie has no expiry to push), and the use is written to the
    store only when the recorded one is a tenth of idle_timeout old."""
    client = server_client(store, clock, idle_timeout=IDLE, refresh_each_request=False)
    client.get("/set", a="1")
    cookie = client.cookie()
    recorded = int(clock.now)
    writes = 0
    for _ in range(10 * IDLE // 20):
        clock.advance(20)
        response = client.get("/read")
        assert response.json == "1"
        assert not sends_cookie(response)
        used = recorded_times(client, store)["used"]
        if used != recorded:
            assert used == int(clock.now) >= recorded + IDLE // 10
            recorded = used
            writes += 1
        else:
            assert clock.now - recorded < IDLE // 10
    assert writes == 10 * IDLE // 60
    assert client.cookie() == cookie


def test_server_absolute_timeout_ends_an_active_session(store: Store, clock: Clock) -> None:
    client = server_client(store, clock, idle_timeout=IDLE, absolute_timeout=ABSOLUTE)
    client.get("/set", a="1")
    old = client.cookie()
    for _ in range(ABSOLUTE // 300):
        clock.advance(300)
        assert client.read() == "1"
    clock.advance(1)
    assert client.read() is None
    assert isinstance(record(client, store, old), Ended)


def test_server_regenerate_restarts_the_absolute_timeout(store: Store, clock: Clock) -> None:
    client = server_client(store, clock, absolute_timeout=ABSOLUTE)
    client.get("/set", a="1")
    clock.advance(ABSOLUTE - 100)
    client.get("/login", user="ada")
    assert recorded_times(client, store)["start"] == int(clock.now)
    clock.advance(ABSOLUTE)
    assert client.read("user") == "ada"
    clock.advance(1)
    assert client.read("user") is None


def test_server_times_are_invisible_to_the_mapping(store: Store, clock: Clock) -> None:
    client = server_client(store, clock, idle_timeout=IDLE, absolute_timeout=ABSOLUTE)
    client.get("/set", a="1")
    assert recorded_times(client, store) == {"start": int(clock.now), "used": int(clock.now)}
    assert client.get("/dump").json == ONLY_A


def test_server_without_timeouts_stores_no_times(store: Store, clock: Clock) -> None:
    client = server_client(store, clock)
    client.get("/set", a="1")
    client.read()
    assert dict(t.cast(t.Mapping[str, str], record(client, store))) == {"a": '"1"'}


def test_server_session_stored_before_timeouts_is_taken_as_created_now(
    store: Store, clock: Clock
) -> None:
    client = server_client(store, clock)
    client.get("/set", a="1")
    client.middleware.config["SESSION_IDLE_TIMEOUT"] = timedelta(seconds=IDLE)
    client.middleware.config["SESSION_ABSOLUTE_TIMEOUT"] = "1h"
    clock.advance(10 * ABSOLUTE)
    assert client.read() == "1"
    assert recorded_times(client, store) == {"start": int(clock.now), "used": int(clock.now)}
    clock.advance(IDLE + 1)
    assert client.read() is None


def test_server_threads_reading_at_the_reissue_point_all_keep_the_session(
    store: Store, clock: Clock
) -> None:
    """Requests of one session running at once, each due to record the use:
    every one sees the data, none starts a new session, and the session
    lives on with its use recorded."""
    client = server_client(store, clock, idle_timeout=IDLE)
    client.get("/set", a="1")
    cookie = client.cookie()
    clock.advance(IDLE - 10)
    results: list[tuple[t.Any, str | None]] = []
    barrier = threading.Barrier(8)

    def request() -> None:
        browser = client.browser()
        browser.set_cookie("session", cookie)
        barrier.wait()
        response = browser.get("/read", {"key": "a"})
        results.append((response.json, cookie_value(response.headers.getall("Set-Cookie"))))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [("1", None)] * 8
    assert recorded_times(client, store)["used"] == int(clock.now)
    clock.advance(IDLE - 10)
    assert client.read() == "1"


def test_server_threads_of_an_idle_session_never_bring_it_back(store: Store, clock: Clock) -> None:
    """Requests of an idle session running at once, each writing: none of
    their writes lands in the old session. The first to load it finds it over
    and ends it; each other one either did the same (a fresh session of its
    own) or was in flight when it ended, and then its write is dropped with no
    cookie sent, as for any request in flight at a logout."""
    client = server_client(store, clock, idle_timeout=IDLE)
    client.get("/set", a="1")
    old = client.cookie()
    clock.advance(IDLE + 1)
    cookies: list[str | None] = []
    barrier = threading.Barrier(6)

    def request(number: int) -> None:
        browser = client.browser()
        browser.set_cookie("session", old)
        barrier.wait()
        response = browser.get("/set", {f"k{number}": "x"})
        cookies.append(cookie_value(response.headers.getall("Set-Cookie")))

    threads = [threading.Thread(target=request, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fresh = [cookie for cookie in cookies if cookie is not None]
    assert len(cookies) == 6
    assert fresh
    assert len(set(fresh)) == len(fresh)
    assert old not in fresh
    assert isinstance(record(client, store, old), Ended)
    for cookie in fresh:
        fields = record(client, store, cookie)
        assert isinstance(fields, t.Mapping)
        assert len([name for name in fields if name != META_KEY]) == 1


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_server_store_keeps_a_record_no_longer_than_the_timeouts(
    kind: str, clock: Clock, tmp_path: Path
) -> None:
    """The record's store lifetime is capped by the timeouts: past them the
    session is over, so the store need not keep it (a browser session's
    idle_lifetime is a day by default)."""
    store: Store = (
        MemoryStore(clock=clock)
        if kind == "memory"
        else SQLiteStore(tmp_path / "s.db", clock=clock)
    )
    client = server_client(store, clock, idle_timeout=IDLE, refresh_each_request=False)
    client.get("/set", a="1")
    for _ in range(5):  # used: each recorded use pushes the store's expiry too
        clock.advance(IDLE - 1)
        assert client.read() == "1"
    clock.advance(IDLE + 1)
    assert record(client, store) is None  # the store itself dropped it
    store.close()
