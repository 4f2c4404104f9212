"""The speed work must not change behaviour.

The cookie interface caches its signing serializer with pre-derived keys and
takes shortcuts through the middleware. These tests hold the fast paths to the
obvious ones: the token is byte for byte what plain itsdangerous writes in
Flask's format, every malformed token that plain itsdangerous refuses is
refused, and a WSGI app sees set / read / tamper / delete as it should.
"""

from __future__ import annotations

import hashlib
import typing as t
from collections.abc import Iterable
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import BadData, BadSignature, Signer, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode, want_bytes
from itsdangerous.signer import NoneAlgorithm
from webtest import TestApp

from wsgi_sessions import SecureCookieSessionInterface, SessionMiddleware, get_session
from wsgi_sessions._signing import DerivedKeySerializer, StrictSigner, may_be_permanent
from wsgi_sessions.serialization import session_json_serializer

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

SECRET = "fast-path-secret-key-0123456789abcdef"
OLD_SECRET = "the-previous-secret-key-0123456789"
NOW = 1_750_000_000
MAX_AGE = int(timedelta(days=31).total_seconds())

PAYLOADS: list[dict[str, t.Any]] = [
    {},
    {"user_id": 4217, "name": "alice", "lang": "en", "fresh": True},
    {"cart": [1, 2, 3], "nested": {"a": [None, 1.5, "x"]}, "t": (1, "two")},
    {"b": b"\x00\xff", "unicode": "żółć ☃ \U0001f600"},
    {"compressible": "a" * 500},  # zlib makes this shorter: the '.'-prefixed form
    {"a": "x" * 40},  # so it would this, but it is under COMPRESS_MIN_SIZE
]


class FakeApp:
    """What the interface reads from an app (Flask's three members)."""

    def __init__(self, fallbacks: list[str] | None = None) -> None:
        self.secret_key = SECRET
        self.permanent_session_lifetime = timedelta(seconds=MAX_AGE)
        self.config: dict[str, t.Any] = {"SECRET_KEY_FALLBACKS": fallbacks or []}


def plain(*keys: str) -> URLSafeTimedSerializer:
    """The obvious serializer: itsdangerous as Flask configures it."""
    return URLSafeTimedSerializer(
        list(keys),
        salt="cookie-session",
        serializer=session_json_serializer,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )


def ours(fallbacks: list[str] | None = None) -> URLSafeTimedSerializer:
    serializer = SecureCookieSessionInterface().get_signing_serializer(FakeApp(fallbacks))
    assert serializer is not None
    return serializer


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pin itsdangerous's clock so that two tokens made in one test match."""
    import itsdangerous.timed

    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: NOW + 0.25)


@pytest.mark.usefixtures("frozen_clock")
@pytest.mark.parametrize("payload", PAYLOADS)
def test_tokens_match_plain_itsdangerous(payload: dict[str, t.Any]) -> None:
    token = ours().dumps(payload)
    reference = plain(SECRET).dumps(payload)
    if reference.startswith(".") and len(session_json_serializer.dumps(payload)) < 80:
        assert (
            token
            == plain(SECRET)
            .make_signer()
            .sign(base64_encode(session_json_serializer.dumps(payload)))
            .decode()
        )  # too small to be worth compressing: sent as it is
    elif reference.startswith("."):
        # Compressed: ours uses a 4 KB zlib window (dump_payload), so the
        # stream's bytes differ; where itsdangerous compresses, ours does too.
        assert token.startswith(".")
        assert len(token) <= len(reference) + 2
    else:
        assert token == reference
    for candidate in (token, reference):
        expected = plain(SECRET).loads(candidate, max_age=MAX_AGE)
        assert ours().loads(candidate, max_age=MAX_AGE) == expected
    assert plain(SECRET).loads(token, max_age=MAX_AGE) == plain(SECRET).loads(reference)


