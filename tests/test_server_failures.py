"""A store that is down is a 503 before any header, never a silent loss.

Run against a redis-server the test starts on a spare loopback port and kills.
"""

from __future__ import annotations

import logging
import typing as t

import pytest
import webtest

from wsgi_sessions import SessionMiddleware, SessionStoreError, get_session
from wsgi_sessions.stores.redis import RedisStore

SECRET = "failure test secret"


def app_reads(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
    value = get_session(environ).get("user")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [repr(value).encode()]


def app_writes(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
    get_session(environ)["seen"] = True
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"written"]


def app_swallows_errors(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
    """Like a framework that turns any exception into its own error page."""
    try:
        get_session(environ).get("user")
    except Exception:
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"framework error page"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def _login(server: t.Any) -> tuple[RedisStore, str]:
    """A session created while Redis is up (``server``: the ``own_redis``
    fixture); returns the store and the cookie."""
    store = RedisStore(server.url, socket_timeout=1.0)
    app = webtest.TestApp(SessionMiddleware(app_writes, {"secret_key": SECRET, "store": store}))
    app.get("/")
    return store, app.cookies["session"]


def _get(store: RedisStore, app: t.Any, cookie: str | None) -> webtest.TestResponse:
    middleware = SessionMiddleware(app, {"secret_key": SECRET, "store": store})
    headers = {"Cookie": f"session={cookie}"} if cookie else {}
    return webtest.TestApp(middleware).get("/", headers=headers, status="*")


@pytest.mark.parametrize("app", [app_reads, app_writes, app_swallows_errors])
def test_a_stopped_redis_is_a_503(
    own_redis: t.Any, app: t.Any, caplog: pytest.LogCaptureFixture
) -> None:
    store, cookie = _login(own_redis)
    sid = cookie.rsplit(".", 1)[0]
    own_redis.stop()
    with caplog.at_level(logging.ERROR, logger="wsgi_sessions"):
        response = _get(store, app, cookie)
    assert response.status_int == 503
    assert "Set-Cookie" not in response.headers
    assert response.headers["Retry-After"]
    assert b"written" not in response.body and b"framework" not in response.body
    # Logged, with the cause, but never the id.
    assert caplog.records
    text = caplog.text
    assert sid not in text and sid.split(".")[1] not in text
    store.close()


def test_a_new_session_that_cannot_be_created_is_a_503(own_redis: t.Any) -> None:
    store = RedisStore(own_redis.url, socket_timeout=1.0)
    own_redis.stop()
    response = _get(store, app_writes, None)
    assert response.status_int == 503
    assert "Set-Cookie" not in response.headers
    store.close()


def test_the_store_error_chains_its_cause_and_names_no_secret(own_redis: t.Any) -> None:
    import redis

    store = RedisStore(own_redis.url, socket_timeout=1.0)
    assert store.create("{abcdefgh}some-key", {"a": "1"}, 60)
    own_redis.stop()
    with pytest.raises(SessionStoreError) as caught:
        store.load("{abcdefgh}some-key")
    assert isinstance(caught.value.__cause__, redis.RedisError)
    assert "some-key" not in str(caught.value)
    assert "Redis" in str(caught.value)
    store.close()


def test_an_untouched_request_does_not_need_the_store(own_redis: t.Any) -> None:
    store, cookie = _login(own_redis)
    own_redis.stop()

    def untouched(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"static"]

    response = _get(store, untouched, cookie)
    assert response.status_int == 200
    assert response.body == b"static"
    store.close()
