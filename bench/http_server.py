"""A real server: sessions under gunicorn, driven over HTTP keep-alive by wrk.

Run it as ``python bench/http_server.py`` (needs ``gunicorn`` from the
``bench`` extra, ``wrk``: ``apt-get install -y wrk``, and for the Redis apps
``redis-server``). For each app below, one gunicorn (``gthread`` worker class,
so connections are kept alive; 2 workers, 2 threads each) is started on a
spare loopback port, warmed up, and driven by ``wrk`` (a separate process,
keep-alive, ``--latency``) with a fixed, valid cookie: the one the app itself
issued for a seeded session of about 500 bytes of realistic data (a cookie
holding that data, or a session id for the Redis apps), sent on every
request. A cookie the app sets in a response is ignored, so every request
does the same work. Before timing, each app is checked to read the seeded session
through that cookie. Rounds alternate between the apps, so drift on a busy
machine falls on all of them; medians over rounds are reported, per path, with
ratios to the bare app, under the command line that made them.

Apps (each serves ``/read``: reads one session key; ``/write``: reads the
session and writes one key, so a cookie is verified, decoded, encoded and
signed again, and a server-side session is loaded and written):

- bare: a WSGI app with no sessions (reads and writes a dict);
- ours: the same WSGI app in ``SessionMiddleware`` (signed cookie);
- flask: a Flask app with its own ``SecureCookieSessionInterface``;
- flask+ours: the same Flask app with ours as ``app.session_interface``;
- ours-redis: the WSGI app in ``SessionMiddleware`` with ``"store":
  "redis://host:port/db?prefix=..."`` (defaults otherwise: a browser session,
  its expiry pushed forward by each read);
- flask-session: the Flask app with Flask-Session's ``RedisSessionInterface``
  (``use_signer=False`` as in ``bench/server.py``: the cookie holds the bare
  id; Flask-Session's defaults otherwise: permanent sessions, msgpack);
- flask+ours-redis: the Flask app with ours ``ServerSideSessionInterface`` on
  the same kind of store URL as ``app.session_interface``.

Options: ``--apps bare,ours-redis`` runs only those (the bare app is always
added: every ratio is to it); ``--quick`` makes one short round, a check that
everything works, not a measurement. ``--redis-url redis://host:port/db``
uses that Redis server (one server, ``redis://`` or ``unix://``); without it
the script starts its own ``redis-server`` on a spare loopback port (no
persistence) when a Redis app is selected. Every Redis key the apps write is
under a prefix unique to the run, and those keys are deleted at the end.

Every process it starts (gunicorn, redis-server) is stopped by its pid at the
end, also after an error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import typing as t
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SECRET = "bench-secret-key-0123456789abcdef"
COOKIE_APPS = ("bare", "ours", "flask", "flask+ours")
REDIS_APPS = ("ours-redis", "flask-session", "flask+ours-redis")
APPS = COOKIE_APPS + REDIS_APPS
PATHS = ("/read", "/write")
SEEDED_USER = "4217"  # the ``_user_id`` of cookie_sizes.realistic()

# How the gunicorn workers learn where Redis is and which prefix is theirs.
ENV_REDIS_URL = "WSGI_SESSIONS_BENCH_REDIS_URL"
ENV_REDIS_PREFIX = "WSGI_SESSIONS_BENCH_REDIS_PREFIX"

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


def _store_url(name: str) -> str:
    """The Redis URL of the workers' environment with a key prefix for app ``name``."""
    url = urlsplit(os.environ[ENV_REDIS_URL])
    query = [*parse_qsl(url.query), ("prefix", f"{os.environ[ENV_REDIS_PREFIX]}{name}:")]
    return urlunsplit(url._replace(query=urlencode(query)))


def make_bare() -> t.Any:
    from cookie_sizes import realistic

    # Seeded here: each worker has its own dict, and /seed reaches only one.
    shared: dict[str, t.Any] = dict(realistic(500))
    return _wsgi_app(lambda environ: shared)


def make_ours() -> t.Any:
    from wsgi_sessions import SessionMiddleware, get_session

    return SessionMiddleware(_wsgi_app(get_session), {"secret_key": SECRET})


def make_ours_redis() -> t.Any:
    from wsgi_sessions import SessionMiddleware, get_session

    settings = {"secret_key": SECRET, "store": _store_url("ours")}
    return SessionMiddleware(_wsgi_app(get_session), settings)