def test_compression_is_tried_only_from_the_threshold_up() -> None:
    """Under COMPRESS_MIN_SIZE bytes of JSON the payload is never compressed,
    from it on it is whenever that is shorter; Flask reads both forms."""
    from wsgi_sessions._signing import COMPRESS_MIN_SIZE

    for size in (COMPRESS_MIN_SIZE - 1, COMPRESS_MIN_SIZE):
        payload = {"a": "x" * (size - len('{"a":""}'))}
        assert len(session_json_serializer.dumps(payload)) == size
        token = ours().dumps(payload)
        assert token.startswith(".") == (size >= COMPRESS_MIN_SIZE)
        assert plain(SECRET).loads(token, max_age=MAX_AGE) == payload


@pytest.mark.usefixtures("frozen_clock")
def test_fallback_keys_verify_and_the_current_key_signs() -> None:
    old_token = plain(OLD_SECRET).dumps({"a": 1})
    rotated = ours([OLD_SECRET])
    assert rotated.loads(old_token, max_age=MAX_AGE) == {"a": 1}
    assert rotated.dumps({"a": 1}) == plain(SECRET).dumps({"a": 1})
    with pytest.raises(BadData):
        ours().loads(old_token, max_age=MAX_AGE)


def _malformed(token: str) -> list[str]:
    payload, timestamp, signature = token.split(".")
    flipped = "A" if signature[0] != "A" else "B"
    return [
        "",
        ".",
        "..",
        "garbage",
        token[:-1],
        token[:-5],
        token + "A",
        f"{payload}.{timestamp}.{flipped}{signature[1:]}",
        f"{payload}x.{timestamp}.{signature}",
        f"{payload}.{signature}",
        f"{payload}.{timestamp}",
        f"x.{token}",
        f"{payload}.{timestamp}..{signature}",
        f"{payload}.{timestamp}.{signature}!",
        token.replace(".", "\u2024"),
        "x" * 5000,
    ]


def _outcome(serializer: URLSafeTimedSerializer, token: str, max_age: int | None) -> object:
    """The data, or the refusal as precisely as a caller can see it."""
    try:
        return serializer.loads(token, max_age=max_age)
    except BadData as exc:
        seen = (getattr(exc, "payload", None), getattr(exc, "date_signed", None))
        return (type(exc).__name__, str(exc), *seen)


@pytest.mark.usefixtures("frozen_clock")
@pytest.mark.parametrize("max_age", [MAX_AGE, None])
def test_malformed_tokens_are_refused_exactly_when_itsdangerous_refuses(
    max_age: int | None,
) -> None:
    token = plain(SECRET).dumps({"user_id": 1})
    for candidate in [token, *_malformed(token)]:
        expected = _outcome(plain(SECRET), candidate, max_age)
        assert _outcome(ours(), candidate, max_age) == expected, candidate
        unsafe = plain(SECRET).loads_unsafe(candidate, max_age=max_age)
        assert ours().loads_unsafe(candidate, max_age=max_age) == unsafe, candidate


@pytest.mark.usefixtures("frozen_clock")
@pytest.mark.parametrize("fallbacks", [[], [OLD_SECRET]])
def test_a_respelled_signature_is_refused_though_itsdangerous_accepts_it(
    fallbacks: list[str], altered_signatures: t.Callable[[str], dict[str, str]]
) -> None:
    token = plain(SECRET).dumps({"user_id": 1})
    non_ascii = f"{token[:-10]}\u00e9{token[-10:]}"  # itsdangerous skips the character
    for case, candidate in [*altered_signatures(token).items(), ("non-ascii", non_ascii)]:
        assert plain(SECRET).loads(candidate, max_age=MAX_AGE) == {"user_id": 1}, case
        refusal = ("BadSignature", "signature not in canonical base64", None, None)
        assert _outcome(ours(fallbacks), candidate, MAX_AGE) == refusal, case
        with pytest.raises(BadSignature):
            ours(fallbacks).loads(candidate, return_timestamp=True)
        assert ours(fallbacks).loads_unsafe(candidate) == (False, None), case


