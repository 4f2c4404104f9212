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
from collections.abc import Callable, Iterable, Mapping

from ..errors import SessionStoreError
from .base import MAX_FORWARDS, Store, check_fields

__all__ = ["SQLiteStore"]

_T = t.TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    key TEXT PRIMARY KEY,
    fields TEXT NOT NULL,
    lifetime INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    moved_to TEXT,
    moved_at REAL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {table}_expires_at ON {table} (expires_at);
"""

# Every statement names the table as {table}; a live row is one whose
# expires_at is in the future and that is not a rename's forward.
_SQL = {
    "load": "SELECT fields FROM {table} WHERE key=? AND expires_at>? AND moved_to IS NULL",
    "load_touch": (
        "UPDATE {table} SET expires_at=?+lifetime "
        "WHERE key=? AND expires_at>? AND moved_to IS NULL RETURNING fields"
    ),
    # Insert-only, except over an expired row (which purge may not have removed yet).
    "create": (
        "INSERT INTO {table} (key, fields, lifetime, expires_at) VALUES (?,?,?,?) "
        "ON CONFLICT(key) DO UPDATE SET fields=excluded.fields, lifetime=excluded.lifetime, "
        "expires_at=excluded.expires_at, moved_to=NULL WHERE {table}.expires_at<=?"
    ),
    # json_patch: an RFC 7396 merge patch; a member set to null is deleted.
    "apply": (
        "UPDATE {table} SET fields=json_patch(fields, ?), lifetime=coalesce(?, lifetime), "
        "expires_at=?+coalesce(?, lifetime) WHERE key=? AND expires_at>? AND moved_to IS NULL"
    ),
    "moved": "SELECT moved_to, moved_at FROM {table} WHERE key=? AND expires_at>?",
    "delete": "DELETE FROM {table} WHERE key=? RETURNING expires_at, moved_to",
    "touch": (
        "UPDATE {table} SET expires_at=?+lifetime WHERE key=? AND expires_at>? AND moved_to IS NULL"
    ),
    "purge": "DELETE FROM {table} WHERE expires_at<=?",
    "rename_read": (
        "SELECT fields, lifetime, expires_at FROM {table} "
        "WHERE key=? AND expires_at>? AND moved_to IS NULL"
    ),
    "rename_insert": (
        "INSERT OR REPLACE INTO {table} (key, fields, lifetime, expires_at) VALUES (?,?,?,?)"
    ),
    "rename_forward": (
        "UPDATE {table} SET fields='{{}}', moved_to=?, moved_at=?, expires_at=? WHERE key=?"
    ),
}


class SQLiteStore(Store):
    """Sessions in one table of an SQLite database file.

    Each thread gets its own connection (sqlite3 connections must not be
    shared between threads). Expired rows are invisible to every query
    (``expires_at`` is part of each ``WHERE``) and removed by
    :meth:`purge_expired` — run ``wsgi-sessions purge`` from cron. Changed
    fields are merged into the stored JSON object by SQLite itself
    (``json_patch``), so concurrent writers of different fields both survive.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, table: str = "wsgi_sessions", timeout: float = 5.0
    ) -> None:
        if not table.isidentifier():
            raise ValueError(f"SQLiteStore table must be an identifier, got {table!r}")
        self.path = os.fspath(path)
        self.table = table
        self.timeout = timeout
        self._local = threading.local()
        # The table name is checked above; everything else is a parameter.
        self._sql = {name: sql.format(table=table) for name, sql in _SQL.items()}
        # Create the table now: a wrong path fails at start-up, not at the first login.
        self._run("open", lambda db: db.executescript(_SCHEMA.format(table=table)))

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def _run(self, operation: str, work: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            return work(self._connection())
        except sqlite3.Error as exc:
            raise SessionStoreError(
                f"SQLite session store failed during {operation} ({type(exc).__name__}); "
                "check that the database file is writable and not locked for long"
            ) from exc

    def load(self, key: str, touch: bool = False) -> dict[str, str] | None:
        now = time.time()
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
        return json.loads(row[0])  # type: ignore[no-any-return]

    def create(self, key: str, fields: Mapping[str, str], lifetime: int) -> bool:
        check_fields(fields)
        now = time.time()
        params = (key, json.dumps(dict(fields)), lifetime, now + lifetime, now)
        cursor = self._run("create", lambda db: db.execute(self._sql["create"], params))
        return cursor.rowcount == 1

    def apply(
        self,
        key: str,
        set_fields: Mapping[str, str],
        delete_fields: Iterable[str],
        lifetime: int | None = None,
        opened_at: float | None = None,
    ) -> bool:
        delete_fields = tuple(delete_fields)
        check_fields(set_fields, delete_fields)
        patch: dict[str, str | None] = dict(set_fields)
        for name in delete_fields:
            patch[name] = None  # a merge patch deletes a member set to null
        text = json.dumps(patch)

        def work(db: sqlite3.Connection) -> bool:
            target = key
            for _ in range(MAX_FORWARDS + 1):  # the key, then up to MAX_FORWARDS forwards
                now = time.time()
                params = (text, lifetime, now, lifetime, target, now)
                if db.execute(self._sql["apply"], params).rowcount == 1:
                    return True
                row = db.execute(self._sql["moved"], (target, now)).fetchone()
                if row is None or row[0] is None:
                    return False
                if opened_at is None or opened_at >= row[1]:
                    return False  # not in flight at the rename: the old id is dead
                target = row[0]  # renamed while this request ran: follow it
            return False

        return self._run("apply", work)

    def delete(self, key: str) -> bool:
        now = time.time()
        rows = self._run("delete", lambda db: db.execute(self._sql["delete"], (key,)).fetchall())
        row = rows[0] if rows else None
        return row is not None and row[0] > now and row[1] is None

    def rename(self, old_key: str, new_key: str) -> bool:
        sql = self._sql

        def work(db: sqlite3.Connection) -> bool:
            db.execute("BEGIN IMMEDIATE")
            try:
                now = time.time()
                row = db.execute(sql["rename_read"], (old_key, now)).fetchone()
                if row is None:
                    return False
                db.execute(sql["rename_insert"], (new_key, *row))
                forward = (new_key, now, now + self.moved_grace, old_key)
                db.execute(sql["rename_forward"], forward)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            else:
                return True
            finally:
                if db.in_transaction:
                    db.execute("COMMIT")

        return self._run("rename", work)

    def touch(self, key: str) -> bool:
        now = time.time()
        cursor = self._run("touch", lambda db: db.execute(self._sql["touch"], (now, key, now)))
        return cursor.rowcount == 1

    def purge_expired(self) -> int:
        now = time.time()
        cursor = self._run("purge", lambda db: db.execute(self._sql["purge"], (now,)))
        return cursor.rowcount

    def close(self) -> None:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