def _flask_app(interface: str) -> t.Any:
    import flask
    from cookie_sizes import realistic

    app = flask.Flask("bench")
    app.secret_key = SECRET
    if interface == "ours":
        from wsgi_sessions import SecureCookieSessionInterface

        app.session_interface = SecureCookieSessionInterface()
    elif interface == "ours-redis":
        from wsgi_sessions import ServerSideSessionInterface

        app.session_interface = ServerSideSessionInterface(_store_url("flask-ours"))
    elif interface == "flask-session":
        import redis
        from flask_session.redis import RedisSessionInterface

        client = redis.Redis.from_url(
            os.environ[ENV_REDIS_URL], socket_timeout=2, socket_connect_timeout=2
        )
        prefix = f"{os.environ[ENV_REDIS_PREFIX]}fs:"
        app.session_interface = RedisSessionInterface(
            app, client, key_prefix=prefix, use_signer=False
        )
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
    return _flask_app("flask")


def make_flask_ours() -> t.Any:
    return _flask_app("ours")


def make_flask_session() -> t.Any:
    return _flask_app("flask-session")


def make_flask_ours_redis() -> t.Any:
    return _flask_app("ours-redis")


FACTORIES = {
    "bare": "make_bare()",
    "ours": "make_ours()",
    "flask": "make_flask()",
    "flask+ours": "make_flask_ours()",
    "ours-redis": "make_ours_redis()",
    "flask-session": "make_flask_session()",
    "flask+ours-redis": "make_flask_ours_redis()",
}

# -- processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s (or if interrupted while waiting)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running(
    command: list[str], env: dict[str, str] | None = None, quiet: bool = False
) -> Iterator[int]:
    """A process of ours, stopped by its pid on the way out, whatever happens.

    In a session of its own, so that a Ctrl-C reaches only this script, which
    then stops the processes in order (servers first, Redis last). ``quiet``
    drops its standard output.
    """
    stdout = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(command, env=env, stdout=stdout, start_new_session=True)
    try:
        yield process.pid
    finally:
        stop(process)


def wait_until(ready: t.Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start within {seconds:.0f} s")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def gunicorn(name: str, workers: int, threads: int, env: dict[str, str]) -> Iterator[int]:
    """A gunicorn serving app ``name``; yields its port."""
    port = free_port()
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
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
        "--chdir",
        str(HERE),
        f"http_server:{FACTORIES[name]}",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **env}
    with running(command, env):
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/read"), f"gunicorn for {name}")
        yield port


def _redis_client(url: str) -> t.Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _pings(url: str) -> bool:
    import redis

    try:
        return bool(_redis_client(url).ping())
    except redis.RedisError:
        return False


@contextlib.contextmanager
def own_redis() -> Iterator[str]:
    """A redis-server of ours on a spare loopback port, no persistence; yields its URL."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError(
            "redis-server is not installed; pass --redis-url or leave out Redis apps"
        )
    port = free_port()
    command = [executable, "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no"]
    url = f"redis://127.0.0.1:{port}/0"
    with running(command, quiet=True):  # its log goes to standard output
        wait_until(lambda: _pings(url), f"redis-server on port {port}")
        yield url


def delete_keys(url: str, prefix: str) -> int:
    """Deletes every key under ``prefix``; returns how many there were."""
    client = _redis_client(url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    return len(keys)


# -- one app, over HTTP ---------------------------------------------------------------------


def get(port: int, path: str, cookie: str = "") -> tuple[str, str]:
    """The body and the ``name=value`` of any Set-Cookie of a GET."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if cookie:
        request.add_header("Cookie", cookie)
    with urllib.request.urlopen(request, timeout=5) as response:
        header = response.headers.get("Set-Cookie")
        body = response.read().decode()
    return body, "" if header is None else header.split(";", 1)[0]


def seed(name: str, port: int) -> str:
    """Seeds the app's session; returns its cookie, checked to read the session."""
    _, cookie = get(port, "/seed")
    if name != "bare" and not cookie:
        raise RuntimeError(f"{name}: no cookie from /seed")
    for path in (*PATHS, *PATHS):  # twice: both workers are likely to answer
        body, _ = get(port, path, cookie)
        if body != f"hello {SEEDED_USER}":
            raise RuntimeError(f"{name}: {path} with the seeded cookie answered {body!r}")
    return cookie


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
        f"Cookie: {cookie or 'x=1'}",
        f"http://127.0.0.1:{port}{path}",
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None or "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk failed:\n{output}")
    latency = {f"p{q}": float(v) * _UNIT[u] for q, v, u in _LATENCY.findall(output)}
    return {"rps": float(rate[1]), **latency}


