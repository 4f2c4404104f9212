"""Cookie size sweep: read and write at ~100 B, ~500 B, ~1.5 KB, ~3.5 KB of session data.

Run it as ``python bench/cookie_sizes.py`` (``--quick`` for a rough pass,
``--plot bench/cookie_sizes.png`` to draw the figure). Every candidate and
size is timed round-robin in one process (``harness.measure_interleaved``),
medians over rounds; figures are µs of session cost per request and ratios
from the same run.

The data is a logged-in user's session grown to each size: ids, a CSRF
token, a login datetime, preferences (a nested dict), a list of ids and a
cart of small records (each a dict with a nested dict). The size is the
length of its JSON. Peers whose serializer is plain JSON (Pyramid's
``JSONSerializer``, Beaker's ``json``) cannot store a datetime: they get the
same data with the datetime as its HTTP-date string, what their users store.

- read: the candidate's own valid cookie of the data; the app reads one key.
- write: the same cookie; the app writes one key (the whole cookie is then
  verified, decoded, encoded and signed again).

Candidates (configured as in ``bench/cookie.py``; HMAC-SHA1 everywhere):

- ours: ``SessionMiddleware`` (a WSGI call), minus the bare app.
- flask: ``flask.sessions.SecureCookieSessionInterface`` called directly,
  minus its own loop without the two session calls (Request + Response).
- pyramid: ``SignedCookieSessionFactory`` through a Pyramid Request and
  Response, minus the same loop without the factory.
- beaker: ``beaker.middleware.SessionMiddleware``, ``session.type = cookie``,
  minus the bare app; it re-signs a cookie it has read (its behaviour).

Pyramid and Beaker do not compress and refuse a cookie over 4064 bytes, so
at ~3.5 KB of data (4.7 KB in base64) they are "refused"; Flask and ours
compress it.
- itsdangerous: raw ``URLSafeTimedSerializer`` in Flask's format on the data
  (``loads``; ``loads`` + ``dumps``), no WSGI.
- ideal: the hand-written floor of a signed JSON cookie: find the cookie in
  the header, split, one base64 decode, one HMAC, ``json.loads`` (write: plus
  ``json.dumps``, one base64 encode, one HMAC, the Set-Cookie text); no
  timestamp, no compression, no tags.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
import typing as t
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import beaker.exceptions
import beaker.middleware
import flask
import flask.sessions
import itsdangerous
import pyramid.request
import pyramid.response
import pyramid.session
from cookie import (
    BEAKER_OPTIONS,
    COOKIE_NAME,
    SECRET,
    Session,
    app_for,
    bare_app,
    cookie_value,
    ideal,
    run_wsgi,
)
from harness import Environ, call_wsgi, make_environ, measure_interleaved
from werkzeug.http import http_date

from wsgi_sessions import SessionMiddleware, get_session
from wsgi_sessions.serialization import session_json_serializer

SIZES = (100, 500, 1500, 3500)
OPS = ("read", "write")
PEERS = ("flask", "pyramid", "beaker")
MAX_AGE = 31 * 86400


def realistic(target: int) -> dict[str, t.Any]:
    """A logged-in user's session, grown until its JSON is ``target`` bytes or more."""
    session: dict[str, t.Any] = {
        "_user_id": "4217",
        "_fresh": True,
        "csrf_token": "3f8a9c2e71b04d5e9a6f0c1d",
        "login_at": datetime(2026, 11, 30, 9, 41, 7, tzinfo=timezone.utc),
    }
    extras: list[tuple[str, t.Any]] = [
        ("lang", "en"),
        ("prefs", {"theme": "dark", "tz": "Europe/Berlin", "currency": "EUR", "mail": False}),
        ("recently_viewed", [10423, 88812, 5531, 77120, 1203, 99321]),
        ("cart", []),
    ]
    for key, value in extras:
        if len(session_json_serializer.dumps(session)) >= target:
            return session
        session[key] = value
    item = 0
    while len(session_json_serializer.dumps(session)) < target:
        item += 1
        session["cart"].append(
            {
                "sku": f"SKU-{10000 + item * 37}",
                "name": f"Cotton t-shirt, colour {item}",
                "qty": item % 3 + 1,
                "price": round(9.99 + item * 1.5, 2),
                "options": {"size": "M", "gift": item % 2 == 0},
            }
        )
    return session


