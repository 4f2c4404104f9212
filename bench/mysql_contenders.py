"""The MySQL/MariaDB contenders of bench/server.py: our MySQLStore and
Flask-Session's SQLAlchemy backend, on the same database, same driver
(mysqlclient), each in a table of its own named for the run and dropped after.

Round trips are counted around the real driver: a mysqlclient connection
class whose ``query``, ``commit``, ``rollback`` and ``ping`` (each one
request and its answer) bump a counter. Both contenders make their
connections from it (ours through ``connect=``, SQLAlchemy through
``creator=``).
"""

from __future__ import annotations

import typing as t
import uuid
from collections.abc import Callable, Iterable

import MySQLdb
import MySQLdb.connections
from MySQLdb.constants import CLIENT

from wsgi_sessions.stores import _mysql_sql
from wsgi_sessions.stores.mysql import MySQLStore, parse_url

App = Callable[[dict[str, t.Any], t.Any], Iterable[bytes]]


class CountingConnection(MySQLdb.connections.Connection):  # type: ignore[misc]
    """mysqlclient's connection, counting the requests it sends."""

    sent = 0

    def query(self, sql: t.Any) -> None:
        CountingConnection.sent += 1
        super().query(sql)

    def commit(self) -> None:
        CountingConnection.sent += 1
        super().commit()

    def rollback(self) -> None:
        CountingConnection.sent += 1
        super().rollback()

    def ping(self, *args: t.Any) -> t.Any:
        CountingConnection.sent += 1
        return super().ping(*args)


def _sent() -> int:
    return CountingConnection.sent


class MySQLContenders:
    """``contenders``: (name, app, round-trip counter) triples; ``close()`` drops the tables."""

    def __init__(
        self,
        url: str,
        ours: Callable[[t.Any], App],
        make_app: Callable[[Callable[[dict[str, t.Any]], t.Any]], App],
        secret: str,
    ) -> None:
        self.url = url
        self.make_app, self.secret = make_app, secret
        params, _ = parse_url(url)
        self.params = {**params, "charset": "utf8mb4"}
        run = uuid.uuid4().hex[:10]
        self.table = f"bench_ours_{run}"
        self.peer_table = f"bench_flask_session_{run}"
        ours_params = {**self.params, "autocommit": True, "multi_statements": False}
        self.store = MySQLStore(lambda: CountingConnection(**ours_params), table=self.table)
        self.contenders: list[tuple[str, App, Callable[[], int]]] = [
            ("ours mysql", ours(self.store), _sent),
            ("flask-session sqlalchemy mysql", self._peer(), _sent),
        ]

    def _peer(self) -> App:
        """Flask-Session's SqlAlchemySessionInterface around the app, the way
        Flask calls it (open/save inside an app context, whose teardown
        returns the SQLAlchemy session's connection to its pool)."""
        import flask
        from flask_session.sqlalchemy import SqlAlchemySessionInterface
        from flask_sqlalchemy import SQLAlchemy

        flask_app = flask.Flask("bench_mysql")
        flask_app.secret_key = self.secret
        flask_app.config["SQLALCHEMY_DATABASE_URI"] = "mysql+mysqldb://"
        # What SQLAlchemy's mysqldb dialect asks for when it connects itself
        # (its ORM checks UPDATE row counts as rows found, not rows changed).
        params = {**self.params, "client_flag": CLIENT.FOUND_ROWS}
        flask_app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "creator": lambda: CountingConnection(**params)
        }
        db = SQLAlchemy(flask_app)
        self.engine_owner = (flask_app, db)
        interface = SqlAlchemySessionInterface(
            flask_app, db, table=self.peer_table, use_signer=False, cleanup_n_requests=None
        )
        key = "flask_session.session"
        inner = self.make_app(lambda environ: environ[key])

        def app(environ: dict[str, t.Any], start_response: t.Any) -> Iterable[bytes]:
            with flask_app.app_context():
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

    def close(self) -> None:
        self.store.close()
        connection = MySQLdb.connect(**self.params, autocommit=True)
        try:
            cursor = connection.cursor()
            for table in (self.table, f"{self.table}_fields", self.peer_table):
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
            for operation in _mysql_sql.PROCEDURES:
                name = _mysql_sql.procedure_name(self.table, operation)
                cursor.execute(f"DROP PROCEDURE IF EXISTS {name}")
        finally:
            connection.close()
        if hasattr(self, "engine_owner"):
            flask_app, db = self.engine_owner
            with flask_app.app_context():
                db.engine.dispose()