def test_expired_and_future_tokens_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import itsdangerous.timed

    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: float(NOW))
    token = ours().dumps({"a": 1})
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: float(NOW + 11))
    assert _refusal(ours(), token, 10) == "SignatureExpired"
    assert _outcome(ours(), token, 10) == _outcome(plain(SECRET), token, 10)
    assert _outcome(ours(), token, 11) == {"a": 1}
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: float(NOW - 1))
    assert _refusal(ours(), token, 10) == "SignatureExpired"
    assert _outcome(ours(), token, None) == {"a": 1}


def _refusal(serializer: URLSafeTimedSerializer, token: str, max_age: int) -> str:
    outcome = _outcome(serializer, token, max_age)
    assert isinstance(outcome, tuple), outcome
    return str(outcome[0])


# -- through the middleware, with WebTest -------------------------------------


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    session = get_session(environ)
    path = environ["PATH_INFO"]
    if path == "/set":
        session["user"] = "alice"
        session["count"] = 1
    elif path == "/clear":
        session.clear()
    body = b"-" if path == "/untouched" else repr(sorted(session.items())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Vary", "Accept")])
    return [body]


@pytest.fixture
def testapp() -> TestApp:
    return TestApp(SessionMiddleware(app, {"secret_key": SECRET}))


def test_set_read_tamper_delete(testapp: TestApp) -> None:
    assert testapp.get("/untouched").headers.getall("Set-Cookie") == []

    response = testapp.get("/set")
    set_cookie = response.headers["Set-Cookie"]
    assert set_cookie.startswith("session=")
    assert "; HttpOnly" in set_cookie
    assert "; Path=/" in set_cookie
    assert "; SameSite=Lax" in set_cookie
    assert "Expires=" not in set_cookie
    assert response.headers.getall("Vary") == ["Accept, Cookie"]

    read = testapp.get("/read")
    assert read.text == "[('count', 1), ('user', 'alice')]"
    assert read.headers.getall("Set-Cookie") == []
    assert read.headers.getall("Vary") == ["Accept, Cookie"]

    value = testapp.cookies["session"]
    payload, timestamp, signature = value.split(".")
    tampered = f"{payload[:-2]}{'AB' if payload[-2:] != 'AB' else 'CD'}.{timestamp}.{signature}"
    testapp.reset()
    assert read_with(testapp, tampered) == "[]"
    assert read_with(testapp, value) == "[('count', 1), ('user', 'alice')]"

    cleared = testapp.get("/clear", headers={"Cookie": f"session={value}"})
    deletion = cleared.headers["Set-Cookie"]
    assert deletion.startswith("session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0")
    assert "; Path=/" in deletion
    assert testapp.get("/read").text == "[]"


def read_with(testapp: TestApp, cookie: str) -> str:
    """GET /read with exactly this cookie (WebTest's cookie jar would quote it)."""
    return str(testapp.get("/read", headers={"Cookie": f"session={cookie}"}).text)


def test_flask_reads_our_cookie_and_we_read_flasks(testapp: TestApp) -> None:
    flask = pytest.importorskip("flask")
    flask_app = flask.Flask(__name__)
    flask_app.secret_key = SECRET

    @flask_app.route("/read")
    def read() -> str:
        return repr(sorted(flask.session.items()))

    @flask_app.route("/set")
    def set_() -> str:
        flask.session["user"] = "bob"
        return "ok"

    testapp.get("/set")
    with flask_app.test_client() as client:
        client.set_cookie("session", testapp.cookies["session"])
        assert client.get("/read").text == "[('count', 1), ('user', 'alice')]"
        client.get("/set")
        flask_cookie = client.get_cookie("session")
        assert flask_cookie is not None
    testapp.reset()
    assert read_with(testapp, flask_cookie.value) == "[('count', 1), ('user', 'bob')]"


_TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=!\u00e9 "


def _canonical(signature: str) -> bool:
    """Whether ``signature`` is spelled as base64url encodes its bytes. A
    spelling that base64 cannot even decode (an ``=`` inside, say, which
    itsdangerous' signature check may still have skipped past) is not."""
    try:
        return base64_encode(base64_decode(signature)) == want_bytes(signature)
    except BadData:
        return False


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_edit_of_a_token_is_judged_as_itsdangerous_judges_it(data: st.DataObject) -> None:
    import itsdangerous.timed

    with pytest.MonkeyPatch.context() as patch:  # one clock for both: ages in messages match
        patch.setattr(itsdangerous.timed.time, "time", lambda: NOW + 0.5)
        token = plain(SECRET).dumps(data.draw(st.sampled_from(PAYLOADS)))
        start = data.draw(st.integers(0, len(token)))
        end = data.draw(st.integers(start, min(len(token), start + 8)))
        insert = data.draw(st.text(_TOKEN_ALPHABET, max_size=6))
        candidate = token[:start] + insert + token[end:]
        expected = _outcome(plain(SECRET), candidate, MAX_AGE)
        signature = candidate.rpartition(".")[2]
        if isinstance(expected, dict) and not _canonical(signature):
            # accepted by itsdangerous, but not as we spell it
            expected = ("BadSignature", "signature not in canonical base64", None, None)
        assert _outcome(ours(), candidate, MAX_AGE) == expected


# -- finding the cookie in the header without splitting it -----------------------------

# WSGI gives the header as latin-1 text: every whitespace str.strip knows is in it
# (\x1c-\x1f, \x85, \xa0 as well as the usual ones).
header_chars = st.sampled_from(
    [*"session=;\"' \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0,abS", "session", "sessionx"]
)
header_names = st.one_of(
    st.sampled_from(["session", "s", "ses", "sion", "a", "__Host-session", "session2"]),
    st.sampled_from([" session", "session ", "", "a=b", "a;b", "ses sion", "\xa0s"]),
    st.text(st.sampled_from("se=; \xa0"), max_size=4),
)


@settings(max_examples=2000, deadline=None)
@given(st.lists(header_chars, max_size=40).map("".join), header_names)
def test_the_cookie_scan_finds_what_splitting_the_header_finds(header: str, name: str) -> None:
    from wsgi_sessions.interface import _find_cookie_by_split, find_cookie

    assert find_cookie(header, name) == _find_cookie_by_split(header, name)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("session=a", "a"),
        ("x=1; session=a; session=b", "a"),  # the first one wins
        ("sessionx=1; xsession=2;session =3", "3"),
        ("session\xa0= a ;b=c", " a "),  # stripped later, with the quotes
        ('session="a.b.c"', '"a.b.c"'),
        ("a=session=1; session", None),  # no '=': not a cookie of that name
        ("a=session=1", None),
        ("session;=1", None),
        ("s ession=1", None),
        (";;\t session\t=;", ""),
        ("sessionsession=1; session=2", "2"),
    ],
)
def test_the_cookie_scan_on_known_headers(header: str, expected: str | None) -> None:
    from wsgi_sessions.interface import find_cookie

    assert find_cookie(header, "session") == expected


