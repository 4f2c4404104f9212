"""Shared timing helpers for the benchmarks: call a WSGI callable directly, many
times, and report microseconds per request. No HTTP server, no sockets: what
is measured is the session machinery, not the network."""

from __future__ import annotations

import gc
import statistics
import time
import typing as t
from collections.abc import Callable, Iterable

Environ = dict[str, t.Any]


def make_environ(path: str = "/", cookie: str | None = None) -> Environ:
    """A minimal, valid WSGI environ for a GET of ``path``."""
    environ: Environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": None,
        "wsgi.errors": None,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    return environ


def start_response(
    status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
) -> Callable[[bytes], None]:
    return _write


def _write(data: bytes) -> None:
    pass


def call_wsgi(app: Callable[..., Iterable[bytes]], environ: Environ) -> None:
    """One request: a fresh copy of the environ, the body consumed and closed."""
    body = app(dict(environ), start_response)
    for _chunk in body:
        pass
    close = getattr(body, "close", None)
    if close is not None:
        close()


def measure(func: Callable[[], object], *, seconds: float = 0.3, repeat: int = 5) -> float:
    """Median microseconds per call of ``func`` over ``repeat`` runs of about
    ``seconds`` each (the call count is calibrated first)."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            func()
        elapsed = time.perf_counter() - start
        if elapsed > seconds / 10:
            break
        number *= 4
    number = max(1, int(number * (seconds / elapsed)))
    runs = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            for _ in range(number):
                func()
            runs.append((time.perf_counter() - start) / number * 1e6)
    finally:
        if gc_was_enabled:
            gc.enable()
    return statistics.median(runs)
