"""A store in MySQL (≥ 8) or MariaDB (≥ 10.6): for apps that already run one
and would rather not add Redis for their sessions.

One row per session key, and one row per field in a second table: a write
changes only the rows of the fields it names, so two requests writing
different keys both survive, and its cost does not grow with the session
(MariaDB's JSON_MERGE_PATCH and JSON_SET on one document per session do: see
``_mysql_sql``). Every store operation is one round trip: one plain
``SELECT``, or one ``CALL`` of a procedure made with the tables, because
MySQL has no ``UPDATE ... RETURNING`` to say in one statement what an update
found; a write's fields travel in that CALL as one JSON array, unpacked into
rows by ``JSON_TABLE``. Expiry is compared with the database's clock in every
lookup.

The driver is mysqlclient (``MySQLdb``, the C client library), chosen by
measurement (``bench/mysql_drivers.py``, numbers in ``bench/README.md``): on
the store's own calls it spent the least time per round trip of the three
well-kept drivers, ahead of PyMySQL (pure Python) and of
mysql-connector-python with its C extension (whose newest wheels' extension
did not even load on Debian 12's OpenSSL). Its price is a build: the wheel is
compiled against the MySQL or MariaDB client headers. Where that is not
possible, pass ``connect=`` a function returning PyMySQL connections, which
take the same calls.
"""

from __future__ import annotations

import json
import math
import random
import re
import sys
import time
import typing as t
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import SessionStoreError
from . import _mysql_sql
from ._pool import ConnectionPool, PoolTimeout
from .base import Clock, Ended, Store

__all__ = ["MySQLStore"]

_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,47}")  # + "_load_touch_v1" fits MySQL's 64

# Error codes of a connection that died (the server restarted, or killed it):
# CR_SERVER_GONE_ERROR, CR_SERVER_LOST, CR_SERVER_LOST_EXTENDED, MariaDB's
# ER_CONNECTION_KILLED, MySQL's ER_CLIENT_INTERACTION_TIMEOUT. The other
# pooled connections are then likely dead too.
_CONNECTION_LOST = frozenset({2006, 2013, 2055, 1927, 4031})
# ER_LOCK_DEADLOCK: InnoDB rolled the transaction back; running it again is safe.
_DEADLOCK = 1213
_DEADLOCK_ATTEMPTS = 8
# Operations that may run again when their reply was lost: running one twice
# leaves the same state and answers truthfully about it.
_REPEATABLE = frozenset({"load", "load_touch", "apply", "touch", "purge"})

_URL_OPTIONS = {"table", "pool_size", "pool_timeout", "timeout", "create", "unix_socket"}
_SCHEMES = ("mysql", "mariadb")


def _flag(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"MySQL store URL: {name}= must be true or false, got {value!r}")