def as_plain_json(data: dict[str, t.Any]) -> dict[str, t.Any]:
    """The data for a peer that stores plain JSON: the datetime as text."""
    return {k: http_date(v) if isinstance(v, datetime) else v for k, v in data.items()}


def read_one(session: Session) -> None:
    if session["_user_id"] != "4217":
        raise AssertionError("read: the cookie's data was not there")


def write_one(session: Session) -> None:
    session["page"] = "/cart"


WORK = {"read": read_one, "write": write_one}


def seeder(data: dict[str, t.Any]) -> Callable[[Session], None]:
    def seed(session: Session) -> None:
        session.update(data)

    return seed


def expect(name: str, op: str, set_cookie: str | None) -> None:
    writes = op == "write" or name == "beaker"
    if writes != (set_cookie is not None):
        raise AssertionError(f"{name} {op}: unexpected Set-Cookie {set_cookie!r}")


# -- candidates: {op: zero-argument callable} for one size's data -------------------------


def ours(data: dict[str, t.Any]) -> tuple[dict[str, Callable[[], object]], int]:
    settings = {"secret_key": SECRET, "max_cookie_size": 0}
    cookie = cookie_value(
        run_wsgi(
            SessionMiddleware(app_for(get_session, seeder(data)), settings), make_environ()
        ).set_cookie()
    )
    calls = {}
    for op in OPS:
        app = SessionMiddleware(app_for(get_session, WORK[op]), settings)
        environ = make_environ(cookie=f"{COOKIE_NAME}={cookie}")
        expect("ours", op, run_wsgi(app, environ).set_cookie())
        calls[op] = lambda app=app, environ=environ: call_wsgi(app, environ)
    return calls, len(cookie)


def flask_peer(data: dict[str, t.Any]) -> tuple[dict[str, Callable[[], object]], int]:
    app = flask.Flask("bench")
    app.secret_key = SECRET
    interface = flask.sessions.SecureCookieSessionInterface()

    def one(environ: Environ, work: Callable[[Session], None]) -> flask.Response:
        request = flask.Request(dict(environ))
        session = interface.open_session(app, request)
        assert session is not None
        work(session)
        response = flask.Response(b"ok", content_type="text/plain")
        interface.save_session(app, session, response)
        return response

    cookie = cookie_value(one(make_environ(), seeder(data)).headers.get("Set-Cookie"))
    environ = make_environ(cookie=f"{COOKIE_NAME}={cookie}")
    calls = {}
    for op in OPS:
        expect("flask", op, one(environ, WORK[op]).headers.get("Set-Cookie"))
        calls[op] = lambda work=WORK[op]: one(environ, work)
    return calls, len(cookie)


def flask_base() -> None:
    flask.Request(make_environ())
    flask.Response(b"ok", content_type="text/plain")


PYRAMID_FACTORY = pyramid.session.SignedCookieSessionFactory(
    SECRET, cookie_name=COOKIE_NAME, httponly=True, hashalg="sha1", reissue_time=None
)


