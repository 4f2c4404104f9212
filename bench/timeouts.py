"""What ``idle_timeout`` / ``absolute_timeout`` cost: ours with them off and
on, in one run (interleaved rounds, medians).

Run it as ``python bench/timeouts.py`` (``--quick`` for a rough pass).
Scenarios are those of ``bench/cookie.py`` (S0 no cookie, untouched; S1 a
valid cookie, one key read; S2 the same, one key written; S3 no cookie, two
keys written; U a valid cookie, untouched), for the signed cookie, plus a
server-side session in a ``MemoryStore`` (M1: read one key; M2: write one).
With the timeouts on, every cookie carries its times and none is due for
re-sending, which is the common case (a use recorded less than a tenth of
``idle_timeout`` ago). A wsgi-sessions without the timeouts (run with
``PYTHONPATH=<older checkout>/src``) is timed with them off only, so two runs
compare versions.
"""

from __future__ import annotations

import argparse
import sys
import typing as t
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cookie import PAYLOAD
from harness import call_wsgi, make_environ, measure_interleaved

from wsgi_sessions import SessionMiddleware, get_session, parse_settings
from wsgi_sessions.stores import MemoryStore

SECRET = "bench secret key, long and random enough for the benchmark"
#: bench/cookie.py's five small keys. Its JSON (92 bytes) is sent uncompressed
#: (zlib saves one byte); with the times (148 bytes) zlib saves 25 and it is
#: compressed, so S1, S2 and U also show what crossing that line costs.
SEED = PAYLOAD
WORK: dict[str, t.Callable[[t.Any], object]] = {
    "S0": lambda session: None,
    "S1": lambda session: session.get("name"),
    "S2": lambda session: session.__setitem__("lang", "fr"),
    "S3": lambda session: session.update({"a": 1, "b": 2}),
    "U": lambda session: None,
    "M1": lambda session: session.get("name"),
    "M2": lambda session: session.__setitem__("lang", "fr"),
}
WITH_COOKIE = {"S1", "S2", "U", "M1", "M2"}
TIMEOUTS = {"idle_timeout": "30m", "absolute_timeout": "12h"}


def app_doing(work: t.Callable[[t.Any], object]) -> t.Callable[..., list[bytes]]:
    def app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        work(get_session(environ))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return app


def set_cookie_of(app: t.Any, environ: dict[str, t.Any]) -> str | None:
    headers: list[tuple[str, str]] = []

    def start_response(status: str, response_headers: list[tuple[str, str]], *a: t.Any) -> None:
        headers.extend(response_headers)

    b"".join(app(dict(environ), start_response))
    values = [value for name, value in headers if name == "Set-Cookie"]
    return values[0].split(";", 1)[0] if values else None


def calls(label: str, extra: dict[str, t.Any]) -> dict[str, t.Callable[[], object]]:
    store = MemoryStore()
    funcs = {}
    for scenario, work in WORK.items():
        settings = {"secret_key": SECRET, **extra}
        if scenario.startswith("M"):
            settings["store"] = store
        seeding = SessionMiddleware(app_doing(lambda s: s.update(SEED)), settings)
        cookie = set_cookie_of(seeding, make_environ())
        app = SessionMiddleware(app_doing(work), settings)
        environ = make_environ(cookie=cookie if scenario in WITH_COOKIE else None)
        sent = set_cookie_of(app, environ)
        if (sent is not None) != (scenario in ("S2", "S3")):  # M2: a browser session's write
            raise AssertionError(f"{label} {scenario}: unexpected Set-Cookie {sent!r}")
        funcs[f"{label} {scenario}"] = lambda app=app, environ=environ: call_wsgi(app, environ)
    return funcs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    args = parser.parse_args(argv)
    seconds, rounds = (0.03, 3) if args.quick else (0.1, 11)
    try:
        parse_settings(TIMEOUTS)
        supported = True
    except ValueError:
        supported = False
    funcs = calls("off", {})
    if supported:
        funcs.update(calls("on", TIMEOUTS))
    us = measure_interleaved(funcs, seconds=seconds, rounds=rounds)
    print("µs per request (median of interleaved rounds)")
    print("| scenario | off | on | on/off |")
    print("|---|---:|---:|---:|")
    for scenario in WORK:
        off = us[f"off {scenario}"]
        if supported:
            on = us[f"on {scenario}"]
            print(f"| {scenario} | {off:.2f} | {on:.2f} | {on / off:.2f} |")
        else:
            print(f"| {scenario} | {off:.2f} | — | — |")


if __name__ == "__main__":
    main()
