"""The README's guarantees under every interleaving hypothesis finds, over every store.

A model-based test (hypothesis stateful testing): one browser opens several
requests of its session, each with the cookie it holds at that moment; each
request reads, writes, pops, clears, regenerates or invalidates, in any order;
the requests save in any order, and the browser takes each response's cookie
as it arrives. After every save the real store and the browser's cookie are
checked against a small reference model of the promises:

- two requests that change different keys both survive; the same key: the
  last save wins, with one whole value;
- a write from a request that opened an id never lands in a session that a
  ``regenerate()`` made from that id after the request opened it;
- an ended session (invalidated, cleared) stays ended, and so does every
  session regenerated from it; nothing is resurrected;
- emptying a session (popping every key) does not end it;
- no response hands out a dead id, or an id the model did not expect.

The requests are driven through the interface's ``open_session`` and
``save_session`` (what SessionMiddleware calls), one step at a time, so any
interleaving of loads, writes and saves is reachable from one thread.

CI runs hypothesis's default number of examples per store; for a longer run:
``pytest tests/stores/test_races.py --hypothesis-profile=long``.
"""

from __future__ import annotations

import itertools
import json
import typing as t
from collections.abc import Mapping
from dataclasses import dataclass, field

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from cookies import cookie_value
from wsgi_sessions import ServerSideSession, ServerSideSessionInterface, SessionConfig
from wsgi_sessions.server import store_key_for
from wsgi_sessions.stores import Store
from wsgi_sessions.stores.base import Ended

SECRET = "race test secret"
KEYS = ("a", "b", "c")
MAX_OPEN = 4
_DELETED: t.Any = object()


@dataclass
class Record:
    """The model's view of one session in the store."""

    data: dict[str, int]
    ended: bool = False
    successor: str | None = None


@dataclass
class Req:
    """One request in flight: the real session and what the model expects of it."""

    name: int
    session: ServerSideSession
    opened: str | None  # the sid of the cookie it was opened with
    fresh: bool  # no cookie, or invalidated here: its writes make a new session
    loaded: bool = False
    dead_at_load: bool = False
    base: dict[str, int] = field(default_factory=dict)  # the store's data at the load
    own: dict[str, t.Any] = field(default_factory=dict)  # key -> value or _DELETED
    regenerated: bool = False
    doomed: list[str] = field(default_factory=list)

    def view(self) -> dict[str, int]:
        return _applied(self.base, self.own)


def sid_of(cookie: str) -> str:
    return cookie.rsplit(".", 1)[0]


