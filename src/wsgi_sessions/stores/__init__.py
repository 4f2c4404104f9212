"""Server-side session stores, and :func:`store_from_url` to pick one by URL."""

from __future__ import annotations

import re
import typing as t
from urllib.parse import unquote, urlsplit

from .base import Store
from .memory import MemoryStore

if t.TYPE_CHECKING:  # pragma: no cover
    from .mysql import MySQLStore
    from .postgresql import PostgreSQLStore
    from .redis import RedisStore
    from .sqlite import SQLiteStore

__all__ = [
    "MemoryStore",
    "MySQLStore",
    "PostgreSQLStore",
    "RedisStore",
    "SQLiteStore",
    "Store",
    "mask_url",
    "schema_from_url",
    "store_from_url",
]

# The schemes RedisStore takes (stores.redis_urls), known here without importing redis-py.
_REDIS_SCHEMES = frozenset(
    [
        "redis",
        "rediss",
        "unix",
        "redis+sentinel",
        "rediss+sentinel",
        "redis+cluster",
        "rediss+cluster",
    ]
)
# scheme://user:password@ ; the authority ends at the first / ? or # after its last @.
_URL_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:@/?#]*):[^?#]*@")
# password= and its kin (sentinel_password=) in the query.
_QUERY_PASSWORD = re.compile(r"([?&][a-z_]*password=)[^&#]*", re.IGNORECASE)


def __getattr__(name: str) -> t.Any:
    # `import wsgi_sessions` brings in this package (the server-side interface
    # defaults to MemoryStore); the other stores, and the drivers behind
    # them, load only when asked for.
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    if name == "SQLiteStore":
        from .sqlite import SQLiteStore

        return SQLiteStore
    if name == "PostgreSQLStore":
        from .postgresql import PostgreSQLStore

        return PostgreSQLStore
    if name == "MySQLStore":
        from .mysql import MySQLStore

        return MySQLStore
    raise AttributeError(name)


def mask_url(url: str) -> str:
    """``url`` as it may be shown in a message or a log: its password is ``***``
    (as SQLAlchemy shows URLs), whether in the user part or a ``password=`` query."""
    masked = _QUERY_PASSWORD.sub(r"\1***", url)
    match = _URL_PASSWORD.match(masked)
    if match is None:
        return masked
    # The password may hold an unescaped '@' or '/': it ends at the last '@'
    # before the path, so the host that follows is kept.
    head, rest = match[1], masked[len(match[1]) + 1 :]
    authority_end = len(rest)
    for index, char in enumerate(rest):
        if char in "?#":
            authority_end = index
            break
    at = rest.rfind("@", 0, authority_end)
    return f"{head}:***{rest[at:]}"


def store_from_url(url: str, *, create: bool = True) -> Store:
    """A store for ``url``: ``memory://``, ``sqlite:///relative.db``,
    ``sqlite:////absolute/path.db``, ``redis://host:port/db`` (also
    ``rediss://`` and ``unix://``, passed to redis-py as they are),
    ``postgresql://user:password@host:port/dbname`` (also ``postgres://``;
    see :func:`wsgi_sessions.stores.postgresql.parse_url`),
    ``mysql://user:password@host:port/dbname`` (also ``mariadb://``),
    ``redis+sentinel://host:port[,host:port...]/service[/db]`` and
    ``redis+cluster://host:port[,host:port...]`` (also ``rediss+...``: TLS);
    see :mod:`wsgi_sessions.stores.redis_urls` for their query parameters.

    A URL of another kind is a :class:`ValueError` naming the ``store`` setting.
    With ``create`` false, a store whose file or table does not exist yet is a
    :class:`~wsgi_sessions.SessionStoreError` instead of being made.
    """
    if not isinstance(url, str):
        raise TypeError(f"setting 'store' must be a URL or a Store, got {type(url).__name__}")
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryStore()
    if scheme == "sqlite":
        # sqlite:///x.db -> "x.db"; sqlite:////var/x.db -> "/var/x.db" (SQLAlchemy's convention)
        rest = url.split(":", 1)[1]
        if not rest.startswith("///") or len(rest) == 3:
            raise ValueError(
                f"setting 'store': an SQLite URL is sqlite:///relative/path.db or "
                f"sqlite:////absolute/path.db, got {mask_url(url)!r}"
            )
        from .sqlite import SQLiteStore

        return SQLiteStore(unquote(rest[3:]), create=create)
    if scheme in _REDIS_SCHEMES:
        from .redis import RedisStore

        return RedisStore(url)
    if scheme in ("postgresql", "postgres"):
        from .postgresql import PostgreSQLStore

        return PostgreSQLStore(url, create=create)
    if scheme in ("mysql", "mariadb"):
        from .mysql import MySQLStore

        return MySQLStore(_checked_mysql_url(url), create=create)
    raise ValueError(
        "setting 'store' must be a memory://, sqlite:///, redis:// (also redis+sentinel://, "
        f"redis+cluster://), postgresql:// or mysql:// URL, got {mask_url(url)!r}"
    )


def _checked_mysql_url(url: str) -> str:
    """``url`` once :func:`~wsgi_sessions.stores.mysql.parse_url` accepts it;
    its ValueError names the ``store`` setting and the URL without its password."""
    from .mysql import parse_url

    try:
        parse_url(url)
    except ValueError as exc:
        raise ValueError(f"setting 'store': {exc}, got {mask_url(url)!r}") from None
    return url


def schema_from_url(url: str) -> str:
    """The DDL a store of ``url`` runs at start-up (its ``schema_sql()``), for
    ``wsgi-sessions schema``, read from the URL alone: it connects to nothing,
    so it runs where the database is out of reach. A :class:`ValueError` for a
    store that has no schema."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        from . import sqlite

        return sqlite.schema_sql()
    if scheme in ("postgresql", "postgres"):
        from . import postgresql

        return postgresql.schema_sql(postgresql.parse_url(url).table)
    if scheme in ("mysql", "mariadb"):
        from . import mysql

        _, options = mysql.parse_url(_checked_mysql_url(url))
        return mysql.schema_sql(options.get("table", "wsgi_sessions"))
    raise ValueError(f"store {mask_url(url)!r} has no SQL schema to print")
