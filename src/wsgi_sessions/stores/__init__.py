"""Server-side session stores, and :func:`store_from_url` to pick one by URL."""

from __future__ import annotations

import typing as t
from urllib.parse import unquote, urlsplit

from .base import Store
from .memory import MemoryStore
from .sqlite import SQLiteStore

if t.TYPE_CHECKING:  # pragma: no cover
    from .redis import RedisStore

__all__ = ["MemoryStore", "RedisStore", "SQLiteStore", "Store", "store_from_url"]


def __getattr__(name: str) -> t.Any:
    # RedisStore imports nothing from redis-py until used, but keep the module
    # itself out of `import wsgi_sessions.stores` for the same reason.
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    raise AttributeError(name)


def store_from_url(url: str) -> Store:
    """A store for ``url``: ``memory://``, ``sqlite:///relative.db``,
    ``sqlite:////absolute/path.db``, ``redis://host:port/db`` (also
    ``rediss://`` and ``unix://``, passed to redis-py as they are).

    A URL of another kind is a :class:`ValueError` naming the ``store`` setting.
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
                f"sqlite:////absolute/path.db, got {url!r}"
            )
        return SQLiteStore(unquote(rest[3:]))
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisStore

        return RedisStore(url)
    raise ValueError(
        f"setting 'store' must be a memory://, sqlite:/// or redis:// URL, got {url!r}"
    )
