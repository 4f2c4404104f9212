"""Properties: whatever a client puts in its Cookie header, a 200 and an empty
session; whatever a session holds, tagged JSON gives it back, as Flask does."""

from __future__ import annotations

import typing as t
from datetime import datetime, timezone

from flask.json.tag import TaggedJSONSerializer as FlaskTaggedJSONSerializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webtest import TestApp

from cookies import parse_set_cookie
from wsgi_sessions import SessionMiddleware, TaggedJSONSerializer, get_session

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def show(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    session = get_session(environ)
    body = repr(dict(session.items())).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


APP = TestApp(SessionMiddleware(show, {"secret_key": "property-test-secret"}))
NAMED = TestApp(SessionMiddleware(show, {"secret_key": "property-test-secret", "cookie_name": "s"}))

# WSGI environ values are latin-1 text.
latin1 = st.text(st.characters(min_codepoint=0, max_codepoint=255))
token_chars = st.text(
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.="),
)
# Values shaped like ours: three dot-separated URL-safe base64 parts.
signed_like = st.lists(token_chars, min_size=1, max_size=4).map(".".join)
value = st.one_of(
    latin1,
    token_chars,
    signed_like,
    signed_like.map(lambda v: f'"{v}"'),
    latin1.map(lambda v: f'"{v}'),
    st.integers(0, 200_000).map(lambda n: "A" * n),
    st.integers(0, 20_000).map(lambda n: "a.b" * n),
)
name = st.one_of(st.just("session"), st.just(" session "), st.just("s"), token_chars, latin1)
pair = st.builds(lambda n, v, eq: f"{n}{eq}{v}", name, value, st.sampled_from(["=", " = ", ""]))
separator = st.sampled_from(["; ", ";", ",", " ", ";;", "\t"])
cookie_header = st.one_of(
    latin1,
    st.builds(lambda pairs, sep: sep.join(pairs), st.lists(pair, max_size=8), separator),
    st.builds(
        lambda v, n: "; ".join([f"session={v}"] * n), value, st.integers(min_value=2, max_value=500)
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cookie_header)
def test_any_cookie_header_gives_200_and_an_empty_session(header: str) -> None:
    for app in (APP, NAMED):
        app.reset()
        response = app.get("/", extra_environ={"HTTP_COOKIE": header})
        assert response.status_int == 200
        assert response.text == "{}"
        assert "Set-Cookie" not in response.headers


def valid_cookie() -> str:
    """A cookie our middleware issued for {"user": "ada"}."""

    def login(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        get_session(environ)["user"] = "ada"
        start_response("200 OK", [])
        return [b""]

    app = TestApp(SessionMiddleware(login, {"secret_key": "property-test-secret"}))
    header = app.get("/").headers["Set-Cookie"]
    return parse_set_cookie(header)[1]


VALID = valid_cookie()


def test_the_valid_cookie_is_read() -> None:
    APP.reset()
    assert APP.get("/", headers={"Cookie": f"session={VALID}"}).text == "{'user': 'ada'}"


@settings(max_examples=400, deadline=None)
@given(
    st.integers(min_value=0, max_value=len(VALID)),
    st.integers(min_value=0, max_value=3),
    st.text(st.characters(min_codepoint=0, max_codepoint=255), min_size=1, max_size=4),
)
def test_an_altered_valid_cookie_is_never_accepted(position: int, cut: int, inserted: str) -> None:
    altered = VALID[:position] + inserted + VALID[position + cut :]
    APP.reset()
    response = APP.get("/", extra_environ={"HTTP_COOKIE": f"session={altered}"})
    assert response.status_int == 200
    if altered.split(";")[0].strip() == VALID:
        return  # whitespace around a value, or a ';' starting another cookie
    assert response.text == "{}", f"accepted {altered!r}"


# -- tagged JSON -------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.binary(max_size=64),
    st.uuids(),
    st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.just(timezone.utc),
    ).map(lambda d: d.replace(microsecond=0)),
)
tag_like_keys = st.sampled_from([" t", " b", " u", " d", " m", " di", " t__", " di__", " x"])
session_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=8), tag_like_keys), children, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), session_values, max_size=5))
def test_tagged_json_round_trips_and_matches_flask(session: dict[str, t.Any]) -> None:
    ours, flasks = TaggedJSONSerializer(), FlaskTaggedJSONSerializer()
    text = ours.dumps(session)
    assert ours.loads(text) == session
    assert flasks.loads(text) == session
    assert ours.loads(flasks.dumps(session)) == session