# -- the unverified peek for "_permanent" (base64 searched, not decoded) ----------------


@settings(max_examples=500, deadline=None)
@given(before=st.binary(max_size=40), after=st.binary(max_size=40))
def test_the_permanent_peek_finds_the_key_at_every_alignment(before: bytes, after: bytes) -> None:
    payload = before + b'"_permanent"' + after
    assert may_be_permanent(f"{base64_encode(payload).decode()}.ts.sig")


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=12), st.one_of(st.integers(), st.text(max_size=20)), max_size=6
    ),
    st.booleans(),
)
def test_the_permanent_peek_answers_a_session_of_ours_rightly(
    data: dict[str, t.Any], permanent: bool
) -> None:
    if permanent:
        data["_permanent"] = True
    token = ours().dumps(data)
    if not token.startswith("."):  # compressed: may hold anything, so always True
        assert may_be_permanent(token) == ('"_permanent"' in session_json_serializer.dumps(data))
    if permanent:
        assert may_be_permanent(token)


def test_the_permanent_peek_on_tokens_that_are_not_ours() -> None:
    assert may_be_permanent(".eJwz.ts.sig")  # compressed
    assert may_be_permanent("no-dot-at-all")
    assert may_be_permanent(".")
    plain_payload = base64_encode(b'{"user":1,"note":"permanent"}').decode()
    assert not may_be_permanent(f"{plain_payload}.ts.sig")
    assert not may_be_permanent("not base64 at all!.ts.sig")


