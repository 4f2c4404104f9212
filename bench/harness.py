"""Shared timing helpers for the benchmarks: call a WSGI callable directly, many
times, and report microseconds per request. No HTTP server, no sockets: what
is measured is the session machinery, not the network."""

from __future__ import annotations

import gc
import statistics
import time
import typing as t
from collections.abc import Callable, Iterable, Mapping

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
    return measure_interleaved({"func": func}, seconds=seconds, rounds=repeat)["func"]


def calibrate(func: Callable[[], object], seconds: float) -> int:
    """How many calls of ``func`` take about ``seconds``."""
    number = 1
    while True:
        elapsed = _time_calls(func, number)
        if elapsed > seconds / 10:
            return max(1, int(number * (seconds / elapsed)))
        number *= 4


def measure_interleaved(
    funcs: Mapping[str, Callable[[], object]],
    *,
    seconds: float = 0.1,
    rounds: int = 9,
    clock: Callable[[], float] | None = None,
) -> dict[str, float]:
    """Median microseconds per call for each of ``funcs``, timed round-robin.

    On a shared machine the speed drifts (other processes, CPU frequency);
    timing every candidate once per round, for many rounds, spreads that drift
    over all of them instead of penalising whichever ran during a slow patch.
    ``clock`` is ``time.perf_counter`` by default; ``time.process_time``
    counts only this process's CPU time, which leaves out the time other
    processes take the core (steadier when the machine is busy).
    """
    global _clock
    _clock = time.perf_counter if clock is None else clock
    numbers = {name: calibrate(func, seconds) for name, func in funcs.items()}
    runs: dict[str, list[float]] = {name: [] for name in funcs}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, func in funcs.items():
                runs[name].append(_time_calls(func, numbers[name]) / numbers[name] * 1e6)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: statistics.median(times) for name, times in runs.items()}


_clock: Callable[[], float] = time.perf_counter


def _time_calls(func: Callable[[], object], number: int) -> float:
    """Seconds taken by ``number`` calls of ``func``."""
    clock = _clock
    start = clock()
    for _ in range(number):
        func()
    return clock() - start
