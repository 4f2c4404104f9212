"""The cookie interface: the saving order, cookie attributes, rotation, size, bad input."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
import typing as t
import zlib
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from werkzeug.test import EnvironBuilder

from cookies import parse_set_cookie
from wsgi_sessions import (
    EncryptedCookieSessionInterface,
    NullSession,
    SecureCookieSession,
    SecureCookieSessionInterface,
    SessionConfig,
    SessionCookieTooLarge,
    SessionInterface,
    TaggedJSONSerializer,
)
from wsgi_sessions.sessions import SessionMixin

if t.TYPE_CHECKING:
    from webtest import TestApp, TestResponse

Parsed = tuple[str, str, dict[str, str]]

BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

# Text that does not compress: itsdangerous zlib-compresses payloads when it helps.
NOISE = secrets.token_urlsafe(20000)


# -- signed and encrypted -----------------------------------------------------------------
# What holds for any cookie session runs over both interfaces: such a test is
# marked @both_kinds, and the apps it builds use the interface of `cookie_kind`.

both_kinds = pytest.mark.parametrize("cookie_kind", ["signed", "encrypted"])


@pytest.fixture
def cookie_kind() -> str:
    """Signed, unless the test is @both_kinds (then each in turn)."""
    return "signed"


@pytest.fixture
def interface_class(cookie_kind: str) -> type[SecureCookieSessionInterface]:
    """The cookie interface of `cookie_kind`, for tests that subclass or build one."""
    if cookie_kind == "encrypted":
        return EncryptedCookieSessionInterface
    return SecureCookieSessionInterface


@pytest.fixture
def make_testapp(make_testapp: t.Any, cookie_kind: str) -> t.Any:
    """conftest's, with ``cookie_encryption`` on for the encrypted kind (unless
    the test passes an interface of its own)."""
    if cookie_kind == "signed":
        return make_testapp

    def make(action: t.Any = None, *, prefix: str = "", **settings: t.Any) -> TestApp:
        if settings.get("interface") is None:
            settings.setdefault(prefix + "cookie_encryption", True)
        return make_testapp(action, prefix=prefix, **settings)  # type: ignore[no-any-return]

    return make


def read_n(session: SessionMixin) -> str:
    return repr(session.get("n"))


def write_n(session: SessionMixin) -> str:
    session["n"] = session.get("n", 0) + 1
    return str(session["n"])


def make_permanent(session: SessionMixin) -> None:
    session["n"] = 1
    session.permanent = True


def clear(session: SessionMixin) -> None:
    session.clear()


def show(session: SessionMixin) -> str:
    return repr(sorted(session.items()))


@pytest.fixture
def set_cookies(parse_set_cookie: t.Callable[[str], Parsed]) -> t.Callable[..., list[Parsed]]:
    def parse(response: TestResponse) -> list[Parsed]:
        return [parse_set_cookie(header) for header in response.headers.getall("Set-Cookie")]

    return parse


@pytest.fixture
def cookie_from(
    make_testapp: t.Callable[..., TestApp], set_cookies: t.Callable[..., list[Parsed]]
) -> t.Callable[..., str]:
    """The session cookie value an app with ``settings`` writes for ``action``."""

    def make(action: t.Callable[[SessionMixin], object] = write_n, **settings: t.Any) -> str:
        response = make_testapp(action, **settings).get("/")
        ((_, value, _),) = set_cookies(response)
        return value

    return make


def get(app: TestApp, cookie: str | None = None, name: str = "session") -> TestResponse:
    """A request that carries exactly ``cookie`` (or none), whatever the jar holds."""
    app.reset()
    headers = {"Cookie": f"{name}={cookie}"} if cookie is not None else {}
    return app.get("/", headers=headers)


def forge(
    data: t.Any,
    secret_key: str,
    age: timedelta = timedelta(0),
    salt: str = "cookie-session",
    serializer: t.Any = None,
) -> str:
    """A cookie in Flask's format built with itsdangerous directly, signed ``age``
    ago; ``serializer=json`` signs raw JSON (to forge a malformed tag)."""

    class PastSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - age.total_seconds())

    signing = URLSafeTimedSerializer(
        secret_key,
        salt=salt,
        serializer=serializer or TaggedJSONSerializer(),
        signer=PastSigner,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )
    return signing.dumps(data)


def signed_bomb(secret_key: str, size: int) -> str:
    """A cookie validly signed with ``secret_key`` whose payload is compressed
    JSON of about ``size`` bytes (a string of zeros): a few KB on the wire."""
    data = b'{"z":"' + b"0" * (size - 8) + b'"}'
    assert len(data) == size
    signer = URLSafeTimedSerializer(
        secret_key,
        salt="cookie-session",
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    ).make_signer()
    return signer.sign(b"." + base64_encode(zlib.compress(data, 9))).decode()


def vary(response: TestResponse) -> list[str]:
    return response.headers.getall("Vary")


# -- the saving order ----------------------------------------------------------------


@both_kinds
def test_untouched_session_without_cookie_sends_no_header(make_testapp: t.Any) -> None:
    response = get(make_testapp())
    assert response.status_int == 200
    assert "Set-Cookie" not in response.headers
    assert "Vary" not in response.headers


@both_kinds
def test_untouched_session_with_cookie_sends_no_header(
    make_testapp: t.Any, cookie_from: t.Any
) -> None:
    response = get(make_testapp(), cookie_from())
    assert "Set-Cookie" not in response.headers
    assert "Vary" not in response.headers


def test_untouched_anonymous_request_does_no_crypto(make_testapp: t.Any) -> None:
    calls: list[str] = []

    class CountingSerializer:
        def __init__(self, inner: URLSafeTimedSerializer) -> None:
            self.inner = inner

        def loads(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            calls.append("loads")
            return self.inner.loads(*args, **kwargs)

        def dumps(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            calls.append("dumps")
            return self.inner.dumps(*args, **kwargs)

    class Counting(SecureCookieSessionInterface):
        def get_signing_serializer(self, app: t.Any) -> t.Any:
            serializer = super().get_signing_serializer(app)
            return serializer and CountingSerializer(serializer)

    response = get(make_testapp(interface=Counting()))
    assert calls == []
    assert "Set-Cookie" not in response.headers
    response = get(make_testapp(read_n, interface=Counting()))
    assert calls == []
    get(make_testapp(write_n, interface=Counting()))
    assert calls == ["dumps"]  # the counter sees real work


@pytest.fixture
def crypto_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every HMAC computed and every payload decoded, whichever way they are reached."""
    import hmac

    from wsgi_sessions._signing import DerivedKeySerializer

    calls: list[str] = []

    def counting(name: str, inner: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        def call(*args: t.Any, **kwargs: t.Any) -> t.Any:
            calls.append(name)
            return inner(*args, **kwargs)

        return call

    monkeypatch.setattr(hmac, "new", counting("hmac.new", hmac.new))
    monkeypatch.setattr(hmac, "digest", counting("hmac.digest", hmac.digest))
    monkeypatch.setattr(hmac, "compare_digest", counting("compare", hmac.compare_digest))
    loads = DerivedKeySerializer.loads
    monkeypatch.setattr(DerivedKeySerializer, "loads", counting("loads", loads))
    return calls


@pytest.mark.parametrize("refresh", [True, False])
def test_a_valid_cookie_never_used_costs_no_crypto(
    make_testapp: t.Any, cookie_from: t.Any, crypto_calls: list[str], refresh: bool
) -> None:
    """The cookie is only verified and decoded when the session is used: a
    page that ignores it pays no HMAC, and sends nothing (a session that is
    not permanent needs no refresh, which the payload tells unverified)."""
    cookie = cookie_from()
    crypto_calls.clear()
    response = get(make_testapp(refresh_each_request=refresh), cookie)
    assert crypto_calls == []
    assert "Set-Cookie" not in response.headers
    assert "Vary" not in response.headers
    response = get(make_testapp(read_n), cookie)
    assert "loads" in crypto_calls  # the counter sees real work
    assert response.text == "1"


def test_a_permanent_cookie_never_used_is_refreshed_as_in_flask(
    make_testapp: t.Any, cookie_from: t.Any, crypto_calls: list[str], set_cookies: t.Any
) -> None:
    """With SESSION_REFRESH_EACH_REQUEST on (the default), Flask re-sends a
    permanent session's cookie on every request: that takes verifying it."""
    cookie = cookie_from(make_permanent)
    response = get(make_testapp(), cookie)
    ((_, value, attributes),) = set_cookies(response)
    assert value and "expires" in {key.lower() for key in attributes}
    crypto_calls.clear()
    response = get(make_testapp(refresh_each_request=False), cookie)
    assert crypto_calls == []
    assert "Set-Cookie" not in response.headers


@both_kinds
@pytest.mark.parametrize(
    "cookie", ["garbage", "e30.AAAAAA.c2lnbmF0dXJl", ".eJzLSM3JyQcABiwCFQ.AAAAAA.AAAA"]
)
def test_a_bad_cookie_reads_as_a_fresh_session(make_testapp: t.Any, cookie: str) -> None:
    """A cookie that fails verification on first use is a fresh, empty, new
    session: the read sees {}, nothing raises."""
    seen: list[t.Any] = []

    def look(session: SessionMixin) -> str:
        seen.append((dict(session), session.new, session.get("n")))
        return ""

    response = get(make_testapp(look), cookie)
    assert response.status_int == 200
    assert seen == [({}, True, None)]
    assert "Set-Cookie" not in response.headers


@both_kinds
def test_modified_set_by_hand_on_an_unused_session_resends_its_data(
    make_testapp: t.Any, cookie_from: t.Any, set_cookies: t.Any
) -> None:
    """``session.modified = True`` with no read still re-sends the cookie's data."""

    def touch(session: SessionMixin) -> None:
        session.modified = True

    response = get(make_testapp(touch), cookie_from())
    ((_, value, _),) = set_cookies(response)
    assert get(make_testapp(read_n), value).text == "1"


@both_kinds
def test_a_lazy_session_loads_on_any_first_use(make_testapp: t.Any, cookie_from: t.Any) -> None:
    """Every way into the session sees the cookie's data, and `new` is False."""
    cookie = cookie_from()
    uses: list[t.Callable[[SessionMixin], object]] = [
        lambda s: s["n"],
        lambda s: s.get("n"),
        lambda s: "n" in s,
        len,
        list,
        lambda s: list(reversed(s)),  # type: ignore[call-overload]
        lambda s: s.setdefault("n", 99),
        lambda s: s.permanent,
        lambda s: s.new,
        lambda s: s.csrf_token(),
        lambda s: s.peek_flash(),
    ]
    for use in uses:
        seen: list[t.Any] = []

        def run(session: SessionMixin, use: t.Callable[[SessionMixin], object] = use) -> str:
            use(session)
            seen.append((session.new, dict.get(session, "n")))  # type: ignore[arg-type]
            return ""

        get(make_testapp(run), cookie)
        assert seen == [(False, 1)], use


@both_kinds
def test_read_sends_vary_cookie_but_no_cookie(make_testapp: t.Any, cookie_from: t.Any) -> None:
    app = make_testapp(read_n)
    for cookie in (None, cookie_from()):
        response = get(app, cookie)
        assert vary(response) == ["Cookie"]
        assert "Set-Cookie" not in response.headers


@both_kinds
def test_write_sends_cookie_and_vary_once(make_testapp: t.Any, set_cookies: t.Any) -> None:
    response = get(make_testapp(write_n))
    assert vary(response) == ["Cookie"]
    ((name, value, _),) = set_cookies(response)
    assert name == "session"
    assert value


@both_kinds
@pytest.mark.parametrize(
    ("existing", "merged"),
    [
        ("Accept-Encoding", "Accept-Encoding, Cookie"),
        ("Accept-Encoding, Accept-Language", "Accept-Encoding, Accept-Language, Cookie"),
        ("cookie", "cookie"),
        ("Accept, Cookie", "Accept, Cookie"),
        ("*", "*"),
        ("", "Cookie"),
        (" ", "Cookie"),
    ],
)
@pytest.mark.parametrize("action", [read_n, write_n, clear])
def test_vary_is_merged_into_the_existing_header(
    make_testapp: t.Any, cookie_from: t.Any, existing: str, merged: str, action: t.Any
) -> None:
    app = make_testapp(action, headers=[("Vary", existing)])
    response = get(app, cookie_from())
    assert vary(response) == [merged]


@both_kinds
@pytest.mark.parametrize("action", [read_n, write_n, clear])
def test_vary_cookie_in_a_second_vary_header_is_not_repeated(
    make_testapp: t.Any, cookie_from: t.Any, action: t.Any
) -> None:
    app = make_testapp(action, headers=[("Vary", "Accept"), ("Vary", "Cookie")])
    assert vary(get(app, cookie_from())) == ["Accept", "Cookie"]


@both_kinds
def test_emptied_session_deletes_the_cookie(
    make_testapp: t.Any, cookie_from: t.Any, set_cookies: t.Any
) -> None:
    response = get(make_testapp(clear), cookie_from())
    ((name, value, attributes),) = set_cookies(response)
    assert (name, value) == ("session", "")
    assert attributes["max-age"] == "0"
    assert parsedate_to_datetime(attributes["expires"]) < datetime.now(timezone.utc)
    assert vary(response) == ["Cookie"]


@both_kinds
def test_emptied_session_cookie_is_really_deleted_by_a_client(
    make_testapp: t.Any, cookie_from: t.Any
) -> None:
    app = make_testapp(write_n)
    app.get("/")
    assert app.cookies["session"]
    app.app.app = make_testapp(clear).app.app
    app.get("/")
    assert "session" not in app.cookies


@both_kinds
def test_empty_unmodified_session_is_not_deleted(make_testapp: t.Any) -> None:
    response = get(make_testapp(lambda s: s.get("x")))
    assert "Set-Cookie" not in response.headers


@both_kinds
def test_cookie_delete_uses_the_set_attributes(
    make_testapp: t.Any, cookie_from: t.Any, set_cookies: t.Any
) -> None:
    settings = {
        "cookie_name": "sid",
        "cookie_domain": "example.com",
        "cookie_path": "/app",
        "cookie_secure": True,
        "cookie_httponly": True,
        "cookie_samesite": "None",
        "cookie_partitioned": True,
    }
    written = get(make_testapp(write_n, **settings))
    ((set_name, _, set_attributes),) = set_cookies(written)
    cookie = cookie_from(**settings)
    deleted = get(make_testapp(clear, **settings), cookie, name="sid")
    ((name, value, attributes),) = set_cookies(deleted)
    assert (name, value) == (set_name, "")
    assert attributes.pop("max-age") == "0"
    assert parsedate_to_datetime(attributes.pop("expires")).year == 1970
    assert attributes == set_attributes
    assert attributes == {
        "domain": "example.com",
        "path": "/app",
        "secure": "",
        "httponly": "",
        "samesite": "None",
        "partitioned": "",
    }


@both_kinds
def test_expires_only_for_a_permanent_session(
    make_testapp: t.Any, set_cookies: t.Any, cookie_from: t.Any
) -> None:
    ((_, _, attributes),) = set_cookies(get(make_testapp(write_n)))
    assert "expires" not in attributes
    assert "max-age" not in attributes

    before = datetime.now(timezone.utc).replace(microsecond=0)
    response = get(make_testapp(make_permanent, permanent_lifetime="12h"))
    after = datetime.now(timezone.utc)
    ((_, _, attributes),) = set_cookies(response)
    expires = parsedate_to_datetime(attributes["expires"])
    assert before + timedelta(hours=12) <= expires <= after + timedelta(hours=12)
    assert "max-age" not in attributes


@both_kinds
def test_permanent_flag_survives_the_round_trip(make_testapp: t.Any, cookie_from: t.Any) -> None:
    cookie = cookie_from(make_permanent)
    assert get(make_testapp(lambda s: str(s.permanent)), cookie).text == "True"


@both_kinds
def test_refresh_each_request_on_rewrites_a_permanent_cookie(
    make_testapp: t.Any, cookie_from: t.Any, set_cookies: t.Any
) -> None:
    cookie = cookie_from(make_permanent)
    response = get(make_testapp(), cookie)  # the app does not touch the session
    ((name, value, attributes),) = set_cookies(response)
    assert name == "session"
    assert "expires" in attributes
    assert vary(response) == ["Cookie"]
    assert get(make_testapp(show), value).text == "[('_permanent', True), ('n', 1)]"


@both_kinds
def test_refresh_each_request_off_leaves_a_permanent_cookie_alone(
    make_testapp: t.Any, cookie_from: t.Any, set_cookies: t.Any
) -> None:
    cookie = cookie_from(make_permanent)
    response = get(make_testapp(refresh_each_request="false"), cookie)
    assert "Set-Cookie" not in response.headers
    response = get(make_testapp(write_n, refresh_each_request="false"), cookie)
    ((_, _, attributes),) = set_cookies(response)
    assert "expires" in attributes


@both_kinds
def test_refresh_each_request_does_not_rewrite_a_browser_session_cookie(
    make_testapp: t.Any, cookie_from: t.Any
) -> None:
    response = get(make_testapp(read_n, refresh_each_request=True), cookie_from())
    assert "Set-Cookie" not in response.headers


def test_permanent_cookie_past_its_lifetime_is_rejected(make_testapp: t.Any) -> None:
    app = make_testapp(show, permanent_lifetime="1h")
    secret = app.app.secret_key
    fresh = forge({"n": 1, "_permanent": True}, secret, age=timedelta(minutes=59))
    assert get(app, fresh).text == "[('_permanent', True), ('n', 1)]"
    expired = forge({"n": 1, "_permanent": True}, secret, age=timedelta(minutes=61))
    assert get(app, expired).text == "[]"


# -- cookie attributes -------------------------------------------------------------

DEFAULT_ATTRIBUTES = {"path": "/", "httponly": "", "samesite": "Lax"}

ATTRIBUTE_SETTINGS: dict[str, tuple[dict[str, t.Any], dict[str, str]]] = {
    "defaults": ({}, DEFAULT_ATTRIBUTES),
    "domain": ({"cookie_domain": ".example.com"}, {**DEFAULT_ATTRIBUTES, "domain": ".example.com"}),
    "path": ({"cookie_path": "/shop"}, {**DEFAULT_ATTRIBUTES, "path": "/shop"}),
    "path-quoted": ({"cookie_path": "/a b;c"}, {**DEFAULT_ATTRIBUTES, "path": "/a%20b%3Bc"}),
    "application_root": ({"application_root": "/app"}, {**DEFAULT_ATTRIBUTES, "path": "/app"}),
    "path-wins-over-root": (
        {"application_root": "/app", "cookie_path": "/"},
        DEFAULT_ATTRIBUTES,
    ),
    "httponly-off": ({"cookie_httponly": "no"}, {"path": "/", "samesite": "Lax"}),
    "secure": ({"cookie_secure": "on"}, {**DEFAULT_ATTRIBUTES, "secure": ""}),
    "samesite-strict": (
        {"cookie_samesite": "strict"},
        {**DEFAULT_ATTRIBUTES, "samesite": "Strict"},
    ),
    "samesite-none": (
        {"cookie_samesite": "None", "cookie_secure": True},
        {**DEFAULT_ATTRIBUTES, "samesite": "None", "secure": ""},
    ),
    "samesite-unset": ({"cookie_samesite": ""}, {"path": "/", "httponly": ""}),
    "partitioned": (
        {"cookie_partitioned": True, "cookie_secure": True},
        {**DEFAULT_ATTRIBUTES, "secure": "", "partitioned": ""},
    ),
    "host-prefix": (
        {"cookie_name": "__Host-s", "cookie_secure": True},
        {**DEFAULT_ATTRIBUTES, "secure": ""},
    ),
}


@both_kinds
@pytest.mark.parametrize(
    ("settings", "expected"), ATTRIBUTE_SETTINGS.values(), ids=ATTRIBUTE_SETTINGS.keys()
)
def test_cookie_attribute_settings(
    make_testapp: t.Any,
    set_cookies: t.Any,
    settings: dict[str, t.Any],
    expected: dict[str, str],
) -> None:
    ((_, _, attributes),) = set_cookies(get(make_testapp(write_n, **settings)))
    assert attributes == expected


@both_kinds
def test_cookie_name_setting_is_written_and_read(make_testapp: t.Any, set_cookies: t.Any) -> None:
    app = make_testapp(write_n, cookie_name="my_sid")
    ((name, value, _),) = set_cookies(get(app))
    assert name == "my_sid"
    assert get(app, value, name="my_sid").text == "2"
    assert get(app, value, name="session").text == "1"  # another cookie's name: ignored


@both_kinds
def test_cookie_of_the_same_name_prefix_is_not_read(
    make_testapp: t.Any, cookie_from: t.Any
) -> None:
    app = make_testapp(read_n)
    cookie = cookie_from()
    assert get(app, cookie).text == "1"
    app.reset()
    assert app.get("/", headers={"Cookie": f"xsession={cookie}"}).text == "None"
    assert app.get("/", headers={"Cookie": f"session_x={cookie}"}).text == "None"
    assert app.get("/", headers={"Cookie": f"a=b; session={cookie}; c=d"}).text == "1"
    assert app.get("/", headers={"Cookie": f"a=b;session = {cookie} "}).text == "1"


# -- hooks ----------------------------------------------------------------------------


def hooked(base: type[SecureCookieSessionInterface]) -> SecureCookieSessionInterface:
    """``base`` with each hook overridden on its own, as a subclass would."""

    class HookedInterface(base):  # type: ignore[valid-type, misc]
        def get_cookie_name(self, app: t.Any) -> str:
            return "hooked"

        def get_cookie_domain(self, app: t.Any) -> str | None:
            return "hooks.example"

        def get_cookie_path(self, app: t.Any) -> str:
            return "/hooked"

        def get_cookie_httponly(self, app: t.Any) -> bool:
            return False

        def get_cookie_secure(self, app: t.Any) -> bool:
            return True

        def get_cookie_samesite(self, app: t.Any) -> str | None:
            return "Strict"

        def get_cookie_partitioned(self, app: t.Any) -> bool:
            return True

        def get_expiration_time(self, app: t.Any, session: SessionMixin) -> datetime | None:
            return datetime(2040, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

    return HookedInterface()


@both_kinds
def test_get_cookie_hooks_are_used_for_set_read_and_delete(
    make_testapp: t.Any, set_cookies: t.Any, interface_class: t.Any
) -> None:
    expected = {
        "domain": "hooks.example",
        "path": "/hooked",
        "secure": "",
        "samesite": "Strict",
        "partitioned": "",
    }
    app = make_testapp(write_n, interface=hooked(interface_class))
    ((name, value, attributes),) = set_cookies(get(app))
    assert name == "hooked"
    assert attributes == {**expected, "expires": "Mon, 02 Jan 2040 03:04:05 GMT"}
    assert get(app, value, name="hooked").text == "2"

    app = make_testapp(clear, interface=hooked(interface_class))
    ((name, value, attributes),) = set_cookies(get(app, value, name="hooked"))
    assert (name, value) == ("hooked", "")
    assert attributes.pop("max-age") == "0"
    assert attributes.pop("expires")
    assert attributes == expected


@both_kinds
def test_should_set_cookie_hook(make_testapp: t.Any, interface_class: t.Any) -> None:
    class Never(interface_class):  # type: ignore[misc, valid-type]
        def should_set_cookie(self, app: t.Any, session: SessionMixin) -> bool:
            return False

    response = get(make_testapp(write_n, interface=Never()))
    assert "Set-Cookie" not in response.headers
    assert vary(response) == ["Cookie"]


@both_kinds
def test_one_hook_changes_one_thing(
    make_testapp: t.Any, set_cookies: t.Any, interface_class: t.Any
) -> None:
    class Named(interface_class):  # type: ignore[misc, valid-type]
        def get_cookie_name(self, app: t.Any) -> str:
            return "named"

    ((name, _, attributes),) = set_cookies(get(make_testapp(write_n, interface=Named())))
    assert name == "named"
    assert attributes == DEFAULT_ATTRIBUTES


@pytest.mark.parametrize("digest", [hashlib.sha1, hashlib.sha256, hashlib.sha384, hashlib.sha512])
def test_digest_method_is_configurable(make_testapp: t.Any, digest: t.Any) -> None:
    class Digest(SecureCookieSessionInterface):
        digest_method = staticmethod(digest)

    for _ in range(20):  # signatures with various last characters
        app = make_testapp(write_n, interface=Digest(), secret_key=secrets.token_hex(8))
        cookie = parse_set_cookie(get(app).headers["Set-Cookie"])[1]
        assert get(app, cookie).text == "2"


def test_session_class_and_serializer_are_class_attributes(make_testapp: t.Any) -> None:
    class MySession(SecureCookieSession):
        pass

    class Custom(SecureCookieSessionInterface):
        session_class = MySession
        salt = "another-salt"

    app = make_testapp(write_n, interface=Custom())
    response = get(app)
    cookie = parse_set_cookie(response.headers["Set-Cookie"])[1]
    assert get(app, cookie).text == "2"
    assert get(make_testapp(write_n), cookie).text == "1"  # another salt: not ours
    seen: list[object] = []
    get(make_testapp(lambda s: seen.append(type(s)), interface=Custom()))
    assert seen == [MySession]


def test_sha1_is_looked_up_when_used_not_at_import(
    make_testapp: t.Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FIPS build may refuse SHA-1: importing must work and another digest
    must be configurable."""

    def refused(*args: t.Any, **kwargs: t.Any) -> t.NoReturn:
        raise ValueError("SHA-1 is disabled (FIPS)")

    monkeypatch.setattr(hashlib, "sha1", refused)

    class Sha256(SecureCookieSessionInterface):
        digest_method = staticmethod(hashlib.sha256)

    app = make_testapp(write_n, interface=Sha256(), secret_key="fips-test-key")
    cookie = parse_set_cookie(get(app).headers["Set-Cookie"])[1]
    assert get(app, cookie).text == "2"
    # the default interface reaches for SHA-1 only now, when it signs
    with pytest.raises(ValueError, match="FIPS"):
        get(make_testapp(write_n, secret_key="fips-test-key-2"))


@both_kinds
def test_a_session_class_of_ones_own(
    make_testapp: t.Any, set_cookies: t.Any, interface_class: t.Any
) -> None:
    """An interface may use any SessionMixin; saving then treats it as a mapping."""

    class PlainSession(dict, SessionMixin):  # type: ignore[type-arg]
        pass

    class Plain(interface_class):  # type: ignore[misc, valid-type]
        session_class = PlainSession

    app = make_testapp(write_n, interface=Plain())
    ((_, cookie, _),) = set_cookies(get(app))
    assert get(app, cookie).text == "2"
    ((_, value, _),) = set_cookies(get(make_testapp(clear, interface=Plain()), cookie))
    assert value == ""


@both_kinds
def test_secret_key_removed_while_the_app_runs(make_testapp: t.Any) -> None:
    middleware: list[t.Any] = []

    def write_then_lose_the_key(session: SessionMixin) -> None:
        session["n"] = 1
        middleware[0].config["SECRET_KEY"] = None

    app = make_testapp(write_then_lose_the_key)
    middleware.append(app.app)
    response = get(app)
    assert response.status_int == 200
    assert "Set-Cookie" not in response.headers


# -- key rotation -----------------------------------------------------------------------


@both_kinds
def test_fallback_signed_cookie_is_accepted_and_re_signed(
    make_testapp: t.Any, cookie_from: t.Any, set_cookies: t.Any
) -> None:
    old = cookie_from(secret_key="old-key")
    rotated = make_testapp(write_n, secret_key="new-key", secret_key_fallbacks=["old-key"])
    ((_, new_cookie, _),) = set_cookies(get(rotated, old))
    assert get(rotated, new_cookie).text == "3"
    # the new cookie is signed with the current key: no fallback needed
    assert get(make_testapp(read_n, secret_key="new-key"), new_cookie).text == "2"
    assert get(make_testapp(read_n, secret_key="old-key"), new_cookie).text == "None"


def test_fallback_signed_cookie_only_read_is_not_rewritten(
    make_testapp: t.Any, cookie_from: t.Any
) -> None:
    old = cookie_from(secret_key="old-key")
    reader = make_testapp(read_n, secret_key="new-key", secret_key_fallbacks=["old-key"])
    response = get(reader, old)
    assert response.text == "1"
    assert "Set-Cookie" not in response.headers


@both_kinds
def test_without_the_fallback_the_old_cookie_is_rejected(
    make_testapp: t.Any, cookie_from: t.Any
) -> None:
    old = cookie_from(secret_key="old-key")
    assert get(make_testapp(read_n, secret_key="new-key"), old).text == "None"


@both_kinds
def test_every_fallback_is_tried(make_testapp: t.Any, cookie_from: t.Any) -> None:
    fallbacks = ["older", b"oldest", "old"]
    app = make_testapp(read_n, secret_key="new", secret_key_fallbacks=fallbacks)
    for key in ("new", *fallbacks):
        assert get(app, cookie_from(secret_key=key)).text == "1"
    assert get(app, cookie_from(secret_key="unknown")).text == "None"


@both_kinds
def test_fallbacks_from_an_ini_string(make_testapp: t.Any, cookie_from: t.Any) -> None:
    app = make_testapp(
        read_n,
        prefix="session.",
        **{"session.secret_key": "new", "session.secret_key_fallbacks": "a, b old"},
    )
    assert app.app.config["SECRET_KEY_FALLBACKS"] == ["a", "b", "old"]
    assert get(app, cookie_from(secret_key="old")).text == "1"
    assert get(app, cookie_from(secret_key="b")).text == "1"
    assert get(app, cookie_from(secret_key="a, b old")).text == "None"


# -- the size limit -----------------------------------------------------------------------


@both_kinds
def test_too_large_cookie_is_an_error_naming_size_and_limit(
    make_testapp: t.Any, cookie_from: t.Any
) -> None:
    old = cookie_from(lambda s: s.update(n=7))
    middleware = make_testapp(lambda s: s.update(big=NOISE[:5000])).app
    started: list[object] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
    ) -> t.Any:
        started.append(headers)
        return lambda data: None

    environ = EnvironBuilder("/", headers={"Cookie": f"session={old}"}).get_environ()
    with pytest.raises(SessionCookieTooLarge) as info:
        middleware(environ, start_response)
    assert started == []  # no response began, so no Set-Cookie left
    error = info.value
    assert error.limit == 4093
    assert error.size > 5000
    assert str(error.size) in str(error)
    assert "4093" in str(error)
    # the previous cookie is still valid: nothing was lost
    assert get(make_testapp(read_n), old).text == "7"


@both_kinds
def test_size_limit_boundary(make_testapp: t.Any, cookie_kind: str) -> None:
    sent: list[int] = []
    refused: list[int] = []
    # Where the limit falls: zlib shrinks the noise a little in a signed
    # cookie; an encrypted one is not compressed.
    start = {"signed": 3850, "encrypted": 2900}[cookie_kind]
    for size in range(start, start + 250):
        app = make_testapp(lambda s, size=size: s.update(b=NOISE[:size]))
        try:
            sent.append(len(get(app).headers["Set-Cookie"]))
        except SessionCookieTooLarge as error:
            refused.append(error.size)
    assert sent
    assert refused
    assert max(sent) <= 4093
    assert max(sent) > 4093 - 10
    assert min(refused) > 4093


@both_kinds
def test_custom_and_disabled_size_limit(make_testapp: t.Any, set_cookies: t.Any) -> None:
    with pytest.raises(SessionCookieTooLarge) as info:
        get(make_testapp(lambda s: s.update(b=NOISE[:200]), max_cookie_size=200))
    assert info.value.limit == 200
    app = make_testapp(lambda s: s.update(b=NOISE[:20000]), max_cookie_size=0)
    ((_, value, _),) = set_cookies(get(app))
    assert len(value) > 20000
    assert get(make_testapp(lambda s: str(len(s["b"])), max_cookie_size=0), value).text == "20000"


@both_kinds
def test_incoming_cookie_over_the_limit_is_ignored(make_testapp: t.Any, set_cookies: t.Any) -> None:
    big = make_testapp(lambda s: s.update(b=NOISE[:3000]), max_cookie_size=0)
    ((_, value, _),) = set_cookies(get(big))
    assert get(make_testapp(read_n, max_cookie_size=0), value).status_int == 200
    assert get(make_testapp(show, max_cookie_size=1000), value).text == "[]"


# -- bad input from clients ---------------------------------------------------------------


def bad_cookies(secret: str) -> dict[str, str]:
    valid = forge({"n": 1}, secret)
    payload, timestamp, signature = valid.split(".")
    return {
        "empty": "session=",
        "spaces": "session=   ",
        "no-dots": "session=garbage",
        "tampered-payload": f"session={payload[:-1]}{'A' if payload[-1] != 'A' else 'B'}"
        f".{timestamp}.{signature}",
        "tampered-signature": f"session={payload}.{timestamp}.{signature[::-1]}",
        "tampered-timestamp": f"session={payload}.AAAAAA.{signature}",
        # decoders skip these characters / ignore these bits: same signature bytes
        "signature-padded-inside": f"session={payload}.{timestamp}.{signature[:4]}::"
        f"{signature[4:]}",
        "signature-padded-end": f"session={valid}==",
        "signature-unused-bits": f"session={valid[:-1]}{BASE64[BASE64.index(valid[-1]) ^ 1]}",
        "truncated": f"session={valid[:-5]}",
        "truncated-to-payload": f"session={payload}",
        "other-secret": f"session={forge({'n': 1}, 'not-the-secret')}",
        "other-salt": f"session={forge({'n': 1}, secret, salt='other')}",
        "expired": f"session={forge({'n': 1}, secret, age=timedelta(days=32))}",
        "expired-permanent": (
            f"session={forge({'n': 1, '_permanent': True}, secret, age=timedelta(days=40))}"
        ),
        "signed-list": f"session={forge([1, 2], secret)}",
        "signed-string": f"session={forge('n', secret)}",
        "signed-bad-bytes-tag": f"session={forge({'n': {' b': 5}}, secret, serializer=json)}",
        "signed-bad-uuid-tag": f"session={forge({'n': {' u': 'zz'}}, secret, serializer=json)}",
        "signed-bad-tuple-tag": f"session={forge({'n': {' t': 5}}, secret, serializer=json)}",
        "non-ascii": "session=sé\xffssion.ü.ß",
        "non-ascii-in-valid": f"session={valid}é",
        "control-chars": "session=\x00\x01\x7f",
        "duplicated-garbage": "session=a.b.c; session=d.e.f",
        "duplicated-garbage-first": f"session=x.y.z; session={valid}",
        "quoted": 'session="a.b.c"',
        "signed-zlib-bomb": f"session={signed_bomb(secret, 2_500_000)}",
        "100kb-garbage": "session=" + "A" * 100_000,
        "100kb-dotted": "session=" + "a.b." * 25_000,
        "many-session-pairs": "; ".join(["session=x"] * 1000),
        "only-name": "session",
        "semicolons": ";;;; session ;;; =",
    }


@pytest.fixture
def bad_cookie_cases(secret_key: str) -> dict[str, str]:
    return bad_cookies(secret_key)


BAD_CASES = list(bad_cookies("x"))


@both_kinds
@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_cookie_is_a_fresh_empty_session(
    make_testapp: t.Any,
    bad_cookie_cases: dict[str, str],
    case: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    header = bad_cookie_cases[case]
    app = make_testapp(show)
    with caplog.at_level(logging.DEBUG, logger="wsgi_sessions"):
        response = app.get("/", headers={"Cookie": header})
    assert response.status_int == 200
    assert response.text == "[]"
    assert "Set-Cookie" not in response.headers
    value = header.partition("session=")[2]
    for record in caplog.records:
        message = record.getMessage()
        assert len(message) < 200
        if len(value.strip()) >= 6:
            assert value.strip() not in message
            assert value.strip()[:16] not in message


@both_kinds
def test_bad_cookie_then_write_replaces_it(
    make_testapp: t.Any, bad_cookie_cases: dict[str, str], set_cookies: t.Any
) -> None:
    app = make_testapp(write_n)
    for header in bad_cookie_cases.values():
        app.reset()
        response = app.get("/", headers={"Cookie": header})
        assert response.text == "1"
        ((_, value, _),) = set_cookies(response)
        assert get(app, value).text == "2"


@both_kinds
def test_rejection_is_logged_at_debug_without_the_value(
    make_testapp: t.Any, caplog: pytest.LogCaptureFixture
) -> None:
    tampered = "eyJuIjoxfQ.Zz9x8A.tampered-signature-value"
    with caplog.at_level(logging.DEBUG, logger="wsgi_sessions"):
        make_testapp(show).get("/", headers={"Cookie": f"session={tampered}"})
    assert caplog.records, "a rejected cookie is worth a debug line"
    assert all(record.levelno == logging.DEBUG for record in caplog.records)
    assert all(
        tampered not in record.getMessage() and "tampered" not in record.getMessage()
        for record in caplog.records
    )


@pytest.mark.parametrize(("size", "max_cookie_size"), [(2_500_000, 4093), (5_000_000, 0)])
def test_decompression_is_bounded(
    make_testapp: t.Any,
    secret_key: str,
    size: int,
    max_cookie_size: int,
    decompressed_sizes: list[int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Megabytes of zeros compress into a cookie under the size limit: it is
    a bad cookie, and decoding it produces no more than the bound."""
    bomb = signed_bomb(secret_key, size)
    if max_cookie_size:
        assert len(bomb) < max_cookie_size
    app = make_testapp(show, max_cookie_size=max_cookie_size)
    with caplog.at_level(logging.DEBUG, logger="wsgi_sessions"):
        response = get(app, bomb)
    assert response.text == "[]"
    assert "Set-Cookie" not in response.headers
    bound = SecureCookieSessionInterface.max_payload_size
    assert decompressed_sizes
    assert sum(decompressed_sizes) <= bound + 1
    assert caplog.records
    assert all(bomb[:16] not in record.getMessage() for record in caplog.records)


def test_a_payload_at_the_decompression_bound_is_read(
    make_testapp: t.Any, secret_key: str, decompressed_sizes: list[int]
) -> None:
    bound = SecureCookieSessionInterface.max_payload_size
    assert bound == 64 * 1024
    app = make_testapp(lambda session: str(len(session.get("z", ""))))
    assert get(app, signed_bomb(secret_key, bound)).text == str(bound - 8)
    assert get(app, signed_bomb(secret_key, bound + 1)).text == "0"
    assert max(decompressed_sizes) <= bound + 1


@both_kinds
def test_valid_cookie_first_of_duplicates_wins(make_testapp: t.Any, cookie_from: t.Any) -> None:
    valid = cookie_from()
    response = make_testapp(read_n).get("/", headers={"Cookie": f"session={valid}; session=x"})
    assert response.text == "1"


@both_kinds
def test_quoted_cookie_value_is_read(make_testapp: t.Any, cookie_from: t.Any) -> None:
    valid = cookie_from()
    response = make_testapp(read_n).get("/", headers={"Cookie": f'session="{valid}"'})
    assert response.text == "1"


# -- configuration followed between requests ------------------------------------------------


@both_kinds
def test_changed_secret_key_rejects_the_old_cookie(make_testapp: t.Any, set_cookies: t.Any) -> None:
    app = make_testapp(write_n, secret_key="first")
    ((_, cookie, _),) = set_cookies(get(app))
    assert get(app, cookie).text == "2"
    app.app.config["SECRET_KEY"] = "second"
    assert get(app, cookie).text == "1"
    app.app.config["SECRET_KEY_FALLBACKS"] = ["first"]
    assert get(app, cookie).text == "2"


@both_kinds
def test_changed_cookie_settings_are_followed(make_testapp: t.Any, set_cookies: t.Any) -> None:
    app = make_testapp(write_n)
    ((name, _, attributes),) = set_cookies(get(app))
    assert (name, attributes) == ("session", DEFAULT_ATTRIBUTES)
    app.app.config.update(
        SESSION_COOKIE_NAME="renamed",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_DOMAIN="example.org",
        SESSION_COOKIE_PATH="/x",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=1),
    )
    ((name, _, attributes),) = set_cookies(get(app))
    assert name == "renamed"
    assert attributes == {
        "domain": "example.org",
        "path": "/x",
        "secure": "",
        "httponly": "",
        "samesite": "Strict",
    }


def test_changed_lifetime_is_followed(make_testapp: t.Any, cookie_from: t.Any) -> None:
    app = make_testapp(show)
    cookie = forge({"n": 1}, app.app.secret_key, age=timedelta(hours=2))
    assert get(app, cookie).text == "[('n', 1)]"
    app.app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=1)
    assert get(app, cookie).text == "[]"


@both_kinds
def test_removed_secret_key_gives_a_null_session(make_testapp: t.Any) -> None:
    seen: list[object] = []
    app = make_testapp(lambda s: seen.append(type(s)))
    app.app.config["SECRET_KEY"] = None
    get(app)
    assert seen == [NullSession]


# -- the interface on its own ------------------------------------------------------------


class FakeApp:
    """The three members an interface needs of an app, nothing else."""

    def __init__(self, **config: t.Any) -> None:
        self.config = {
            **SessionConfig({"secret_key": "unused"}).config,
            "SECRET_KEY": None,
            **config,
        }

    @property
    def secret_key(self) -> t.Any:
        return self.config["SECRET_KEY"]

    @property
    def permanent_session_lifetime(self) -> timedelta:
        return self.config["PERMANENT_SESSION_LIFETIME"]  # type: ignore[no-any-return]


@both_kinds
def test_open_session_returns_none_without_a_secret_key(interface_class: t.Any) -> None:
    from werkzeug.wrappers import Request

    interface = interface_class()
    request = Request(EnvironBuilder("/").get_environ())
    assert interface.open_session(FakeApp(), request) is None
    assert interface.open_session(FakeApp(SECRET_KEY=""), request) is None
    session = interface.open_session(FakeApp(SECRET_KEY="k"), request)
    assert isinstance(session, SecureCookieSession)
    assert session.as_dict() == {}


def test_null_session_helpers() -> None:
    interface = SecureCookieSessionInterface()
    null = interface.make_null_session(FakeApp())
    assert isinstance(null, NullSession)
    assert interface.is_null_session(null)
    assert not interface.is_null_session(SecureCookieSession())
    assert interface.pickle_based is False


@both_kinds
def test_save_session_with_a_werkzeug_response(set_cookies: t.Any, interface_class: t.Any) -> None:
    from werkzeug.wrappers import Response

    interface = interface_class()
    app = FakeApp(SECRET_KEY="k")
    session = SecureCookieSession()
    session["n"] = 1
    response = Response("x", headers={"Vary": "Accept"})
    interface.save_session(app, session, response)
    assert response.headers.getlist("Vary") == ["Accept, Cookie"]
    (header,) = response.headers.getlist("Set-Cookie")
    assert header.startswith("session=")


def test_base_interface_must_be_implemented() -> None:
    interface = SessionInterface()
    with pytest.raises(NotImplementedError):
        interface.open_session(FakeApp(), t.cast(t.Any, None))
    with pytest.raises(NotImplementedError):
        interface.save_session(FakeApp(), SecureCookieSession(), t.cast(t.Any, None))


def test_our_cookie_is_the_itsdangerous_format(make_testapp: t.Any, set_cookies: t.Any) -> None:
    app = make_testapp(lambda s: s.update(n=(1, b"x")))
    ((_, value, _),) = set_cookies(get(app))
    serializer = URLSafeTimedSerializer(
        app.app.secret_key,
        salt="cookie-session",
        serializer=TaggedJSONSerializer(),
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )
    assert serializer.loads(value, max_age=60) == {"n": (1, b"x")}
