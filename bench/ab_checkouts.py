"""The middleware of two checkouts, timed against each other in one process.

    python bench/ab_checkouts.py OLD_SRC NEW_SRC [--rounds 21] [--cpu]

``OLD_SRC`` and ``NEW_SRC`` are ``src`` directories (a worktree of ``main`` and
one of a branch). Each is imported under a name of its own, so both run in
this process, round-robin: a before/after of one change that the machine's
drift between two runs cannot swamp. Scenarios are ``bench/cookie.py``'s S0
(no cookie, session untouched) and S2 (a valid cookie, one key written), as
overhead over the bare app.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import types
import typing as t
from collections.abc import Iterable
from pathlib import Path

from harness import call_wsgi, make_environ, measure_interleaved

SECRET = "ab-benchmark-" + "k" * 32


def load(alias: str, src: str) -> types.ModuleType:
    """Import ``src``/wsgi_sessions as ``alias`` (its relative imports follow)."""
    package = Path(src) / "wsgi_sessions"
    spec = importlib.util.spec_from_file_location(
        alias, package / "__init__.py", submodule_search_locations=[str(package)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    spec.loader.exec_module(module)
    return module


def app(write: bool) -> t.Callable[..., Iterable[bytes]]:
    def wsgi(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        if write:
            session = environ["wsgi_sessions.session"]
            session["n"] = session.get("n", 0) + 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return wsgi


def a_cookie(package: types.ModuleType) -> str:
    """A valid session cookie of five small keys (S1/S2's payload)."""
    headers: list[tuple[str, str]] = []

    def writer(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        environ["wsgi_sessions.session"].update({f"k{i}": f"value {i}" for i in range(5)})
        start_response("200 OK", [])
        return []

    def keep(status: str, sent: list[tuple[str, str]], exc_info: t.Any = None) -> None:
        headers.extend(sent)

    package.SessionMiddleware(writer, {"secret_key": SECRET})(make_environ(), keep)
    (value,) = (value for name, value in headers if name == "Set-Cookie")
    return value.split(";", 1)[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("old_src")
    parser.add_argument("new_src")
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--cpu", action="store_true", help="time CPU, not wall (busy machine)")
    args = parser.parse_args(argv)
    packages = {"old": load("ws_old", args.old_src), "new": load("ws_new", args.new_src)}
    cookie = a_cookie(packages["new"])
    plain, with_cookie = make_environ(), make_environ(cookie=cookie)
    bare_app = app(False)
    funcs: dict[str, t.Callable[[], object]] = {"bare": lambda: call_wsgi(bare_app, plain)}
    for name, package in packages.items():
        s0 = package.SessionMiddleware(app(False), {"secret_key": SECRET})
        s2 = package.SessionMiddleware(app(True), {"secret_key": SECRET})
        funcs[f"{name} S0"] = lambda s0=s0: call_wsgi(s0, plain)
        funcs[f"{name} S2"] = lambda s2=s2: call_wsgi(s2, with_cookie)
    times = measure_interleaved(
        funcs, rounds=args.rounds, clock=time.process_time if args.cpu else None
    )
    bare = times["bare"]
    print("µs over the bare app (median of interleaved rounds)")
    for scenario in ("S0", "S2"):
        old, new = times[f"old {scenario}"] - bare, times[f"new {scenario}"] - bare
        print(f"{scenario}: old {old:.3f}, new {new:.3f}, new/old {new / old:.3f}")


if __name__ == "__main__":
    main()
