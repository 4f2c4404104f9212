"""The ``wsgi-sessions`` command: small operational aids.

- ``secret``: print a new strong secret key.
- ``inspect COOKIE --secret-key KEY``: verify a cookie session and pretty-print
  it (never without the key: an unverified cookie proves nothing).
- ``purge --store URL``: delete expired server-side sessions (for cron).
- ``schema --store URL``: print the DDL an SQL store runs at start-up, for
  teams whose app user may not run DDL (then set ``create=false`` in the URL).
"""

from __future__ import annotations

import argparse
import os
import pprint
import secrets
import sys
import typing as t
from collections.abc import Callable, Sequence

from itsdangerous import BadData

from .errors import SessionStoreError
from .interface import SecureCookieSessionInterface
from .settings import SessionConfig

if t.TYPE_CHECKING:  # pragma: no cover
    from .stores import Store

__all__ = ["main"]

_SECRET_ENV = "WSGI_SESSIONS_SECRET_KEY"  # noqa: S105 - a variable name, not a secret


def _secret(args: argparse.Namespace) -> int:
    print(secrets.token_hex(32))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    secret_key = args.secret_key or os.environ.get(_SECRET_ENV)
    if not secret_key:
        print(f"error: give --secret-key, or set {_SECRET_ENV}", file=sys.stderr)
        return 2
    config = SessionConfig({"secret_key": secret_key, "secret_key_fallbacks": args.fallback or []})
    serializer = SecureCookieSessionInterface().get_signing_serializer(config)
    assert serializer is not None
    value = args.cookie.strip()
    name, equals, rest = value.partition("=")
    if equals and "." not in name:  # "session=..." as copied from a Cookie header
        value = rest
    try:
        data, signed_at = serializer.loads(value, max_age=args.max_age, return_timestamp=True)
    except BadData as exc:
        print(f"invalid cookie: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"signed at: {signed_at.isoformat()}")
    print(pprint.pformat(data, sort_dicts=True))
    return 0


def _open_store(url: str) -> tuple[Store | None, Callable[[Exception], None], int]:
    """The store of ``url``, made without creating anything (a typo must not
    make a new file or table), with a printer for errors that masks the
    password, and the exit status when there is no store."""
    from .stores import mask_url, store_from_url

    shown = mask_url(url)

    def error(exc: Exception) -> None:
        # Whatever raised it (a store, a client library) may have echoed the URL.
        print(f"error: {str(exc).replace(url, shown)}", file=sys.stderr)

    try:
        return store_from_url(url, create=False), error, 0
    except (ValueError, TypeError) as exc:
        error(exc)
        return None, error, 2
    except SessionStoreError as exc:
        error(exc)
        return None, error, 1


def _purge(args: argparse.Namespace) -> int:
    store, error, status = _open_store(args.store)
    if store is None:
        return status
    try:
        count = store.purge_expired()
    except SessionStoreError as exc:
        error(exc)
        return 1
    finally:
        store.close()
    print(f"purged {count} expired session(s)")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from .stores import schema_from_url

    try:
        print(schema_from_url(args.store), end="")  # connects to nothing
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)  # the message masks the password
        return 2
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsgi-sessions", description="Tools for wsgi-sessions sessions."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    secret = commands.add_parser("secret", help="print a new strong secret key")
    secret.set_defaults(run=_secret)

    inspect = commands.add_parser("inspect", help="verify and show a cookie session")
    inspect.add_argument("cookie", help="the cookie's value (or name=value)")
    inspect.add_argument(
        "--secret-key", help=f"the app's secret key (default: ${_SECRET_ENV})", default=None
    )
    inspect.add_argument(
        "--fallback", action="append", help="an older secret key to try (repeatable)"
    )
    inspect.add_argument(
        "--max-age", type=int, default=None, help="reject cookies signed longer ago (seconds)"
    )
    inspect.set_defaults(run=_inspect)

    purge = commands.add_parser("purge", help="delete expired server-side sessions")
    purge.add_argument("--store", required=True, help="sqlite:///path.db, redis://..., ...")
    purge.set_defaults(run=_purge)

    schema = commands.add_parser("schema", help="print the DDL a store's database needs")
    schema.add_argument(
        "--store", required=True, help="postgresql://..., mysql://..., sqlite:///path.db"
    )
    schema.set_defaults(run=_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; the exit status is 0 on success, 1 on a failure, 2 on misuse."""
    args = _parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
