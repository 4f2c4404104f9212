"""Server-side session benchmark: our stores against Beaker and Flask-Session.

Scenarios (one WSGI request each, called directly, no HTTP):

- S0: no cookie; the app does not touch the session.
- S1: a valid cookie for a session of 5 small keys; the app reads one key.
- S2: the same cookie; the app writes one key without reading.
- S3: no cookie; the app writes two keys (a new session each time).

MySQL/MariaDB (``--mysql-url``, default WSGI_SESSIONS_MYSQL_URL or
mysql://root@127.0.0.1:3306/test; ``--mysql-url ''`` to leave out): our
MySQLStore against Flask-Session's SQLAlchemy backend on the same database,
round trips counted around mysqlclient (bench/mysql_contenders.py).

Contenders: our cookie session (the baseline for the memory store), our
memory/SQLite/Redis stores through SessionMiddleware; Beaker's
SessionMiddleware with memory, file and ext:redis; Flask-Session's
RedisSessionInterface called directly (open_session/save_session around the
app, werkzeug Request/Response, no Flask routing); and the floor: one raw
redis-py round trip (PING and HGET).

Round trips are counted by wrapping redis-py's ``Connection.send_packed_command``
(one send per command or pipeline): a counter around the real client. SQLite
statements are counted with ``sqlite3.Connection.set_trace_callback``.

Run::

    python bench/server.py            # WSGI_SESSIONS_REDIS_URL or redis://127.0.0.1:6379/15

Keys it writes to Redis carry a prefix unique to the run (Beaker's, which has
no prefix, are recorded as they are written) and are deleted at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import typing as t
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import redis
from harness import call_wsgi, make_environ, measure

from wsgi_sessions import ServerSideSessionInterface, SessionMiddleware, get_session
from wsgi_sessions.stores import MemoryStore, SQLiteStore
from wsgi_sessions.stores.redis import RedisStore

SECRET = "benchmark secret key, long enough to be realistic"
SCENARIOS = ("S0", "S1", "S2", "S3")
SEED = {f"k{i}": f"value {i}" for i in range(5)}

App = Callable[[dict[str, t.Any], t.Any], Iterable[bytes]]
Accessor = Callable[[dict[str, t.Any]], t.Any]


# -- counting -----------------------------------------------------------------------------


class RedisCounter:
    """Counts round trips of every redis-py client, and records the keys that
    Beaker (which takes no key prefix) writes, so they can be deleted."""

    def __init__(self) -> None:
        self.sends = 0
        self.beaker_keys: set[str] = set()
        connection = redis.connection.AbstractConnection
        original_send = connection.send_packed_command
        original_execute = redis.Redis.execute_command
        counter = self

        def send_packed_command(self: t.Any, command: t.Any, check_health: bool = True) -> None:
            counter.sends += 1
            original_send(self, command, check_health)

        def execute_command(self: t.Any, *args: t.Any, **options: t.Any) -> t.Any:
            if len(args) > 1 and isinstance(args[1], str) and args[1].startswith("beaker_"):
                counter.beaker_keys.add(args[1])
            return original_execute(self, *args, **options)

        connection.send_packed_command = send_packed_command  # type: ignore[method-assign]
        redis.Redis.execute_command = execute_command  # type: ignore[method-assign]


class SQLiteCounter:
    """Counts SQL statements a store's connection runs."""

    def __init__(self, store: SQLiteStore) -> None:
        self.statements = 0
        store._connection().set_trace_callback(self._count)

    def _count(self, statement: str) -> None:
        self.statements += 1


# -- the app, parameterized by how it reaches its session ---------------------------------


