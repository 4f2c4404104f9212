"""The light request and response given to interfaces outside Flask (private)."""

from __future__ import annotations

import pytest
from werkzeug.test import EnvironBuilder

from wsgi_sessions._wsgi import HeaderResponse, LazyRequest


def test_lazy_request_parses_on_first_use() -> None:
    env = EnvironBuilder("/some/path", headers={"Cookie": "a=1; b=2"}).get_environ()
    env["QUERY_STRING"] = "x=1"
    request = LazyRequest(env)
    assert request.environ is env
    assert "_lazy_init" not in vars(request)
    assert request.path == "/some/path"
    assert request.args["x"] == "1"
    assert request.cookies["b"] == "2"
    assert request.method == "GET"
    with pytest.raises(AttributeError):
        request.__no_such_dunder__


def test_header_response_writes_into_the_header_list() -> None:
    headers = [("Content-Type", "text/plain"), ("vary", "Accept")]
    response = HeaderResponse(headers)
    response.vary.add("Cookie")
    response.vary.add("cookie")
    response.headers.add("X-A", "1")
    response.set_cookie("c", "v", path="/")
    response.delete_cookie("d", path="/", max_age=5)
    assert headers[1] == ("vary", "Accept, Cookie")
    assert response.headers.get("x-a") == "1"
    assert response.headers.get("missing", "dflt") == "dflt"
    cookies = response.headers.getlist("set-cookie")
    assert cookies[0] == "c=v; Path=/"
    assert cookies[1].startswith("d=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0")
    assert len(headers) == 5

    fresh: list[tuple[str, str]] = []
    HeaderResponse(fresh).vary.add("Cookie")
    assert fresh == [("Vary", "Cookie")]


def test_replay_gives_another_header_list_the_same_headers() -> None:
    first = [("Vary", "Accept")]
    response = HeaderResponse(first)
    response.vary.add("Cookie")
    response.set_cookie("c", "v")
    second = [("Vary", "Cookie, Accept-Language")]
    response.replay(second)
    assert first == [("Vary", "Accept, Cookie"), ("Set-Cookie", "c=v; Path=/")]
    assert second == [("Vary", "Cookie, Accept-Language"), ("Set-Cookie", "c=v; Path=/")]