def compressed_token(data: dict[str, t.Any], serializer: URLSafeTimedSerializer) -> str:
    token = serializer.dumps(data)
    assert token.startswith(".")  # compressed: the '.'-prefixed form
    return token


HISTORY = {"history": [f"/page/{i}" for i in range(60)]}


def test_the_serializer_looks_inside_a_compressed_payload() -> None:
    serializer = ours()
    assert isinstance(serializer, DerivedKeySerializer)
    assert not serializer.may_be_permanent(compressed_token(HISTORY, serializer))
    permanent = compressed_token({**HISTORY, "_permanent": True}, serializer)
    assert serializer.may_be_permanent(permanent)
    # and a plain payload is the text search
    assert not serializer.may_be_permanent(serializer.dumps({"a": 1}))
    assert serializer.may_be_permanent(serializer.dumps({"a": 1, "_permanent": True}))


def test_a_compressed_payload_under_a_fallback_key_is_looked_inside() -> None:
    token = compressed_token(HISTORY, plain(OLD_SECRET))
    rotated = ours(fallbacks=[OLD_SECRET])
    assert isinstance(rotated, DerivedKeySerializer)
    assert rotated.loads(token, max_age=MAX_AGE) == HISTORY
    assert not rotated.may_be_permanent(token)


def test_nothing_unverified_is_decompressed(monkeypatch: pytest.MonkeyPatch) -> None:
    import wsgi_sessions._signing as signing

    serializer = ours()
    assert isinstance(serializer, DerivedKeySerializer)
    token = compressed_token(HISTORY, serializer)
    made: list[object] = []
    real = signing.zlib.decompressobj
    monkeypatch.setattr(signing.zlib, "decompressobj", lambda *a: made.append(a) or real(*a))
    body, _, signature = token.rpartition(".")
    forged = f"{body}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    other_key = compressed_token(HISTORY, plain("someone-else's-secret-key-0123456789"))
    for token_in in (forged, other_key, token[:-3], ".", "..", ".x.y.z", ".é.x.y"):
        assert serializer.may_be_permanent(token_in)  # cannot tell: the full decode decides
    assert made == []
    assert not serializer.may_be_permanent(token)
    assert len(made) == 1


def test_a_compressed_payload_past_the_bound_is_not_searched() -> None:
    serializer = ours()
    assert isinstance(serializer, DerivedKeySerializer)
    big = {"blob": "0" * (serializer.max_payload_size + 10)}
    assert serializer.may_be_permanent(compressed_token(big, serializer))


# -- the session id's signer: StrictSigner's one pass against itsdangerous -------------------

ID_SALT = "wsgi_sessions.server-side-session-id"
SID = "AbCdEfGh.0123456789abcdefghijklmnopqrstuv"
NOT_CANONICAL = ("BadSignature", "signature not in canonical base64", None)
# The server's (a key derived once, used as it is; SHA-256), itsdangerous's
# defaults (SHA-1), and the other key derivations with hashes whose signatures
# end in a character with 4 and with 0 unused low bits (SHA-256 and SHA-1: 2).
SIGNER_KWARGS = [
    {"key_derivation": "none", "digest_method": hashlib.sha256},
    {},
    {"key_derivation": "hmac", "digest_method": hashlib.sha512},
    {"key_derivation": "concat", "digest_method": hashlib.sha384},
]


