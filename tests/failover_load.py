"""Failover under load: client threads hammer SessionMiddleware apps while a
Redis master is killed, and every response is accounted for.

Shared by ``tests/stores/test_redis_failover.py`` (which asserts) and
``bench/redis_failover.py`` (which prints the figures); no pytest here.

Each client is one browser (a werkzeug test ``Client`` with its own cookie
jar) calling the app directly from its own thread, in a loop. Every request
reads the session's ``n`` (the body says what it read) and writes the next
number, so the next 200 tells whether the previous write is still there:

- after a 200, the client believes its value is stored;
- after a 503, either value may be stored (a 503 after a failure means
  "unknown", not "not written");
- a 200 that reads anything else is a lost write. If the write it lost was
  acknowledged before the kill, it is the documented loss of asynchronous
  replication (the old master acknowledged it and died before its replica
  had it). If it was acknowledged after the kill (by the promoted master),
  that 200 was false: a bug.

Clients are split into groups, one app (one store) per group, so that one
failover measures a store with and without ``wait_replicas`` side by side.
"""

from __future__ import annotations

import json
import threading
import time
import typing as t
from collections import Counter
from dataclasses import dataclass, field

from werkzeug.test import Client

from wsgi_sessions import SessionMiddleware, get_session

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from wsgi_sessions.stores import Store

__all__ = ["GroupReport", "run_failover"]

SECRET = "failover test secret key, long enough 0123456789"


def counter_app(store: Store) -> t.Any:
    """SessionMiddleware over an app that answers the ``n`` it read and then
    stores the ``n`` of the query string."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        session = get_session(environ)
        before = session.get("n")
        session["n"] = int(environ["QUERY_STRING"].partition("=")[2])
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(before).encode()]

    return SessionMiddleware(app, {"secret_key": SECRET, "store": store})


@dataclass
class GroupReport:
    """What one group of clients saw; times in seconds relative to the kill."""

    name: str
    statuses: Counter[str] = field(default_factory=Counter)
    #: non-200 responses after the kill: first and last (None: there was none)
    first_error: float | None = None
    last_error: float | None = None
    #: when every client of the group had a 200 again (None: not all did)
    recovered: float | None = None
    #: writes acknowledged before the kill and gone after it (async replication)
    lost_before_kill: int = 0
    #: writes sent after the kill (the old master dead), acknowledged, and gone
    #: later: false 200s
    false_200: int = 0
    #: 200s whose read could be checked against what the client believed
    checked: int = 0
    #: 200s per second before the kill, and latency of those (median, ms)
    throughput: float = 0.0
    median_ms: float = 0.0

    @property
    def error_window(self) -> float:
        if self.first_error is None or self.last_error is None:
            return 0.0
        return self.last_error - self.first_error

    def line(self) -> str:
        codes = ", ".join(f"{code}: {count}" for code, count in sorted(self.statuses.items()))
        recovered = "never" if self.recovered is None else f"{self.recovered:.2f} s"
        return (
            f"{self.name}: {codes}; non-200 for {self.error_window:.2f} s "
            f"(first {_at(self.first_error)}, last {_at(self.last_error)}); every client "
            f"served again after {recovered}; lost acknowledged writes: "
            f"{self.lost_before_kill} before the kill, {self.false_200} after (false 200s); "
            f"{self.checked} reads checked; before the kill {self.throughput:.0f} req/s, "
            f"median {self.median_ms:.2f} ms"
        )


def _at(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f} s"


class _Browser(threading.Thread):
    def __init__(self, app: t.Any, report: GroupReport, run: _Run) -> None:
        super().__init__(daemon=True)
        self.client = Client(app)
        self.report = report
        self.run_state = run
        self.family: str | None = None
        self.served_after_kill: float | None = None  # its first 200 after the kill
        self.before: list[float] = []  # latencies of 200s before the kill
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # pragma: no cover - reported by the caller
            self.failure = exc

    def _loop(self) -> None:
        run, report = self.run_state, self.report
        possible: set[object] = {None}  # the values the store may hold for us
        # When the request whose 200 we rely on was sent. Classified by when it
        # was sent, not when its answer was read: under load a thread may read
        # the old master's last answer after the kill returned, and that loss
        # is replication's (before the kill), not a false 200.
        acknowledged_sent = 0.0
        number = 0
        while not run.stop.is_set():
            number += 1
            started = time.monotonic()
            try:
                response = self.client.get(f"/?n={number}")
                status = str(response.status_code)
                body = response.get_data()
            except Exception:  # an exception out of the app is a 500
                status, body = "500", b""
            ended = time.monotonic()
            with run.lock:
                report.statuses[status] += 1
                killed = run.killed_at
                if status != "200" and killed is not None:
                    at = ended - killed
                    report.first_error = at if report.first_error is None else report.first_error
                    report.last_error = at
            if status != "200":
                possible.add(number)
                continue
            read = json.loads(body)
            with run.lock:
                report.checked += 1
                if read not in possible:
                    if killed is not None and acknowledged_sent > killed:
                        report.false_200 += 1
                    else:
                        report.lost_before_kill += 1
            if killed is None:
                self.before.append(ended - started)
            elif self.served_after_kill is None and started > killed:
                self.served_after_kill = ended - killed
                with run.lock:
                    run.served.add(self)
            possible = {number}
            acknowledged_sent = started
            if self.family is None:
                cookie = self.client.get_cookie("session")
                self.family = cookie.value[:8] if cookie is not None else None


class _Run:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.killed_at: float | None = None
        self.served: set[_Browser] = set()


def run_failover(
    groups: dict[str, t.Any],
    kill: t.Callable[[dict[str, list[str]]], object],
    *,
    clients: int = 4,
    warmup: float = 1.5,
    settle: float = 1.5,
    limit: float = 30.0,
) -> list[GroupReport]:
    """Run ``clients`` browsers per group (``{name: WSGI app}``), call
    ``kill(families)`` (the session families of each group's clients, to
    choose a master that serves some) after ``warmup`` seconds, and go on until every
    client has been served again and ``settle`` more seconds have passed, or
    ``limit`` seconds after the kill."""
    run = _Run()
    reports = {name: GroupReport(name) for name in groups}
    browsers = [
        _Browser(app, reports[name], run) for name, app in groups.items() for _ in range(clients)
    ]
    for browser in browsers:
        browser.start()
    time.sleep(warmup)
    families: dict[str, list[str]] = {name: [] for name in groups}
    for browser in browsers:
        if browser.family:
            families[browser.report.name].append(browser.family)
    kill(families)  # times count from its return: the master is dead (and reaped)
    with run.lock:
        run.killed_at = killed = time.monotonic()
    deadline = killed + limit
    while time.monotonic() < deadline and len(run.served) < len(browsers):
        time.sleep(0.01)
    time.sleep(min(settle, max(0.0, deadline - time.monotonic())))
    run.stop.set()
    for browser in browsers:
        browser.join(30)
    for browser in browsers:
        if browser.failure is not None:
            raise browser.failure
    for report in reports.values():
        mine = [b for b in browsers if b.report is report]
        served = [b.served_after_kill for b in mine if b.served_after_kill is not None]
        if len(served) == len(mine):
            report.recovered = max(served)
        latencies = sorted(x for b in mine for x in b.before)
        if latencies:
            report.median_ms = latencies[len(latencies) // 2] * 1000
            report.throughput = len(latencies) / warmup
    return list(reports.values())
