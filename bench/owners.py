"""What ``session.owner`` costs an ordinary request: a server-side session in a
``MemoryStore`` without an owner and with one, in one run (interleaved rounds,
medians). M1: a valid cookie, one key read; M2: the same, one key written.

The owned session's ``last_seen`` is not due (it was recorded less than
``SEEN_INTERVAL`` ago), the common case: no index write. A wsgi-sessions
without owners (run with ``PYTHONPATH=<older checkout>/src``) is timed without
an owner only, so two runs compare versions.

Run it as ``python bench/owners.py`` (``--quick`` for a rough pass).
"""

from __future__ import annotations

import argparse
import sys
import typing as t
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cookie import PAYLOAD
from harness import call_wsgi, make_environ, measure_interleaved
from timeouts import app_doing, set_cookie_of

from wsgi_sessions import SessionMiddleware
from wsgi_sessions.stores import MemoryStore

SECRET = "bench secret key, long and random enough for the benchmark"
WORK: dict[str, t.Callable[[t.Any], object]] = {
    "M1": lambda session: session.get("name"),
    "M2": lambda session: session.__setitem__("lang", "fr"),
}


def seed(owner: str | None) -> t.Callable[[t.Any], None]:
    def work(session: t.Any) -> None:
        session.update(PAYLOAD)
        if owner is not None:
            session.owner = owner

    return work


def calls(label: str, owner: str | None) -> dict[str, t.Callable[[], object]]:
    settings = {"secret_key": SECRET, "store": MemoryStore()}
    cookie = set_cookie_of(SessionMiddleware(app_doing(seed(owner)), settings), make_environ())
    funcs = {}
    for scenario, work in WORK.items():
        app = SessionMiddleware(app_doing(work), settings)
        environ = make_environ(cookie=cookie)
        if set_cookie_of(app, environ) is not None:  # a browser session: no cookie re-sent
            raise AssertionError(f"{label} {scenario}: unexpected Set-Cookie")
        funcs[f"{label} {scenario}"] = lambda app=app, environ=environ: call_wsgi(app, environ)
    return funcs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    args = parser.parse_args(argv)
    seconds, rounds = (0.03, 3) if args.quick else (0.1, 11)
    from wsgi_sessions import ServerSideSession

    supported = "owner" in vars(ServerSideSession)
    funcs = calls("plain", None)
    if supported:
        funcs.update(calls("owned", "user-42"))
    us = measure_interleaved(funcs, seconds=seconds, rounds=rounds)
    print("µs per request (median of interleaved rounds)")
    print("| scenario | no owner | owner | owner/none |")
    print("|---|---:|---:|---:|")
    for scenario in WORK:
        plain = us[f"plain {scenario}"]
        if supported:
            owned = us[f"owned {scenario}"]
            print(f"| {scenario} | {plain:.2f} | {owned:.2f} | {owned / plain:.2f} |")
        else:
            print(f"| {scenario} | {plain:.2f} | — | — |")


if __name__ == "__main__":
    main()
