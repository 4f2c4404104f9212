"""Cookie-session benchmark: wsgi-sessions against its peers, in one run.

Run it as ``python bench/cookie.py`` (``--quick`` for a rough pass). Every
candidate is timed by calling it directly, no server, no sockets, and all are
timed round-robin so that drift on a shared machine falls on all of them.

Scenarios (the app is the same tiny WSGI app; only what it does with the
session changes):

- S0: no cookie; the app does not touch the session.
- S1: a valid cookie of five small keys; the app reads one key.
- S2: the same cookie; the app writes one key.
- S3: no cookie; the app writes two keys.
- U (ours only): S1's cookie, but the app does not touch the session; its
  ratio to S0 is what a valid cookie costs a page that ignores it.

Candidates:

- bare: the app with no session machinery at all.
- ours: ``SessionMiddleware`` around the app (a WSGI call).
- encrypted: the same with ``cookie_encryption = true`` (AES-256-GCM), in a
  table of its own against ours signed; goal: ≤ 1.5x the signed overhead.
- Flask: ``flask.sessions.SecureCookieSessionInterface`` called directly:
  a Flask ``Request`` is built, ``open_session``, the app's session work, a
  Flask ``Response``, ``save_session``. Its baseline is the same loop without
  the two session calls, so its session cost excludes Request/Response
  construction that a Flask app pays anyway.
- Beaker: ``beaker.middleware.SessionMiddleware`` around the app (a WSGI call).
- Pyramid: ``SignedCookieSessionFactory`` driven through a Pyramid ``Request``
  (the factory, the app's session work, a ``Response``, the response
  callbacks, as Pyramid's router does). As with ``request.session``, the
  factory runs only when the app uses the session, so S0 costs Pyramid
  nothing. Its baseline is the same loop without the factory. A whole Pyramid
  app would add its router, tens of microseconds that are no session's cost.

Peers are configured to do the same work as ours, so that the comparison is
of the session machinery and not of choices: signed (not encrypted), HMAC-SHA1,
JSON payloads, and no re-signing of a cookie that was only read.

"Session cost" is a candidate's time minus its own baseline. The targets are
checked on it: S0 ours ≤ 1 µs; S1 and S2 ours ≤ the raw itsdangerous floor
(S1: ``loads``; S2: ``loads`` + ``dumps``) of the same payload, in Flask's
cookie format; every scenario ≥ 2x faster than the fastest peer.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import platform
import sys
import time
import typing as t
import zlib
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import beaker.middleware
import flask
import flask.sessions
import itsdangerous
import pyramid.request
import pyramid.response
import pyramid.session
from harness import Environ, call_wsgi, make_environ, measure_interleaved

from wsgi_sessions import SessionMiddleware, get_session

SECRET = "bench-secret-key-0123456789abcdef"
#: Five small keys, the kind a logged-in user's session holds.
PAYLOAD: dict[str, t.Any] = {
    "user_id": 4217,
    "name": "alice",
    "csrf_token": "3f8a9c2e71b04d5e9a6f",
    "lang": "en",
    "fresh": True,
}
SCENARIOS = ("S0", "S1", "S2", "S3")
COOKIE_NAME = "session"
Session = t.MutableMapping[str, t.Any]
Work = t.Callable[[Session], None]
WSGIApp = Callable[[Environ, t.Any], Iterable[bytes]]


def read_one(session: Session) -> None:
    if session["user_id"] != PAYLOAD["user_id"]:
        raise AssertionError("S1 did not read the cookie's payload")


def write_one(session: Session) -> None:
    session["page"] = "/cart"


def write_two(session: Session) -> None:
    session["user_id"] = PAYLOAD["user_id"]
    session["name"] = PAYLOAD["name"]


#: What the app does with its session in each scenario; None: it never touches it.
WORK: dict[str, Work | None] = {"S0": None, "S1": read_one, "S2": write_one, "S3": write_two}


def seed(session: Session) -> None:
    session.update(PAYLOAD)


def beaker_work(work: Work | None, saves: bool) -> Work | None:
    """Beaker writes a session only when told (``save()``, its documented way;
    ``auto`` would re-sign every session that was merely read)."""

    def beaker(session: Session) -> None:
        assert work is not None
        work(session)
        if saves:
            session.save()  # type: ignore[attr-defined]

    return None if work is None else beaker


def respond(start_response: t.Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def bare_app(environ: Environ, start_response: t.Any) -> Iterable[bytes]:
    return respond(start_response)


def app_for(get: Callable[[Environ], Session], work: Work | None) -> WSGIApp:
    """The tiny app, doing ``work`` on the session that ``get`` finds."""
    if work is None:
        return bare_app

    def app(environ: Environ, start_response: t.Any) -> Iterable[bytes]:
        work(get(environ))
        return respond(start_response)

    return app


class Captured:
    """A start_response that keeps the headers, to check what a candidate did."""

    headers: list[tuple[str, str]]

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
    ) -> t.Any:
        self.headers = headers
        return lambda data: None

    def set_cookie(self) -> str | None:
        values = [v for k, v in self.headers if k.lower() == "set-cookie"]
        return values[0] if values else None


def run_wsgi(app: WSGIApp, environ: Environ) -> Captured:
    captured = Captured()
    body = app(dict(environ), captured)
    for _chunk in body:
        pass
    return captured


def scenario_environ(scenario: str, cookie: str) -> Environ:
    """S1 and S2 carry the candidate's own cookie of the payload; S0 and S3 none."""
    if scenario in ("S1", "S2"):
        return make_environ(cookie=f"{COOKIE_NAME}={cookie}")
    return make_environ()