def make_app(
    session_of: Accessor,
    save: Callable[[t.Any], None] | None = None,
    seed: Mapping[str, t.Any] = SEED,
) -> App:
    """One WSGI app for all scenarios; PATH_INFO picks the scenario (``seed``:
    the session /seed creates, with a ``k1`` to read; bench/redis_sweep.py
    passes larger ones)."""
    body = [b"ok"]
    headers = [("Content-Type", "text/plain"), ("Content-Length", "2")]

    def app(environ: dict[str, t.Any], start_response: t.Any) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path != "/S0":
            session = session_of(environ)
            if path == "/S1":
                session["k1"]
            elif path == "/all":  # every value (bench/redis_sweep.py's "read all")
                for _item in session.items():
                    pass
            elif path == "/S2":
                session["k2"] = "changed"
            elif path == "/S3":
                session["a"] = 1
                session["b"] = 2
            elif path == "/seed":
                session.update(seed)
            if save is not None and path not in ("/S1", "/all"):
                save(session)
        start_response("200 OK", list(headers))
        return body

    return app


def seed_cookie(app: App, name: str) -> str:
    """Create the 5-key session and return the ``Cookie`` header for it."""
    captured: list[tuple[str, str]] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
    ) -> t.Any:
        captured.extend(headers)
        return lambda data: None

    for _ in app(make_environ("/seed"), start_response):
        pass
    for header, raw in captured:
        value = raw.strip()  # Beaker starts its value with a space
        if header.lower() == "set-cookie" and value.startswith(name + "="):
            return value.split(";", 1)[0]
    raise RuntimeError(f"no {name} cookie was set")


def ours(store: t.Any, seed: Mapping[str, t.Any] = SEED) -> App:
    settings = {"secret_key": SECRET}
    interface = None if store is None else ServerSideSessionInterface(store)
    return SessionMiddleware(make_app(get_session, seed=seed), settings, interface=interface)


def beaker(kind: str, tmp: Path, redis_url: str, seed: Mapping[str, t.Any] = SEED) -> App:
    from beaker.middleware import SessionMiddleware as BeakerMiddleware

    options = {
        "session.type": kind,
        "session.key": "session",
        "session.secret": SECRET,
        "session.data_dir": str(tmp / f"beaker-{kind}"),
        "session.lock_dir": str(tmp / f"beaker-{kind}-lock"),
        "session.httponly": True,
    }
    if kind == "ext:redis":
        options["session.url"] = redis_url
    app = make_app(lambda environ: environ["beaker.session"], lambda session: session.save(), seed)
    return BeakerMiddleware(app, options)  # type: ignore[no-any-return]


def flask_session(client: redis.Redis, prefix: str, seed: Mapping[str, t.Any] = SEED) -> App:
    """Flask-Session's Redis interface around the app, the way Flask calls it."""
    import flask
    from flask_session.redis import RedisSessionInterface

    flask_app = flask.Flask("bench")
    flask_app.secret_key = SECRET
    interface = RedisSessionInterface(flask_app, client, key_prefix=prefix, use_signer=False)
    return around_flask_interface(flask_app, interface, seed)


def around_flask_interface(
    flask_app: t.Any,
    interface: t.Any,
    seed: Mapping[str, t.Any] = SEED,
    context: Callable[[], t.ContextManager[object]] | None = None,
) -> App:
    """The app, with a Flask session interface's open_session/save_session
    around it (inside ``context()`` if given, e.g. an app context)."""
    key = "flask_session.session"
    inner = make_app(lambda environ: environ[key], seed=seed)

    def app(environ: dict[str, t.Any], start_response: t.Any) -> Iterable[bytes]:
        with context() if context is not None else contextlib.nullcontext():
            request = flask_app.request_class(environ)
            environ[key] = session = interface.open_session(flask_app, request)
            response = flask_app.response_class()

            def capture(
                status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
            ) -> t.Any:
                response.status = status
                response.headers.extend(headers)
                return lambda data: None

            body = inner(environ, capture)
            interface.save_session(flask_app, session, response)
        start_response(response.status, response.headers.to_wsgi_list())
        return body

    return app


def with_raw_round_trip(app: App, client: redis.Redis, prefix: str) -> App:
    def floor_app(environ: dict[str, t.Any], start_response: t.Any) -> Iterable[bytes]:
        body = app(environ, start_response)
        if environ["PATH_INFO"] != "/S0":
            client.hget(prefix + "floor", "k")
        return body

    return floor_app