def parse_url(url: str) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """``mysql://user:password@host:port/dbname?table=…&pool_size=…`` as the
    driver's connection arguments and the store's own options.

    Query parameters: ``table``, ``pool_size``, ``pool_timeout``, ``timeout``,
    ``create`` (``false``: never run DDL), ``unix_socket``; any other is a
    :class:`ValueError` (a typo must not be silently ignored). Messages
    never show the password.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in _SCHEMES:
        raise ValueError("a MySQL store URL starts with mysql:// or mariadb://")
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise ValueError("a MySQL store URL names one database: mysql://user@host:3306/dbname")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("MySQL store URL: the port must be a number") from None
    connect: dict[str, t.Any] = {
        "host": unquote(parts.hostname or "127.0.0.1"),
        "port": port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": database,
    }
    options: dict[str, t.Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in _URL_OPTIONS:
            known = ", ".join(sorted(_URL_OPTIONS))
            raise ValueError(f"MySQL store URL: unknown parameter {name!r} (known: {known})")
        if name == "unix_socket":
            connect["unix_socket"] = value
        elif name == "table":
            options["table"] = value
        elif name == "create":
            options["create"] = _flag(name, value)
        else:
            try:
                options[name] = int(value) if name == "pool_size" else float(value)
            except ValueError:
                raise ValueError(f"MySQL store URL: {name}= must be a number") from None
    return connect, options


def _mysqldb_connector(params: Mapping[str, t.Any], timeout: float) -> Callable[[], t.Any]:
    try:
        import MySQLdb
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "MySQLStore needs mysqlclient: pip install 'wsgi-sessions[mysql]' (it builds "
            "against the MySQL or MariaDB client headers: apt-get install libmariadb-dev "
            "pkg-config), or pass connect= a function that returns PyMySQL connections"
        ) from None
    seconds = max(1, math.ceil(timeout))  # the C client takes whole seconds
    arguments = {
        **params,
        "charset": "utf8mb4",
        "autocommit": True,
        "connect_timeout": seconds,
        "read_timeout": seconds,
        "write_timeout": seconds,
        # CALL needs multiple results; nothing here needs multiple statements,
        # so a query can never smuggle a second one in.
        "multi_statements": False,
    }
    return lambda: MySQLdb.connect(**arguments)


def _driver_errors() -> tuple[type[BaseException], ...]:
    """The base error classes of the MySQL drivers loaded in this process."""
    errors: list[type[BaseException]] = [OSError, PoolTimeout]
    for name in ("MySQLdb", "pymysql"):
        module = sys.modules.get(name)
        if module is not None:
            errors.append(module.MySQLError)
    return tuple(errors)


def _errno(exc: BaseException) -> int | None:
    code = exc.args[0] if exc.args else None
    return code if isinstance(code, int) else None


def _close(connection: t.Any) -> None:
    connection.close()


def schema_sql(table: str = "wsgi_sessions") -> str:
    """The DDL of the table and its procedures, as a script for the
    ``mysql`` client (``mysql app < schema.sql``), for teams whose app
    user may not run DDL. It can be run again: it replaces the procedures."""
    if not _TABLE.fullmatch(table):
        raise ValueError(f"MySQLStore table must be letters, digits and _, got {table!r}")
    statements = _mysql_sql.schema_statements(table)
    tables = len(_mysql_sql.TABLES)
    lines = [
        f"-- wsgi-sessions: the session tables {table}, {table}_fields and their "
        "procedures (MySQL >= 8, MariaDB >= 10.6).",
        "-- The app's user needs EXECUTE on the procedures and SELECT on the tables.",
        *(f"{statement};" for statement in statements[:tables]),
        "DELIMITER //",
    ]
    for operation, statement in zip(_mysql_sql.PROCEDURES, statements[tables:], strict=True):
        lines.append(f"DROP PROCEDURE IF EXISTS {_mysql_sql.procedure_name(table, operation)}//")
        lines.append(f"{statement}//")
    lines.append("DELIMITER ;")
    return "\n".join(lines) + "\n"


class MySQLStore(Store):
    """Sessions in one table of a MySQL or MariaDB database.

    ``connect`` is a ``mysql://user:password@host:port/dbname`` URL (also
    ``mariadb://``; its query parameters override the keywords below), or a
    function that returns a new DB-API connection (mysqlclient's or PyMySQL's,
    for TLS or anything else the URL does not say), which the store pools.
    Connections made from a URL get ``timeout`` seconds to connect, read and
    write, so a hung database is a 503, not a hung worker; they use utf8mb4
    and autocommit (a function's connections must too).

    The pool opens connections lazily, at most ``pool_size`` at a time, and a
    request waits at most ``pool_timeout`` seconds for a free one. It is
    fork-safe: a pre-fork server's workers each open their own.

    The table and its procedures are created here, at start-up, unless
    ``create`` is false (for an app user that may not run DDL: print it with
    ``wsgi-sessions schema --store URL`` or :meth:`schema_sql`); then the
    store checks that they exist. A database that is down, or an error from
    it, is a :class:`SessionStoreError` (a 503); the connection that met it is
    closed, and the next call opens a new one.

    ``clock`` gives only the time an ended marker records (compared with the
    app servers' clocks); expiry runs on the database's clock.
    """

    def __init__(
        self,
        connect: str | Callable[[], t.Any],
        *,
        table: str = "wsgi_sessions",
        pool_size: int = 10,
        pool_timeout: float = 5.0,
        timeout: float = 5.0,
        create: bool = True,
        clock: Clock = time.time,
    ) -> None:
        if isinstance(connect, str):
            params, options = parse_url(connect)
            table = options.get("table", table)
            pool_size = options.get("pool_size", pool_size)
            pool_timeout = options.get("pool_timeout", pool_timeout)
            timeout = options.get("timeout", timeout)
            create = create and options.get("create", True)
            self._database = str(params["database"])
            make = _mysqldb_connector(params, timeout)
        elif callable(connect):
            make = connect
            self._database = ""
        else:
            raise TypeError(
                f"MySQLStore takes a mysql:// URL or a function returning connections, "
                f"got {type(connect).__name__}"
            )
        if not isinstance(table, str) or not _TABLE.fullmatch(table):
            raise ValueError(
                f"MySQLStore table must be letters, digits and _ (at most 48), got {table!r}"
            )
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise ValueError(f"MySQLStore pool_size must be a whole number ≥ 1, got {pool_size!r}")
        for name, value in (("pool_timeout", pool_timeout), ("timeout", timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"MySQLStore {name} must be a number of seconds > 0")
        self.table = table
        self.clock = clock
        self._sql = _mysql_sql.statements(table)
        self._make = make
        self._pool: ConnectionPool[t.Any] = ConnectionPool(
            make, size=pool_size, timeout=float(pool_timeout), close=_close
        )
        self._errors = _driver_errors()
        # At start-up, on a connection of its own that is not kept: a
        # pre-fork server's master then holds none for its workers to inherit.
        self._run("schema", lambda cursor: self._schema(cursor, create), pooled=False)

    # -- the schema ------------------------------------------------------------------

    def schema_sql(self) -> str:
        return schema_sql(self.table)

    def _schema(self, cursor: t.Any, create: bool) -> None:
        tables = [self.table, f"{self.table}_fields"]
        procedures = [_mysql_sql.procedure_name(self.table, op) for op in _mysql_sql.PROCEDURES]
        cursor.execute(  # the names are comma-free identifiers: FIND_IN_SET takes them joined
            "SELECT TABLE_NAME FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND FIND_IN_SET(TABLE_NAME, %s) "
            "UNION ALL SELECT ROUTINE_NAME FROM information_schema.ROUTINES "
            "WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_TYPE = 'PROCEDURE' "
            "AND FIND_IN_SET(ROUTINE_NAME, %s)",
            (",".join(tables), ",".join(procedures)),
        )
        present = {row[0] for row in cursor.fetchall()}
        missing = [name for name in (*tables, *procedures) if name not in present]
        if not create:
            if missing:
                raise SessionStoreError(
                    f"MySQL session store: {', '.join(missing)} missing in the database; run the "
                    "DDL of 'wsgi-sessions schema --store URL', or let the store create it"
                )
            return
        for name, statement in zip(
            (*tables, *procedures), _mysql_sql.schema_statements(self.table), strict=True
        ):
            if name not in missing:
                continue
            try:
                cursor.execute(statement)
            except self._errors as exc:
                if _errno(exc) != 1304:  # ER_SP_ALREADY_EXISTS: another worker made it
                    raise

    # -- running statements ------------------------------------------------------------

    def _run(self, operation: str, work: Callable[[t.Any], t.Any], *, pooled: bool = True) -> t.Any:
        """``work(cursor)`` on a pooled connection; driver errors become
        :class:`SessionStoreError`. Runs again, once, on a new connection if
        a reused one turns out dead (after a database restart every pooled
        connection is; they are all dropped) and the operation may run twice;
        and, up to ``_DEADLOCK_ATTEMPTS`` times in all, after a deadlock InnoDB
        resolved by rolling this one back."""
        attempts = 0
        while True:
            attempts += 1
            reused = False
            try:
                if not pooled:
                    connection = self._make()
                    try:
                        return self._execute(connection, work)
                    finally:
                        connection.close()
                with self._pool.connection() as (connection, reused):
                    return self._execute(connection, work)
            except self._errors as exc:
                code = _errno(exc)
                if code in _CONNECTION_LOST:
                    self._pool.clear()
                if code == _DEADLOCK and attempts < _DEADLOCK_ATTEMPTS:
                    # Concurrent creates on a near-empty table deadlock on its gap
                    # locks (3 tries failed 1 round in 5 of six logins at once): a
                    # random pause parts the next tries.
                    time.sleep(random.uniform(0, 0.005 * attempts))  # noqa: S311 - a pause
                    continue
                again = code in _CONNECTION_LOST and reused and operation in _REPEATABLE
                if again and attempts < 3:
                    continue
                raise SessionStoreError(
                    f"MySQL session store failed during {operation} ({type(exc).__name__}"
                    f"{f' {code}' if code else ''}); check that the database is reachable "
                    "and answering"
                ) from exc

    @staticmethod
    def _execute(connection: t.Any, work: Callable[[t.Any], t.Any]) -> t.Any:
        cursor = connection.cursor()
        try:
            return work(cursor)
        finally:
            cursor.close()

    def _call(self, operation: str, args: tuple[t.Any, ...]) -> list[t.Any]:
        """One statement (a CALL or a SELECT) and the rows of its one result set."""
        sql = self._sql[operation]

        def work(cursor: t.Any) -> list[t.Any]:
            cursor.execute(sql, args)
            rows = list(cursor.fetchall())
            # A CALL ends with a status of its own, already on the wire with the rows.
            while cursor.nextset():
                pass
            return rows

        return t.cast("list[t.Any]", self._run(operation, work))

    # -- the store contract ------------------------------------------------------------

    def load(self, key: str, touch: bool = False) -> dict[str, str] | Ended | None:
        rows = self._call("load_touch" if touch else "load", (key,))
        if not rows:
            return None
        ended_at = rows[0][0]
        if ended_at is not None:
            return Ended(float(ended_at))
        # One row per field; a session without fields is one row of NULLs.
        return {name.decode(): value for _, name, value in rows if name is not None}

    def _create(self, key: str, fields: Mapping[str, str], lifetime: int) -> bool:
        rows = self._call("create", (key, _pairs(fields), lifetime))
        return bool(rows[0][0])

    def _apply(
        self,
        key: str,
        set_fields: Mapping[str, str],
        delete_fields: tuple[str, ...],
        lifetime: int | None,
    ) -> bool | Ended:
        sets = _pairs(set_fields) if set_fields else None
        deletes = _names(delete_fields) if delete_fields else None
        return _outcome(self._call("apply", (key, sets, deletes, lifetime)))

    def end(self, key: str) -> bool:
        rows = self._call("end", (key, self.clock(), self.end_grace))
        return bool(rows[0][0])

    def rename(self, old_key: str, new_key: str) -> bool | Ended:
        return _outcome(self._call("rename", (old_key, new_key, self.clock(), self.end_grace)))

    def touch(self, key: str) -> bool:
        return bool(self._call("touch", (key,))[0][0])

    def purge_expired(self) -> int:
        return int(self._call("purge", ())[0][0])

    def close(self) -> None:
        """Close the idle connections (the next call opens a new one)."""
        self._pool.clear()


def _names(names: t.Iterable[str]) -> str:
    """Field names as the JSON array the procedures unpack; a name too long
    for the table's key is refused before anything is written."""
    names = list(names)
    for name in names:
        if len(name) * 4 > _mysql_sql.NAME_BYTES and len(name.encode()) > _mysql_sql.NAME_BYTES:
            raise ValueError(
                f"MySQLStore: a session key is at most {_mysql_sql.NAME_BYTES} bytes of UTF-8"
            )
    return json.dumps(names)


def _pairs(fields: Mapping[str, str]) -> str:
    """Fields as the JSON array of [name, value] pairs the procedures unpack."""
    _names(fields)
    return json.dumps(list(fields.items()))


def _outcome(rows: list[t.Any]) -> bool | Ended:
    """A procedure's (rows found, ended_at) as the store contract's answer."""
    found, ended_at = rows[0]
    if ended_at is not None:
        return Ended(float(ended_at))
    return bool(found)