def cookie_value(set_cookie: str | None) -> str:
    if not set_cookie:
        raise AssertionError("expected a Set-Cookie header")
    return set_cookie.split(";", 1)[0].split("=", 1)[1]


# -- candidates ----------------------------------------------------------------
# Each builder returns {scenario: zero-argument callable doing one request}, and
# checks once, before timing, that the candidate really did the scenario's work.


def check_headers(name: str, scenario: str, set_cookie: str | None) -> None:
    # Beaker re-signs and re-sends a cookie whenever a session that came with
    # one is used, whatever its settings: that is part of its cost in S1.
    writes = scenario in ("S2", "S3") or (name == "beaker" and scenario == "S1")
    if writes != (set_cookie is not None):
        raise AssertionError(f"{name} {scenario}: unexpected Set-Cookie {set_cookie!r}")


def wsgi_candidate(name: str, build: Callable[[str], WSGIApp], cookie: str) -> dict[str, t.Any]:
    """A middleware-style candidate: one WSGI app per scenario."""
    calls = {}
    for scenario in SCENARIOS:
        app = build(scenario)
        environ = scenario_environ(scenario, cookie)
        check_headers(name, scenario, run_wsgi(app, environ).set_cookie())
        calls[scenario] = lambda app=app, environ=environ: call_wsgi(app, environ)
    return calls


def bare() -> Callable[[], None]:
    environ = make_environ()
    return lambda: call_wsgi(bare_app, environ)


def ours() -> dict[str, t.Any]:
    settings = {"secret_key": SECRET}

    def build(scenario: str) -> WSGIApp:
        return SessionMiddleware(app_for(get_session, WORK[scenario]), settings)

    seeding = SessionMiddleware(app_for(get_session, seed), settings)
    cookie = cookie_value(run_wsgi(seeding, make_environ()).set_cookie())
    calls = wsgi_candidate("ours", build, cookie)
    untouched = build("S0")
    environ = make_environ(cookie=f"{COOKIE_NAME}={cookie}")
    check_headers("ours", "U", run_wsgi(untouched, environ).set_cookie())
    calls["U"] = lambda: call_wsgi(untouched, environ)
    return calls


def ours_encrypted() -> dict[str, t.Any]:
    """Ours with ``cookie_encryption = true`` (AES-256-GCM): S1-S3 and U."""
    settings = {"secret_key": SECRET, "cookie_encryption": True}

    def build(scenario: str) -> WSGIApp:
        return SessionMiddleware(app_for(get_session, WORK[scenario]), settings)

    seeding = SessionMiddleware(app_for(get_session, seed), settings)
    cookie = cookie_value(run_wsgi(seeding, make_environ()).set_cookie())
    if "." in cookie or "alice" in cookie:
        raise AssertionError("encrypted: the cookie is not sealed")
    calls = wsgi_candidate("encrypted", build, cookie)
    untouched = build("S0")
    environ = make_environ(cookie=f"{COOKIE_NAME}={cookie}")
    check_headers("encrypted", "U", run_wsgi(untouched, environ).set_cookie())
    calls["U"] = lambda: call_wsgi(untouched, environ)
    return calls