class SessionRaces(RuleBasedStateMachine):
    store: t.ClassVar[Store]

    def __init__(self) -> None:
        super().__init__()
        self.app = SessionConfig({"secret_key": SECRET})
        self.interface = ServerSideSessionInterface(self.store)
        keys = self.interface.get_id_keys(self.app)
        assert keys is not None
        self.hash_key = keys[0].hash_key
        self.browser: str | None = None  # the cookie value the browser holds
        self.records: dict[str, Record] = {}  # sid -> the model's record
        self.requests: list[Req] = []
        self.names = itertools.count()
        self.values = itertools.count(1)  # every written value is unique
        self.dropped = False  # the last save was dropped (for the statistics)

    # -- the model ---------------------------------------------------------------------

    def end(self, sid: str) -> None:
        """Model of Store.end: follow renames to the live session and end it."""
        record: Record | None = self.records.get(sid)
        while record is not None and record.ended:
            record = self.records.get(record.successor) if record.successor else None
        if record is not None:
            record.ended = True
            record.data = {}

    def load(self, req: Req) -> None:
        if req.loaded or req.fresh:
            return
        req.loaded = True
        assert req.opened is not None
        record = self.records[req.opened]
        if record.ended:
            req.dead_at_load = True
        else:
            req.base = dict(record.data)

    # -- rules -------------------------------------------------------------------------

    @initialize(permanent=st.booleans(), in_flight=st.integers(0, MAX_OPEN))
    def a_session_exists(self, permanent: bool, in_flight: int) -> None:
        # Most races worth finding are between requests of an existing session:
        # start from one with requests in flight, so the search spends its steps there.
        self.open_request()
        self.write(0, "a")
        if permanent:
            self.make_permanent(0)
        self.save(0)
        for _ in range(in_flight):
            self.open_request()

    @precondition(lambda self: len(self.requests) < MAX_OPEN)
    @rule()
    def open_request(self) -> None:
        headers = [("Cookie", f"session={self.browser}")] if self.browser else []
        request = Request(EnvironBuilder(headers=headers).get_environ())
        session = self.interface.open_session(self.app, request)
        assert isinstance(session, ServerSideSession)
        opened = sid_of(self.browser) if self.browser else None
        req = Req(next(self.names), session, opened, fresh=opened is None)
        req.loaded = req.fresh
        self.requests.append(req)

    def pick(self, index: int) -> Req:
        return self.requests[index % len(self.requests)]

    @precondition(lambda self: self.requests)
    @rule(index=st.integers(0, MAX_OPEN - 1), key=st.sampled_from(KEYS))
    def read(self, index: int, key: str) -> None:
        req = self.pick(index)
        self.load(req)
        assert req.session.get(key) == req.view().get(key), (req.name, key)

    @precondition(lambda self: self.requests)
    @rule(index=st.integers(0, MAX_OPEN - 1), key=st.sampled_from(KEYS))
    def write(self, index: int, key: str) -> None:
        req = self.pick(index)
        value = next(self.values)
        req.session[key] = value  # a blind write: no load
        req.own[key] = value

    @precondition(lambda self: self.requests)
    @rule(index=st.integers(0, MAX_OPEN - 1))
    def make_permanent(self, index: int) -> None:
        req = self.pick(index)
        req.session.permanent = True  # a write of "_permanent": its cookie gets an expiry
        req.own["_permanent"] = True

    @precondition(lambda self: self.requests)
    @rule(index=st.integers(0, MAX_OPEN - 1), key=st.sampled_from(KEYS))
    def pop(self, index: int, key: str) -> None:
        req = self.pick(index)
        self.load(req)
        expected = req.view().get(key)
        assert req.session.pop(key, None) == expected
        if expected is not None:
            req.own[key] = _DELETED

    @precondition(lambda self: self.requests)
    @rule(index=st.integers(0, MAX_OPEN - 1))
    def regenerate(self, index: int) -> None:
        req = self.pick(index)
        self.load(req)
        req.session.regenerate()
        if not req.fresh and not req.dead_at_load:
            req.regenerated = True

    @precondition(lambda self: self.requests)
    @rule(index=st.integers(0, MAX_OPEN - 1), use_clear=st.booleans())
    def invalidate(self, index: int, use_clear: bool) -> None:
        req = self.pick(index)
        if use_clear:
            req.session.clear()
        else:
            req.session.invalidate()
        if req.opened is not None and req.opened not in req.doomed:
            req.doomed.append(req.opened)
        req.opened = None
        req.fresh = req.loaded = True
        req.dead_at_load = req.regenerated = False
        req.base, req.own = {}, {}

    @precondition(lambda self: self.requests)
    @rule(index=st.integers(0, MAX_OPEN - 1))
    def save(self, index: int) -> None:
        req = self.pick(index)
        self.requests.remove(req)
        response = Response()
        self.interface.save_session(self.app, req.session, response)
        cookie = cookie_value(response.headers.getlist("Set-Cookie"))
        expected = self.expect_save(req)
        event(f"save: {expected}{' (dropped)' if self.dropped else ''}")
        if expected == "none":
            assert cookie is None, (req.name, "sent a cookie the model did not expect")
            return
        if expected == "delete":
            assert cookie == "", (req.name, "should have deleted the cookie")
            self.browser = None
            return
        if expected == "same":  # a permanent session's cookie, its expiry pushed forward
            assert cookie and sid_of(cookie) == req.opened, (req.name, "should re-send its id")
            self.browser = cookie
            return
        assert cookie, (req.name, "should have sent a new id")
        sid = sid_of(cookie)
        assert sid not in self.records, "an id was handed out twice"
        if req.regenerated:
            assert req.opened is not None and sid[:8] == req.opened[:8]  # same family
            old = self.records[req.opened]
            self.records[sid] = Record(_applied(old.data, req.own))
            old.ended, old.data, old.successor = True, {}, sid
        else:
            self.records[sid] = Record(_applied({}, req.own))
        self.browser = cookie

    def expect_save(self, req: Req) -> str:
        """Apply the save to the model; what the response should do to the cookie."""
        self.dropped = False
        for sid in req.doomed:
            self.end(sid)
        if req.fresh:
            if any(value is not _DELETED for value in req.own.values()):
                return "new"
            return "delete" if req.doomed else "none"
        assert req.opened is not None
        record = self.records[req.opened]
        if req.dead_at_load or record.ended:
            self.dropped = True
            return "none"  # ended or regenerated by another request meanwhile: dropped
        if req.regenerated:
            return "new"
        record.data = _applied(record.data, req.own)
        # A permanent session re-sends its cookie when written, or when read
        # (SESSION_REFRESH_EACH_REQUEST is on): only while its id is live.
        loaded_live = req.loaded and not req.dead_at_load
        if req.own and (req.view().get("_permanent") if loaded_live else "_permanent" in req.own):
            return "same"
        if not req.own and loaded_live and req.base.get("_permanent"):
            return "same"
        return "none"

    # -- the checks --------------------------------------------------------------------

    @invariant()
    def the_store_matches_the_model(self) -> None:
        for sid, record in self.records.items():
            found = self.store.load(store_key_for(self.hash_key, sid))
            if record.ended:
                assert isinstance(found, Ended), (sid, found)
            else:
                assert isinstance(found, Mapping), (sid, found)
                assert {k: json.loads(v) for k, v in found.items()} == record.data

    @invariant()
    def the_browser_holds_a_live_id_or_none(self) -> None:
        if self.browser is not None:
            record = self.records.get(sid_of(self.browser))
            assert record is not None, "the browser holds an id the model never saw"
            assert not record.ended, "a response handed out a dead id"


def _applied(data: dict[str, int], own: dict[str, t.Any]) -> dict[str, int]:
    result = dict(data)
    for key, value in own.items():
        if value is _DELETED:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def test_the_guarantees_hold_under_any_interleaving(store: Store) -> None:
    machine = type("SessionRacesOnStore", (SessionRaces,), {"store": store})
    run_state_machine_as_test(
        machine,
        settings=settings(
            settings(),  # the active profile's max_examples (see the module docstring)
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