def strict(keys: t.Any, **kwargs: t.Any) -> StrictSigner:
    return StrictSigner(keys, salt=ID_SALT, **kwargs)


def plain_signer(keys: t.Any, **kwargs: t.Any) -> Signer:
    return Signer(keys, salt=ID_SALT, **kwargs)


def _unsigned(unsign: t.Callable[[t.Any], bytes], token: str | bytes) -> object:
    """The value, or the refusal as precisely as a caller can see it."""
    try:
        return unsign(token)
    except BadSignature as exc:
        return (type(exc).__name__, str(exc), exc.payload)
    except Exception as exc:  # compared, not hidden
        return (type(exc).__name__, str(exc))


def _judged_by_itsdangerous(signer: Signer, token: str) -> object:
    """What itsdangerous answers, but that a signature (what follows the last
    dot) not spelled as it writes them is refused first, whatever it answers."""
    signature = token.rpartition(".")[2]
    if not (signature and _canonical(signature)):
        return NOT_CANONICAL
    return _unsigned(signer.unsign, token)


def _one_character_edits(token: str) -> t.Iterator[str]:
    for at in range(len(token) + 1):
        if at < len(token):
            yield token[:at] + token[at + 1 :]
        for char in _TOKEN_ALPHABET:
            yield token[:at] + char + token[at:]
            if at < len(token) and char != token[at]:
                yield token[:at] + char + token[at + 1 :]


@pytest.mark.parametrize("kwargs", SIGNER_KWARGS)
def test_the_id_signer_signs_as_itsdangerous_does(kwargs: dict[str, t.Any]) -> None:
    for keys in ([SECRET], [OLD_SECRET, SECRET]):
        ours_signer, reference = strict(keys, **kwargs), plain_signer(keys, **kwargs)
        for value in (SID, "", "a.b", "\u00e9\U0001f600", b"\xff\x00"):
            token = ours_signer.sign(value)
            assert token == reference.sign(value) == plain_signer(SECRET, **kwargs).sign(value)
            assert _unsigned(ours_signer.unsign, token) == _unsigned(
                ours_signer._unsign_plain, token
            )
            if token.isascii():  # a token that is not is refused as bytes (as it always was)
                assert ours_signer.unsign(token) == reference.unsign(token) == want_bytes(value)
            if isinstance(value, str):
                assert ours_signer.unsign(token.decode()) == value.encode()


@pytest.mark.parametrize("kwargs", SIGNER_KWARGS)
def test_every_one_character_edit_of_an_id_is_judged_as_itsdangerous_judges_it(
    kwargs: dict[str, t.Any],
) -> None:
    ours_signer, reference = strict(SECRET, **kwargs), plain_signer(SECRET, **kwargs)
    token = reference.sign(SID).decode()
    seen = {"accepted": 0, "respelled": 0, "refused": 0}
    for candidate in [token, *_one_character_edits(token)]:
        expected = _judged_by_itsdangerous(reference, candidate)
        outcome = _unsigned(ours_signer.unsign, candidate)
        assert outcome == expected, candidate
        # The one pass never changes an answer of itsdangerous's way (the old one).
        assert outcome == _unsigned(ours_signer._unsign_plain, candidate), candidate
        as_bytes = candidate.encode()
        assert _unsigned(ours_signer.unsign, as_bytes) == _unsigned(
            ours_signer._unsign_plain, as_bytes
        ), candidate
        if isinstance(expected, bytes):
            seen["accepted"] += 1
        else:
            seen["respelled" if expected == NOT_CANONICAL else "refused"] += 1
    # Not vacuous: payload edits and respelled signatures are among them.
    assert seen["accepted"] >= 1 and seen["respelled"] >= 1 and seen["refused"] > 1000


