"""Server-side sessions through the middleware (WebTest) and Flask, over every store."""

from __future__ import annotations

import json
import re
import threading
import typing as t
from datetime import timedelta
from urllib.parse import parse_qsl

import pytest
import webtest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from cookies import cookie_value
from counting_store import CountingStore
from wsgi_sessions import (
    ServerSideSession,
    ServerSideSessionInterface,
    SessionMiddleware,
    _wsgi,
    get_session,
)
from wsgi_sessions.serialization import TaggedJSONSerializer
from wsgi_sessions.server import store_key_for
from wsgi_sessions.server_session import new_session_id
from wsgi_sessions.sessions import NOT_LOADED, NullSession
from wsgi_sessions.stores import MemoryStore, Store
from wsgi_sessions.stores.base import Ended

SECRET = "server-side test secret"


def view(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
    """A plain WSGI app; the path picks what it does with the session."""
    session = get_session(environ)
    assert isinstance(session, ServerSideSession)
    path = environ["PATH_INFO"]
    query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
    result: t.Any = None
    if path == "/set":  # blind writes, no read
        for key, value in query.items():
            session[key] = value
    elif path == "/read":
        result = session.get(query["key"])
    elif path == "/dump":
        result = dict(session.items())
    elif path == "/login":
        session.regenerate()
        session["user"] = query["user"]
    elif path == "/logout":
        session.invalidate()
    elif path == "/logout-flash":
        session.invalidate()
        session["flash"] = "bye"
    elif path == "/append":
        session["cart"].append(query["item"])
    elif path == "/clear":
        session.clear()
    elif path == "/pop-all":
        for key in list(session):
            session.pop(key)
    elif path == "/del-all":
        for key in list(session):
            del session[key]
    elif path == "/popitem-all":
        while session:
            session.popitem()
    elif path == "/update-delete":  # an update that leaves nothing: |= then del
        session |= {"tmp": 1}
        for key in list(session):
            del session[key]
    elif path == "/permanent":
        session.permanent = True
    elif path == "/login-unstorable":
        session.regenerate()
        session["user"] = query["user"]
        if "reserved" in query:
            session["\x00l"] = "a name the stores keep for themselves"
        else:
            session["roles"] = {"admin"}  # a set: cannot be stored
    elif path == "/read-set":  # a loaded session, then writes
        session.get("a")
        session.update(query)
    elif path == "/not-equal":  # the first thing the request does with the session
        result = session != {"a": "1"}
    elif path == "/reversed":
        result = list(reversed(session))
    elif path == "/pop-missing":
        session.pop("missing", None)
        session.update({})
    elif path == "/touch-all":
        session.get("a")
        session.modified = True
    body = json.dumps(result).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def make_app(store: Store, **settings: t.Any) -> webtest.TestApp:
    return webtest.TestApp(
        SessionMiddleware(view, {"secret_key": SECRET, "store": store, **settings})
    )


def session_cookie(response: webtest.TestResponse) -> str | None:
    """The value of the session cookie the response sets, if any."""
    return cookie_value(response.headers.getall("Set-Cookie"))


def sid_of(cookie: str) -> str:
    return cookie.rsplit(".", 1)[0]


def hash_key() -> bytes:
    interface = ServerSideSessionInterface()
    app = SessionMiddleware(view, {"secret_key": SECRET})
    keys = interface.get_id_keys(app)
    assert keys is not None
    return keys[0].hash_key


# -- the basic life of a session ---------------------------------------------------------


def test_write_then_read(store: Store) -> None:
    app = make_app(store)
    response = app.get("/set", {"a": "1", "b": "two"})
    cookie = session_cookie(response)
    assert cookie is not None
    assert "HttpOnly" in response.headers["Set-Cookie"]
    assert app.get("/dump").json == {"a": "1", "b": "two"}


def test_an_anonymous_request_sends_nothing(store: Store) -> None:
    counting = CountingStore(store)
    response = make_app(counting).get("/set")  # touches nothing
    assert "Set-Cookie" not in response.headers
    assert "Vary" not in response.headers
    assert counting.total() == 0


def test_store_round_trips_per_scenario(store: Store) -> None:
    counting = CountingStore(store)
    app = make_app(counting)
    app.get("/set", {"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"})
    cookie = app.cookies["session"]
    scenarios = {
        "S0 no cookie, untouched": ("/set", {}, False, 0),
        "S1 cookie, reads one key": ("/read", {"key": "a"}, True, 1),
        "S2 cookie, writes one key unread": ("/set", {"a": "9"}, True, 1),
        "S3 no cookie, writes two keys": ("/set", {"x": "1", "y": "2"}, False, 1),
        "cookie, untouched": ("/nothing", {}, True, 0),
    }
    for name, (path, params, with_cookie, expected) in scenarios.items():
        counting.calls.clear()
        headers = {"Cookie": f"session={cookie}"} if with_cookie else {}
        webtest.TestApp(app.app).get(path, params, headers=headers)
        assert counting.total() == expected, (name, dict(counting.calls))
    assert app.get("/dump").json == {"a": "9", "b": "2", "c": "3", "d": "4", "e": "5"}


def test_the_store_key_is_a_keyed_hash_of_the_id(store: Store) -> None:
    app = make_app(store)
    cookie = session_cookie(app.get("/set", {"a": "1"}))
    assert cookie is not None
    sid = sid_of(cookie)
    token = sid.split(".")[1]
    assert len(token) >= 22  # >= 128 bits, url-safe base64
    key = store_key_for(hash_key(), sid)
    assert token not in key
    assert store.load(key) == {"a": '"1"'}
    assert store.load(sid) is None
    # Another secret gives another key: a store dump alone does not lead to a cookie.
    other = ServerSideSessionInterface().get_id_keys(
        SessionMiddleware(view, {"secret_key": "another secret"})
    )
    assert other is not None
    assert store_key_for(other[0].hash_key, sid) != key


def test_session_ids_carry_192_random_bits_and_regenerate_draws_new_ones() -> None:
    ids = [new_session_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for sid in ids:
        family, token = sid.split(".")
        assert len(family) == 8 and len(token) == 32  # base64url: 48 + 192 bits
    # Every token character position takes many values: not a counter, not a clock.
    for position in range(32):
        assert len({sid.split(".")[1][position] for sid in ids}) > 32
    renewed = new_session_id(ids[0].split(".")[0])
    assert renewed.split(".")[0] == ids[0].split(".")[0]  # the Redis Cluster hash slot
    assert renewed.split(".")[1] != ids[0].split(".")[1] and len(renewed.split(".")[1]) == 32


def test_an_id_the_server_did_not_issue_is_not_adopted(store: Store) -> None:
    app = make_app(store)
    interface = app.app.session_interface
    keys = interface.get_id_keys(app.app)
    forged_sid = "AAAAAAAA." + "B" * 32
    forged = keys[0].signer.sign(forged_sid).decode()  # correctly signed, never issued
    response = app.get("/set", {"a": "1"}, headers={"Cookie": f"session={forged}"})
    cookie = session_cookie(response)
    assert cookie is not None
    assert sid_of(cookie) != forged_sid
    assert store.load(store_key_for(keys[0].hash_key, forged_sid)) is None
    assert app.get("/dump", headers={"Cookie": f"session={forged}"}).json == {}


@pytest.mark.parametrize(
    "cookie",
    ["garbage", "", "a.b.c", "AAAAAAAA.BBBB.xx.yy", "\u00e9\u00e9", "x" * 5000],
)
def test_bad_cookies_give_a_fresh_session(cookie: str) -> None:
    app = make_app(MemoryStore())
    response = app.get("/dump", headers={"Cookie": f"session={cookie}"})
    assert response.json == {}


def test_a_tampered_cookie_gives_a_fresh_session(store: Store) -> None:
    app = make_app(store)
    cookie = session_cookie(app.get("/set", {"a": "1"}))
    assert cookie is not None
    sid, signature = cookie.rsplit(".", 1)
    tampered = f"{sid[:-1]}{'A' if sid[-1] != 'A' else 'B'}.{signature}"
    fresh = webtest.TestApp(app.app)
    assert fresh.get("/dump", headers={"Cookie": f"session={tampered}"}).json == {}


def test_an_altered_spelling_of_a_valid_signature_is_refused(
    altered_signatures: t.Callable[[str], dict[str, str]],
) -> None:
    app = make_app(MemoryStore())
    for _ in range(100):  # until the signature has a "-" or "_" to respell
        app.reset()
        cookie = session_cookie(app.get("/set", {"a": "1"}))
        assert cookie is not None
        if "standard-alphabet" in altered_signatures(cookie):
            break
    cases = altered_signatures(cookie)
    assert len(cases) == 4
    for case, altered in cases.items():
        app.reset()
        response = app.get("/read", {"key": "a"}, headers={"Cookie": f"session={altered}"})
        assert response.json is None, case
    app.reset()
    assert app.get("/read", {"key": "a"}, headers={"Cookie": f"session={cookie}"}).json == "1"


# -- regenerate, invalidate --------------------------------------------------------------


def test_login_regenerates_the_id_and_keeps_the_data(store: Store) -> None:
    app = make_app(store)
    before = session_cookie(app.get("/set", {"cart": "book"}))
    assert before is not None
    after = session_cookie(app.get("/login", {"user": "alice"}))
    assert after is not None
    assert sid_of(after) != sid_of(before)
    assert sid_of(after)[:8] == sid_of(before)[:8]  # the family (hash tag) is kept
    assert app.get("/dump").json == {"cart": "book", "user": "alice"}
    replay = webtest.TestApp(app.app)
    assert replay.get("/dump", headers={"Cookie": f"session={before}"}).json == {}


def test_logout_deletes_the_cookie_and_the_data(store: Store) -> None:
    app = make_app(store)
    app.get("/login", {"user": "alice"})
    cookie = app.cookies["session"]
    response = app.get("/logout")
    header = response.headers["Set-Cookie"]
    assert header.startswith("session=;") and "Max-Age=0" in header
    assert isinstance(store.load(store_key_for(hash_key(), sid_of(cookie))), Ended)
    replay = webtest.TestApp(app.app)
    assert replay.get("/dump", headers={"Cookie": f"session={cookie}"}).json == {}
    # Right after the logout the dead cookie may still be on its way out of
    # the browser (a request sent before the answer came): writes are dropped.
    response = replay.get("/set", {"x": "1"}, headers={"Cookie": f"session={cookie}"})
    assert session_cookie(response) is None
    # Later, a write with the dead cookie starts a new session; the old one stays dead.
    store.end_grace = 0
    response = replay.get("/set", {"x": "1"}, headers={"Cookie": f"session={cookie}"})
    new_cookie = session_cookie(response)
    assert new_cookie is not None and sid_of(new_cookie) != sid_of(cookie)
    assert replay.get("/dump", headers={"Cookie": f"session={new_cookie}"}).json == {"x": "1"}
    assert replay.get("/dump", headers={"Cookie": f"session={cookie}"}).json == {}


def test_writes_after_invalidate_start_a_new_session(store: Store) -> None:
    app = make_app(store)
    old = session_cookie(app.get("/login", {"user": "alice"}))
    assert old is not None
    new = session_cookie(app.get("/logout-flash"))
    assert new is not None and sid_of(new) != sid_of(old)
    assert app.get("/dump").json == {"flash": "bye"}


def test_clear_ends_the_session_like_invalidate(store: Store) -> None:
    app = make_app(store)
    cookie = session_cookie(app.get("/set", {"a": "1"}))
    assert cookie is not None
    response = app.get("/clear")
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    assert isinstance(store.load(store_key_for(hash_key(), sid_of(cookie))), Ended)


@pytest.mark.parametrize("path", ["/pop-all", "/del-all", "/popitem-all", "/update-delete"])
def test_removing_every_key_keeps_the_session(store: Store, path: str) -> None:
    # Emptying is not ending: the id, the record and the cookie stay until expiry.
    app = make_app(store)
    cookie = session_cookie(app.get("/set", {"flash": "hi"}))
    assert cookie is not None
    response = app.get(path)
    assert "Set-Cookie" not in response.headers
    assert store.load(store_key_for(hash_key(), sid_of(cookie))) == {}
    app.get("/set", {"cart": "book"})
    assert app.cookies["session"] == cookie
    assert app.get("/dump").json == {"cart": "book"}


# -- change tracking ----------------------------------------------------------------------


def test_a_change_inside_a_value_is_saved(store: Store) -> None:
    app = make_app(store)
    # Seed a list, then append to it in place in a later request.
    interface = app.app.session_interface
    assert isinstance(interface, ServerSideSessionInterface)
    app.get("/set", {"seed": "1"})
    sid = sid_of(app.cookies["session"])
    assert interface.store.apply(store_key_for(hash_key(), sid), {"cart": '["pen"]'}, [])
    app.get("/append", {"item": "ink"})
    assert app.get("/read", {"key": "cart"}).json == ["pen", "ink"]


def test_setting_modified_writes_every_key(store: Store) -> None:
    counting = CountingStore(store)
    app = make_app(counting)
    cookie = session_cookie(app.get("/set", {"a": "1", "b": "2"}))
    assert cookie is not None
    key = store_key_for(hash_key(), sid_of(cookie))
    store.apply(key, {"a": '"changed elsewhere"'}, [])
    counting.calls.clear()
    app.get("/touch-all")  # loads, then sets modified = True without a change
    assert counting.calls == {"load": 1, "apply": 1}
    assert store.load(key) == {"a": '"changed elsewhere"', "b": '"2"'}


def test_an_unchanged_read_writes_nothing(store: Store) -> None:
    counting = CountingStore(store)
    app = make_app(counting)
    app.get("/set", {"a": "1"})
    counting.calls.clear()
    assert app.get("/dump").json == {"a": "1"}
    assert counting.calls == {"load": 1}


def test_a_permanent_session_gets_an_expiring_cookie(store: Store) -> None:
    app = make_app(store, permanent_lifetime="1h")
    app.get("/set", {"a": "1"})
    response = app.get("/permanent")
    assert "Expires=" in response.headers["Set-Cookie"]
    # Read later: the cookie's expiry is pushed forward (refresh_each_request).
    response = app.get("/read", {"key": "a"})
    assert "Expires=" in response.headers["Set-Cookie"]
    assert response.headers["Vary"] == "Cookie"


def test_a_browser_session_read_sends_no_cookie(store: Store) -> None:
    app = make_app(store)
    app.get("/set", {"a": "1"})
    response = app.get("/read", {"key": "a"})
    assert "Set-Cookie" not in response.headers
    assert response.headers["Vary"] == "Cookie"


def test_key_rotation_keeps_sessions_until_they_are_regenerated(store: Store) -> None:
    old_app = make_app(store)
    cookie = session_cookie(old_app.get("/set", {"a": "1"}))
    assert cookie is not None
    rotated = make_app(store, secret_key="new secret", secret_key_fallbacks=[SECRET])
    headers = {"Cookie": f"session={cookie}"}
    assert rotated.get("/dump", headers=headers).json == {"a": "1"}
    new_cookie = session_cookie(rotated.get("/login", {"user": "u"}, headers=headers))
    assert new_cookie is not None
    only_new = make_app(store, secret_key="new secret")
    assert only_new.get("/dump", headers={"Cookie": f"session={new_cookie}"}).json == {
        "a": "1",
        "user": "u",
    }


def test_key_rotation_keeps_a_permanent_session_whose_cookie_is_re_sent(store: Store) -> None:
    """A refreshed permanent session re-sends its cookie: the new cookie must
    still find the record, which lives under the fallback key's hash."""
    old_app = make_app(store)
    old_app.get("/set", {"a": "1"})
    cookie = session_cookie(old_app.get("/permanent"))
    assert cookie is not None
    rotated = make_app(store, secret_key="new secret", secret_key_fallbacks=[SECRET])
    response = rotated.get("/dump", headers={"Cookie": f"session={cookie}"})
    assert response.json == {"a": "1", "_permanent": True}
    cookie = session_cookie(response)  # the expiry pushed forward
    assert cookie is not None
    response = rotated.get("/dump", headers={"Cookie": f"session={cookie}"})
    assert response.json == {"a": "1", "_permanent": True}
    rotated.get("/set", {"b": "2"}, headers={"Cookie": f"session={cookie}"})
    cookie = session_cookie(
        rotated.get("/login", {"user": "u"}, headers={"Cookie": f"session={cookie}"})
    )
    assert cookie is not None
    # Regenerated (at login), the session moved to the new key: no fallback needed.
    only_new = make_app(store, secret_key="new secret")
    response = only_new.get("/dump", headers={"Cookie": f"session={cookie}"})
    assert response.json == {"a": "1", "b": "2", "_permanent": True, "user": "u"}


# -- settings -------------------------------------------------------------------------------


def test_store_setting_accepts_urls_and_objects(tmp_path: t.Any) -> None:
    for store in ("memory://", f"sqlite:///{tmp_path}/s.db", MemoryStore()):
        app = webtest.TestApp(SessionMiddleware(view, {"secret_key": SECRET, "store": store}))
        app.get("/set", {"a": "1"})
        assert app.get("/dump").json == {"a": "1"}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"store": "mongodb://x"}, "store"),
        ({"store": "sqlite://relative.db"}, "store"),
        ({"store": 42}, "store"),
        ({"idle_lifetime": "soon"}, "idle_lifetime"),
        ({"idle_lifetime": 0}, "idle_lifetime"),
    ],
)
def test_bad_settings_fail_at_start_up(settings: dict[str, t.Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        SessionMiddleware(view, {"secret_key": SECRET, **settings})


def test_idle_lifetime_sets_the_store_lifetime() -> None:
    store = MemoryStore()
    app = make_app(store, idle_lifetime="90s")
    cookie = session_cookie(app.get("/set", {"a": "1"}))
    assert cookie is not None
    record = store._records[store_key_for(hash_key(), sid_of(cookie))]
    assert record.lifetime == 90
    app.get("/permanent")
    assert record.lifetime == int(timedelta(days=31).total_seconds())


def test_without_a_secret_key_the_session_is_a_null_session() -> None:
    seen: list[object] = []

    def app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        seen.append(get_session(environ))
        start_response("200 OK", [])
        return [b""]

    middleware = SessionMiddleware(app, {"store": "memory://"})
    response = webtest.TestApp(middleware).get("/")
    assert [type(session) for session in seen] == [NullSession]
    assert "Set-Cookie" not in response.headers


# -- concurrency through the interface (real threads) -----------------------------------


def _parallel_requests(
    store: Store, cookie: str, first: t.Callable[[t.Any], None], second: t.Callable[[t.Any], None]
) -> list[str | None]:
    """Two requests of one session; ``second`` runs while ``first`` is between
    its read and its save. Returns the cookies the two responses set."""
    loaded = threading.Event()
    second_done = threading.Event()
    cookies: list[str | None] = [None, None]

    def slow_app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        session = get_session(environ)
        if environ["PATH_INFO"] == "/first":
            session.get("anything")  # load
            loaded.set()
            assert second_done.wait(30)
            first(session)
        else:
            second(session)
        start_response("200 OK", [])
        return [b""]

    middleware = SessionMiddleware(slow_app, {"secret_key": SECRET, "store": store})
    headers = {"Cookie": f"session={cookie}"}

    def run_first() -> None:
        cookies[0] = session_cookie(webtest.TestApp(middleware).get("/first", headers=headers))

    thread = threading.Thread(target=run_first)
    thread.start()
    assert loaded.wait(30)
    cookies[1] = session_cookie(webtest.TestApp(middleware).get("/second", headers=headers))
    second_done.set()
    thread.join(30)
    return cookies


def test_two_requests_changing_different_keys_both_survive(store: Store) -> None:
    app = make_app(store)
    cookie = session_cookie(app.get("/set", {"a": "1"}))
    assert cookie is not None

    def first(session: t.Any) -> None:
        session["from_first"] = 1

    def second(session: t.Any) -> None:
        session["from_second"] = 2

    _parallel_requests(store, cookie, first, second)
    assert app.get("/dump").json == {"a": "1", "from_first": 1, "from_second": 2}


def test_invalidate_while_another_request_is_in_flight(store: Store) -> None:
    app = make_app(store)
    cookie = session_cookie(app.get("/login", {"user": "alice"}))
    assert cookie is not None

    def first(session: t.Any) -> None:
        session["late"] = "write"  # after the logout finished

    def second(session: t.Any) -> None:
        session.invalidate()

    first_cookie, _ = _parallel_requests(store, cookie, first, second)
    replay = webtest.TestApp(app.app)
    assert replay.get("/dump", headers={"Cookie": f"session={cookie}"}).json == {}
    # The late request's write is dropped and it sends no cookie: the logout stands.
    assert first_cookie is None
    assert isinstance(store.load(store_key_for(hash_key(), sid_of(cookie))), Ended)


def test_regenerate_while_another_request_is_in_flight(store: Store) -> None:
    app = make_app(store)
    cookie = session_cookie(app.get("/set", {"cart": "book"}))
    assert cookie is not None

    def first(session: t.Any) -> None:
        session["late"] = "write"

    def second(session: t.Any) -> None:
        session.regenerate()
        session["user"] = "alice"

    first_cookie, second_cookie = _parallel_requests(store, cookie, first, second)
    assert first_cookie is None  # the in-flight request does not touch the cookie
    assert second_cookie is not None
    replay = webtest.TestApp(app.app)
    # Its write is dropped, never forwarded into the logged-in session.
    assert replay.get("/dump", headers={"Cookie": f"session={second_cookie}"}).json == {
        "cart": "book",
        "user": "alice",
    }
    assert replay.get("/dump", headers={"Cookie": f"session={cookie}"}).json == {}


@pytest.mark.parametrize("blind", [True, False], ids=["blind-write", "read-then-write"])
def test_a_write_in_flight_at_login_never_lands_however_late(store: Store, blind: bool) -> None:
    # Session fixation: the attacker planted the id and keeps a request open
    # (a slowly sent body) past the victim's login, for longer than any grace.
    store.end_grace = 0
    app = make_app(store)
    planted = session_cookie(app.get("/set", {"cart": "book"}))
    assert planted is not None
    opened = threading.Event()
    login_done = threading.Event()
    attacker_cookies: list[str | None] = []

    def slow_app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        session = get_session(environ)
        if environ["PATH_INFO"] == "/attack":
            if not blind:
                session.get("cart")
            opened.set()
            assert login_done.wait(30)
            session["role"] = "admin"
        else:
            session.regenerate()
            session["user"] = "alice"
        start_response("200 OK", [])
        return [b""]

    middleware = SessionMiddleware(slow_app, {"secret_key": SECRET, "store": store})
    headers = {"Cookie": f"session={planted}"}

    def attack() -> None:
        response = webtest.TestApp(middleware).get("/attack", headers=headers)
        attacker_cookies.append(session_cookie(response))

    thread = threading.Thread(target=attack)
    thread.start()
    assert opened.wait(30)
    victim = session_cookie(webtest.TestApp(middleware).get("/login", headers=headers))
    assert victim is not None
    login_done.set()
    thread.join(30)
    assert attacker_cookies == [None]  # no cookie at all, least of all the victim's
    assert webtest.TestApp(app.app).get("/dump", headers={"Cookie": f"session={victim}"}).json == {
        "cart": "book",
        "user": "alice",
    }


def test_logout_after_a_concurrent_login_ends_the_new_id(store: Store) -> None:
    # The login saves first (regenerate), the logout that opened the old id second.
    app = make_app(store)
    cookie = session_cookie(app.get("/set", {"user": "alice"}))
    assert cookie is not None

    def first(session: t.Any) -> None:
        session.invalidate()

    def second(session: t.Any) -> None:
        session.regenerate()
        session["user"] = "alice"

    first_cookie, second_cookie = _parallel_requests(store, cookie, first, second)
    assert second_cookie is not None  # the login answered first, with the new id...
    replay = webtest.TestApp(app.app)
    # ...which the logout ended: neither id opens the session any more.
    assert replay.get("/dump", headers={"Cookie": f"session={second_cookie}"}).json == {}
    assert replay.get("/dump", headers={"Cookie": f"session={cookie}"}).json == {}
    assert isinstance(store.load(store_key_for(hash_key(), sid_of(second_cookie))), Ended)
    assert first_cookie == ""  # the logout deletes the cookie, handing out no id


def test_login_after_a_concurrent_logout_creates_nothing(store: Store) -> None:
    # The logout saves first, the login that opened the old id second.
    app = make_app(store)
    cookie = session_cookie(app.get("/set", {"user": "alice"}))
    assert cookie is not None
    counting = CountingStore(store)

    def first(session: t.Any) -> None:
        session.regenerate()
        session["user"] = "mallory"

    def second(session: t.Any) -> None:
        session.invalidate()

    first_cookie, second_cookie = _parallel_requests(counting, cookie, first, second)
    assert second_cookie == ""  # the logout deleted the cookie
    assert first_cookie is None  # the login sends no cookie: the logout won
    assert counting.calls["create"] == 0
    replay = webtest.TestApp(app.app)
    assert replay.get("/dump", headers={"Cookie": f"session={cookie}"}).json == {}


@pytest.mark.parametrize("order", ["pop-first", "set-first"])
def test_popping_the_last_key_while_another_request_adds_one(store: Store, order: str) -> None:
    # A pops the only flash message while B adds to the cart: both survive,
    # and nobody is logged out.
    app = make_app(store)
    cookie = session_cookie(app.get("/set", {"flash": "saved"}))
    assert cookie is not None

    def pop(session: t.Any) -> None:
        session.pop("flash")

    def add(session: t.Any) -> None:
        session["cart"] = "book"

    first, second = (add, pop) if order == "pop-first" else (pop, add)
    cookies = _parallel_requests(store, cookie, first, second)
    assert cookies == [None, None]  # the cookie stays as it is
    assert app.get("/dump").json == {"cart": "book"}


def test_old_cookie_cannot_write_into_a_regenerated_session(store: Store) -> None:
    # Session fixation: an id planted before login must be worthless after it,
    # for writes as well as reads.
    app = make_app(store)
    planted = session_cookie(app.get("/set", {"cart": "book"}))
    assert planted is not None
    client = webtest.TestApp(app.app)
    login = client.get("/login", {"user": "alice"}, headers={"Cookie": f"session={planted}"})
    victim_cookie = session_cookie(login)
    assert victim_cookie is not None
    assert victim_cookie != planted
    client.get("/set", {"role": "admin"}, headers={"Cookie": f"session={planted}"})
    victim_view = client.get("/dump", headers={"Cookie": f"session={victim_cookie}"}).json
    assert victim_view == {"cart": "book", "user": "alice"}


# -- Flask ----------------------------------------------------------------------------------


def test_flask_session_interface(store: Store) -> None:
    flask = pytest.importorskip("flask")
    app = flask.Flask(__name__)
    app.secret_key = SECRET
    app.session_interface = ServerSideSessionInterface(store)

    @app.route("/login/<user>")
    def login(user: str) -> str:
        flask.session.regenerate()  # type: ignore[attr-defined]
        flask.session["user"] = user
        return "ok"

    @app.route("/set/<value>")
    def set_value(value: str) -> str:
        flask.session["value"] = value
        return "ok"

    @app.route("/dump")
    def dump() -> dict[str, t.Any]:
        return dict(flask.session)

    @app.route("/logout")
    def logout() -> str:
        flask.session.invalidate()  # type: ignore[attr-defined]
        return "ok"

    client = app.test_client()
    client.get("/set/first")
    before = client.get_cookie("session")
    assert before is not None
    client.get("/login/alice")
    after = client.get_cookie("session")
    assert after is not None and sid_of(after.value) != sid_of(before.value)
    assert client.get("/dump").json == {"value": "first", "user": "alice"}
    client.get("/logout")
    assert client.get_cookie("session") is None
    assert client.get("/dump").json == {}


# -- values ------------------------------------------------------------------------------------


def test_tagged_values_round_trip_through_the_store(store: Store) -> None:
    import uuid
    from datetime import datetime, timezone

    values = {
        "tuple": (1, "two"),
        "bytes": b"\x00\xff",
        "when": datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc),
        "id": uuid.UUID(int=7),
        "nested": {"a": [1, {"b": None}]},
    }
    seen: dict[str, t.Any] = {}

    def app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        session = get_session(environ)
        if environ["PATH_INFO"] == "/write":
            session.update(values)
        else:
            seen.update(session.items())
        start_response("200 OK", [])
        return [b""]

    test_app = webtest.TestApp(SessionMiddleware(app, {"secret_key": SECRET, "store": store}))
    test_app.get("/write")
    test_app.get("/read")
    assert seen == values


def test_a_corrupt_stored_value_is_dropped_and_the_rest_kept(store: Store) -> None:
    app = make_app(store)
    cookie = session_cookie(app.get("/set", {"a": "1", "b": "2"}))
    assert cookie is not None
    key = store_key_for(hash_key(), sid_of(cookie))
    store.apply(key, {"bad": "{not json", "comma": "1,2"}, [])
    assert app.get("/dump").json == {"a": "1", "b": "2"}


def test_stored_values_are_read_one_by_one(store: Store) -> None:
    # Each field is its own JSON text: texts that only parse when joined
    # together are each dropped, never read as pieces of one another.
    app = make_app(store)
    cookie = session_cookie(app.get("/set", {"a": "1"}))
    assert cookie is not None
    key = store_key_for(hash_key(), sid_of(cookie))
    store.apply(key, {"x": "[1", "y": "2]", "z": "3,4"}, [])
    assert app.get("/dump").json == {"a": "1"}


def test_a_value_that_cannot_be_stored_names_its_place() -> None:
    def app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        get_session(environ)["cart"] = [1, object()]
        start_response("200 OK", [])
        return [b""]

    test_app = webtest.TestApp(SessionMiddleware(app, {"secret_key": SECRET, "store": "memory://"}))
    with pytest.raises(TypeError, match=r"session\['cart'\]\[1\]"):
        test_app.get("/")


def test_flask_config_may_give_the_idle_lifetime_as_seconds() -> None:
    flask = pytest.importorskip("flask")
    store = MemoryStore()
    app = flask.Flask(__name__)
    app.secret_key = SECRET
    app.config["SESSION_IDLE_LIFETIME"] = 120
    app.session_interface = ServerSideSessionInterface(store)

    @app.route("/")
    def index() -> str:
        flask.session["a"] = 1
        return "ok"

    app.test_client().get("/")
    assert [record.lifetime for record in store._records.values()] == [120]


@pytest.mark.parametrize(("refresh", "touch"), [("true", True), ("false", False)])
def test_a_read_refreshes_the_expiry_only_when_configured(refresh: str, touch: bool) -> None:
    counting = CountingStore(MemoryStore())
    app = make_app(counting, refresh_each_request=refresh)
    app.get("/set", {"a": "1"})
    app.get("/read", {"key": "a"})
    assert counting.touches == [touch]


def test_popping_a_missing_key_writes_nothing(store: Store) -> None:
    # `session.pop("flash", None)` changes nothing: it must not write every
    # loaded key back over other requests' newer values.
    counting = CountingStore(store)
    app = make_app(counting)
    app.get("/set", {"a": "1", "b": "2"})
    counting.calls.clear()
    app.get("/pop-missing")
    assert counting.calls == {"load": 1}


@pytest.mark.parametrize(
    ("params", "error"),
    [({}, r"TypeError\(.session\['roles'\]"), ({"reserved": "1"}, r"ValueError\(.*reserved")],
    ids=["a-set-value", "a-reserved-key"],
)
def test_a_session_that_cannot_be_stored_writes_nothing(
    store: Store, params: dict[str, str], error: str
) -> None:
    # The save fails before any store call: the old session is neither renamed
    # away (its cookie would be dead with no new one sent) nor changed.
    app = make_app(store)
    cookie = session_cookie(app.get("/set", {"cart": "book"}))
    assert cookie is not None
    with pytest.raises((TypeError, ValueError)) as caught:
        app.get("/login-unstorable", {"user": "alice", **params})
    assert re.match(error, repr(caught.value))
    replay = webtest.TestApp(app.app)
    assert replay.get("/dump", headers={"Cookie": f"session={cookie}"}).json == {"cart": "book"}


def test_a_changed_permanent_session_gets_its_cookie_expiry_pushed(store: Store) -> None:
    # Without refresh_each_request the cookie is still sent when the session
    # changes (as for cookie sessions): the store pushed its expiry forward,
    # and a cookie left to expire earlier would end an active session.
    app = make_app(store, permanent_lifetime="1h", refresh_each_request="false")
    app.get("/set", {"a": "1"})
    assert "Expires=" in app.get("/permanent").headers["Set-Cookie"]
    assert "Set-Cookie" not in app.get("/read", {"key": "a"}).headers
    response = app.get("/read-set", {"b": "2"})
    assert "Expires=" in response.headers["Set-Cookie"]
    assert response.headers["Vary"] == "Cookie"


READS: dict[str, t.Callable[[t.Any], t.Any]] = {
    "getitem": lambda s: s["a"],
    "get": lambda s: s.get("a"),
    "contains": lambda s: "a" in s,
    "len": len,
    "bool": bool,
    "iter": list,
    "keys": lambda s: list(s.keys()),
    "values": lambda s: list(s.values()),
    "items": lambda s: dict(s.items()),
    "copy": lambda s: s.copy(),
    "eq": lambda s: s == {"a": 1},
    "ne": lambda s: s != {"a": 1},
    "reversed": lambda s: list(reversed(s)),
    "or": lambda s: s | {},
    "setdefault": lambda s: s.setdefault("a", 2),
    "permanent": lambda s: s.permanent,
    "as_dict": lambda s: s.as_dict(),
    "is_empty": lambda s: s.is_empty(),
    "pop": lambda s: s.pop("a"),
    "csrf_token": lambda s: s.csrf_token(),
}


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_each_read_path_loads_a_session_opened_from_a_cookie(
    read: t.Callable[[t.Any], t.Any],
) -> None:
    store = CountingStore(MemoryStore())
    app = make_app(store)
    cookie = session_cookie(app.get("/set", {"a": "1"}))
    assert cookie is not None
    key = store_key_for(hash_key(), sid_of(cookie))
    store.apply(key, {"a": "1"}, [])  # the int 1
    interface = app.app.session_interface
    request = Request(EnvironBuilder(headers=[("Cookie", f"session={cookie}")]).get_environ())
    session = interface.open_session(app.app, request)
    store.calls.clear()
    session["blind"] = "write"  # a write needs no load...
    assert store.calls == {}
    read(session)  # ...a read loads, once
    assert store.calls == {"load": 1}
    assert session.accessed
    assert session.get("a", 1) == 1 and session.get("blind") == "write"


def test_every_read_loads_the_session_first(store: Store) -> None:
    app = make_app(store)
    app.get("/set", {"a": "1"})
    assert app.get("/not-equal").json is False
    assert app.get("/reversed").json == ["a"]


def test_a_read_in_flight_during_regenerate_does_not_resend_the_old_id(store: Store) -> None:
    app = make_app(store)
    app.get("/set", {"cart": "book"})
    cookie = session_cookie(app.get("/permanent"))
    assert cookie is not None

    def first(session: t.Any) -> None:
        pass  # it only read the session (before the rename)

    def second(session: t.Any) -> None:
        session.regenerate()
        session["user"] = "alice"

    first_cookie, second_cookie = _parallel_requests(store, cookie, first, second)
    assert second_cookie is not None
    assert first_cookie is None or first_cookie == second_cookie


# -- values parsed when read (a 500-key session read for one key parses one value) ----------


class CountingSerializer(TaggedJSONSerializer):
    """The real serializer, counting the texts it parses."""

    def __init__(self) -> None:
        super().__init__()
        self.parsed: list[str] = []

    def loads(self, value: str | bytes) -> t.Any:
        self.parsed.append(t.cast(str, value))
        return super().loads(value)


def _opened(store: Store, fields: dict[str, str]) -> tuple[ServerSideSession, CountingSerializer]:
    """A session opened from a cookie for a record holding ``fields``."""
    app = make_app(store)
    cookie = session_cookie(app.get("/set", {"seed": "1"}))
    assert cookie is not None
    store.apply(store_key_for(hash_key(), sid_of(cookie)), fields, ["seed"])
    interface = app.app.session_interface
    serializer = interface.serializer = CountingSerializer()
    request = Request(EnvironBuilder(headers=[("Cookie", f"session={cookie}")]).get_environ())
    session = interface.open_session(app.app, request)
    return session, serializer


def test_a_read_parses_only_the_values_it_reads(store: Store) -> None:
    fields = {f"k{i}": f'"value {i}"' for i in range(50)}
    session, serializer = _opened(store, {**fields, "cart": '[1,{" t":[2,3]}]'})
    assert session["k7"] == "value 7"
    assert serializer.parsed == ['"value 7"']
    assert len(session) == 51 and "k9" in session and "nope" not in session
    assert serializer.parsed == ['"value 7"', '"value 9"']
    # A mutable value: parsed twice (once more for the copy change tracking keeps).
    assert session["cart"] == [1, (2, 3)]
    assert serializer.parsed.count('[1,{" t":[2,3]}]') == 2
    # Iterating, or anything that sees every value, parses the rest, once.
    assert dict(session) == {**{k: v.strip('"') for k, v in fields.items()}, "cart": [1, (2, 3)]}
    assert len(serializer.parsed) == 52
    assert session == dict(session.items())
    assert len(serializer.parsed) == 52


def test_a_value_read_lazily_is_written_only_if_changed(store: Store) -> None:
    counting = CountingStore(store)
    app = make_app(counting)
    cookie = session_cookie(app.get("/set", {"a": "1"}))
    assert cookie is not None
    key = store_key_for(hash_key(), sid_of(cookie))
    store.apply(key, {"cart": '["x"]', "other": '{"n":[1]}'}, [])
    counting.calls.clear()
    app.get("/read", {"key": "cart"})  # read, not changed
    assert counting.calls == {"load": 1}
    app.get("/append", {"item": "y"})  # changed in place
    assert counting.calls == {"load": 2, "apply": 1}
    assert store.load(key) == {"a": '"1"', "cart": '["x","y"]', "other": '{"n":[1]}'}


def test_a_key_written_before_the_load_keeps_this_requests_value(store: Store) -> None:
    session, serializer = _opened(store, {"a": '"stored"', "b": '"kept"'})
    session["a"] = "mine"  # a blind write, then a read loads the rest
    assert session["b"] == "kept"
    assert session["a"] == "mine"
    assert dict(session) == {"a": "mine", "b": "kept"}
    assert serializer.parsed == ['"kept"']


def test_a_value_that_does_not_parse_is_dropped_when_read(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    fields = {"ok": "1", "bad": "{not json", "tag": '{" t":5}', "deep": "[" * 100_000}
    session, _ = _opened(store, fields)
    with caplog.at_level("WARNING", logger="wsgi_sessions"):
        assert session.get("bad", "default") == "default"
        with pytest.raises(KeyError):
            session["tag"]
        assert "deep" not in session
    assert len([r for r in caplog.records if "dropped" in r.getMessage()]) == 3
    assert [(key, session[key]) for key in session] == [("ok", 1)]
    # Iterating first (the usual way to hit every key) never meets a bad one.
    session, _ = _opened(store, fields)
    assert len(session) == 4  # counted until read: parsing is what finds them out
    assert {key: session[key] for key in session} == {"ok": 1}
    assert len(session) == 1
    session, _ = _opened(store, fields)
    assert dict(session) == {"ok": 1}


def test_a_permanent_session_read_for_another_key_is_refreshed(store: Store) -> None:
    counting = CountingStore(store)
    app = make_app(counting)
    app.get("/permanent")
    app.get("/set", {"a": "1"})
    counting.calls.clear()
    response = app.get("/read", {"key": "a"})  # "_permanent" is never read by the app
    assert counting.touches[-1] is True
    assert "Expires=" in response.headers["Set-Cookie"]


def test_json_dumps_of_a_session_read_in_part_holds_every_value(store: Store) -> None:
    # json.dumps (and Flask's jsonify) looks at a dict subclass's storage in C
    # before asking it for its items: it must never meet a value not parsed.
    session, _ = _opened(store, {"a": '"x"', "b": "[1,2]", "c": '{"d":[3]}'})
    assert session["b"] == [1, 2]
    assert json.loads(json.dumps(session)) == {"a": "x", "b": [1, 2], "c": {"d": [3]}}


@pytest.mark.parametrize(
    "before",
    [
        lambda s: None,  # nothing: not even loaded
        len,  # loaded, nothing parsed
        lambda s: "a" in s,  # one parsed
        lambda s: s.__setitem__("z", 26),  # a blind write, not loaded
        lambda s: (s["b"], s.__delitem__("b")),  # the parsed one deleted, the rest unread
        lambda s: s.pop("a"),
        lambda s: s.__delitem__("c"),  # deleted unread
    ],
    ids=["untouched", "len", "in", "blind-write", "del-parsed", "pop", "del-unread"],
)
def test_json_dumps_of_a_session_in_any_state_holds_every_value(
    store: Store, before: t.Callable[[t.Any], object]
) -> None:
    session, _ = _opened(store, {"a": '"x"', "b": "[1,2]", "c": '{"d":[3]}'})
    expected = {"a": "x", "b": [1, 2], "c": {"d": [3]}}
    model = dict(expected)
    before(model)
    before(session)
    assert json.loads(json.dumps(session)) == model
    assert dict(session) == model and len(session) == len(model)
    assert NOT_LOADED not in dict.keys(session)  # all parsed now: the marker is gone
    assert "not loaded" not in repr(session)


def test_a_session_whose_record_vanished_keeps_only_this_requests_writes_after_the_save() -> None:
    now = [1_750_000_000.0]
    store = MemoryStore(clock=lambda: now[0])
    session, _ = _opened(store, {"a": '"x"', "b": "[1,2]"})
    assert len(session) == 2  # loaded, nothing parsed
    now[0] += 3 * 86400  # the record expires in the store meanwhile
    session["c"] = 3
    app = make_app(store)
    interface = app.app.session_interface
    interface.save_session(app.app, session, _wsgi.HeaderResponse([]))
    assert dict(session) == {"c": 3}  # created anew: nothing of the vanished record
    assert json.loads(json.dumps(session)) == {"c": 3}
