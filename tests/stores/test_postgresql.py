"""What is particular to the PostgreSQL store: its URL, one round trip per
operation, the database's clock, its schema, pools across fork(), failures.

The shared store suite (test_contract, test_concurrency, test_races) runs
against it through the ``store_pair`` fixture; these are the rest. Every test
uses a table of its own (``postgresql_table``), dropped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import typing as t
import warnings
from collections.abc import Iterator

import pytest
import webtest

from wsgi_sessions import SessionMiddleware, get_session
from wsgi_sessions.cli import main as cli
from wsgi_sessions.errors import SessionStoreError
from wsgi_sessions.stores import store_from_url
from wsgi_sessions.stores.base import Ended

pytest.importorskip("psycopg")
pytest.importorskip("psycopg_pool")

import psycopg
from psycopg import pq
from psycopg_pool import ConnectionPool

from wsgi_sessions.stores.postgresql import PostgreSQLStore, parse_url

KEY = "{pgtest01}session"
SECRET = "postgresql test secret"


def _url(base: str, **params: str) -> str:
    joiner = "&" if "?" in base else "?"
    return base + joiner + "&".join(f"{k}={v}" for k, v in params.items()) if params else base


def _exists(url: str, table: str) -> bool:
    with psycopg.connect(url, autocommit=True) as db:
        row = db.execute("SELECT to_regclass(%s)", (f'"{table}"',)).fetchone()
    return row is not None and row[0] is not None


# -- the URL ---------------------------------------------------------------------------------


def test_store_from_url_makes_a_postgresql_store(
    postgresql_url: str, postgresql_table: str
) -> None:
    for scheme in ("postgresql", "postgres"):
        url = _url(postgresql_url.replace("postgresql", scheme, 1), table=postgresql_table)
        store = store_from_url(url)
        assert isinstance(store, PostgreSQLStore)
        assert store.table == postgresql_table
        assert store.create(f"{{pg}}{scheme}", {"a": "1"}, 60)
        assert store.load(f"{{pg}}{scheme}") == {"a": "1"}
        store.close()


def test_libpq_parameters_pass_through(postgresql_url: str, postgresql_table: str) -> None:
    name = f"wsgi_sessions_{postgresql_table[-16:]}"
    url = _url(
        postgresql_url,
        table=postgresql_table,
        application_name=name,
        options="-c%20statement_timeout%3D1234",
    )
    store = PostgreSQLStore(url)
    assert "table" not in store.conninfo
    assert store.create(KEY, {}, 60)
    pool = store._get_pool()
    with pool.connection() as conn:
        assert conn.info.parameter_status("application_name") == name
        assert conn.execute("SHOW statement_timeout").fetchone() == ("1234ms",)
    store.close()


def test_our_parameters_and_their_defaults() -> None:
    default = parse_url("postgresql://app@db/app")
    assert (default.table, default.pool_min, default.pool_max, default.pool_timeout) == (
        "wsgi_sessions",
        1,
        10,
        2.0,
    )
    assert default.create is True
    assert "connect_timeout=2" in default.conninfo  # never an unbounded connect
    options = parse_url(
        "postgres://app@db:5433/app?sslmode=disable&table=web.sessions&pool_min=2"
        "&pool_max=4&pool_timeout=0.5&create=false&connect_timeout=7"
    )
    assert options.table == "web.sessions"
    assert (options.pool_min, options.pool_max, options.pool_timeout) == (2, 4, 0.5)
    assert options.create is False
    assert options.conninfo == "postgres://app@db:5433/app?sslmode=disable&connect_timeout=7"


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("pool_max=0", "pool_max"),
        ("pool_min=x", "pool_min"),
        ("pool_min=5&pool_max=2", "pool_min"),
        ("pool_timeout=-1", "pool_timeout"),
        ("create=maybe", "create"),
        ("table=Sessions", "table"),
        ("table=a;drop", "table"),
        ("table=a.b.c", "table"),
        ("table=x&table=y", "twice"),
        ("no_such_libpq_option=1", "libpq"),
    ],
)
def test_a_bad_url_is_a_value_error_naming_the_setting_without_the_password(
    query: str, problem: str
) -> None:
    url = f"postgresql://app:hunter2@db/app?password=hunter2&{query}"
    with pytest.raises(ValueError, match=problem) as info:
        store_from_url(url)
    message = str(info.value)
    assert "setting 'store'" in message
    assert "hunter2" not in message
    assert "***" in message


def test_a_database_that_cannot_be_reached_at_start_up_says_so_without_the_password() -> None:
    # A port with nothing listening, on loopback.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SessionStoreError, match="cannot create") as info:
        PostgreSQLStore(f"postgresql://app:hunter2@127.0.0.1:{port}/app")
    assert "hunter2" not in str(info.value)


# -- one round trip per operation ----------------------------------------------------------


class RoundTrips:
    """Counts the round trips of a real connection from libpq's own protocol
    trace: each ReadyForQuery the server sends ends one."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the fixture

    def configure(self, conn: psycopg.Connection[t.Any]) -> None:
        conn.pgconn.trace(self.file.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    def count(self) -> int:
        self.file.seek(0)
        return sum(
            1 for line in self.file.read().decode().splitlines() if "\tReadyForQuery" in line
        )


@pytest.fixture
def counted_store(
    postgresql_url: str, postgresql_table: str
) -> Iterator[tuple[PostgreSQLStore, RoundTrips]]:
    trips = RoundTrips()
    pool: ConnectionPool[t.Any] = ConnectionPool(
        postgresql_url,
        min_size=1,
        max_size=1,
        kwargs={"autocommit": True},
        configure=trips.configure,
        open=False,
    )
    store = PostgreSQLStore(pool, table=postgresql_table)
    store.touch(KEY)  # the pool opens, its one connection connects
    yield store, trips
    pool.close()
    trips.file.close()


def test_every_operation_is_one_round_trip(
    counted_store: tuple[PostgreSQLStore, RoundTrips],
) -> None:
    store, trips = counted_store
    operations: dict[str, t.Callable[[int], object]] = {
        "create": lambda i: store.create(f"{{pg}}{i}", {"a": "1", "b": "2"}, 60),
        "load": lambda i: store.load(f"{{pg}}{i}"),
        "load touch": lambda i: store.load(f"{{pg}}{i}", touch=True),
        "apply": lambda i: store.apply(f"{{pg}}{i}", {"a": "2", "c": "3"}, ["b"], lifetime=120),
        "touch": lambda i: store.touch(f"{{pg}}{i}"),
        "rename": lambda i: store.rename(f"{{pg}}{i}", f"{{pg}}{i}-new"),
        "end": lambda i: store.end(f"{{pg}}{i}"),  # follows the rename: two rows
        "purge": lambda i: store.purge_expired(),
    }
    # psycopg prepares a statement on its 5th use on a connection: that one
    # use costs one round trip more (Parse, then Bind/Execute), once per
    # connection and statement. Every other use is one round trip.
    counts: dict[str, list[int]] = {name: [] for name in operations}
    for i in range(8):
        for name, operation in operations.items():
            before = trips.count()
            operation(i)
            counts[name].append(trips.count() - before)
    for name, seen in counts.items():
        assert seen[:4] == [1, 1, 1, 1], name
        assert sorted(seen[4:]) in ([1, 1, 1, 1], [1, 1, 1, 2]), name
        assert seen[-2:] == [1, 1], name
    assert isinstance(store.load("{pg}7-new"), Ended)


def test_a_request_is_one_round_trip_per_store_call(
    counted_store: tuple[PostgreSQLStore, RoundTrips],
) -> None:
    """Through the middleware: a read is one round trip (load with the expiry
    refresh), a blind write is one (apply), a new session is one (create)."""
    store, trips = counted_store

    def view(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        session = get_session(environ)
        path = environ["PATH_INFO"]
        if path == "/write":
            session["k"] = "v"
        elif path == "/read":
            session.get("k")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    app = webtest.TestApp(SessionMiddleware(view, {"secret_key": SECRET, "store": store}))
    for _ in range(6):  # past psycopg's preparing of each statement
        app.get("/write")
        app.get("/read")
    counts = {}
    for path in ("/write", "/read", "/write", "/nothing"):
        before = trips.count()
        app.get(path)
        counts[path] = trips.count() - before
    assert counts == {"/write": 1, "/read": 1, "/nothing": 0}


# -- the database's clock ------------------------------------------------------------------


def test_expiry_runs_on_the_database_clock_not_the_apps(
    postgresql_url: str, postgresql_table: str
) -> None:
    # An app server whose clock is a day ahead (or behind) must neither see
    # live sessions as expired nor keep expired ones: only markers record it.
    for skew in (86_400.0, -86_400.0):
        store = PostgreSQLStore(
            postgresql_url, table=postgresql_table, clock=lambda skew=skew: time.time() + skew
        )
        key = f"{{pg}}skew{skew}"
        assert store.create(key, {"a": "1"}, 2)
        assert store.load(key) == {"a": "1"}
        assert store.end(key) is True
        ended = store.load(key)
        assert isinstance(ended, Ended)
        assert abs(ended.at - (time.time() + skew)) < 60  # the app's time, as recorded
        store.close()
    short = PostgreSQLStore(postgresql_url, table=postgresql_table, clock=lambda: 0.0)
    short.create("{pg}short", {"a": "1"}, 1)
    time.sleep(1.3)
    assert short.load("{pg}short") is None
    short.close()


def test_fields_are_one_jsonb_object_written_per_key(
    postgresql_url: str, postgresql_table: str
) -> None:
    store = PostgreSQLStore(postgresql_url, table=postgresql_table)
    store.create(KEY, {"a": '"1"', "b": "[2]"}, 60)
    store.apply(KEY, {"c": "{}"}, ["a"])
    with psycopg.connect(postgresql_url, autocommit=True) as db:
        row = db.execute(
            f'SELECT jsonb_typeof(fields), fields FROM "{postgresql_table}" WHERE key = %s',
            (KEY,),
        ).fetchone()
    assert row == ("object", {"b": "[2]", "c": "{}"})
    store.close()


# -- the schema ----------------------------------------------------------------------------


def test_the_schema_command_prints_ddl_that_makes_a_working_store(
    postgresql_url: str, postgresql_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _url(postgresql_url, table=postgresql_table)
    assert cli(["schema", "--store", url]) == 0
    ddl = capsys.readouterr().out
    assert "CREATE TABLE IF NOT EXISTS" in ddl
    assert f'"{postgresql_table}_expires_at"' in ddl
    assert not _exists(postgresql_url, postgresql_table)  # printed, not run
    with psycopg.connect(postgresql_url, autocommit=True) as db:
        db.execute(ddl)  # as a DBA would, with another user
        db.execute(ddl)  # and again: it is idempotent
    store = store_from_url(_url(url, create="false"))
    assert store.create(KEY, {"a": "1"}, 60)
    assert store.rename(KEY, "{pgtest01}new") is True
    assert store.end(KEY) is True
    assert isinstance(store.load("{pgtest01}new"), Ended)
    store.close()


def test_with_create_false_nothing_is_made_and_a_missing_table_is_a_store_error(
    postgresql_url: str, postgresql_table: str
) -> None:
    for store in (
        store_from_url(_url(postgresql_url, table=postgresql_table, create="false")),
        store_from_url(_url(postgresql_url, table=postgresql_table), create=False),
    ):
        with pytest.raises(SessionStoreError, match="wsgi-sessions schema"):
            store.load(KEY)
        store.close()
    assert not _exists(postgresql_url, postgresql_table)


def test_purge_command(
    postgresql_url: str, postgresql_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _url(postgresql_url, table=postgresql_table)
    store = store_from_url(url)
    store.create("{pg}short", {"a": "1"}, 1)
    store.create("{pg}long", {"a": "1"}, 60)
    time.sleep(1.3)
    assert cli(["purge", "--store", url]) == 0
    assert capsys.readouterr().out.strip() == "purged 1 expired session(s)"
    assert store.load("{pg}long") == {"a": "1"}
    store.close()
    missing = _url(postgresql_url, table=postgresql_table + "_missing")
    assert cli(["purge", "--store", missing]) == 1
    assert "wsgi-sessions schema" in capsys.readouterr().err
    assert not _exists(postgresql_url, postgresql_table + "_missing")


# -- ready pools -----------------------------------------------------------------------------


def test_a_ready_pool_is_used_as_it_is(postgresql_url: str, postgresql_table: str) -> None:
    pool: ConnectionPool[t.Any] = ConnectionPool(
        postgresql_url, min_size=1, max_size=2, kwargs={"autocommit": True}, open=False
    )
    store = PostgreSQLStore(pool, table=postgresql_table)
    assert store.create(KEY, {"a": "1"}, 60)
    assert store.load(KEY) == {"a": "1"}
    store.close()  # the caller's pool: left open
    assert not pool.closed
    pool.close()


def test_a_ready_pool_without_autocommit_is_refused(postgresql_url: str) -> None:
    pool: ConnectionPool[t.Any] = ConnectionPool(postgresql_url, open=False)
    with pytest.raises(ValueError, match="autocommit"):
        PostgreSQLStore(pool)


# -- fork ------------------------------------------------------------------------------------


def _backend_pid(store: PostgreSQLStore) -> int:
    pool = store._get_pool()
    with pool.connection() as conn:
        return conn.info.backend_pid


def test_a_forked_child_opens_its_own_connections_and_leaves_the_parents_alone(
    postgresql_url: str, postgresql_table: str
) -> None:
    store = PostgreSQLStore(postgresql_url, table=postgresql_table, pool_max=1)
    assert store.create(KEY, {"a": "1"}, 60)
    parent_backend = _backend_pid(store)
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12 warns about fork() in a process with threads (the
        # pool's): the child here only runs this test's code.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: exits with 0 only if everything held
        status = 1
        try:
            ok = store.apply(KEY, {"child": "1"}, []) is True
            child_backend = _backend_pid(store)
            os.write(write, str(child_backend).encode())
            store.close()
            # What a worker's exit may do: finalize the connections it
            # inherited (a Terminate sent on the parent's socket would end the
            # parent's session with the server).
            for conn in list(store._connections):
                conn.close()
            status = 0 if ok and child_backend != parent_backend else 1
        finally:
            os._exit(status)
    os.close(write)
    _, wait_status = os.waitpid(pid, 0)
    child_backend = int(os.read(read, 64) or b"0")
    os.close(read)
    assert os.waitstatus_to_exitcode(wait_status) == 0
    assert child_backend not in (0, parent_backend)
    # The parent's connection survived the child's exit: same backend, working.
    assert store.load(KEY) == {"a": "1", "child": "1"}
    assert _backend_pid(store) == parent_backend
    store.close()


def test_a_ready_pool_in_use_before_fork_is_refused_in_the_child(
    postgresql_url: str, postgresql_table: str
) -> None:
    pool: ConnectionPool[t.Any] = ConnectionPool(
        postgresql_url, min_size=1, max_size=1, kwargs={"autocommit": True}, open=False
    )
    store = PostgreSQLStore(pool, table=postgresql_table)
    assert store.create(KEY, {"a": "1"}, 60)
    parent_backend = _backend_pid(store)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # as above
        pid = os.fork()
    if pid == 0:
        status = 1
        try:
            refused = 0
            for _ in range(2):  # refused every time, not only the first
                try:
                    store.load(KEY)
                except SessionStoreError as exc:
                    refused += "each worker" in str(exc)
            for conn in list(store._connections):
                conn.close()  # harmless here: detached
            status = 0 if refused == 2 else 1
        finally:
            os._exit(status)
    _, wait_status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(wait_status) == 0
    assert store.load(KEY) == {"a": "1"}
    assert _backend_pid(store) == parent_backend
    pool.close()


# -- failures --------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _session_app(store: PostgreSQLStore) -> webtest.TestApp:
    def view(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        session = get_session(environ)
        session["visits"] = session.get("visits", 0) + 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(session["visits"]).encode()]

    return webtest.TestApp(SessionMiddleware(view, {"secret_key": SECRET, "store": store}))


def test_a_database_that_is_down_is_a_503_before_any_header() -> None:
    store = PostgreSQLStore(
        f"postgresql://postgres@127.0.0.1:{_free_port()}/test?pool_timeout=0.5", create=False
    )
    app = _session_app(store)
    started = time.monotonic()
    response = app.get("/", status=503)
    assert time.monotonic() - started < 5
    assert "Set-Cookie" not in response.headers
    with pytest.raises(SessionStoreError) as info:
        store.load(KEY)
    assert isinstance(info.value.__cause__, psycopg.OperationalError)
    store.close()


def test_connections_cut_by_the_server_cost_one_503_and_recover_without_restart(
    postgresql_url: str, postgresql_table: str
) -> None:
    name = f"wsgi_sessions_{postgresql_table[-16:]}"
    url = _url(postgresql_url, table=postgresql_table, application_name=name, pool_min="3")
    store = PostgreSQLStore(url, pool_max=3)
    app = _session_app(store)
    assert app.get("/").text == "1"
    deadline = time.monotonic() + 10
    while store._get_pool().get_stats().get("pool_available", 0) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # Terminate this test's own backends (by their application_name), as a
    # database restart or a failover would.
    with psycopg.connect(postgresql_url, autocommit=True) as db:
        cut = db.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            (name,),
        ).fetchone()
    assert cut is not None and cut[0] == 3
    statuses = [app.get("/", expect_errors=True).status_int for _ in range(4)]
    # One request meets a dead connection (503, its write not made); the
    # pool's other dead connections are found and replaced at once.
    assert statuses == [503, 200, 200, 200]
    assert app.get("/").text == "5"  # the session survived: 1, then 2, 3, 4 after the 503
    store.close()


# -- a real pre-fork server ------------------------------------------------------------------

_GUNICORN_APP = """
import os, time
from wsgi_sessions import SessionMiddleware, get_session
from wsgi_sessions.stores import store_from_url

store = store_from_url(os.environ["TEST_STORE_URL"])
# Used in the master before the workers fork: its pool is open there.
store.load("{warmup}key")
pool = store._get_pool()
with pool.connection() as conn:
    MASTER_BACKEND = conn.info.backend_pid

def view(environ, start_response):
    session = get_session(environ)
    if environ["PATH_INFO"] == "/write":
        time.sleep(0.05)  # so that concurrent requests go to both workers
        session[environ["QUERY_STRING"]] = os.getpid()
    with store._get_pool().connection() as conn:
        backend = conn.info.backend_pid
    body = f"{os.getpid()} {backend} {MASTER_BACKEND} {sorted(session.keys())}".encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]

app = SessionMiddleware(view, {"secret_key": "prefork secret", "store": store})
"""


def test_sessions_work_across_gunicorn_workers_without_shared_connections(
    postgresql_url: str,
    postgresql_table: str,
    tmp_path: t.Any,
    service_unavailable: t.Callable[[str], t.NoReturn],
) -> None:
    import threading
    import urllib.request

    if not _which("gunicorn"):
        service_unavailable("gunicorn is not installed")
    (tmp_path / "prefork_app.py").write_text(_GUNICORN_APP)
    port = _free_port()
    env = {
        **os.environ,
        "TEST_STORE_URL": _url(postgresql_url, table=postgresql_table, pool_max="1"),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
    }
    import gunicorn

    command = [_which("gunicorn"), "--preload", "--workers", "2", "--bind", f"127.0.0.1:{port}"]
    if int(gunicorn.__version__.split(".")[0]) >= 24:  # its control socket is shared by default
        command += ["--control-socket", str(tmp_path / "gunicorn.ctl")]
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [*command, "prefork_app:app"],  # --preload: the app and the store made in the master
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(base + "/write?start", timeout=5) as first:
                    cookie = first.headers["Set-Cookie"].split(";", 1)[0]
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
                assert time.monotonic() < deadline
                time.sleep(0.1)
        seen: list[tuple[int, int, int]] = []
        lock = threading.Lock()

        def request(path: str) -> str:
            req = urllib.request.Request(base + path, headers={"Cookie": cookie})
            with urllib.request.urlopen(req, timeout=10) as response:
                text = response.read().decode()
            worker, backend, master_backend = (int(x) for x in text.split(" ", 3)[:3])
            with lock:
                seen.append((worker, backend, master_backend))
            return text

        def pair(paths: list[str]) -> None:
            threads = [threading.Thread(target=request, args=(path,)) for path in paths]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(20)

        # Until both workers have booted and answered.
        while len({worker for worker, _, _ in seen}) < 2:
            assert time.monotonic() < deadline, seen
            pair(["/read", "/read"])
        for round_ in range(10):  # two requests at once, each writing its own key
            pair([f"/write?r{round_}-{i}" for i in (0, 1)])
        final = request("/read")
    finally:
        process.terminate()
        process.wait(20)
        log.close()
    assert process.returncode == 0, (tmp_path / "gunicorn.log").read_text()
    expected = sorted(["start"] + [f"r{r}-{i}" for r in range(10) for i in (0, 1)])
    assert final.split(" ", 3)[3] == str(expected)  # every write, from either worker
    workers = {worker for worker, _, _ in seen}
    assert len(workers) == 2, seen
    backends = {worker: {b for w, b, _ in seen if w == worker} for worker in workers}
    first_worker, second_worker = sorted(workers)
    assert not backends[first_worker] & backends[second_worker]  # no shared connection
    master_backend = seen[0][2]
    assert all(master_backend not in b for b in backends.values())


def _which(name: str) -> str:
    import shutil

    found = shutil.which(name) or shutil.which(os.path.join(os.path.dirname(sys.executable), name))
    return found or ""
