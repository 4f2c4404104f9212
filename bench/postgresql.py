"""PostgreSQL-backed sessions: our PostgreSQLStore against Flask-Session's
SQLAlchemy backend, on the same database, with bench/server.py's scenarios
(S0 untouched, S1 read one key, S2 blind write of one key, S3 a new session
of two keys) and its round-robin harness.

Flask-Session's interface is called the way Flask calls it, in an app
context per request (Flask-SQLAlchemy's scoped session is removed when the
context ends, as in a Flask app, and SQLAlchemy's pool rolls the connection
back when it is returned). Both use psycopg 3; each request of each
contender reuses one pooled connection.

Round trips are counted from libpq's own protocol trace (one ReadyForQuery
from the server per round trip) on the real connections, during a counting
pass only: tracing is off while timing.

Run::

    python bench/postgresql.py        # WSGI_SESSIONS_POSTGRESQL_URL or postgresql://postgres@127.0.0.1:5432/test
    python bench/postgresql.py --url 'postgresql://postgres@127.0.0.1/test?options=-c%20synchronous_commit%3Doff'

libpq query parameters of ``--url`` reach both contenders' connections. Its
tables (a name unique to the run) are dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import typing as t
import uuid

import psycopg
from psycopg import pq
from psycopg_pool import ConnectionPool
from server import (
    SCENARIOS,
    SECRET,
    App,
    Contender,
    around_flask_interface,
    measure_all,
    ours,
    print_rows,
)

from wsgi_sessions.stores import MemoryStore
from wsgi_sessions.stores.postgresql import PostgreSQLStore


class RoundTrips:
    """Round trips of the connections handed to :meth:`configure`, from
    libpq's trace, while :attr:`on`."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.connections: list[t.Any] = []
        self.on = True

    def configure(self, conn: t.Any) -> None:
        self.connections.append(conn)
        if self.on:
            self._trace(conn)

    def _trace(self, conn: t.Any) -> None:
        conn.pgconn.trace(self.file.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    def count(self) -> int:
        self.file.seek(0)
        return self.file.read().count(b"\tReadyForQuery")

    def stop(self) -> None:
        self.on = False
        for conn in self.connections:
            if not conn.closed:
                conn.pgconn.untrace()

    def close(self) -> None:
        self.file.close()


def flask_session_sqlalchemy(url: str, table: str, trips: RoundTrips) -> App:
    """Flask-Session's SQLAlchemy interface around the app, as Flask runs it."""
    import flask
    from flask_session.sqlalchemy import SqlAlchemySessionInterface
    from flask_sqlalchemy import SQLAlchemy
    from sqlalchemy import event

    flask_app = flask.Flask("bench")
    flask_app.secret_key = SECRET
    flask_app.config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://" + url.split("://", 1)[1]
    db = SQLAlchemy(flask_app)
    with flask_app.app_context():
        event.listen(db.engine, "connect", lambda dbapi, record: trips.configure(dbapi))
    interface = SqlAlchemySessionInterface(flask_app, db, table=table, use_signer=False)
    return around_flask_interface(flask_app, interface, context=flask_app.app_context)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=7, help="round-robin rounds (median)")
    parser.add_argument("--seconds", type=float, default=0.2, help="time per measurement")
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "WSGI_SESSIONS_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    run = uuid.uuid4().hex[:12]
    ours_table, theirs_table = f"wsgi_sessions_bench_{run}", f"flask_sessions_bench_{run}"
    ours_trips, theirs_trips = RoundTrips(), RoundTrips()
    store = PostgreSQLStore(args.url, table=ours_table)  # parses the URL, makes the table
    pool: ConnectionPool[t.Any] = ConnectionPool(
        store.conninfo,
        min_size=1,
        max_size=1,
        kwargs={"autocommit": True},
        configure=ours_trips.configure,
        open=False,
    )
    try:
        contenders = [
            Contender("ours memory", ours(MemoryStore(max_sessions=sys.maxsize)), None),
            Contender(
                "ours postgresql",
                ours(PostgreSQLStore(pool, table=ours_table, create=False)),
                ours_trips.count,
            ),
            Contender(
                "flask-session sqlalchemy",
                flask_session_sqlalchemy(args.url, theirs_table, theirs_trips),
                theirs_trips.count,
            ),
        ]

        def untrace() -> None:
            ours_trips.stop()
            theirs_trips.stop()

        rows, _ = measure_all(contenders, {}, args.rounds, args.seconds, after_prepare=untrace)
    finally:
        pool.close()
        store.close()
        with psycopg.connect(store.conninfo, autocommit=True) as db:
            db.execute(f'DROP TABLE IF EXISTS "{ours_table}", "{theirs_table}"')
            db.execute(f'DROP FUNCTION IF EXISTS "{ours_table}_end", "{ours_table}_rename"')
        ours_trips.close()
        theirs_trips.close()
    print(f"command: python bench/postgresql.py --rounds {args.rounds} --seconds {args.seconds}")
    print_rows(rows)
    print()
    cells = [
        f"{rows['flask-session sqlalchemy'][s][0] / rows['ours postgresql'][s][0]:.2f}"
        for s in SCENARIOS
    ]
    print("| flask-session sqlalchemy / ours postgresql | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
