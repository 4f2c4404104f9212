"""A store in PostgreSQL: one row per session, the fields a ``jsonb`` object.

Every operation is one round trip: a single statement for load, create,
apply, touch and purge, and one call of a PL/pgSQL function for end and
rename. Those two follow or move a chain of rows and must lock each row before
reading where it leads; one statement cannot (a recursive CTE reads a single
snapshot and may not take row locks), so under READ COMMITTED a rename
committed between the snapshot and the update would leave its successor live.
The functions are created with the table and run the loop of
:mod:`wsgi_sessions.stores.base` with ``SELECT ... FOR UPDATE``, each step on
a fresh snapshot.

Expiry runs on the database's clock (``expires_at > now()`` in every lookup),
so app servers whose clocks disagree still agree on which sessions are live;
``clock`` only gives the time an ended marker records, which the app compares
with its own clock.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import typing as t
import weakref
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ..errors import SessionStoreError
from .base import MAX_SUCCESSORS, Clock, Ended, Store

if t.TYPE_CHECKING:  # pragma: no cover
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["PostgreSQLStore", "parse_url"]

# The query parameters that are ours; every other one is libpq's and passes through.
_PARAMETERS = ("table", "pool_min", "pool_max", "pool_timeout", "create")
# libpq waits for a connection without limit unless told; 2 s, as RedisStore's.
_CONNECT_TIMEOUT = "2"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")

# {table}, {index}, {end}, {rename} are names checked by _check_table and quoted.
_SCHEMA = """\
CREATE TABLE IF NOT EXISTS {table} (
    key text COLLATE "C" PRIMARY KEY,
    fields jsonb NOT NULL,
    lifetime integer NOT NULL,
    expires_at timestamptz NOT NULL,
    successor text COLLATE "C",
    ended_at double precision
);
CREATE INDEX IF NOT EXISTS {index} ON {table} (expires_at);

-- end(key): the loop of wsgi_sessions.stores.base, one row lock per step.
CREATE OR REPLACE FUNCTION {end}(
    p_key text, p_now double precision, p_grace integer, p_max integer
) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    k text := p_key;
    found_ended double precision;
    found_successor text;
BEGIN
    FOR i IN 0..p_max LOOP
        SELECT s.ended_at, s.successor INTO found_ended, found_successor
        FROM {table} s WHERE s.key = k AND s.expires_at > now() FOR UPDATE;
        IF NOT FOUND THEN RETURN false; END IF;
        IF found_ended IS NULL THEN
            UPDATE {table} s SET fields = '{{}}', ended_at = p_now, successor = NULL,
                expires_at = greatest(s.expires_at, now() + make_interval(secs => p_grace))
            WHERE s.key = k;
            RETURN true;
        END IF;
        IF found_successor IS NULL THEN RETURN false; END IF;
        k := found_successor;
    END LOOP;
    RETURN false;
END $$;

-- rename(old, new): moved, or the time the old key ended, or neither (absent).
CREATE OR REPLACE FUNCTION {rename}(
    p_old text, p_new text, p_now double precision, p_grace integer,
    OUT o_moved boolean, OUT o_ended_at double precision
) LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    o_moved := false;
    SELECT s.fields, s.lifetime, s.expires_at, s.ended_at INTO r
    FROM {table} s WHERE s.key = p_old AND s.expires_at > now() FOR UPDATE;
    IF NOT FOUND THEN RETURN; END IF;
    IF r.ended_at IS NOT NULL THEN o_ended_at := r.ended_at; RETURN; END IF;
    INSERT INTO {table} AS s (key, fields, lifetime, expires_at)
    VALUES (p_new, r.fields, r.lifetime, r.expires_at)
    ON CONFLICT (key) DO UPDATE SET fields = excluded.fields, lifetime = excluded.lifetime,
        expires_at = excluded.expires_at, successor = NULL, ended_at = NULL;
    UPDATE {table} s SET fields = '{{}}', ended_at = p_now, successor = p_new,
        expires_at = greatest(s.expires_at, now() + make_interval(secs => p_grace))
    WHERE s.key = p_old;
    o_moved := true;