# -- the run ----------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="of each wrk run")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--apps",
        default=",".join(APPS),
        help=f"comma-separated, from {', '.join(APPS)} (bare is always added)",
    )
    parser.add_argument(
        "--redis-url",
        default="",
        help="redis://host:port/db of a server to use (default: start our own)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="one round of 1 s: a check, not a measurement"
    )
    args = parser.parse_args(argv)
    chosen = {name.strip() for name in args.apps.split(",") if name.strip()}
    unknown = sorted(chosen - set(APPS))
    if unknown:
        parser.error(f"unknown app {unknown[0]!r} (known: {', '.join(APPS)})")
    args.apps = [name for name in APPS if name in chosen or name == "bare"]
    if args.quick:
        args.rounds, args.seconds = 1, 1
    return args


def _exit_on_signal(signum: int, frame: t.Any) -> None:
    raise SystemExit(128 + signum)  # unwinds, so every process of ours is stopped


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    redis_apps = [name for name in args.apps if name in REDIS_APPS]

    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    cookie_sizes: dict[str, int] = {}
    notes: list[str] = []
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        if redis_apps:
            url = args.redis_url or stack.enter_context(own_redis())
            prefix = f"wsgi_sessions_http_bench:{uuid.uuid4().hex}:"
            env = {ENV_REDIS_URL: url, ENV_REDIS_PREFIX: prefix}
            version = _redis_client(url).info("server")["redis_version"]
            where = args.redis_url or "its own redis-server on a spare loopback port"
            notes.append(f"Redis {version}: {where}")
            # Registered after Redis started, so it runs before Redis stops
            # and after every gunicorn stopped (an ExitStack unwinds backwards).
            stack.callback(
                lambda: notes.append(
                    f"{delete_keys(url, prefix)} Redis keys under {prefix} deleted at the end"
                )
            )
        ports: dict[str, tuple[int, str]] = {}
        for name in args.apps:
            port = stack.enter_context(gunicorn(name, args.workers, args.threads, env))
            cookie = seed(name, port)
            ports[name] = (port, cookie)
            cookie_sizes[name] = len(cookie)
            run_wrk(port, "/read", cookie, 1, args.connections)  # warm up
        for _ in range(args.rounds):
            for path in PATHS:
                for name, (port, cookie) in ports.items():
                    run = run_wrk(port, path, cookie, args.seconds, args.connections)
                    results.setdefault((name, path), []).append(run)

    command = shlex.join(["python", "bench/http_server.py", *argv])
    print(report(results, args, cookie_sizes, command, notes))


def _versions() -> str:
    names = ("wsgi-sessions", "gunicorn", "flask", "flask-session", "redis")
    found = []
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{name} {metadata.version(name)}")
    return ", ".join(found)


def report(
    results: dict[tuple[str, str], list[dict[str, float]]],
    args: argparse.Namespace,
    cookie_sizes: dict[str, int],
    command: str,
    notes: Iterable[str] = (),
) -> str:
    def median(name: str, path: str, key: str) -> float:
        return statistics.median(run[key] for run in results[name, path])

    lines = [
        f"command: {command}",
        "",
        f"gunicorn gthread, {args.workers} workers x {args.threads} threads; wrk -t1"
        f" -c{args.connections} -d{args.seconds}s, keep-alive; medians of {args.rounds}"
        " rounds",
        f"Python {sys.version.split()[0]}; {_versions()}",
        *notes,
    ]
    for path in PATHS:
        base = {key: median("bare", path, key) for key in ("rps", "p50", "p99")}
        lines += [
            "",
            f"{path}:",
            "",
            "| app | cookie B | requests/s | p50 µs | p99 µs | rps / bare | p50 / bare"
            " | p99 / bare |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name in args.apps:
            got = {key: median(name, path, key) for key in ("rps", "p50", "p99")}
            lines.append(
                f"| {name} | {cookie_sizes[name]} | {got['rps']:.0f} | {got['p50']:.0f}"
                f" | {got['p99']:.0f} | {got['rps'] / base['rps']:.2f}"
                f" | {got['p50'] / base['p50']:.2f} | {got['p99'] / base['p99']:.2f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # every process of ours was stopped on the way out
        sys.exit(130)