def test_wrong_and_fallback_keys_are_judged_as_itsdangerous_judges_them() -> None:
    old_token = plain_signer(OLD_SECRET).sign(SID).decode()
    new_token = plain_signer(SECRET).sign(SID).decode()
    rotated, rotated_reference = strict([OLD_SECRET, SECRET]), plain_signer([OLD_SECRET, SECRET])
    for token in (old_token, new_token):
        assert rotated.unsign(token) == rotated_reference.unsign(token) == SID.encode()
    assert rotated.sign(SID).decode() == new_token  # the newest key signs
    wrong = _unsigned(strict(SECRET).unsign, old_token)
    assert wrong == _unsigned(plain_signer(SECRET).unsign, old_token)
    assert wrong == (
        "BadSignature",
        f"Signature {old_token.rpartition('.')[2].encode()!r} does not match",
        SID.encode(),
    )
    assert _unsigned(strict(OLD_SECRET).unsign, new_token) == _unsigned(
        plain_signer(OLD_SECRET).unsign, new_token
    )


# A signature alone: an empty value's, without the dot before it.
EMPTY_SIGNED = plain_signer(SECRET).sign(b"").decode()[1:]


@pytest.mark.parametrize(
    "token", ["no-separator", b"no-separator", "AAAA", EMPTY_SIGNED, "", "\u00e9", "a!"]
)
def test_a_token_without_a_separator_is_refused_as_before(token: str | bytes) -> None:
    ours_signer = strict(SECRET)
    outcome = _unsigned(ours_signer.unsign, token)
    assert outcome == _unsigned(ours_signer._unsign_plain, token)
    if token in ("", "\u00e9", "a!"):  # no signature spelled as we write one
        assert outcome == NOT_CANONICAL
    else:
        assert outcome == _unsigned(plain_signer(SECRET).unsign, token)
        assert outcome == ("BadSignature", "No b'.' found in value", None)


def test_non_ascii_tokens_are_judged_as_before() -> None:
    ours_signer = strict(SECRET)
    signed = plain_signer(SECRET).sign("caf\u00e9").decode("utf-8")  # a valid signature
    assert ours_signer.unsign(signed) == "caf\u00e9".encode()
    head, _, signature = signed.rpartition(".")
    cases = [
        signed.encode("utf-8"),  # bytes that are not ASCII: refused, as always
        f"{head}.{signature[:5]}\u00e9{signature[5:]}",  # itsdangerous skips the character
        f"{head}.{signature}\u00e9",
        "\ud800." + signature,  # not even UTF-8
    ]
    for candidate in cases:
        outcome = _unsigned(ours_signer.unsign, candidate)
        assert outcome == _unsigned(ours_signer._unsign_plain, candidate), candidate
        assert not isinstance(outcome, bytes), candidate
    assert _unsigned(ours_signer.unsign, cases[0]) == NOT_CANONICAL
    assert _unsigned(ours_signer.unsign, cases[1]) == NOT_CANONICAL
    assert plain_signer(SECRET).unsign(cases[1]) == "caf\u00e9".encode()


@pytest.mark.parametrize("kwargs", SIGNER_KWARGS)
def test_a_respelled_id_signature_is_refused_though_itsdangerous_accepts_it(
    kwargs: dict[str, t.Any], altered_signatures: t.Callable[[str], dict[str, str]]
) -> None:
    token = plain_signer(SECRET, **kwargs).sign(SID).decode()
    for case, candidate in altered_signatures(token).items():
        if case == "unused-low-bit" and len(token.rpartition(".")[2]) % 4 == 0:
            continue  # SHA-384: every bit of the last character is used
        assert plain_signer(SECRET, **kwargs).unsign(candidate) == SID.encode(), case
        assert _unsigned(strict(SECRET, **kwargs).unsign, candidate) == NOT_CANONICAL, case
        assert _unsigned(strict([OLD_SECRET, SECRET], **kwargs).unsign, candidate) == (
            NOT_CANONICAL
        ), case