END $$;
"""

# A row is there while expires_at is in the future (the database's now()); it
# is an ended marker (fields '{}') when ended_at is set.
_SQL = {
    "load": "SELECT fields, ended_at FROM {table} WHERE key = %s AND expires_at > now()",
    # A marker's expiry is never pushed forward.
    "load_touch": (
        "UPDATE {table} SET expires_at = CASE WHEN ended_at IS NULL "
        "THEN now() + lifetime * interval '1 second' ELSE expires_at END "
        "WHERE key = %s AND expires_at > now() RETURNING fields, ended_at"
    ),
    # Insert-only, except over an expired row (which purge may not have removed yet).
    "create": (
        "INSERT INTO {table} AS s (key, fields, lifetime, expires_at) "
        "VALUES (%s, %s::jsonb, %s, now() + %s * interval '1 second') "
        "ON CONFLICT (key) DO UPDATE SET fields = excluded.fields, "
        "lifetime = excluded.lifetime, expires_at = excluded.expires_at, "
        "successor = NULL, ended_at = NULL WHERE s.expires_at <= now()"
    ),
    # Only the named fields: || sets, - deletes (a name in both ends deleted,
    # as the other stores do). One statement for both outcomes: a marker is
    # left as it is and reports ended_at.
    "apply": (
        "UPDATE {table} SET "
        "fields = CASE WHEN ended_at IS NULL "
        "THEN (fields || %(set)s::jsonb) - %(delete)s::text[] ELSE fields END, "
        "lifetime = CASE WHEN ended_at IS NULL "
        "THEN coalesce(%(lifetime)s::integer, lifetime) ELSE lifetime END, "
        "expires_at = CASE WHEN ended_at IS NULL "
        "THEN now() + coalesce(%(lifetime)s::integer, lifetime) * interval '1 second' "
        "ELSE expires_at END "
        "WHERE key = %(key)s AND expires_at > now() RETURNING ended_at"
    ),
    "end": "SELECT {end}(%s, %s, %s, %s)",
    "rename": "SELECT o_moved, o_ended_at FROM {rename}(%s, %s, %s, %s)",
    "touch": (
        "UPDATE {table} SET expires_at = now() + lifetime * interval '1 second' "
        "WHERE key = %s AND expires_at > now() AND ended_at IS NULL"
    ),
    "purge": "DELETE FROM {table} WHERE expires_at <= now()",
}


def _names(table: str) -> dict[str, str]:
    """The quoted names of the table and of what is created with it."""
    schema, dot, name = table.rpartition(".")
    prefix = f'"{schema}".' if dot else ""
    return {
        "table": f'{prefix}"{name}"',
        "index": f'"{name}_expires_at"',  # an index lives in its table's schema
        "end": f'{prefix}"{name}_end"',
        "rename": f'{prefix}"{name}_rename"',
    }


def _check_table(table: t.Any) -> str:
    if not isinstance(table, str):
        raise TypeError(f"PostgreSQLStore table must be a str, got {type(table).__name__}")
    parts = table.split(".")
    if not (
        1 <= len(parts) <= 2
        and all(part and part[0] not in "0123456789" and set(part) <= _NAME_CHARS for part in parts)
        # PostgreSQL cuts names at 63 bytes; "_expires_at" is the longest suffix.
        and len(parts[-1]) <= 63 - len("_expires_at")
    ):
        raise ValueError(
            "PostgreSQLStore table must be a name of lowercase letters, digits and _ "
            f"(52 at most), optionally schema-qualified, got {table!r}"
        )
    return table


def schema_sql(table: str = "wsgi_sessions") -> str:
    """The DDL of the table ``table`` (and its index and functions)."""
    return _SCHEMA.format(**_names(_check_table(table)))


class _Options(t.NamedTuple):
    conninfo: str
    table: str
    pool_min: int
    pool_max: int
    pool_timeout: float
    create: bool


class _Defaults(t.NamedTuple):
    pool_min: int = 1
    pool_max: int = 10  # a gthread worker's threads; sync workers use one
    # How long a request waits for a connection before its 503 (RedisStore's 2 s).
    pool_timeout: float = 2.0


_DEFAULTS = _Defaults()


def parse_url(url: str) -> _Options:
    """Split a ``postgresql://`` / ``postgres://`` URL into the libpq
    connection string (every libpq query parameter kept) and our parameters:
    ``table``, ``pool_min``, ``pool_max``, ``pool_timeout`` and ``create``.

    A bad value is a :class:`ValueError` naming the ``store`` setting and the
    URL with its password masked.
    """
    from . import mask_url

    def refuse(problem: str) -> t.NoReturn:
        raise ValueError(f"setting 'store': {problem}, in {mask_url(url)!r}")

    parts = urlsplit(url)
    if parts.scheme.lower() not in ("postgresql", "postgres"):
        refuse("a PostgreSQL URL starts with postgresql:// or postgres://")
    ours: dict[str, str] = {}
    passed: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in _PARAMETERS:
            passed.append((name, value))
        elif name in ours:
            refuse(f"{name} is given twice")
        else:
            ours[name] = value
    if not any(name == "connect_timeout" for name, _ in passed):
        passed.append(("connect_timeout", _CONNECT_TIMEOUT))
    # quote, not quote_plus: libpq decodes %20 but not '+' as a space.
    conninfo = urlunsplit(parts._replace(query=urlencode(passed, quote_via=quote)))
    from psycopg import Error
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(conninfo)  # libpq's own parser: an unknown parameter fails here
    except Error as exc:  # its text names no password
        refuse(f"libpq refuses the URL ({str(exc).strip()})")

    def number(name: str, kind: type[int] | type[float]) -> t.Any:
        text = ours.get(name)
        if text is None:
            return getattr(_DEFAULTS, name)
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not value > 0:
            refuse(f"{name} must be a positive {kind.__name__}, got {text!r}")
        return value

    create = ours.get("create", "true").lower()
    if create not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        refuse(f"create must be true or false, got {ours['create']!r}")
    try:
        table = _check_table(ours.get("table", "wsgi_sessions"))
    except ValueError as exc:
        refuse(str(exc))
    options = _Options(
        conninfo,
        table,
        number("pool_min", int),
        number("pool_max", int),
        number("pool_timeout", float),
        create in ("true", "1", "yes", "on"),
    )
    if options.pool_min > options.pool_max:
        refuse(f"pool_min ({options.pool_min}) is larger than pool_max ({options.pool_max})")
    return options


def _failed(operation: str, exc: BaseException) -> SessionStoreError:
    return SessionStoreError(
        f"PostgreSQL session store failed during {operation} ({type(exc).__name__}); "
        "check that PostgreSQL is reachable and that the session table exists "
        "(wsgi-sessions schema --store URL prints it)"
    )


#: Pools a child process inherited from its parent (see _detach). Kept so
#: they are never finalized here: their connections belong to the parent.
_INHERITED: list[t.Any] = []


def _detach(connections: t.Iterable[psycopg.Connection[t.Any]]) -> None:
    """Make the inherited connections harmless in this (forked) process.

    Closing one here would send the server a Terminate on the parent's
    socket and end the parent's session with it; so each socket is replaced,
    in this process only, by /dev/null, and whatever finalizes the connection
    later writes nowhere.
    """
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for connection in list(connections):
            # One already closed raises: nothing of the parent's is left in it.
            with contextlib.suppress(Exception):
                os.dup2(null, connection.pgconn.socket)
    finally:
        os.close(null)


class PostgreSQLStore(Store):
    """Sessions in one PostgreSQL table, through psycopg 3 and psycopg_pool.

    ``source`` is a ``postgresql://`` (or ``postgres://``) URL, parsed by
    :func:`parse_url`, or a ready ``psycopg_pool.ConnectionPool`` whose
    connections are in autocommit mode (``kwargs={"autocommit": True}``): each
    operation is one statement that commits on its own, one round trip.

    The table is created at start-up unless ``create`` is false (or the URL
    says ``create=false``), with a one-off connection. The pool itself opens
    lazily, in the process that first uses the store: a pre-fork server
    (gunicorn) that builds the app in its master never hands a connection to
    its workers; a process forked after the pool opened gets a new pool of
    its own on first use, and leaves the parent's connections alone.

    A database that is down or refuses a statement is a
    :class:`SessionStoreError` (503). A connection found broken is replaced,
    and the pool's other idle connections are checked at once, so a restart
    of the database costs one failed request, not one per pooled connection.
    """

    def __init__(
        self,
        source: str | ConnectionPool[t.Any] = "postgresql://127.0.0.1:5432/postgres",
        *,
        table: str | None = None,
        pool_min: int | None = None,
        pool_max: int | None = None,
        pool_timeout: float | None = None,
        create: bool = True,
        clock: Clock = time.time,
    ) -> None:
        try:
            import psycopg
            import psycopg_pool
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError(
                "PostgreSQLStore needs psycopg 3 and psycopg_pool: "
                "pip install 'wsgi-sessions[postgresql]'"
            ) from None
        self._errors: tuple[type[BaseException], ...] = (psycopg.Error,)
        self._pool_class = psycopg_pool.ConnectionPool
        self.clock = clock
        self._ready_pool: ConnectionPool[t.Any] | None = None
        if isinstance(source, str):
            options = parse_url(source)
            self.conninfo = options.conninfo
            self._kwargs: dict[str, t.Any] = {"autocommit": True}
            table = options.table if table is None else table
            pool_min = options.pool_min if pool_min is None else pool_min
            pool_max = options.pool_max if pool_max is None else pool_max
            pool_timeout = options.pool_timeout if pool_timeout is None else pool_timeout
            create = create and options.create
        elif isinstance(source, psycopg_pool.ConnectionPool):
            # psycopg_pool >= 3.3 also takes callables, to be asked on each connect.
            conninfo = source.conninfo() if callable(source.conninfo) else source.conninfo
            kwargs = source.kwargs() if callable(source.kwargs) else source.kwargs
            if (kwargs or {}).get("autocommit") is not True:
                raise ValueError(
                    "PostgreSQLStore: create the pool with kwargs={'autocommit': True}; "
                    "each session operation is one statement that commits on its own"
                )
            self._ready_pool = source
            self.conninfo = conninfo
            self._kwargs = dict(kwargs or {})
        else:
            raise TypeError(
                "PostgreSQLStore takes a postgresql:// URL or a psycopg_pool.ConnectionPool, "
                f"got {type(source).__name__}"
            )
        self.table = _check_table("wsgi_sessions" if table is None else table)
        self.pool_min = _DEFAULTS.pool_min if pool_min is None else pool_min
        self.pool_max = _DEFAULTS.pool_max if pool_max is None else pool_max
        self.pool_timeout = _DEFAULTS.pool_timeout if pool_timeout is None else pool_timeout
        names = _names(self.table)
        self._sql = {name: sql.format(**names) for name, sql in _SQL.items()}
        self._lock = threading.Lock()
        self._pool: ConnectionPool[t.Any] | None = None
        self._pid = 0
        self._ready_pool_forked = False
        # Every connection of this store's pools, to detach in a forked child.
        self._connections: weakref.WeakSet[psycopg.Connection[t.Any]] = weakref.WeakSet()
        if create:
            self._create_schema()

    def schema_sql(self) -> str:
        return schema_sql(self.table)

    def _create_schema(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self.conninfo, **{**self._kwargs, "autocommit": False}) as db:
                # Workers that start together would race on CREATE ... IF NOT
                # EXISTS (a duplicate pg_type row) and CREATE OR REPLACE
                # FUNCTION ("tuple concurrently updated"): one at a time.
                db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.table,))
                db.execute(self.schema_sql())
        except psycopg.Error as exc:
            raise SessionStoreError(
                f"PostgreSQL session store: cannot create the table {self.table!r} "
                f"({type(exc).__name__}: {str(exc).strip()}); if the app's database user may "
                "not, have it created with the output of `wsgi-sessions schema --store URL` "
                "and add create=false to the URL"
            ) from exc

    def _get_pool(self) -> ConnectionPool[t.Any]:
        pool = self._pool
        if pool is not None and self._pid == os.getpid():
            return pool
        with self._lock:
            pool = self._pool
            pid = os.getpid()
            if pool is not None and self._pid == pid:
                return pool
            if pool is not None:  # forked after the parent opened it
                _detach(self._connections)
                _INHERITED.append(pool)
                self._pool = None
                if self._ready_pool is not None:
                    self._ready_pool_forked = True
            if self._ready_pool_forked:
                raise SessionStoreError(
                    "PostgreSQL session store: a ready pool that was in use before fork() "
                    "cannot be used in the child; create it in each worker (or pass a URL)"
                )
            if self._ready_pool is not None:
                pool = self._ready_pool
                if pool.closed:
                    pool.open(wait=False)
            else:
                pool = self._pool_class(
                    self.conninfo,
                    min_size=self.pool_min,
                    max_size=self.pool_max,
                    timeout=self.pool_timeout,
                    kwargs=self._kwargs,
                    configure=self._connections.add,
                    name=f"wsgi_sessions:{self.table}",
                    open=False,
                )
                pool.open(wait=False)
            self._pool, self._pid = pool, pid
            return pool

    def _rows(self, operation: str, query: str, params: t.Any) -> list[tuple[t.Any, ...]]:
        rows: list[tuple[t.Any, ...]] = self._run(operation, query, params)
        return rows

    def _count(self, operation: str, query: str, params: t.Any) -> int:
        count: int = self._run(operation, query, params)
        return count

    def _run(self, operation: str, query: str, params: t.Any) -> t.Any:
        """Run ``query`` on a pooled connection: one round trip. Returns the
        rows for a statement that has some, else the row count."""
        try:
            pool = self._get_pool()
            conn = pool.getconn()
        except self._errors as exc:  # PoolTimeout: no connection in time
            raise _failed(operation, exc) from exc
        if self._ready_pool is not None:
            self._connections.add(conn)
        try:
            with conn.cursor() as cursor:
                cursor.execute(query, params)
                return cursor.fetchall() if cursor.description is not None else cursor.rowcount
        except self._errors as exc:
            broken = conn.broken
            pool.putconn(conn)  # a broken one is discarded and replaced
            conn = None
            if broken:
                # The database restarted or cut us off: the idle connections
                # are likely dead too; find out now, not one request each.
                with contextlib.suppress(*self._errors):
                    pool.check()
            raise _failed(operation, exc) from exc
        finally:
            if conn is not None:
                pool.putconn(conn)

    def load(self, key: str, touch: bool = False) -> dict[str, str] | Ended | None:
        rows = self._rows("load", self._sql["load_touch" if touch else "load"], (key,))
        if not rows:
            return None
        fields, ended_at = rows[0]
        if ended_at is not None:
            return Ended(ended_at)
        return fields  # type: ignore[no-any-return]

    def _create(self, key: str, fields: Mapping[str, str], lifetime: int) -> bool:
        params = (key, json.dumps(dict(fields)), lifetime, lifetime)
        return self._count("create", self._sql["create"], params) == 1

    def _apply(
        self,
        key: str,
        set_fields: Mapping[str, str],
        delete_fields: tuple[str, ...],
        lifetime: int | None,
    ) -> bool | Ended:
        params = {
            "set": json.dumps(dict(set_fields)),
            "delete": list(delete_fields),
            "lifetime": lifetime,
            "key": key,
        }
        rows = self._rows("apply", self._sql["apply"], params)
        if not rows:
            return False
        ended_at = rows[0][0]
        return True if ended_at is None else Ended(ended_at)

    def end(self, key: str) -> bool:
        params = (key, self.clock(), self.end_grace, MAX_SUCCESSORS)
        return self._rows("end", self._sql["end"], params)[0][0] is True

    def rename(self, old_key: str, new_key: str) -> bool | Ended:
        params = (old_key, new_key, self.clock(), self.end_grace)
        moved, ended_at = self._rows("rename", self._sql["rename"], params)[0]
        if moved:
            return True
        return False if ended_at is None else Ended(ended_at)

    def touch(self, key: str) -> bool:
        return self._count("touch", self._sql["touch"], (key,)) == 1

    def purge_expired(self) -> int:
        return self._count("purge", self._sql["purge"], ())

    def close(self) -> None:
        """Close this process's pool (a ready pool is the caller's to close)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and pool is not self._ready_pool and self._pid == os.getpid():
            pool.close()