# -- running ------------------------------------------------------------------------------


Result = dict[str, tuple[float, int | None]]


class Contender(t.NamedTuple):
    name: str
    app: App
    count: Callable[[], int] | None


def prepare(contender: Contender) -> tuple[dict[str, Callable[[], None]], dict[str, int | None]]:
    """Seed the session, warm each scenario up and count its round trips."""
    app, count = contender.app, contender.count
    cookie = seed_cookie(app, "session")
    calls: dict[str, Callable[[], None]] = {}
    trips: dict[str, int | None] = {}
    for scenario in SCENARIOS:
        environ = make_environ(f"/{scenario}", cookie if scenario in ("S1", "S2") else None)
        call_wsgi(app, environ)  # warm up (script loading, connections)
        before = count() if count else 0
        call_wsgi(app, environ)
        trips[scenario] = count() - before if count else None
        calls[scenario] = lambda environ=environ: call_wsgi(app, environ)
    return calls, trips


def measure_all(
    contenders: list[Contender],
    floors: dict[str, Callable[[], object]],
    rounds: int,
    seconds: float,
    after_prepare: Callable[[], None] | None = None,
) -> tuple[dict[str, Result], dict[str, float]]:
    """Round-robin: every contender and floor once per round, the median over
    rounds, so a machine that gets busier or quieter skews no one.
    ``after_prepare`` runs between counting and timing (to stop a tracer)."""
    prepared = {contender.name: prepare(contender) for contender in contenders}
    if after_prepare is not None:
        after_prepare()
    samples: dict[tuple[str, str], list[float]] = {}
    for round_ in range(rounds):
        for name, func in floors.items():
            samples.setdefault(("floor", name), []).append(measure(func, seconds=seconds, repeat=1))
        for name, (calls, _trips) in prepared.items():
            for scenario, call in calls.items():
                micros = measure(call, seconds=seconds, repeat=1)
                samples.setdefault((name, scenario), []).append(micros)
        print(f"  round {round_ + 1}/{rounds}", file=sys.stderr)
    rows = {
        name: {s: (statistics.median(samples[(name, s)]), trips[s]) for s in SCENARIOS}
        for name, (_calls, trips) in prepared.items()
    }
    floor = {name: statistics.median(samples[("floor", name)]) for name in floors}
    return rows, floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=7, help="round-robin rounds (median)")
    parser.add_argument("--seconds", type=float, default=0.2, help="time per measurement")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("WSGI_SESSIONS_REDIS_URL", "redis://127.0.0.1:6379/15"),
    )
    parser.add_argument(  # MySQL: bench/mysql_contenders.py; "" leaves them out
        "--mysql-url",
        default=os.environ.get("WSGI_SESSIONS_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
    )
    args = parser.parse_args()
    mysql = None
    counter = RedisCounter()
    prefix = f"wsgi_sessions_bench:{uuid.uuid4().hex}:"
    client = redis.Redis.from_url(args.redis_url, socket_timeout=2, socket_connect_timeout=2)
    client.ping()
    redis_trips = lambda: counter.sends  # noqa: E731
    floors: dict[str, Callable[[], object]] = {
        "PING": client.ping,
        "HGET": lambda: client.hget(prefix + "floor", "k"),
    }
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            sqlite_store = SQLiteStore(tmp / "sessions.db")
            sqlite_counter = SQLiteCounter(sqlite_store)
            # S3 makes a new session per call, far beyond the default bound
            # (whose eviction would drop S1's session): unbounded, as Beaker's is.
            memory_app = ours(MemoryStore(max_sessions=sys.maxsize))
            contenders = [
                Contender("ours cookie", ours(None), None),
                Contender("ours memory", memory_app, None),
                Contender("ours sqlite", ours(sqlite_store), lambda: sqlite_counter.statements),
                Contender("ours redis", ours(RedisStore(client, prefix=prefix)), redis_trips),
                Contender("beaker memory", beaker("memory", tmp, args.redis_url), None),
                Contender("beaker file", beaker("file", tmp, args.redis_url), None),
                Contender(
                    "beaker ext:redis", beaker("ext:redis", tmp, args.redis_url), redis_trips
                ),
                Contender(
                    "flask-session redis", flask_session(client, prefix + "fs:"), redis_trips
                ),
                # Our CPU work and one raw round trip back to back: what a
                # one-round-trip request costs at best on this machine.
                Contender(
                    "floor: ours memory + raw HGET",
                    with_raw_round_trip(memory_app, client, prefix),
                    None,
                ),
            ]
            if args.mysql_url:
                from mysql_contenders import MySQLContenders

                mysql = MySQLContenders(args.mysql_url, ours, make_app, SECRET)
                contenders += [Contender(*contender) for contender in mysql.contenders]
            rows, floor = measure_all(contenders, floors, args.rounds, args.seconds)
    finally:
        if mysql is not None:
            mysql.close()
        keys = list(client.scan_iter(match=prefix + "*", count=1000)) + sorted(counter.beaker_keys)
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    print(f"command: python bench/server.py --rounds {args.rounds} --seconds {args.seconds}")
    report(rows, floor)


def print_rows(rows: dict[str, Result]) -> None:
    """µs per request (round trips) of each contender, as a Markdown table."""
    print("| contender | " + " | ".join(f"{s} µs (trips)" for s in SCENARIOS) + " |")
    print("|---|" + "---:|" * len(SCENARIOS))
    for name, results in rows.items():
        cells = []
        for scenario in SCENARIOS:
            micros, trips = results[scenario]
            cells.append(f"{micros:.1f} ({'-' if trips is None else trips})")
        print(f"| {name} | " + " | ".join(cells) + " |")


def report(rows: dict[str, Result], floor: dict[str, float]) -> None:
    raw = floor["HGET"]
    print(f"floor: one raw redis-py round trip: PING {floor['PING']:.1f} µs, HGET {raw:.1f} µs")
    print()
    print_rows(rows)
    print()
    print("Redis-backed time / (round trips x raw HGET round trip); target <= 1.25,")
    print("and ours / the in-context floor (our memory-store work + one raw HGET):")
    print("| contender | " + " | ".join(SCENARIOS[1:]) + " |")
    print("|---|" + "---:|" * 3)
    for name in ("ours redis", "beaker ext:redis", "flask-session redis"):
        cells = []
        for scenario in SCENARIOS[1:]:
            micros, trips = rows[name][scenario]
            cells.append(f"{micros / (trips * raw):.2f}" if trips else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")
    floor_row = rows["floor: ours memory + raw HGET"]
    cells = [f"{rows['ours redis'][s][0] / floor_row[s][0]:.2f}" for s in SCENARIOS[1:]]
    print("| ours redis / in-context floor | " + " | ".join(cells) + " |")
    print()
    print("Peer time / ours, same backend (higher = we are faster):")
    print("| comparison | " + " | ".join(SCENARIOS) + " |")
    print("|---|" + "---:|" * len(SCENARIOS))
    pairs = [
        ("ours memory / ours cookie", "ours memory", "ours cookie"),
        ("beaker memory / ours memory", "beaker memory", "ours memory"),
        ("beaker file / ours sqlite", "beaker file", "ours sqlite"),
        ("beaker ext:redis / ours redis", "beaker ext:redis", "ours redis"),
        ("flask-session redis / ours redis", "flask-session redis", "ours redis"),
    ]
    if "ours mysql" in rows:
        pairs.append(
            (
                "flask-session sqlalchemy / ours mysql",
                "flask-session sqlalchemy mysql",
                "ours mysql",
            )
        )
    for label, peer, base in pairs:
        cells = [f"{rows[peer][s][0] / rows[base][s][0]:.2f}" for s in SCENARIOS]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