def test_the_servers_id_signer_verifies_a_valid_id_without_itsdangerous(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wsgi_sessions import ServerSideSessionInterface, SessionConfig

    keys = ServerSideSessionInterface().get_id_keys(SessionConfig({"secret_key": SECRET}))
    assert keys is not None
    signer = keys[0].signer
    token = signer.sign(SID).decode()

    def refuse(*args: object) -> t.NoReturn:
        raise AssertionError("itsdangerous's way was taken")

    rotated = strict([OLD_SECRET, SECRET], key_derivation="none", digest_method=hashlib.sha256)
    old_token = strict(OLD_SECRET, key_derivation="none", digest_method=hashlib.sha256).sign(SID)

    monkeypatch.setattr(Signer, "unsign", refuse)
    monkeypatch.setattr(Signer, "get_signature", refuse)
    assert signer.unsign(token) == SID.encode()  # the one pass: no itsdangerous call
    assert signer.sign(SID).decode() == token
    assert rotated.unsign(old_token) == SID.encode()  # a fallback key's too
    with pytest.raises(AssertionError, match="itsdangerous's way"):
        signer.unsign(token[:-1] + ("A" if token[-1] != "A" else "E"))  # refused: its way


@pytest.mark.parametrize(
    ("keys", "kwargs"),
    [
        ([SECRET], {"key_derivation": "unknown"}),  # itsdangerous raises at use
        ([], {}),  # no key at all: so does it
        ([SECRET], {"algorithm": NoneAlgorithm()}),  # no signature: not ours to verify
        ([SECRET], {"sep": "~"}),
        ([SECRET], {"digest_method": "sha256"}),  # a name: the key derivation cannot call it
        ([SECRET], {"key_derivation": "none", "digest_method": False}),  # not a hash at all
    ],
)
def test_signers_the_one_pass_cannot_serve_behave_as_before(
    keys: list[str], kwargs: dict[str, t.Any]
) -> None:
    ours_signer, reference = strict(keys, **kwargs), plain_signer(keys, **kwargs)
    signed = _unsigned(reference.sign, SID)
    assert _unsigned(ours_signer.sign, SID) == signed
    candidates = ["x.y", "x~y", SID]
    if isinstance(signed, bytes):
        candidates += [signed.decode(), signed.decode() + "A"]
    for candidate in candidates:
        assert _unsigned(ours_signer.unsign, candidate) == _unsigned(
            ours_signer._unsign_plain, candidate
        ), candidate


@settings(max_examples=300, deadline=None)
@given(
    keys=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=3),
    value=st.text(max_size=30),
    kwargs=st.sampled_from(SIGNER_KWARGS),
    data=st.data(),
)
def test_any_id_token_and_edit_is_judged_as_before(
    keys: list[bytes], value: str, kwargs: dict[str, t.Any], data: st.DataObject
) -> None:
    ours_signer, reference = strict(keys, **kwargs), plain_signer(keys, **kwargs)
    token = ours_signer.sign(value)
    assert token == reference.sign(value)
    text = token.decode("utf-8")
    assert ours_signer.unsign(text) == reference.unsign(text) == value.encode()
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 8)))
    candidate = text[:start] + data.draw(st.text(_TOKEN_ALPHABET, max_size=6)) + text[end:]
    signer_of = data.draw(st.sampled_from([keys, keys[:1], [b"another key"]]))
    judge = strict(signer_of, **kwargs)
    assert _unsigned(judge.unsign, candidate) == _unsigned(judge._unsign_plain, candidate)
    assert _unsigned(judge.unsign, candidate) == _judged_by_itsdangerous(
        plain_signer(signer_of, **kwargs), candidate
    )
