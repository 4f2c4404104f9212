"""The light request and response that session interfaces are given outside Flask.

Private: :class:`~wsgi_sessions.SessionMiddleware` and the Pyramid adapter use
them; an interface sees only the members of werkzeug's ``Request`` and
``Response`` that it uses.
"""

from __future__ import annotations

import logging
import typing as t

from werkzeug.http import dump_cookie
from werkzeug.wrappers import Request

from ._cache_control import make_private

if t.TYPE_CHECKING:  # pragma: no cover
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["HeaderResponse", "LazyRequest", "warn_if_secure_cookie_over_http"]

logger = logging.getLogger("wsgi_sessions")

# Browsers treat these hosts as secure contexts and keep Secure cookies on plain HTTP.
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_warned_secure_over_http = False


class LazyRequest(Request):
    """A werkzeug :class:`~werkzeug.wrappers.Request` that parses nothing until asked.

    Building a full Request parses the method, URL parts and headers up front;
    a request that never touches its session needs none of it. This one keeps
    only the environ; the first attribute that a full Request would have set in
    its constructor runs that constructor.
    """

    # bench/cookie.py S0 (session untouched): 3.2 µs overhead with this, 5.6 µs with Request().
    def __init__(self, environ: WSGIEnvironment) -> None:
        self.environ = environ
        self.shallow = False

    def __getattr__(self, name: str) -> t.Any:
        if name.startswith("__") or "_lazy_init" in self.__dict__:
            raise AttributeError(name)
        self.__dict__["_lazy_init"] = True
        Request.__init__(self, self.environ, populate_request=False)
        return getattr(self, name)


class HeaderResponse:
    """The part of a werkzeug Response that ``save_session`` uses, over a WSGI
    header list (the one the app passed to ``start_response``, or WebOb's
    ``headerlist``), written in place.

    A full Response would copy and re-parse the headers on every request. What
    it adds is noted, so that :meth:`replay` can give a later header list (an
    error page's) the same headers.
    """

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self._headers = headers
        # (name, value); a name of None is a value merged into Vary.
        self._added: list[tuple[str | None, str]] = []
        self._private = False  # make_private() was called

    @property
    def headers(self) -> _Headers:
        return _Headers(self)

    @property
    def vary(self) -> _Vary:
        return _Vary(self)

    def set_cookie(self, key: str, value: str = "", **attributes: t.Any) -> None:
        self.add_header("Set-Cookie", dump_cookie(key, value, **attributes))

    def delete_cookie(self, key: str, **attributes: t.Any) -> None:
        attributes.pop("max_age", None)
        attributes.pop("expires", None)
        self.set_cookie(key, "", max_age=0, expires=0, **attributes)

    @property
    def sets_cookie(self) -> bool:
        """Whether a ``Set-Cookie`` header was added here."""
        return any(name == "Set-Cookie" for name, _ in self._added)

    def add_header(self, name: str, value: str) -> None:
        self._headers.append((name, value))
        self._added.append((name, value))

    def add_vary(self, value: str) -> None:
        _merge_vary(self._headers, value)
        self._added.append((None, value))

    def make_private(self) -> None:
        """Merge ``private`` into the ``Cache-Control`` the app set (see
        :func:`~wsgi_sessions._cache_control.private_cache_control`)."""
        make_private(self._headers)
        self._private = True

    def replay(self, headers: list[tuple[str, str]]) -> None:
        """Add to ``headers`` what was added here."""
        for name, value in self._added:
            if name is None:
                _merge_vary(headers, value)
            else:
                headers.append((name, value))
        if self._private:  # merged into the new response's own Cache-Control
            make_private(headers)


class _Headers:
    """``response.headers``: what interfaces call on it."""

    def __init__(self, response: HeaderResponse) -> None:
        self._response = response

    def add(self, name: str, value: str) -> None:
        self._response.add_header(name, value)

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.getlist(name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self._response._headers if key.lower() == lowered]


class _Vary:
    """``response.vary``: one ``Vary`` header, merged."""

    def __init__(self, response: HeaderResponse) -> None:
        self._response = response

    def add(self, value: str) -> None:
        self._response.add_vary(value)


def _merge_vary(headers: list[tuple[str, str]], value: str) -> None:
    """Add ``value`` to the first ``Vary`` header, unless a ``Vary`` has it (or ``*``)."""
    lowered = value.lower()
    first = -1
    # An app may send several Vary headers: the value may sit in any of them.
    for index, (name, current) in enumerate(headers):
        if name.lower() == "vary":
            values = [item.strip().lower() for item in current.split(",")]
            if lowered in values or "*" in values:
                return
            if first < 0:
                first = index
    if first < 0:
        headers.append(("Vary", value))
        return
    name, current = headers[first]
    headers[first] = (name, f"{current}, {value}" if current.strip() else value)


def warn_if_secure_cookie_over_http(
    environ: WSGIEnvironment, config: t.Mapping[str, t.Any]
) -> None:
    """Log once per process that a ``Secure`` session cookie went out on plain HTTP.

    The browser drops such a cookie without a word, so every form then fails
    its CSRF check with nothing in the logs: the classic staging-host trap.
    Called after a save added a ``Set-Cookie``. Local hosts are exempt (browsers
    keep Secure cookies there), and so is a request a proxy says came over
    HTTPS (the browser has the cookie; only the app sees http).
    """
    global _warned_secure_over_http
    if _warned_secure_over_http or not config.get("SESSION_COOKIE_SECURE"):
        return
    if environ.get("wsgi.url_scheme") != "http" or _forwarded_https(environ):
        return
    host = _host_name(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "")
    if host in _LOCAL_HOSTS or host.endswith(".localhost") or host.startswith("127."):
        return
    _warned_secure_over_http = True
    logger.warning(
        "a Secure session cookie was sent on a plain-HTTP request to %r: browsers drop "
        "it, so the session (and every CSRF check) fails. Serve the site over HTTPS, set "
        "cookie_secure = false for a plain-HTTP host, or, behind a TLS proxy, pass the "
        "scheme on (werkzeug's ProxyFix). This is logged once per process.",
        host,
    )


def _forwarded_https(environ: WSGIEnvironment) -> bool:
    proto = environ.get("HTTP_X_FORWARDED_PROTO", "")
    forwarded = environ.get("HTTP_FORWARDED", "")
    return "https" in proto.lower() or "proto=https" in forwarded.lower().replace(" ", "")


def _host_name(host: str) -> str:
    """``host`` without its port, lower-cased; an IPv6 literal without brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host