def encrypted_report(us: dict[str, float]) -> str:
    """Encrypted against signed cookies (both ours), overhead over the bare app."""
    bare_us = us["bare"]
    scenarios = (*SCENARIOS, "U")
    signed = {s: us[f"ours {s}"] - bare_us for s in scenarios}
    sealed = {s: us[f"encrypted {s}"] - bare_us for s in scenarios}
    lines = [
        "",
        "Encrypted cookies (cookie_encryption = true): µs of overhead over the bare app",
        "",
        "| candidate | " + " | ".join(scenarios) + " |",
        "| --- |" + " ---: |" * len(scenarios),
        "| signed (ours) | " + " | ".join(f"{signed[s]:.2f}" for s in scenarios) + " |",
        "| encrypted (ours) | " + " | ".join(f"{sealed[s]:.2f}" for s in scenarios) + " |",
        "| encrypted / signed (x) | "
        + " | ".join(f"{sealed[s] / signed[s]:.2f}" for s in scenarios)
        + " |",
        "",
    ]
    for s in ("S1", "S2", "S3"):
        ratio = sealed[s] / signed[s]
        lines.append(_target(f"{s} encrypted ≤ 1.5x signed overhead: {ratio:.2f}x", ratio <= 1.5))
    return "\n".join(lines)


BEAKER_OPTIONS = {
    "session.type": "cookie",
    "session.key": COOKIE_NAME,
    "session.validate_key": SECRET,  # HMAC-SHA1 signed; no encrypt_key: signed, not encrypted
    "session.data_serializer": "json",
    "session.httponly": True,
    "session.samesite": "Lax",
    "session.save_accessed_time": False,  # a read does not re-sign the cookie
}


def beaker_candidate() -> dict[str, t.Any]:
    def get(environ: Environ) -> Session:
        return environ["beaker.session"]  # type: ignore[no-any-return]

    def build(scenario: str) -> WSGIApp:
        inner = app_for(get, beaker_work(WORK[scenario], scenario in ("S2", "S3")))
        return beaker.middleware.SessionMiddleware(inner, BEAKER_OPTIONS)  # type: ignore[no-any-return]

    seeding = beaker.middleware.SessionMiddleware(
        app_for(get, beaker_work(seed, saves=True)), BEAKER_OPTIONS
    )
    cookie = cookie_value(run_wsgi(seeding, make_environ()).set_cookie())
    return wsgi_candidate("beaker", build, cookie)


class _Response(t.Protocol):
    @property
    def headers(self) -> t.Any: ...


def direct_calls(name: str, one: Callable[[Environ, Work | None], _Response]) -> dict[str, t.Any]:
    """A framework's interface driven directly: ``one(environ, work)`` does
    one request and returns the framework's response."""
    seeded = one(make_environ(), seed)
    cookie = cookie_value(seeded.headers.get("Set-Cookie"))
    calls = {}
    for scenario in SCENARIOS:
        environ = scenario_environ(scenario, cookie)
        work = WORK[scenario]
        check_headers(name, scenario, one(environ, work).headers.get("Set-Cookie"))
        calls[scenario] = lambda environ=environ, work=work: one(environ, work)
    return calls


def flask_candidate() -> tuple[dict[str, t.Any], Callable[[], None]]:
    app = flask.Flask("bench")
    app.secret_key = SECRET
    interface = flask.sessions.SecureCookieSessionInterface()
    request_class, response_class = flask.Request, flask.Response

    def one(environ: Environ, work: Work | None) -> flask.Response:
        request = request_class(dict(environ))
        session = interface.open_session(app, request)
        assert session is not None
        if work is not None:
            work(session)
        response = response_class(b"ok", content_type="text/plain")
        interface.save_session(app, session, response)
        return response

    calls = direct_calls("flask", one)
    plain = make_environ()

    def baseline() -> None:
        request_class(dict(plain))
        response_class(b"ok", content_type="text/plain")

    return calls, baseline


def pyramid_candidate() -> tuple[dict[str, t.Any], Callable[[], None]]:
    factory = pyramid.session.SignedCookieSessionFactory(
        SECRET,
        cookie_name=COOKIE_NAME,
        httponly=True,
        hashalg="sha1",  # as ours; Pyramid's default is sha512
        reissue_time=None,  # a read does not re-sign the cookie
    )

    def one(environ: Environ, work: Work | None) -> pyramid.response.Response:
        request = pyramid.request.Request(dict(environ))
        if work is not None:  # request.session is created on first use
            work(factory(request))
        response = pyramid.response.Response(b"ok", content_type="text/plain")
        request._process_response_callbacks(response)  # what Pyramid's router calls
        return response

    calls = direct_calls("pyramid", one)
    plain = make_environ()

    def baseline() -> None:
        request = pyramid.request.Request(dict(plain))
        response = pyramid.response.Response(b"ok", content_type="text/plain")
        request._process_response_callbacks(response)

    return calls, baseline


