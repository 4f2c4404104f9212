"""What is particular to the MySQL/MariaDB store: URLs, one round trip per
operation, the schema, the pool across threads and fork(), and failures
(a database that is down, hung or restarted) on a real server, through a
TCP proxy of the test's own that it can cut."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import typing as t
from collections.abc import Iterator

import pytest
from webtest import TestApp

from wsgi_sessions import SessionMiddleware, SessionStoreError, get_session
from wsgi_sessions.stores import mask_url, schema_from_url, store_from_url
from wsgi_sessions.stores._pool import ConnectionPool, PoolTimeout
from wsgi_sessions.stores.base import Ended

MySQLdb = pytest.importorskip("MySQLdb")
MySQLdbConnection = pytest.importorskip("MySQLdb.connections").Connection

from wsgi_sessions.stores.mysql import MySQLStore, parse_url, schema_sql  # noqa: E402

KEY = "{mysql001}session"


def _connect_params(url: str) -> dict[str, t.Any]:
    params, _ = parse_url(url)
    return {**params, "charset": "utf8mb4", "autocommit": True, "multi_statements": False}


# -- URLs -------------------------------------------------------------------------------------


def test_parse_url() -> None:
    params, options = parse_url(
        "mysql://app:p%40ss@db.example:3307/sessions?table=web&pool_size=4&pool_timeout=2"
        "&timeout=1.5&create=false"
    )
    assert params == {
        "host": "db.example",
        "port": 3307,
        "user": "app",
        "password": "p@ss",
        "database": "sessions",
    }
    assert options == {
        "table": "web",
        "pool_size": 4,
        "pool_timeout": 2.0,
        "timeout": 1.5,
        "create": False,
    }
    assert parse_url("mariadb://root@127.0.0.1/test")[0]["port"] == 3306


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://app:hunter2@db/sessions?tabel=x", "unknown parameter 'tabel'"),
        ("mysql://app:hunter2@db/", "one database"),
        ("mysql://app:hunter2@db/sessions?pool_size=many", "pool_size"),
        ("mysql://app:hunter2@db/sessions?create=maybe", "create"),
        ("mysql://app:hunter2@db:port/sessions", "port"),
    ],
)
def test_a_bad_url_is_a_value_error_naming_the_setting_without_the_password(
    url: str, message: str
) -> None:
    with pytest.raises(ValueError, match="setting 'store'") as info:
        store_from_url(url)
    assert message in str(info.value)
    assert "hunter2" not in str(info.value)
    assert mask_url(url) in str(info.value)


def test_bad_options_are_refused_at_start_up(mysql_url: str) -> None:
    with pytest.raises(ValueError, match="table"):
        MySQLStore(mysql_url, table="sessions; DROP TABLE x")
    with pytest.raises(ValueError, match="pool_size"):
        MySQLStore(mysql_url, pool_size=0)
    with pytest.raises(ValueError, match="timeout"):
        MySQLStore(mysql_url, timeout=-1)
    with pytest.raises(TypeError, match="mysql://"):
        MySQLStore(42)  # type: ignore[arg-type]


def test_store_from_url(mysql_url: str, mysql_table: str) -> None:
    store = store_from_url(f"{mysql_url}?table={mysql_table}&pool_size=3")
    assert isinstance(store, MySQLStore)
    assert store.table == mysql_table
    assert store._pool.size == 3
    assert store.create(KEY, {"a": "1"}, 60)
    other = store_from_url(
        f"{mysql_url.replace('mysql://', 'mariadb://', 1)}?table={mysql_table}", create=False
    )
    assert other.load(KEY) == {"a": "1"}
    store.close()
    other.close()


def test_a_wrong_password_is_a_store_error_that_does_not_show_it(mysql_url: str) -> None:
    params, _ = parse_url(mysql_url)
    url = f"mysql://nobody_here:hunter2@{params['host']}:{params['port']}/{params['database']}"
    with pytest.raises(SessionStoreError) as info:
        store_from_url(url)
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in repr(info.value.__cause__)


# -- one round trip per operation, counted around the real driver ------------------------


class CountingConnection(MySQLdbConnection):  # type: ignore[misc]
    """mysqlclient's connection, counting the queries it sends (each COM_QUERY
    is one request and its answer: one round trip; a CALL's further result
    sets arrive with the first)."""

    sent: t.ClassVar[list[str]] = []

    def query(self, sql: t.Any) -> None:
        type(self).sent.append(sql.decode() if isinstance(sql, bytes) else sql)
        super().query(sql)


def test_every_operation_is_one_round_trip(mysql_url: str, mysql_table: str) -> None:
    params = _connect_params(mysql_url)
    store = MySQLStore(lambda: CountingConnection(**params), table=mysql_table)
    sent = CountingConnection.sent
    store.load("{warm0000}up")  # the pool's one connection is open from here on

    def count(operation: t.Callable[[], object]) -> int:
        sent.clear()
        operation()
        return len(sent)

    many = {f"k{i}": json.dumps(i) for i in range(50)}
    assert count(lambda: store.create(KEY, many, 60)) == 1
    assert count(lambda: store.load(KEY)) == 1
    assert count(lambda: store.load(KEY, touch=True)) == 1
    assert count(lambda: store.apply(KEY, {"a": "1", "b": "2"}, ["k1", "k2"])) == 1
    assert count(lambda: store.apply(KEY, {"a": "3"}, [], lifetime=120)) == 1
    assert count(lambda: store.touch(KEY)) == 1
    assert count(lambda: store.rename(KEY, "{mysql001}new")) == 1
    assert count(lambda: store.end(KEY)) == 1  # follows the successor, in one CALL
    assert count(store.purge_expired) == 1
    assert isinstance(store.load("{mysql001}new"), Ended)
    assert all(sql.startswith(("CALL ", "SELECT ")) for sql in sent)
    store.close()


def test_one_round_trip_per_request_through_the_middleware(
    mysql_url: str, mysql_table: str
) -> None:
    params = _connect_params(mysql_url)
    store = MySQLStore(lambda: CountingConnection(**params), table=mysql_table)

    def app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        session = get_session(environ)
        if environ["PATH_INFO"] == "/write":
            session["k"] = session.get("k", 0) + 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(session.get("k")).encode()]

    testapp = TestApp(SessionMiddleware(app, {"secret_key": "x" * 32, "store": store}))
    testapp.get("/write")  # a new session: created (and the pool warmed)
    sent = CountingConnection.sent
    for path, expected in (("/read", "1"), ("/write", "2"), ("/read", "2")):
        sent.clear()
        assert testapp.get(path).text == expected
        # a read: the load with its touch; a write: the load (it reads k), then the apply
        assert len(sent) == (2 if path == "/write" else 1), sent
    store.close()


# -- the schema -------------------------------------------------------------------------------


def test_schema_sql_runs_in_the_mysql_client_and_is_what_the_store_needs(
    mysql_url: str, mysql_table: str, service_unavailable: t.Callable[[str], t.NoReturn]
) -> None:
    text = schema_sql(mysql_table)
    assert text == schema_from_url(f"{mysql_url}?table={mysql_table}")
    assert f"CREATE TABLE IF NOT EXISTS {mysql_table} (" in text
    assert f"CREATE TABLE IF NOT EXISTS {mysql_table}_fields (" in text
    assert "INDEX" in text
    assert "expires_at" in text
    # Without the table, create=False refuses to start and says what to run...
    with pytest.raises(SessionStoreError, match="wsgi-sessions schema"):
        MySQLStore(mysql_url, table=mysql_table, create=False)
    # ...and once the DDL has run as printed, through the mysql client, it starts.
    client = shutil.which("mariadb") or shutil.which("mysql")
    if client is None:
        service_unavailable("no mysql/mariadb command-line client to run the printed DDL")
    params, _ = parse_url(mysql_url)
    command = [client, "-h", params["host"], "-P", str(params["port"]), "-u", params["user"]]
    env = {**os.environ, "MYSQL_PWD": params["password"]}
    subprocess.run([*command, params["database"]], input=text, text=True, env=env, check=True)
    subprocess.run([*command, params["database"]], input=text, text=True, env=env, check=True)
    store = MySQLStore(mysql_url, table=mysql_table, create=False)
    assert store.create(KEY, {"a": "1"}, 60)
    assert store.load(KEY) == {"a": "1"}
    store.close()


def test_schema_from_url_refuses_stores_without_sql() -> None:
    with pytest.raises(ValueError, match="no SQL schema"):
        schema_from_url("redis://:hunter2@127.0.0.1/0")


def test_two_stores_starting_together_both_start(mysql_url: str, mysql_table: str) -> None:
    # Pre-fork servers without preload start every worker at once.
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        try:
            barrier.wait()
            MySQLStore(mysql_url, table=mysql_table).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors


def test_a_field_name_too_long_for_the_table_is_refused(mysql_url: str, mysql_table: str) -> None:
    store = MySQLStore(mysql_url, table=mysql_table)
    store.create(KEY, {"a": "1"}, 60)
    with pytest.raises(ValueError, match="at most 2800 bytes"):
        store.apply(KEY, {"é" * 1401: "1"}, [])
    assert store.apply(KEY, {"é" * 1400: "1"}, [])
    assert store.load(KEY) == {"a": "1", "é" * 1400: "1"}
    store.close()


# -- the pool ---------------------------------------------------------------------------------


def test_the_pool_lends_at_most_its_size_and_waits_at_most_its_timeout() -> None:
    made: list[object] = []

    def connect() -> object:
        made.append(object())
        return made[-1]

    pool: ConnectionPool[object] = ConnectionPool(
        connect, size=2, timeout=0.2, close=lambda c: None
    )
    with pool.connection() as (first, reused_first), pool.connection() as (second, _):
        assert first is not second
        assert not reused_first
        started = time.monotonic()
        with pytest.raises(PoolTimeout), pool.connection():
            pass
        assert time.monotonic() - started >= 0.2
    with pool.connection() as (again, reused):
        assert again in (first, second)
        assert reused
    assert len(made) == 2


def test_the_pool_closes_a_connection_that_failed() -> None:
    closed: list[object] = []
    pool: ConnectionPool[object] = ConnectionPool(object, size=1, timeout=1, close=closed.append)
    with pytest.raises(RuntimeError), pool.connection() as (connection, _):
        raise RuntimeError("the query failed")
    assert closed == [connection]
    with pool.connection() as (fresh, reused):
        assert fresh is not connection
        assert not reused


def test_a_pool_exhausted_is_a_store_error(mysql_url: str, mysql_table: str) -> None:
    store = MySQLStore(mysql_url, table=mysql_table, pool_size=1, pool_timeout=0.2)
    with store._pool.connection(), pytest.raises(SessionStoreError, match="during load"):
        store.load(KEY)
    assert store.load(KEY) is None
    store.close()


def _connection_id(store: MySQLStore) -> int:
    with store._pool.connection() as (connection, _):
        cursor = connection.cursor()
        cursor.execute("SELECT CONNECTION_ID()")
        return int(cursor.fetchall()[0][0])


def _child(store: MySQLStore, queue: t.Any) -> None:
    try:
        store.apply(KEY, {"child": "1"}, [])
        queue.put(("ok", _connection_id(store), len(store._pool._inherited)))
    except BaseException as exc:  # reported to the parent
        queue.put(("error", repr(exc), 0))


def test_after_fork_the_child_opens_its_own_connections(mysql_url: str, mysql_table: str) -> None:
    store = MySQLStore(mysql_url, table=mysql_table)
    store.create(KEY, {"a": "1"}, 60)
    parent_id = _connection_id(store)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_child, args=(store, queue))
    process.start()
    status, child_id, inherited = queue.get(timeout=30)
    process.join(30)
    assert status == "ok", child_id
    assert child_id != parent_id
    assert inherited == 1  # the parent's connection, left alone in the child
    # The child neither used nor closed the parent's connection.
    assert _connection_id(store) == parent_id
    assert store.load(KEY) == {"a": "1", "child": "1"}
    store.close()


# -- failures on a real server: a proxy the test can cut --------------------------------------


class Proxy:
    """A TCP proxy on a spare loopback port to the test database; ``down()``
    refuses connections and cuts the open ones, ``hang()`` accepts but
    forwards nothing, ``up()`` forwards again."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.mode = "up"
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()
        self.up()

    def up(self) -> None:
        self.mode = "up"
        if self.listener is None:
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(32)
            self.listener = listener
            threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def hang(self) -> None:
        self.up()
        self.mode = "hang"

    def down(self) -> None:
        self.mode = "down"
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        with self.lock:
            for sock in self.sockets:
                with_suppressed(sock.shutdown, socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.mode == "hang":
                with self.lock:
                    self.sockets.append(client)
                continue
            try:
                upstream = socket.create_connection(self.target, 5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            while self.mode == "hang":
                time.sleep(0.05)
            if not data or self.mode == "down":
                with_suppressed(sink.shutdown, socket.SHUT_RDWR)
                return
            try:
                sink.sendall(data)
            except OSError:
                return


def with_suppressed(call: t.Callable[..., object], *args: object) -> None:
    with contextlib.suppress(OSError):
        call(*args)


@pytest.fixture
def proxy(mysql_url: str) -> Iterator[Proxy]:
    params, _ = parse_url(mysql_url)
    server = Proxy(params["host"], params["port"])
    yield server
    server.mode = "up"
    server.down()


@pytest.fixture
def proxied_url(mysql_url: str, proxy: Proxy) -> str:
    params, _ = parse_url(mysql_url)
    user = params["user"] + (f":{params['password']}" if params["password"] else "")
    return f"mysql://{user}@127.0.0.1:{proxy.port}/{params['database']}"


def test_a_database_that_is_down_is_a_store_error_and_recovery_needs_no_restart(
    proxied_url: str, mysql_table: str, proxy: Proxy
) -> None:
    store = MySQLStore(proxied_url, table=mysql_table, pool_size=3)
    store.create(KEY, {"a": "1"}, 60)
    proxy.down()  # the pooled connection is cut, and no new one can open
    for operation in (lambda: store.load(KEY), lambda: store.apply(KEY, {"b": "2"}, [])):
        with pytest.raises(SessionStoreError, match="check that the database is reachable"):
            operation()
    proxy.up()
    assert store.load(KEY) == {"a": "1"}
    assert store.apply(KEY, {"b": "2"}, [])
    store.close()


def test_connections_killed_by_a_restart_are_replaced_without_an_error(
    mysql_url: str, mysql_table: str
) -> None:
    # What a database restart does to a pool: every idle connection is dead.
    store = MySQLStore(mysql_url, table=mysql_table, pool_size=3)
    store.create(KEY, {"a": "1"}, 60)
    held: list[t.Any] = []
    with store._pool.connection() as (a, _), store._pool.connection() as (b, _):
        held = [a, b]
    ids = []
    for connection in held:
        cursor = connection.cursor()
        cursor.execute("SELECT CONNECTION_ID()")
        ids.append(cursor.fetchall()[0][0])
    admin = MySQLdb.connect(**_connect_params(mysql_url))
    for connection_id in ids:  # only the test's own connections
        admin.cursor().execute(f"KILL {int(connection_id)}")
    admin.close()
    time.sleep(0.1)
    assert store.load(KEY, touch=True) == {"a": "1"}  # a read runs again on a new one
    assert store.apply(KEY, {"b": "2"}, []) is True
    assert len(store._pool) == 1  # the dead ones were all dropped
    store.close()


def test_a_hung_database_is_a_store_error_after_the_timeout(
    proxied_url: str, mysql_table: str, proxy: Proxy
) -> None:
    store = MySQLStore(proxied_url, table=mysql_table, timeout=1)
    store.create(KEY, {"a": "1"}, 60)
    proxy.hang()
    started = time.monotonic()
    with pytest.raises(SessionStoreError):
        store.load(KEY)
    assert time.monotonic() - started < 15  # the C client retries a read; still bounded
    proxy.up()
    store.close()


def test_a_database_down_is_a_503_before_any_header_then_service_resumes(
    proxied_url: str, mysql_table: str, proxy: Proxy
) -> None:
    store = MySQLStore(proxied_url, table=mysql_table)

    def app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        session = get_session(environ)
        session["visits"] = session.get("visits", 0) + 1
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-App", "ran")])
        return [str(session["visits"]).encode()]

    testapp = TestApp(SessionMiddleware(app, {"secret_key": "x" * 32, "store": store}))
    assert testapp.get("/").text == "1"
    proxy.down()
    response = testapp.get("/", status=503)
    assert "X-App" not in response.headers
    assert "Set-Cookie" not in response.headers
    proxy.up()
    assert testapp.get("/").text == "2"  # the same session: nothing was lost or reset
    store.close()


def test_a_procedure_that_fails_midway_rolls_back_before_reporting(
    mysql_url: str, mysql_table: str
) -> None:
    # A field with no value fails after the procedure has locked the row and
    # pushed its expiry: the error must reach us with the transaction undone,
    # or the pooled connection would hold the row's lock for good.
    store = MySQLStore(mysql_url, table=mysql_table, pool_size=1)
    other = MySQLStore(mysql_url, table=mysql_table, create=False, timeout=2)
    store.create(KEY, {"a": "1"}, 60)
    with store._pool.connection() as (connection, _):
        cursor = connection.cursor()
        with pytest.raises(MySQLdb.IntegrityError, match="cannot be null"):
            cursor.execute(store._sql["apply"], (KEY, '[["b"]]', None, None))
        cursor.execute("SELECT @@in_transaction" if _is_mariadb(cursor) else "SELECT 0")
        assert cursor.fetchall()[0][0] == 0
        assert other.apply(KEY, {"c": "3"}, []) is True  # the row is not left locked
    assert store.load(KEY) == {"a": "1", "c": "3"}
    store.close()
    other.close()


def _is_mariadb(cursor: t.Any) -> bool:
    cursor.execute("SELECT VERSION()")
    return "mariadb" in str(cursor.fetchall()[0][0]).lower()


def test_the_database_clock_decides_expiry(mysql_url: str, mysql_table: str) -> None:
    # An app server whose clock is an hour off changes nothing about expiry.
    store = MySQLStore(mysql_url, table=mysql_table, clock=lambda: time.time() + 3600)
    store.create(KEY, {"a": "1"}, 2)
    assert store.load(KEY) == {"a": "1"}
    time.sleep(2.2)
    assert store.load(KEY) is None
    store.close()


# -- a real pre-fork server -------------------------------------------------------------------

PREFORK_APP = """
import json, os
from wsgi_sessions import SessionMiddleware, get_session
from wsgi_sessions.stores.mysql import MySQLStore

store = MySQLStore(os.environ["TEST_MYSQL_URL"], table=os.environ["TEST_MYSQL_TABLE"])
store.load("{preload0}warm")  # with --preload, the master holds a pooled connection at fork


def connection_id():
    with store._pool.connection() as (connection, _):
        cursor = connection.cursor()
        cursor.execute("SELECT CONNECTION_ID()")
        return cursor.fetchall()[0][0]


MASTER = connection_id()


def inner(environ, start_response):
    session = get_session(environ)
    session["n"] = session.get("n", 0) + 1
    body = {"pid": os.getpid(), "n": session["n"], "conn": connection_id(), "master": MASTER}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


settings = {"secret_key": "prefork test secret key, long enough", "store": store}
app = SessionMiddleware(inner, settings)
"""


def test_gunicorn_pre_fork_workers_each_use_their_own_connections(
    mysql_url: str, mysql_table: str, tmp_path: t.Any, service_unavailable: t.Any
) -> None:
    import http.client

    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable))
    if gunicorn is None:
        service_unavailable("gunicorn is not installed (it is in the test extra)")
    (tmp_path / "prefork_app.py").write_text(PREFORK_APP)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    env = {**os.environ, "TEST_MYSQL_URL": mysql_url, "TEST_MYSQL_TABLE": mysql_table}
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [gunicorn, "--preload", "-w", "3", "-b", f"127.0.0.1:{port}", "prefork_app:app"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(
                        f"gunicorn did not start: {(tmp_path / 'gunicorn.log').read_text()}"
                    )
                time.sleep(0.1)
        results: dict[int, list[dict[str, t.Any]]] = {}
        errors: list[BaseException] = []

        def browse(client: int) -> None:
            cookie = ""
            seen = results.setdefault(client, [])
            try:
                for _ in range(15):
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    connection.request("GET", "/", headers={"Cookie": cookie} if cookie else {})
                    response = connection.getresponse()
                    assert response.status == 200, response.status
                    set_cookie = response.getheader("Set-Cookie")
                    if set_cookie:
                        cookie = set_cookie.split(";", 1)[0]
                    seen.append(json.loads(response.read()))
                    connection.close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=browse, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors
        # Every browser's session counted every one of its requests, in order.
        for seen in results.values():
            assert [body["n"] for body in seen] == list(range(1, 16))
        bodies = [body for seen in results.values() for body in seen]
        pids = {body["pid"] for body in bodies}
        assert len(pids) >= 2  # served by several workers
        master = bodies[0]["master"]
        connections_of: dict[int, set[int]] = {}
        for body in bodies:
            assert body["conn"] != master  # never the connection the master opened
            connections_of.setdefault(body["pid"], set()).add(body["conn"])
        every = [conn for conns in connections_of.values() for conn in conns]
        assert len(every) == len(set(every))  # no connection shared by two workers
    finally:
        server.terminate()
        server.wait(30)
        log.close()
