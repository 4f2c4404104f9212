"""Where a cookie request's time goes: ours taken apart, next to the hand-written ideal.

``bench/cookie.py`` compares whole requests; this script times the pieces of
ours on the same payload (five small keys) and the same cookie, in the same
interleaved rounds, so that the gap to the ideal can be read off as a sum:

- the bare app, and ours with no cookie (S0: what being a middleware costs);
- ours with a valid cookie the app never uses (U: finding the cookie, the
  lazy session, the check that it needs no refresh);
- ours reading one key (S1) and writing one (S2);
- the serializer's ``loads`` and ``dumps`` alone: Flask's format (signed
  timestamp, tags, compression from 80 bytes) under a pre-derived key;
- ``save_session`` alone for a session that was read, not changed (what S1
  pays after the app returns: ``Vary``, the refresh and timeout checks);
- the ideal read and write of ``bench/cookie.py`` (find, split, one HMAC,
  one base64, ``json``; no middleware, no session object).

Run ``python bench/cookie_parts.py --cpu`` (CPU time: steadier on a shared
machine). Nothing here is asserted; the table is for reading.
"""

from __future__ import annotations

import argparse
import time
import typing as t
from collections.abc import Callable, Iterable
from functools import partial

from cookie import PAYLOAD, SECRET, ideal
from harness import call_wsgi, make_environ, measure_interleaved

from wsgi_sessions import SessionMiddleware, get_session
from wsgi_sessions._wsgi import HeaderResponse, LazyRequest

Environ = dict[str, t.Any]


def app_doing(work: Callable[[t.Any], None] | None) -> Callable[..., Iterable[bytes]]:
    def app(environ: Environ, start_response: t.Any) -> Iterable[bytes]:
        if work is not None:
            work(get_session(environ))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return app


def read_one(session: t.Any) -> None:
    session["user_id"]


def write_one(session: t.Any) -> None:
    session["page"] = "/cart"


def parts() -> dict[str, Callable[[], object]]:
    settings = {"secret_key": SECRET}
    untouched = SessionMiddleware(app_doing(None), settings)
    reader = SessionMiddleware(app_doing(read_one), settings)
    writer = SessionMiddleware(app_doing(write_one), settings)
    interface = reader.session_interface
    config = reader.session_config
    serializer = interface.get_signing_serializer(config)  # type: ignore[attr-defined]
    token = serializer.dumps(PAYLOAD)
    max_age = int(config.permanent_session_lifetime.total_seconds())
    with_cookie = make_environ("/", f"session={token}")
    without_cookie = make_environ("/")

    def read_session() -> t.Any:
        session = interface.open_session(config, LazyRequest(dict(with_cookie)))
        read_one(session)
        return session

    read = read_session()

    def save_read_session() -> None:
        read._accessed = True  # as the app's read left it
        interface.save_session(config, read, HeaderResponse([]))

    the_ideal = ideal(PAYLOAD)
    bare = app_doing(None)
    return {
        "bare app": lambda: call_wsgi(bare, without_cookie),
        "S0 (no cookie)": lambda: call_wsgi(untouched, without_cookie),
        "U (cookie, unused)": lambda: call_wsgi(untouched, with_cookie),
        "S1 (read a key)": lambda: call_wsgi(reader, with_cookie),
        "S2 (write a key)": lambda: call_wsgi(writer, with_cookie),
        "serializer loads": lambda: serializer.loads(token, max_age=max_age),
        "serializer dumps": lambda: serializer.dumps(PAYLOAD),
        "save_session, read session": save_read_session,
        "ideal read": the_ideal["read"],
        "ideal write": the_ideal["write"],
    }


def issued_cookie(data: dict[str, t.Any]) -> str:
    """The ``Cookie`` header for the cookie ours issues for a session of ``data``."""
    headers: list[tuple[str, str]] = []

    def start_response(status: str, response_headers: list[tuple[str, str]], *exc: t.Any) -> t.Any:
        headers.extend(response_headers)

    def seed(session: t.Any) -> None:
        session.update(data)

    list(
        SessionMiddleware(app_doing(seed), {"secret_key": SECRET})(
            make_environ("/"), start_response
        )
    )
    return dict(headers)["Set-Cookie"].split(";", 1)[0]


def unused_by_size() -> dict[str, Callable[[], object]]:
    """U at the sweep's realistic sizes (``bench/cookie_sizes.py``): from ~500 B
    the cookie is compressed, and a compressed payload cannot be searched as
    base64 text; the serializer verifies it and inflates it to look."""
    from cookie_sizes import SIZES, realistic

    untouched = SessionMiddleware(app_doing(None), {"secret_key": SECRET})
    calls: dict[str, Callable[[], object]] = {}
    for size in SIZES:
        cookie = issued_cookie(realistic(size))
        environ = make_environ("/", cookie)
        calls[f"U at ~{size} B ({len(cookie)} B cookie)"] = partial(call_wsgi, untouched, environ)
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cpu", action="store_true", help="time CPU of this process, not wall")
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    us = measure_interleaved(
        {**parts(), **unused_by_size()},
        seconds=0.1,
        rounds=args.rounds,
        clock=time.process_time if args.cpu else None,
    )
    bare = us["bare app"]
    print(f"command: python bench/cookie_parts.py{' --cpu' if args.cpu else ''}")
    print()
    print("| part | µs | over the bare app |")
    print("|---|---:|---:|")
    for name, value in us.items():
        over = f"{value - bare:.2f}" if name[:2] in ("S0", "U ", "S1", "S2", "U a") else ""
        label = name
        if name.startswith("U at"):
            label = f"{name}: {value / us['S0 (no cookie)']:.2f}x S0 per request"
        print(f"| {label} | {value:.2f} | {over} |")
    s0, u = us["S0 (no cookie)"] - bare, us["U (cookie, unused)"] - bare
    s1, s2 = us["S1 (read a key)"] - bare, us["S2 (write a key)"] - bare
    loads, dumps = us["serializer loads"], us["serializer dumps"]
    print()
    print(
        f"S1 / ideal read: {s1 / us['ideal read']:.2f}x; S2 / ideal write: "
        f"{s2 / us['ideal write']:.2f}x; serializer loads / ideal read: "
        f"{loads / us['ideal read']:.2f}x"
    )
    print(
        f"S1 = {s1:.2f}: being a middleware (S0) {s0:.2f} + the cookie found and the "
        f"session made lazy (U - S0) {u - s0:.2f} + the format (loads) {loads:.2f} + "
        f"saving a read session {us['save_session, read session']:.2f} + the rest "
        f"(loading into the session, the hooks) "
        f"{s1 - u - loads - us['save_session, read session']:.2f}"
    )
    print(f"S2 - S1 = {s2 - s1:.2f}, of which the format (dumps) {dumps:.2f}")


if __name__ == "__main__":
    main()