def floor() -> dict[str, Callable[[], object]]:
    """Raw itsdangerous on the same payload, in Flask's cookie format (salt,
    HMAC key derivation, SHA-1), with its plain JSON serializer."""
    serializer = itsdangerous.URLSafeTimedSerializer(
        SECRET,
        salt="cookie-session",
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )
    token = serializer.dumps(PAYLOAD)
    json_bytes = json.dumps(PAYLOAD, separators=(",", ":")).encode()
    max_age = int(timedelta(days=31).total_seconds())
    if serializer.loads(token, max_age=max_age) != PAYLOAD:
        raise AssertionError("floor: round trip failed")
    return {
        "loads": lambda: serializer.loads(token, max_age=max_age),
        "dumps": lambda: serializer.dumps(PAYLOAD),
        "empty call": lambda: None,
        # itsdangerous tries zlib on every dumps; shown to explain the write scenarios
        "zlib": lambda: zlib.compress(json_bytes),
    }


def ideal(data: dict[str, t.Any]) -> dict[str, Callable[[], object]]:
    """The hand-written floor of a signed JSON cookie of ``data`` (plain JSON):
    read = find the cookie in the header, split, one HMAC, one base64 decode,
    ``json.loads``; write = read, then ``json.dumps``, one base64 encode, one
    HMAC and the Set-Cookie text. No timestamp, compression or tags."""
    key = hashlib.sha1(SECRET.encode()).digest()

    def sign(payload: bytes) -> str:
        body = base64.urlsafe_b64encode(payload).rstrip(b"=")
        mac = base64.urlsafe_b64encode(hmac.digest(key, body, "sha1")).rstrip(b"=")
        return (body + b"." + mac).decode("ascii")

    header = f"{COOKIE_NAME}={sign(json.dumps(data, separators=(',', ':')).encode())}"

    def read() -> dict[str, t.Any]:
        start = header.find(f"{COOKIE_NAME}=") + len(COOKIE_NAME) + 1
        end = header.find(";", start)
        token = (header[start:] if end < 0 else header[start:end]).encode("ascii")
        body, _, mac = token.rpartition(b".")
        expected = base64.urlsafe_b64encode(hmac.digest(key, body, "sha1")).rstrip(b"=")
        if not hmac.compare_digest(expected, mac):
            raise AssertionError("ideal: bad signature")
        return json.loads(base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4)))  # type: ignore[no-any-return]

    def write() -> str:
        loaded = read()
        loaded["page"] = "/cart"
        token = sign(json.dumps(loaded, separators=(",", ":")).encode())
        return f"{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Lax"

    if read() != data:
        raise AssertionError("ideal: round trip failed")
    return {"read": read, "write": write}


# -- the run -------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument(
        "--cpu", action="store_true", help="time CPU of this process, not wall (busy machine)"
    )
    args = parser.parse_args(argv)
    seconds, rounds = (0.03, 3) if args.quick else (0.1, 11)

    flask_calls, flask_base = flask_candidate()
    pyramid_calls, pyramid_base = pyramid_candidate()
    candidates = {
        "ours": ours(),
        "flask": flask_calls,
        "beaker": beaker_candidate(),
        "pyramid": pyramid_calls,
    }
    funcs: dict[str, Callable[[], object]] = {
        "bare": bare(),
        "flask base": flask_base,
        "pyramid base": pyramid_base,
    }
    for name, calls in candidates.items():
        for scenario, call in calls.items():
            funcs[f"{name} {scenario}"] = call
    for name, call in floor().items():
        funcs[f"floor {name}"] = call
    for name, call in ideal(PAYLOAD).items():
        funcs[f"ideal {name}"] = call
    for scenario, call in ours_encrypted().items():
        funcs[f"encrypted {scenario}"] = call

    times = measure_interleaved(
        funcs, seconds=seconds, rounds=rounds, clock=time.process_time if args.cpu else None
    )
    print(report(times))
    print(encrypted_report(times))