def pyramid_peer(data: dict[str, t.Any]) -> tuple[dict[str, Callable[[], object]], int] | None:
    def one(environ: Environ, work: Callable[[Session], None]) -> pyramid.response.Response:
        request = pyramid.request.Request(dict(environ))
        work(PYRAMID_FACTORY(request))
        response = pyramid.response.Response(b"ok", content_type="text/plain")
        request._process_response_callbacks(response)
        return response

    try:
        seeded = one(make_environ(), seeder(as_plain_json(data)))
    except ValueError:  # "Cookie value is too long to store": over 4064 bytes
        return None
    cookie = cookie_value(seeded.headers.get("Set-Cookie"))
    environ = make_environ(cookie=f"{COOKIE_NAME}={cookie}")
    calls = {}
    for op in OPS:
        expect("pyramid", op, one(environ, WORK[op]).headers.get("Set-Cookie"))
        calls[op] = lambda work=WORK[op]: one(environ, work)
    return calls, len(cookie)


def pyramid_base() -> None:
    request = pyramid.request.Request(make_environ())
    response = pyramid.response.Response(b"ok", content_type="text/plain")
    request._process_response_callbacks(response)


def beaker_peer(data: dict[str, t.Any]) -> tuple[dict[str, Callable[[], object]], int] | None:
    def get(environ: Environ) -> Session:
        return environ["beaker.session"]  # type: ignore[no-any-return]

    def saving(work: Callable[[Session], None]) -> Callable[[Session], None]:
        def beaker_work(session: Session) -> None:
            work(session)
            session.save()  # type: ignore[attr-defined]

        return beaker_work

    seeding = beaker.middleware.SessionMiddleware(
        app_for(get, saving(seeder(as_plain_json(data)))), BEAKER_OPTIONS
    )
    try:
        cookie = cookie_value(run_wsgi(seeding, make_environ()).set_cookie())
    except beaker.exceptions.BeakerException:  # "Cookie value is too long to store"
        return None
    calls = {}
    for op in OPS:
        work = WORK[op] if op == "read" else saving(WORK[op])
        app = beaker.middleware.SessionMiddleware(app_for(get, work), BEAKER_OPTIONS)
        environ = make_environ(cookie=f"{COOKIE_NAME}={cookie}")
        expect("beaker", op, run_wsgi(app, environ).set_cookie())
        calls[op] = lambda app=app, environ=environ: call_wsgi(app, environ)
    return calls, len(cookie)


def itsdangerous_floor(data: dict[str, t.Any]) -> dict[str, Callable[[], object]]:
    serializer = itsdangerous.URLSafeTimedSerializer(
        SECRET,
        salt="cookie-session",
        serializer=session_json_serializer,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )
    token = serializer.dumps(data)
    if serializer.loads(token, max_age=MAX_AGE) != data:
        raise AssertionError("itsdangerous: round trip failed")

    def write() -> None:
        loaded = serializer.loads(token, max_age=MAX_AGE)
        loaded["page"] = "/cart"
        serializer.dumps(loaded)

    return {"read": lambda: serializer.loads(token, max_age=MAX_AGE), "write": write}


# -- the run ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--plot", type=Path, help="write a PNG of session cost by size")
    parser.add_argument("--json", type=Path, help="write the medians as JSON")
    parser.add_argument(
        "--cpu", action="store_true", help="time CPU of this process, not wall (busy machine)"
    )
    args = parser.parse_args(argv)
    seconds, rounds = (0.02, 3) if args.quick else (0.05, 9)

    funcs: dict[str, Callable[[], object]] = {
        "bare": lambda: call_wsgi(bare_app, make_environ()),
        "flask base": flask_base,
        "pyramid base": pyramid_base,
    }
    sizes: dict[tuple[str, int], int] = {}
    data_sizes: dict[int, int] = {}
    for size in SIZES:
        data = realistic(size)
        data_sizes[size] = len(session_json_serializer.dumps(data))
        builders: dict[str, Callable[[dict[str, t.Any]], t.Any]] = {
            "ours": ours,
            "flask": flask_peer,
            "pyramid": pyramid_peer,
            "beaker": beaker_peer,
        }
        for name, build in builders.items():
            built = build(data)
            if built is None:  # the peer refuses a cookie this large
                continue
            calls, sizes[name, size] = built
            for op, call in calls.items():
                funcs[f"{name} {op} {size}"] = call
        for op, call in itsdangerous_floor(data).items():
            funcs[f"itsdangerous {op} {size}"] = call
        for op, call in ideal(as_plain_json(data)).items():  # the same floor as cookie.py's
            funcs[f"ideal {op} {size}"] = call

    us = measure_interleaved(
        funcs, seconds=seconds, rounds=rounds, clock=time.process_time if args.cpu else None
    )
    base = {
        "ours": us["bare"],
        "beaker": us["bare"],
        "flask": us["flask base"],
        "pyramid": us["pyramid base"],
        "itsdangerous": 0.0,
        "ideal": 0.0,
    }
    cost = {key: us[key] - base[key.split()[0]] for key in us if key.count(" ") == 2}
    print(report(cost, sizes, data_sizes))
    if args.json:
        args.json.write_text(json.dumps({"cost": cost, "us": us}, indent=1))
    if args.plot:
        plot(cost, data_sizes, args.plot)


