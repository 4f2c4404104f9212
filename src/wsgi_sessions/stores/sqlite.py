"""A store in an SQLite file: the embedded default, safe across the processes
of one machine (WAL mode; every operation is one statement or one immediate
transaction, so SQLite's own locking makes it atomic)."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import typing as t
from collections.abc import Callable, Mapping
from urllib.parse import quote

from ..errors import SessionStoreError
from .base import MAX_SUCCESSORS, Clock, Ended, Store

__all__ = ["SQLiteStore"]

_T = t.TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    key TEXT PRIMARY KEY,
    fields TEXT NOT NULL,
    lifetime INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    successor TEXT,
    ended_at REAL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {table}_expires_at ON {table} (expires_at);
"""

# Every statement names the table as {table}. A row is there while expires_at
# is in the future; it is an ended marker (no fields) when ended_at is set.
_SQL = {
    "load": "SELECT fields, ended_at FROM {table} WHERE key=? AND expires_at>?",
    # A marker's expiry is never pushed forward.
    "load_touch": (
        "UPDATE {table} SET expires_at=iif(ended_at IS NULL, ?+lifetime, expires_at) "
        "WHERE key=? AND expires_at>? RETURNING fields, ended_at"
    ),
    # Insert-only, except over an expired row (which purge may not have removed yet).
    "create": (
        "INSERT INTO {table} (key, fields, lifetime, expires_at) VALUES (?,?,?,?) "
        "ON CONFLICT(key) DO UPDATE SET fields=excluded.fields, lifetime=excluded.lifetime, "
        "expires_at=excluded.expires_at, successor=NULL, ended_at=NULL "
        "WHERE {table}.expires_at<=?"
    ),
    # json_patch: an RFC 7396 merge patch; a member set to null is deleted. One
    # statement for both outcomes: a marker is left as it is and reports ended_at.
    "apply": (
        "UPDATE {table} SET "
        "fields=iif(ended_at IS NULL, json_patch(fields, ?), fields), "
        "lifetime=iif(ended_at IS NULL, coalesce(?, lifetime), lifetime), "
        "expires_at=iif(ended_at IS NULL, ?+coalesce(?, lifetime), expires_at) "
        "WHERE key=? AND expires_at>? RETURNING ended_at"
    ),
    "find": "SELECT fields, lifetime, expires_at, ended_at, successor FROM {table} "
    "WHERE key=? AND expires_at>?",
    "end": (
        "UPDATE {table} SET fields='{{}}', ended_at=?, successor=?, expires_at=max(expires_at, ?) "
        "WHERE key=?"
    ),
    "insert": (
        "INSERT OR REPLACE INTO {table} (key, fields, lifetime, expires_at) VALUES (?,?,?,?)"
    ),
    "touch": (
        "UPDATE {table} SET expires_at=?+lifetime WHERE key=? AND expires_at>? AND ended_at IS NULL"
    ),
    "purge": "DELETE FROM {table} WHERE expires_at<=?",
}


def schema_sql(table: str = "wsgi_sessions") -> str:
    """The DDL of the table ``table`` and its expiry index."""
    return _SCHEMA.format(table=table)


def _upgrade(db: sqlite3.Connection, table: str) -> None:
    """Rename the columns of a table made by wsgi-sessions 0.1 (a forward left by
    a rename then is exactly an ended marker with a successor now)."""
    columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    if "moved_to" in columns:
        db.execute(f"ALTER TABLE {table} RENAME COLUMN moved_to TO successor")
        db.execute(f"ALTER TABLE {table} RENAME COLUMN moved_at TO ended_at")