def report(us: dict[str, float]) -> str:
    baselines = {
        "ours": us["bare"],
        "beaker": us["bare"],
        "flask": us["flask base"],
        "pyramid": us["pyramid base"],
    }
    cost = {
        (name, s): us[f"{name} {s}"] - base for name, base in baselines.items() for s in SCENARIOS
    }
    empty = us["floor empty call"]
    floor_loads = us["floor loads"] - empty
    floor_dumps = us["floor dumps"] - empty
    floors = {"S0": None, "S1": floor_loads, "S2": floor_loads + floor_dumps, "S3": floor_dumps}
    ideals = {
        "S0": None,
        "S1": us["ideal read"] - empty,
        "S2": us["ideal write"] - empty,
        "S3": None,
    }
    peers = ("flask", "beaker", "pyramid")
    fastest = {s: min(peers, key=lambda p: cost[p, s]) for s in SCENARIOS}

    def row(label: str, values: Iterable[str]) -> str:
        return f"| {label} | " + " | ".join(values) + " |"

    def num(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}"

    lines = [
        f"Python {platform.python_version()}; {_versions()}",
        "",
        "µs per request (median of interleaved rounds; lower is better)",
        "",
        row("candidate", SCENARIOS),
        row("---", ["---:"] * 4),
        row("bare WSGI app (no sessions)", [num(us["bare"])] * 4),
        row("**wsgi-sessions** middleware", [num(us[f"ours {s}"]) for s in SCENARIOS]),
        row("Flask interface, direct", [num(us[f"flask {s}"]) for s in SCENARIOS]),
        row("  its baseline (Request + Response)", [num(us["flask base"])] * 4),
        row("Beaker cookie middleware", [num(us[f"beaker {s}"]) for s in SCENARIOS]),
        row("Pyramid signed-cookie factory", [num(us[f"pyramid {s}"]) for s in SCENARIOS]),
        row("  its baseline (Request + Response)", [num(us["pyramid base"])] * 4),
        "",
        "Session cost: µs over each candidate's own baseline",
        "",
        row("candidate", SCENARIOS),
        row("---", ["---:"] * 4),
        row(
            "**wsgi-sessions** (overhead over bare app)", [num(cost["ours", s]) for s in SCENARIOS]
        ),
        *(row(p, [num(cost[p, s]) for s in SCENARIOS]) for p in peers),
        row(
            "itsdangerous floor (S1 loads, S2 loads+dumps, S3 dumps)",
            [num(floors[s]) for s in SCENARIOS],
        ),
        row("fastest peer", [fastest[s] for s in SCENARIOS]),
        row(
            "fastest peer / ours (x)",
            [f"{cost[fastest[s], s] / cost['ours', s]:.1f}" for s in SCENARIOS],
        ),
        row(
            "ours / floor (x)",
            [_ratio(cost["ours", s], floors[s]) for s in SCENARIOS],
        ),
        row("hand-written ideal (S1 read, S2 read + write)", [num(ideals[s]) for s in SCENARIOS]),
        row("ours / ideal (x)", [_ratio(cost["ours", s], ideals[s]) for s in SCENARIOS]),
        "",
        "Targets",
        "",
    ]
    ours0 = cost["ours", "S0"]
    lines.append(_target(f"S0 overhead over bare ≤ 1 µs: {ours0:.2f} µs", ours0 <= 1.0))
    for s in ("S1", "S2"):
        floor_s = floors[s]
        assert floor_s is not None
        lines.append(
            _target(
                f"{s} overhead ≤ itsdangerous floor: {cost['ours', s]:.2f} vs {floor_s:.2f} µs",
                cost["ours", s] <= floor_s,
            )
        )
    for s in SCENARIOS:
        ratio = cost[fastest[s], s] / cost["ours", s]
        lines.append(
            _target(
                f"{s} ≥ 2x faster than the fastest peer ({fastest[s]}): {ratio:.1f}x", ratio >= 2.0
            )
        )
    for s in ("S1", "S2"):
        ideal_s = ideals[s]
        assert ideal_s is not None
        ratio = cost["ours", s] / ideal_s
        lines.append(_target(f"{s} ≤ 1.3x the hand-written ideal: {ratio:.2f}x", ratio <= 1.3))
    untouched = us["ours U"] - us["bare"]
    lines.append(
        _target(
            f"U (valid cookie, untouched) ≤ 2x S0 (no cookie): {untouched:.2f} vs"
            f" {ours0:.2f} µs over bare, {us['ours U'] / us['ours S0']:.2f}x per request",
            untouched <= 2 * ours0,
        )
    )
    lines += [
        "",
        f"zlib.compress of the payload's JSON: {us['floor zlib'] - empty:.2f} µs; itsdangerous "
        "(so Flask and the floor) calls it on every dumps, ours a 4 KB-window compressor; "
        "Beaker and Pyramid do not compress.",
    ]
    return "\n".join(lines)


def _ratio(value: float, floor_value: float | None) -> str:
    return "—" if floor_value is None else f"{value / floor_value:.2f}"


def _target(text: str, met: bool) -> str:
    return f"- {'MET   ' if met else 'MISSED'} {text}"


def _versions() -> str:
    from importlib.metadata import version

    names = ("wsgi-sessions", "werkzeug", "itsdangerous", "flask", "beaker", "pyramid")
    return ", ".join(f"{name} {version(name)}" for name in names)


if __name__ == "__main__":
    main()