def report(cost: dict[str, float], sizes: dict[tuple[str, int], int], data: dict[int, int]) -> str:
    lines = [
        f"Python {platform.python_version()}; {_versions()}",
        "",
        "µs of session cost per request (each candidate minus its own baseline);"
        " ratios are ours / the other (lower = we are cheaper)",
        "",
        "| data | op | ours | flask | pyramid | beaker | itsdangerous | ideal"
        " | fastest peer | ours / fastest peer | ours / ideal |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for size in SIZES:
        for op in OPS:
            got = {name: cost.get(f"{name} {op} {size}") for name in (*PEERS, "ours")}
            peers = {p: v for p, v in got.items() if p != "ours" and v is not None}
            fastest = min(peers, key=lambda p: peers[p])
            ours_cost = got["ours"]
            assert ours_cost is not None
            cells = [
                f"{data[size]} B",
                op,
                *(
                    "refused" if got[name] is None else f"{got[name]:.1f}"
                    for name in ("ours", *PEERS)
                ),
                f"{cost[f'itsdangerous {op} {size}']:.1f}",
                f"{cost[f'ideal {op} {size}']:.1f}",
                fastest,
                f"{ours_cost / peers[fastest]:.2f}",
                f"{ours_cost / cost[f'ideal {op} {size}']:.2f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Cookie bytes (the value):", ""]
    lines.append("| data | " + " | ".join(("ours", *PEERS)) + " |")
    lines.append("|---:|" + "---:|" * (1 + len(PEERS)))
    for size in SIZES:
        cells = [str(sizes.get((name, size), "refused")) for name in ("ours", *PEERS)]
        lines.append(f"| {data[size]} B | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(cost: dict[str, float], data: dict[int, int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), dpi=80, sharey=True)
    xs = [data[size] for size in SIZES]
    for ax, op in zip(axes, OPS, strict=True):
        for name, style in (
            ("ours", "o-"),
            ("flask", "s--"),
            ("pyramid", "^--"),
            ("beaker", "v--"),
            ("ideal", "k:"),
        ):
            points = [
                (x, cost[f"{name} {op} {size}"])
                for x, size in zip(xs, SIZES, strict=True)
                if f"{name} {op} {size}" in cost
            ]
            ax.plot(*zip(*points, strict=True), style, label=name, linewidth=1.5, markersize=4)
        ax.set_title(f"cookie {op}")
        ax.set_xlabel("session data, bytes of JSON")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(xs, [f"{x:,}" for x in xs], minor=False)
        ax.set_xticks([], minor=True)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("µs of session cost per request")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def _versions() -> str:
    from importlib.metadata import version

    names = ("wsgi-sessions", "werkzeug", "itsdangerous", "flask", "beaker", "pyramid")
    return ", ".join(f"{name} {version(name)}" for name in names)


if __name__ == "__main__":
    main()