class SQLiteStore(Store):
    """Sessions in one table of an SQLite database file.

    Each thread gets its own connection (sqlite3 connections must not be
    shared between threads). Expired rows are invisible to every query
    (``expires_at`` is part of each ``WHERE``) and removed by
    :meth:`purge_expired` — run ``wsgi-sessions purge`` from cron. Changed
    fields are merged into the stored JSON object by SQLite itself
    (``json_patch``), so concurrent writers of different fields both survive.

    The file is created (with its table) here, at start-up, unless ``create``
    is false; afterwards connections only open the existing file, so a file
    deleted or moved under a running app is a :class:`SessionStoreError` (503),
    never a new empty store. A connection that failed is reopened on the next
    call, so a fault that passes (a read-only file, a full disk) passes here too.

    ``clock`` gives the time (epoch seconds) for expiry and ended markers; a
    test passes one it can move instead of sleeping.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        table: str = "wsgi_sessions",
        timeout: float = 5.0,
        create: bool = True,
        clock: Clock = time.time,
    ) -> None:
        if not table.isidentifier():
            raise ValueError(f"SQLiteStore table must be an identifier, got {table!r}")
        self.path = os.fspath(path)
        self.table = table
        self.timeout = timeout
        self.clock = clock
        self._local = threading.local()
        # The table name is checked above; everything else is a parameter.
        self._sql = {name: sql.format(table=table) for name, sql in _SQL.items()}
        # Open (and create) now: a wrong path fails at start-up, not at the first login.
        if create:
            try:
                db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
                try:
                    db.executescript(_SCHEMA.format(table=table))
                    _upgrade(db, table)
                finally:
                    db.close()
            except sqlite3.Error as exc:
                raise SessionStoreError(
                    f"SQLite session store: cannot create {self.path!r} ({exc})"
                ) from exc
        elif not os.path.isfile(self.path):
            raise SessionStoreError(f"SQLite session store: {self.path!r} does not exist")

    def schema_sql(self) -> str:
        return schema_sql(self.table)

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            # mode=rw: open the file the constructor checked, never create a new one.
            uri = f"file:{quote(os.path.abspath(self.path))}?mode=rw"
            db = sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                db.close()
                raise
            self._local.db = db
        return db

    def _run(self, operation: str, work: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            return work(self._connection())
        except sqlite3.Error as exc:
            # Open afresh on the next call: a connection that met a fault (the
            # file read-only or gone at the time) must not keep failing after it.
            self.close()
            raise SessionStoreError(
                f"SQLite session store failed during {operation} ({type(exc).__name__}); "
                "check that the database file exists, is writable and is not locked for long"
            ) from exc

    def _transaction(self, operation: str, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``work`` in one immediate transaction (a write lock from the start)."""

        def run(db: sqlite3.Connection) -> _T:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

        return self._run(operation, run)

    def load(self, key: str, touch: bool = False) -> dict[str, str] | Ended | None:
        now = self.clock()
        if touch:
            # fetchall: a RETURNING statement only finishes when read to the end
            rows = self._run(
                "load", lambda db: db.execute(self._sql["load_touch"], (now, key, now)).fetchall()
            )
            row = rows[0] if rows else None
        else:
            row = self._run("load", lambda db: db.execute(self._sql["load"], (key, now)).fetchone())
        if row is None:
            return None
        if row[1] is not None:
            return Ended(row[1])
        return json.loads(row[0])  # type: ignore[no-any-return]

    def _create(self, key: str, fields: Mapping[str, str], lifetime: int) -> bool:
        now = self.clock()
        params = (key, json.dumps(dict(fields)), lifetime, now + lifetime, now)
        cursor = self._run("create", lambda db: db.execute(self._sql["create"], params))
        return cursor.rowcount == 1

    def _apply(
        self,
        key: str,
        set_fields: Mapping[str, str],
        delete_fields: tuple[str, ...],
        lifetime: int | None,
    ) -> bool | Ended:
        patch: dict[str, str | None] = dict(set_fields)
        for name in delete_fields:
            patch[name] = None  # a merge patch deletes a member set to null
        now = self.clock()
        params = (json.dumps(patch), lifetime, now, lifetime, key, now)
        rows = self._run("apply", lambda db: db.execute(self._sql["apply"], params).fetchall())
        if not rows:
            return False
        ended_at = rows[0][0]
        return True if ended_at is None else Ended(ended_at)

    def end(self, key: str) -> bool:
        sql = self._sql

        def work(db: sqlite3.Connection) -> bool:
            now = self.clock()
            target = key
            for _ in range(MAX_SUCCESSORS + 1):
                row = db.execute(sql["find"], (target, now)).fetchone()
                if row is None:
                    return False
                _, _, _, ended_at, successor = row
                if ended_at is None:
                    db.execute(sql["end"], (now, None, now + self.end_grace, target))
                    return True
                if successor is None:
                    return False
                target = successor
            return False

        return self._transaction("end", work)

    def rename(self, old_key: str, new_key: str) -> bool | Ended:
        sql = self._sql

        def work(db: sqlite3.Connection) -> bool | Ended:
            now = self.clock()
            row = db.execute(sql["find"], (old_key, now)).fetchone()
            if row is None:
                return False
            fields, lifetime, expires_at, ended_at, _ = row
            if ended_at is not None:
                return Ended(ended_at)
            db.execute(sql["insert"], (new_key, fields, lifetime, expires_at))
            db.execute(sql["end"], (now, new_key, now + self.end_grace, old_key))
            return True

        return self._transaction("rename", work)

    def touch(self, key: str) -> bool:
        now = self.clock()
        cursor = self._run("touch", lambda db: db.execute(self._sql["touch"], (now, key, now)))
        return cursor.rowcount == 1

    def purge_expired(self) -> int:
        now = self.clock()
        cursor = self._run("purge", lambda db: db.execute(self._sql["purge"], (now,)))
        return cursor.rowcount

    def close(self) -> None:
        """Close this thread's connection (the next call opens a new one)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None:
            self._local.db = None
            db.close()
