"""Encrypted cookie sessions: what the cookie hides, and what never opens.

What every cookie session does (saving order, attributes, size limit, bad
input, rotation) is tested over both interfaces in test_interface.py; this
module holds what only encryption promises.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time
import typing as t
from binascii import a2b_base64
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cookies import cookie_value
from wsgi_sessions import (
    EncryptedCookieSessionInterface,
    SecureCookieSessionInterface,
    SessionConfig,
    SessionMiddleware,
)
from wsgi_sessions._encryption import CookieSealer, derive_key, make_sealer
from wsgi_sessions._signing import make_signing_serializer
from wsgi_sessions.middleware import default_interface
from wsgi_sessions.sessions import SessionMixin

if t.TYPE_CHECKING:
    from webtest import TestApp, TestResponse

PURPOSE = EncryptedCookieSessionInterface.purpose
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def raw(token: str) -> bytes:
    text = token.replace("-", "+").replace("_", "/")
    return a2b_base64(text + "=" * (-len(text) % 4))


def b64(data: bytes) -> str:
    from wsgi_sessions._signing import _b64encode

    return _b64encode(data).decode()


def show(session: SessionMixin) -> str:
    return repr(sorted(session.items()))


def read_n(session: SessionMixin) -> str:
    return repr(session.get("n"))


def write_n(session: SessionMixin) -> str:
    session["n"] = session.get("n", 0) + 1
    return str(session["n"])


@pytest.fixture
def encrypted_app(make_testapp: t.Any) -> t.Callable[..., TestApp]:
    """An app with encrypted cookie sessions (``cookie_encryption = true``)."""

    def make(action: t.Any = None, **settings: t.Any) -> TestApp:
        return make_testapp(action, cookie_encryption="true", **settings)  # type: ignore[no-any-return]

    return make


def get(app: TestApp, cookie: str | None = None, name: str = "session") -> TestResponse:
    app.reset()
    headers = {"Cookie": f"{name}={cookie}"} if cookie is not None else {}
    return app.get("/", headers=headers)


def written(app: TestApp, cookie: str | None = None, name: str = "session") -> str:
    value = cookie_value(get(app, cookie, name).headers.getall("Set-Cookie"), name)
    assert value, "expected the cookie to be written"
    return value


def store_secret(session: SessionMixin) -> None:
    session["user"] = "alice-the-secret-name"
    session["n"] = 123456789


# -- choosing it ------------------------------------------------------------------------


def test_the_setting_chooses_the_encrypted_interface(secret_key: str) -> None:
    def app(environ: t.Any, start_response: t.Any) -> list[bytes]:
        return []

    on = SessionMiddleware(app, {"secret_key": secret_key, "cookie_encryption": "on"})
    assert type(on.session_interface) is EncryptedCookieSessionInterface
    off = SessionMiddleware(app, {"secret_key": secret_key, "cookie_encryption": "false"})
    assert type(off.session_interface) is SecureCookieSessionInterface
    assert type(SessionMiddleware(app, {"secret_key": secret_key}).session_interface) is (
        SecureCookieSessionInterface
    )


def test_encryption_with_a_store_is_refused_naming_both_settings() -> None:
    config = SessionConfig(
        {
            "session.secret_key": "k",
            "session.cookie_encryption": "true",
            "session.store": "memory://",
        },
        prefix="session.",
    )
    with pytest.raises(ValueError, match=r"'session\.cookie_encryption'.*'session\.store'"):
        default_interface(config)


MISSING_CRYPTOGRAPHY = textwrap.dedent(
    """
    import sys
    sys.modules["cryptography"] = None  # as if it were not installed
    import wsgi_sessions
    from wsgi_sessions import EncryptedCookieSessionInterface, SessionMiddleware

    def app(environ, start_response):
        return []

    SessionMiddleware(app, {"secret_key": "k"})  # signed cookies need no cryptography
    for make in (
        EncryptedCookieSessionInterface,
        lambda: SessionMiddleware(app, {"secret_key": "k", "cookie_encryption": "true"}),
    ):
        try:
            make()
        except ValueError as error:
            print(error)
        else:
            print("no error")
    """
)


def test_without_cryptography_start_up_fails_naming_the_extra() -> None:
    result = subprocess.run(
        [sys.executable, "-c", MISSING_CRYPTOGRAPHY],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    interface_error, setting_error = result.stdout.strip().splitlines()
    assert "cryptography" in interface_error
    assert "wsgi-sessions[encryption]" in interface_error
    assert setting_error.startswith("setting 'cookie_encryption' is on, but ")
    assert "wsgi-sessions[encryption]" in setting_error


# -- what the cookie shows ------------------------------------------------------------------


def test_nothing_of_the_payload_is_readable(encrypted_app: t.Any, secret_key: str) -> None:
    app = encrypted_app(store_secret)
    first, second = written(app), written(app)
    assert first != second  # a fresh nonce for every cookie
    for token in (first, second):
        assert set(token) <= set(ALPHABET)  # one base64 token: no "payload.time.signature"
        data = raw(token)
        # (strings long enough not to turn up in random bytes by chance)
        for text in (b"alice-the-secret", b"123456789", b'"user"'):
            assert text not in data
        assert "alice" not in token
        # in the clear: the version and the key id, nothing else
        key_id, _ = derive_key(secret_key, PURPOSE)
        assert data[:5] == b"\x01" + key_id
    # The same data has the same length, whatever is in it: only the length shows.
    assert len(first) == len(second)
    # A signed-cookie app with the same secret reads nothing from it.
    assert get(signed_app(secret_key), first).text == "[]"


def signed_app(secret_key: str) -> TestApp:
    from webtest import TestApp

    from wsgi_sessions import get_session

    def app(environ: t.Any, start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [show(get_session(environ)).encode()]

    return TestApp(SessionMiddleware(app, {"secret_key": secret_key}))


def test_the_data_round_trips_with_every_type(encrypted_app: t.Any) -> None:
    import uuid
    from datetime import datetime, timezone

    value = {
        "t": (1, "two"),
        "b": b"\x00\xff",
        "u": uuid.UUID(int=7),
        "d": datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        "nested": {"list": [1, 2.5, None, True, "é"]},
    }
    cookie = written(encrypted_app(lambda s: s.update(value)))
    seen: list[dict[str, t.Any]] = []
    get(encrypted_app(lambda s: seen.append(dict(s))), cookie)
    assert seen == [value]


# -- what does not open ---------------------------------------------------------------------


def test_changing_any_byte_gives_a_fresh_session(encrypted_app: t.Any) -> None:
    app = encrypted_app(show)
    token = written(encrypted_app(store_secret))
    assert get(app, token).text != "[]"
    data = raw(token)
    for position in range(len(data)):
        for flip in (0x01, 0x80):
            altered = bytearray(data)
            altered[position] ^= flip
            response = get(app, b64(bytes(altered)))
            assert response.status_int == 200
            assert response.text == "[]", position
            assert "Set-Cookie" not in response.headers


def test_changing_any_character_gives_a_fresh_session(encrypted_app: t.Any) -> None:
    """Character by character too: the last one has unused low bits that a
    lenient decoder would ignore; other characters are skipped by it."""
    app = encrypted_app(show)
    token = written(encrypted_app(store_secret))
    for position in range(len(token)):
        for replacement in {ALPHABET[ALPHABET.index(token[position]) ^ 1], "+", "=", "."}:
            altered = token[:position] + replacement + token[position + 1 :]
            assert get(app, altered).text == "[]", (position, replacement)
    for extra in ("=", "==", "A", ".", " x"):
        assert get(app, token + extra).text == "[]", extra


def test_truncated_cookies_give_a_fresh_session(encrypted_app: t.Any) -> None:
    app = encrypted_app(show)
    token = written(encrypted_app(store_secret))
    for length in range(len(token)):
        response = get(app, token[:length])
        assert response.status_int == 200
        assert response.text == "[]", length


def test_a_cookie_moved_to_another_name_does_not_open(encrypted_app: t.Any) -> None:
    """The name is associated data: a token copied into the cookie of another
    app on the same secret key (another name) opens nowhere but where it was
    issued."""
    token = written(encrypted_app(store_secret))
    other_app = encrypted_app(show, cookie_name="admin_session")
    assert get(other_app, token, name="admin_session").text == "[]"
    own = written(encrypted_app(store_secret, cookie_name="admin_session"), name="admin_session")
    assert get(other_app, own, name="admin_session").text != "[]"
    assert get(encrypted_app(show), own).text == "[]"


def test_another_secret_or_purpose_does_not_open(encrypted_app: t.Any) -> None:
    token = written(encrypted_app(store_secret, secret_key="one-secret-key"))
    assert get(encrypted_app(show, secret_key="another-secret-key"), token).text == "[]"

    class OtherPurpose(EncryptedCookieSessionInterface):
        purpose = b"some other use of the same secret"

    app = encrypted_app(show, secret_key="one-secret-key", interface=OtherPurpose())
    assert get(app, token).text == "[]"


@pytest.fixture
def sealer(secret_key: str) -> CookieSealer:
    return make_sealer((secret_key,), PURPOSE)


def test_the_issue_time_is_checked_against_the_lifetime(
    encrypted_app: t.Any, sealer: CookieSealer
) -> None:
    app = encrypted_app(show, permanent_lifetime="1h")
    now = int(time.time())
    payload = b'{"n":1}'
    assert get(app, sealer.seal(payload, "session", now - 3590)).text == "[('n', 1)]"
    assert get(app, sealer.seal(payload, "session", now - 3610)).text == "[]"
    # from the future (a replay cannot be made younger): refused, as itsdangerous does
    assert get(app, sealer.seal(payload, "session", now + 60)).text == "[]"
    # the lifetime is read on every request
    app.app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=3)
    assert get(app, sealer.seal(payload, "session", now - 3610)).text == "[('n', 1)]"


def test_a_sealed_payload_that_is_not_an_object_gives_a_fresh_session(
    encrypted_app: t.Any, sealer: CookieSealer, caplog: pytest.LogCaptureFixture
) -> None:
    app = encrypted_app(show)
    with caplog.at_level(logging.DEBUG, logger="wsgi_sessions"):
        for payload in (b"[1, 2]", b'"n"', b"not json", b"\xff\xfe"):
            assert get(app, sealer.seal(payload, "session")).text == "[]", payload


def test_a_rejected_cookie_is_logged_at_debug_without_its_value(
    encrypted_app: t.Any, caplog: pytest.LogCaptureFixture
) -> None:
    token = written(encrypted_app(store_secret))
    tampered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBA")
    with caplog.at_level(logging.DEBUG, logger="wsgi_sessions"):
        assert get(encrypted_app(show), tampered).text == "[]"
    assert caplog.records
    for record in caplog.records:
        assert record.levelno == logging.DEBUG
        assert tampered[:16] not in record.getMessage()


# -- keys -----------------------------------------------------------------------------------


def test_keys_are_hkdf_derived_with_a_purpose_and_are_not_the_signing_keys(
    secret_key: str,
) -> None:
    key_id, key = derive_key(secret_key, PURPOSE)
    expected = HKDF(algorithm=SHA256(), length=36, salt=None, info=PURPOSE).derive(
        secret_key.encode()
    )
    assert (key, key_id) == (expected[:32], expected[32:])
    assert key not in secret_key.encode().ljust(32, b"\0")
    signing = SecureCookieSessionInterface().get_signing_serializer(
        SessionConfig({"secret_key": secret_key})
    )
    assert signing is not None
    assert key[:20] not in signing.secret_keys[-1]
    server_ids = make_signing_serializer(
        (secret_key,), "wsgi_sessions.server-side-session-id", "hmac", None, None
    )
    assert key[:20] not in server_ids.secret_keys[-1]
    assert derive_key(secret_key, b"another purpose")[1] != key
    assert derive_key(secret_key + "x", PURPOSE)[1] != key


class CountingKey:
    """An AES-GCM key that counts its decryptions."""

    def __init__(self, inner: t.Any, calls: list[int]) -> None:
        self.inner = inner
        self.calls = calls

    def decrypt(self, *args: t.Any) -> bytes:
        self.calls.append(1)
        return self.inner.decrypt(*args)  # type: ignore[no-any-return]

    def encrypt(self, *args: t.Any) -> bytes:
        return self.inner.encrypt(*args)  # type: ignore[no-any-return]


def test_the_key_id_picks_the_one_key_to_try(encrypted_app: t.Any) -> None:
    fallbacks = [f"old-key-{number}" for number in range(20)]
    app = encrypted_app(show, secret_key="current-key", secret_key_fallbacks=fallbacks)
    sealer = EncryptedCookieSessionInterface().get_sealer(app.app.session_config)
    assert sealer is not None
    calls: list[int] = []
    for keys in sealer._keys.values():
        keys[:] = [CountingKey(key, calls) for key in keys]
    old = written(encrypted_app(store_secret, secret_key="old-key-13"))
    assert get(app, old).text != "[]"
    assert calls == [1]  # one decryption, not one per key
    calls.clear()
    assert get(app, written(encrypted_app(store_secret, secret_key="unknown"))).text == "[]"
    assert calls == []  # no key has its id: nothing to try


def test_a_fallback_key_opens_and_the_response_reseals_under_the_current_key(
    encrypted_app: t.Any, secret_key: str
) -> None:
    old = written(encrypted_app(store_secret, secret_key="old-key"))
    rotated = encrypted_app(read_n, secret_key="new-key", secret_key_fallbacks=["old-key"])
    response = get(rotated, old)
    assert response.text == "123456789"
    # only read, yet re-sent: sealed under the current key now
    new = cookie_value(response.headers.getall("Set-Cookie"))
    assert new
    assert raw(new)[1:5] == derive_key("new-key", PURPOSE)[0]
    assert get(encrypted_app(read_n, secret_key="new-key"), new).text == "123456789"
    # a cookie under the current key is not re-sent for being read
    assert "Set-Cookie" not in get(rotated, new).headers
    # and without the fallback the old cookie is a fresh session
    assert get(encrypted_app(read_n, secret_key="new-key"), old).text == "None"


def test_a_fallback_cookie_is_resealed_with_a_session_class_of_ones_own(
    encrypted_app: t.Any,
) -> None:
    class PlainSession(dict, SessionMixin):  # type: ignore[type-arg]
        pass

    class Plain(EncryptedCookieSessionInterface):
        session_class = PlainSession  # type: ignore[assignment]

    old = written(encrypted_app(store_secret, secret_key="old-key", interface=Plain()))
    app = encrypted_app(
        read_n, secret_key="new-key", secret_key_fallbacks=["old-key"], interface=Plain()
    )
    new = written(app, old)
    assert raw(new)[1:5] == derive_key("new-key", PURPOSE)[0]


# -- work done ----------------------------------------------------------------------------


@pytest.fixture
def sealer_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    seal, open_ = CookieSealer.seal, CookieSealer.open

    def counting_seal(self: CookieSealer, *args: t.Any, **kwargs: t.Any) -> str:
        calls.append("seal")
        return seal(self, *args, **kwargs)

    def counting_open(self: CookieSealer, *args: t.Any, **kwargs: t.Any) -> bytes | None:
        calls.append("open")
        return open_(self, *args, **kwargs)

    monkeypatch.setattr(CookieSealer, "seal", counting_seal)
    monkeypatch.setattr(CookieSealer, "open", counting_open)
    return calls


def test_crypto_only_when_the_session_is_used(
    encrypted_app: t.Any, sealer_calls: list[str]
) -> None:
    """No cookie: no crypto, used or not. A cookie: opened on first use; an
    unused one is opened only to tell whether it is permanent (its cookie is
    then re-sent) while ``refresh_each_request`` is on, which a signed cookie
    can tell without verifying it and a sealed one cannot."""
    get(encrypted_app())
    get(encrypted_app(read_n))
    assert sealer_calls == []
    cookie = written(encrypted_app(write_n))
    assert sealer_calls == ["seal"]
    sealer_calls.clear()
    response = get(encrypted_app(refresh_each_request=False), cookie)
    assert sealer_calls == []
    assert "Set-Cookie" not in response.headers
    response = get(encrypted_app(), cookie)
    assert sealer_calls == ["open"]
    assert "Set-Cookie" not in response.headers  # not permanent: nothing to refresh
    sealer_calls.clear()
    assert get(encrypted_app(read_n), cookie).text == "1"
    assert sealer_calls == ["open"]


# -- compression ------------------------------------------------------------------------------


def test_payloads_are_not_compressed_by_default(encrypted_app: t.Any) -> None:
    """Compressing secrets next to text a client chose lets the cookie's length
    tell the secret (CRIME, BREACH): the length grows with the payload, however
    repetitive it is."""
    short = written(encrypted_app(lambda s: s.update(z="0" * 100)))
    long = written(encrypted_app(lambda s: s.update(z="0" * 1000)))
    assert len(long) - len(short) == pytest.approx(900 * 4 / 3, abs=2)


class Compressing(EncryptedCookieSessionInterface):
    compress_min_size = 80


def test_compression_is_an_opt_in_that_round_trips(encrypted_app: t.Any) -> None:
    app = encrypted_app(lambda s: s.update(z="0" * 2000), interface=Compressing())
    token = written(app)
    assert len(token) < 200
    assert get(encrypted_app(lambda s: str(len(s["z"]))), token).text == "2000"


@pytest.mark.parametrize(("size", "opens"), [(64 * 1024 - 8, True), (2_500_000, False)])
def test_decompression_is_bounded(
    encrypted_app: t.Any,
    secret_key: str,
    decompressed_sizes: list[int],
    size: int,
    opens: bool,
) -> None:
    """A sealed payload (written by a compressing configuration on the same
    key) that expands past max_payload_size is refused after at most one byte
    more than the bound."""
    bomb = b'{"z":"' + b"0" * (size - 8) + b'"}'
    token = make_sealer((secret_key,), PURPOSE, 10**8, 1).seal(bomb, "session")
    assert len(token) < 4093
    response = get(encrypted_app(lambda s: str(len(s.get("z", "")))), token)
    assert response.text == (str(size - 8) if opens else "0")
    bound = EncryptedCookieSessionInterface.max_payload_size
    assert sum(decompressed_sizes) <= bound + 1


def test_one_interface_serves_many_threads_at_once(encrypted_app: t.Any) -> None:
    """The sealer (its cipher objects) is shared by every request: threads
    that seal and open at the same time each get their own session back."""
    import threading

    app = encrypted_app(write_n).app  # one middleware, one sealer
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def client(number: int) -> None:
        from webtest import TestApp

        try:
            browser = TestApp(app)
            barrier.wait()
            for expected in range(1, 51):
                assert browser.get("/").text == str(expected), number
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=client, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
