"""A real server: cookie sessions under gunicorn, driven over HTTP keep-alive by wrk.

Run it as ``python bench/http_server.py`` (needs ``gunicorn`` from the
``bench`` extra and ``wrk``: ``apt-get install -y wrk``). For each app below,
one gunicorn (``gthread`` worker class, so connections are kept alive; 2
workers, 2 threads each) is started on a spare loopback port, warmed up, and
driven by ``wrk`` (a separate process, keep-alive, ``--latency``) with a fixed,
valid cookie of about 500 bytes of realistic session data (the one the app
itself issued); the app's new cookie is not sent back, so every request does
the same work. Rounds alternate between the apps, so drift on a busy machine
falls on all of them; medians over rounds are reported, with ratios to the
bare app.

Apps (each serves ``/read``: reads one session key; ``/write``: reads the
session and writes one key, so the cookie is verified, decoded, encoded and
signed again):

- bare: a WSGI app with no sessions (reads and writes a dict);
- ours: the same WSGI app in ``SessionMiddleware`` (signed cookie);
- flask: a Flask app with its own ``SecureCookieSessionInterface``;
- flask+ours: the same Flask app with ours as ``app.session_interface``.

Every process it starts is stopped by its pid at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import typing as t
import urllib.request
from collections.abc import Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SECRET = "bench-secret-key-0123456789abcdef"
APPS = ("bare", "ours", "flask", "flask+ours")
PATHS = ("/read", "/write")

# -- the apps (imported by gunicorn as ``http_server:make_<name>()``) --------------------------


def _respond(start_response: t.Any, text: str) -> list[bytes]:
    body = text.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _wsgi_app(get: t.Callable[[dict[str, t.Any]], t.MutableMapping[str, t.Any]]) -> t.Any:
    from cookie_sizes import realistic

    seed = realistic(500)

    def app(environ: dict[str, t.Any], start_response: t.Any) -> Iterable[bytes]:
        session = get(environ)
        path = environ["PATH_INFO"]
        if path == "/seed":
            session.update(seed)
            return _respond(start_response, "seeded")
        user = session.get("_user_id")
        if path == "/write":
            session["page"] = f"/cart/{user}"
        return _respond(start_response, f"hello {user}")

    return app


def make_bare() -> t.Any:
    shared: dict[str, t.Any] = {}
    return _wsgi_app(lambda environ: shared)


def make_ours() -> t.Any:
    from wsgi_sessions import SessionMiddleware, get_session

    return SessionMiddleware(_wsgi_app(get_session), {"secret_key": SECRET})


def _flask_app(ours: bool) -> t.Any:
    import flask
    from cookie_sizes import realistic

    app = flask.Flask("bench")
    app.secret_key = SECRET
    if ours:
        from wsgi_sessions import SecureCookieSessionInterface

        app.session_interface = SecureCookieSessionInterface()
    seed = realistic(500)

    @app.route("/seed")
    def seeded() -> str:
        flask.session.update(seed)
        return "seeded"

    @app.route("/read")
    def read() -> str:
        return f"hello {flask.session.get('_user_id')}"

    @app.route("/write")
    def write() -> str:
        user = flask.session.get("_user_id")
        flask.session["page"] = f"/cart/{user}"
        return f"hello {user}"

    return app


def make_flask() -> t.Any:
    return _flask_app(ours=False)


def make_flask_ours() -> t.Any:
    return _flask_app(ours=True)


FACTORIES = {
    "bare": "make_bare()",
    "ours": "make_ours()",
    "flask": "make_flask()",
    "flask+ours": "make_flask_ours()",
}

# -- the run ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(name: str, port: int, workers: int, threads: int) -> subprocess.Popen[bytes]:
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        "--keep-alive",
        "30",
        "--log-level",
        "warning",
        "--chdir",
        str(HERE),
        f"http_server:{FACTORIES[name]}",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/read", timeout=1):
                return process
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"gunicorn for {name} did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def seed_cookie(port: int) -> str:
    """The app's own cookie for the seeded session: ``name=value``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/seed", timeout=5) as response:
        header = response.headers.get("Set-Cookie")
    return "" if header is None else header.split(";", 1)[0]


_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNIT = {"us": 1.0, "ms": 1000.0, "s": 1e6}


def run_wrk(port: int, path: str, cookie: str, seconds: int, connections: int) -> dict[str, float]:
    command = [
        "wrk",
        "--latency",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "-H",
        f"Cookie: {cookie}",
        f"http://127.0.0.1:{port}{path}",
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None or "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk failed:\n{output}")
    latency = {f"p{q}": float(v) * _UNIT[u] for q, v, u in _LATENCY.findall(output)}
    return {"rps": float(rate[1]), **latency}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    servers: dict[str, tuple[subprocess.Popen[bytes], int, str]] = {}
    try:
        for name in APPS:
            port = free_port()
            process = start_server(name, port, args.workers, args.threads)
            cookie = seed_cookie(port)
            if name != "bare" and not cookie:
                raise RuntimeError(f"{name}: no cookie from /seed")
            servers[name] = (process, port, cookie)
            run_wrk(port, "/read", cookie or "x=1", 1, args.connections)  # warm up
        results: dict[tuple[str, str], list[dict[str, float]]] = {}
        for _ in range(args.rounds):
            for path in PATHS:
                for name, (_, port, cookie) in servers.items():
                    run = run_wrk(port, path, cookie or "x=1", args.seconds, args.connections)
                    results.setdefault((name, path), []).append(run)
    finally:
        for process, _, _ in servers.values():
            stop(process)
    print(report(results, args, {name: len(c) for name, (_, _, c) in servers.items()}))


def report(
    results: dict[tuple[str, str], list[dict[str, float]]],
    args: argparse.Namespace,
    cookie_sizes: dict[str, int],
) -> str:
    def median(name: str, path: str, key: str) -> float:
        return statistics.median(run[key] for run in results[name, path])

    lines = [
        f"gunicorn gthread, {args.workers} workers x {args.threads} threads; wrk -t1"
        f" -c{args.connections} -d{args.seconds}s, keep-alive; medians of {args.rounds} rounds",
        "",
        "| path | app | cookie B | requests/s | p50 µs | p99 µs | rps / bare | p50 / bare"
        " | p99 / bare |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for path in PATHS:
        base = {key: median("bare", path, key) for key in ("rps", "p50", "p99")}
        for name in APPS:
            got = {key: median(name, path, key) for key in ("rps", "p50", "p99")}
            lines.append(
                f"| {path} | {name} | {cookie_sizes[name]} | {got['rps']:.0f} | {got['p50']:.0f}"
                f" | {got['p99']:.0f} | {got['rps'] / base['rps']:.2f}"
                f" | {got['p50'] / base['p50']:.2f} | {got['p99'] / base['p99']:.2f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
