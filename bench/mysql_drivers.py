"""Which MySQL driver the MySQL/MariaDB store uses: a realistic store loop per driver.

Each "request" is what a server-side session costs on the wire in S1/S2: one
``CALL …_load_touch`` of a 5-key session (a result set of one row) and one
``CALL …_apply`` writing one key, on one connection, autocommit, as the store
sends them. Drivers are timed round-robin in the same run (interleaved rounds,
medians); only those that import are compared.

Run::

    python bench/mysql_drivers.py      # WSGI_SESSIONS_MYSQL_URL or mysql://root@127.0.0.1:3306/test

It creates a table (and its procedures) with a name unique to the run and drops them.
"""

from __future__ import annotations

import json
import os
import sys
import typing as t
import uuid
from collections.abc import Callable
from importlib.metadata import version
from urllib.parse import unquote, urlsplit

from harness import measure_interleaved

from wsgi_sessions.stores._mysql_sql import (
    PROCEDURES,
    procedure_name,
    schema_statements,
    statements,
)

URL = os.environ.get("WSGI_SESSIONS_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
SEED = {f"k{i}": json.dumps(f"value {i}") for i in range(5)}


def _params() -> dict[str, t.Any]:
    parts = urlsplit(URL)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": parts.path.lstrip("/") or "test",
    }


def connectors() -> dict[str, Callable[[], t.Any]]:
    params = _params()
    found: dict[str, Callable[[], t.Any]] = {}
    try:
        import pymysql

        found[f"PyMySQL {version('pymysql')}"] = lambda: pymysql.connect(
            **params, autocommit=True, charset="utf8mb4"
        )
    except ImportError:
        pass
    try:
        import MySQLdb

        found[f"mysqlclient {version('mysqlclient')}"] = lambda: MySQLdb.connect(
            host=params["host"],
            port=params["port"],
            user=params["user"],
            password=params["password"],
            database=params["database"],
            autocommit=True,
            charset="utf8mb4",
        )
    except ImportError:
        pass
    try:
        import mysql.connector
        from mysql.connector import HAVE_CEXT

        connector = version("mysql-connector-python")
        if HAVE_CEXT:
            found[f"mysql-connector {connector} (C ext)"] = lambda: mysql.connector.connect(
                **params, autocommit=True, charset="utf8mb4", use_pure=False
            )
        found[f"mysql-connector {connector} (pure)"] = lambda: mysql.connector.connect(
            **params, autocommit=True, charset="utf8mb4", use_pure=True
        )
    except ImportError:
        pass
    return found


def call(cursor: t.Any, sql: str, args: tuple[t.Any, ...]) -> list[t.Any]:
    """One CALL and its one result set; the trailing OK packet is drained."""
    if getattr(cursor, "_multi_call", False):  # mysql-connector's pure cursor
        rows = []
        for result in cursor.execute(sql, args, multi=True):
            if result.with_rows:
                rows = list(result.fetchall())
        return rows
    cursor.execute(sql, args)
    rows = list(cursor.fetchall())
    try:
        while cursor.nextset():
            pass
    except Exception:  # mysql-connector's C cursor: no further result set
        pass
    return rows


def main() -> None:
    table = f"bench_drivers_{uuid.uuid4().hex[:12]}"
    sql = statements(table)
    makers = connectors()
    if not makers:
        sys.exit("no MySQL driver: pip install pymysql mysqlclient mysql-connector-python")
    first = next(iter(makers.values()))()
    cursor = first.cursor()
    for statement in schema_statements(table):
        cursor.execute(statement)
    try:
        loops: dict[str, Callable[[], None]] = {}
        for index, (name, make) in enumerate(makers.items()):
            connection = make()
            cur = connection.cursor()
            if "pure" in name:
                cur._multi_call = True
            key = f"{{bench{index:03}}}" + uuid.uuid4().hex
            call(cur, sql["create"], (key, json.dumps(list(SEED.items())), 3600))
            patch = json.dumps([["k2", json.dumps("changed")]])

            def loop(
                cur: t.Any = cur, key: str = key, patch: str = patch, keep: t.Any = connection
            ) -> None:
                rows = call(cur, sql["load_touch"], (key,))
                assert len(rows) == 5
                assert call(cur, sql["apply"], (key, patch, None, None))[0][0] == 1

            def read(cur: t.Any = cur, key: str = key, keep: t.Any = connection) -> None:
                cur.execute(sql["load"], (key,))
                assert len(cur.fetchall()) == 5

            loop()
            read()
            loops[name] = loop
            loops[f"{name} | read"] = read
        results = measure_interleaved(loops, seconds=0.3, rounds=9)
    finally:
        cursor.execute(f"DROP TABLE IF EXISTS {table}, {table}_fields")
        for operation in PROCEDURES:
            cursor.execute(f"DROP PROCEDURE IF EXISTS {procedure_name(table, operation)}")
        first.close()
    print("µs per call, median of 9 interleaved rounds (x: over the fastest driver)")
    for title, pick in (
        ("CALL load_touch + CALL apply (S2 on the wire)", lambda name: "|" not in name),
        ("SELECT load (no touch; the driver's own cost shows most)", lambda name: "|" in name),
    ):
        rows = {name.split(" | ")[0]: us for name, us in results.items() if pick(name)}
        fastest = min(rows.values())
        print(f"{title}:")
        for name, micros in sorted(rows.items(), key=lambda item: item[1]):
            print(f"  {name:40} {micros:8.1f}   x{micros / fastest:.2f}")


if __name__ == "__main__":
    main()
