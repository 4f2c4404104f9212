"""Turn a plain settings dict into validated configuration, once, at start-up.

Settings usually come from an ini file, so every value may be a string:
``"true"``, ``"3600"``, ``"12h"``. What comes out is a dict keyed by Flask's
configuration names (:func:`parse_settings`), held by a :class:`SessionConfig`
that looks to an interface like a Flask app, so the same interface code serves
Flask and every other framework. Anything wrong is a :class:`ValueError` (or a
:class:`TypeError` for a value of the wrong kind) naming the setting: a typo
must never be silently ignored.
"""

from __future__ import annotations

import logging
import re
import typing as t
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone

__all__ = [
    "DEFAULT_ENVIRON_KEY",
    "DEFAULT_IDLE_LIFETIME",
    "SessionConfig",
    "parse_settings",
    "to_bool",
    "to_timedelta",
]

logger = logging.getLogger("wsgi_sessions")

DEFAULT_ENVIRON_KEY = "wsgi_sessions.session"
#: How long a server-side browser (non-permanent) session lives unused.
DEFAULT_IDLE_LIFETIME = timedelta(days=1)

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_DURATION = re.compile(r"(\d+)\s*([smhdw]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# RFC 6265 cookie-name: an RFC 7230 token.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A host name or IP address, optionally with a leading dot (old-style domain cookies).
_COOKIE_DOMAIN = re.compile(r"\.?[0-9A-Za-z_-]+(?:\.[0-9A-Za-z_-]+)*")
_SAMESITE = {"strict": "Strict", "lax": "Lax", "none": "None"}


def to_bool(name: str, value: t.Any) -> bool:
    """A boolean from ``True``/``False`` or an ini word (true/false, yes/no, on/off, 1/0)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise ValueError(
        f"setting {name!r} must be a boolean (true/false, yes/no, on/off, 1/0), got {value!r}"
    )


def to_timedelta(name: str, value: t.Any) -> timedelta:
    """A duration from a timedelta, whole seconds, or "3600", "30m", "12h", "31d"."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value.strip().lower())):
        seconds = int(match[1]) * _UNIT_SECONDS[match[2]]
    else:
        raise ValueError(
            f"setting {name!r} must be a duration: seconds as an int, a timedelta, "
            f"or a string like '3600', '30m', '12h', '31d'; got {value!r}"
        )
    if seconds <= 0:
        raise ValueError(f"setting {name!r} must be a positive duration, got {value!r}")
    try:
        duration = timedelta(seconds=seconds)
        # Every permanent save computes now + the duration: fail here, not on each save.
        datetime.now(timezone.utc) + duration
    except OverflowError:
        raise ValueError(
            f"setting {name!r} is too long a duration (now plus it is past the year 9999); "
            f"give at most a few thousand years, e.g. '36500d', got {value!r}"
        ) from None
    return duration


_HOW_TO_MAKE_A_KEY = "`wsgi-sessions secret` prints a new one"


def _to_secret(name: str, value: t.Any) -> str | bytes | None:
    if value is None:
        return None  # no key: NullSession, as in Flask (SessionConfig warns)
    if not isinstance(value, (str, bytes)):
        raise TypeError(f"setting {name!r} must be a str or bytes, got {type(value).__name__}")
    # An empty value is a mistake (an ini line `secret_key =`, an unset
    # environment variable), never a wish to run without sessions.
    if not value.strip() if isinstance(value, str) else not value:
        raise ValueError(
            f"setting {name!r} is empty: give a long random string ({_HOW_TO_MAKE_A_KEY}), "
            "or leave the setting out to run without sessions"
        )
    return value


def _to_fallbacks(name: str, value: t.Any, from_ini: bool) -> list[str | bytes]:
    if isinstance(value, str):
        if not from_ini:
            raise TypeError(
                f"setting {name!r} must be a list of keys, not a str: a string would "
                "become one key per character. Write [old_key] (or, in an ini file, "
                "separate keys with spaces or commas)."
            )
        return [key for key in re.split(r"[\s,]+", value) if key]
    if isinstance(value, (list, tuple)):
        keys = list(value)
        for key in keys:
            if not isinstance(key, (str, bytes)):
                raise TypeError(f"setting {name!r} must hold str or bytes keys")
            if not key.strip() if isinstance(key, str) else not key:
                raise ValueError(
                    f"setting {name!r} holds an empty key: remove it, or give the old key"
                )
        return keys
    raise TypeError(f"setting {name!r} must be a list of keys, got {type(value).__name__}")


def _to_optional_str(name: str, value: t.Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value.strip()
    raise TypeError(f"setting {name!r} must be a str, got {type(value).__name__}")


def _to_cookie_name(name: str, value: t.Any) -> str:
    if not isinstance(value, str) or not _COOKIE_NAME.fullmatch(value):
        raise ValueError(
            f"setting {name!r} must be a cookie name (letters, digits and !#$%&'*+-.^_`|~), "
            f"got {value!r}"
        )
    return value


def _to_domain(name: str, value: t.Any) -> str | None:
    # Written into the Set-Cookie header as is: a ';' or a line break would add
    # attributes or headers, and a port makes browsers drop the cookie.
    domain = _to_optional_str(name, value)
    if domain is not None and not _COOKIE_DOMAIN.fullmatch(domain):
        raise ValueError(
            f"setting {name!r} must be a host name such as 'example.com' (no port, "
            f"scheme, path or spaces), got {value!r}"
        )
    return domain


def _to_samesite(name: str, value: t.Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().lower() in _SAMESITE:
        return _SAMESITE[value.strip().lower()]
    raise ValueError(f"setting {name!r} must be 'Strict', 'Lax', 'None' or empty, got {value!r}")


def _to_path(name: str, value: t.Any) -> str | None:
    path = _to_optional_str(name, value)
    if path is not None and not path.startswith("/"):
        raise ValueError(f"setting {name!r} must start with '/', got {value!r}")
    return path


def _to_size(name: str, value: t.Any) -> int:
    if isinstance(value, str) and value.strip().isdecimal():  # isdigit() accepts "²"
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError(
        f"setting {name!r} must be a whole number of bytes (0 = no limit), got {value!r}"
    )


def _to_environ_key(name: str, value: t.Any) -> str:
    if isinstance(value, str) and value:
        return value
    raise ValueError(f"setting {name!r} must be a non-empty str, got {value!r}")


def _to_optional_duration(name: str, value: t.Any) -> timedelta | None:
    if value is None:
        return None  # off, as when the setting is left out
    if isinstance(value, str) and not value.strip():
        # An empty ini line (an unset variable) must not silently turn a limit off.
        raise ValueError(
            f"setting {name!r} is empty: give a duration such as '30m' or '12h', "
            "or leave the setting out for no limit"
        )
    return to_timedelta(name, value)


def _to_store(name: str, value: t.Any) -> t.Any:
    # A URL is checked where it is opened (stores.store_from_url); a ready store
    # object passes through.
    if isinstance(value, str):
        return value.strip() or None
    return value


class _Setting(t.NamedTuple):
    config_key: str
    default: t.Any
    convert: Callable[[str, t.Any], t.Any]


_SETTINGS: dict[str, _Setting] = {
    "secret_key": _Setting("SECRET_KEY", None, _to_secret),
    "cookie_name": _Setting("SESSION_COOKIE_NAME", "session", _to_cookie_name),
    "cookie_domain": _Setting("SESSION_COOKIE_DOMAIN", None, _to_domain),
    "cookie_path": _Setting("SESSION_COOKIE_PATH", None, _to_path),
    "cookie_httponly": _Setting("SESSION_COOKIE_HTTPONLY", True, to_bool),
    "cookie_secure": _Setting("SESSION_COOKIE_SECURE", False, to_bool),
    "cookie_samesite": _Setting("SESSION_COOKIE_SAMESITE", "Lax", _to_samesite),
    "cookie_partitioned": _Setting("SESSION_COOKIE_PARTITIONED", False, to_bool),
    # Seal the cookie session (AES-GCM) instead of signing it (needs `cryptography`).
    "cookie_encryption": _Setting("SESSION_COOKIE_ENCRYPTION", False, to_bool),
    # Cache-Control: private on every response that sets or deletes the cookie.
    "cookie_cache_control": _Setting("SESSION_COOKIE_CACHE_CONTROL", True, to_bool),
    "permanent_lifetime": _Setting("PERMANENT_SESSION_LIFETIME", timedelta(days=31), to_timedelta),
    "refresh_each_request": _Setting("SESSION_REFRESH_EACH_REQUEST", True, to_bool),
    "application_root": _Setting("APPLICATION_ROOT", "/", _to_path),
    "max_cookie_size": _Setting("MAX_COOKIE_SIZE", 4093, _to_size),
    "environ_key": _Setting("ENVIRON_KEY", DEFAULT_ENVIRON_KEY, _to_environ_key),
    "store": _Setting("SESSION_STORE", None, _to_store),
    # Retention: how long a server-side browser session is kept unused (housekeeping).
    "idle_lifetime": _Setting("SESSION_IDLE_LIFETIME", DEFAULT_IDLE_LIFETIME, to_timedelta),
    # Security limits, every kind of session: over after this long unused / since login.
    "idle_timeout": _Setting("SESSION_IDLE_TIMEOUT", None, _to_optional_duration),
    "absolute_timeout": _Setting("SESSION_ABSOLUTE_TIMEOUT", None, _to_optional_duration),
}


#: How a setting's name reads in messages: as the user wrote it.
WrittenAs = Callable[[str], str]


def parse_settings(
    settings: Mapping[str, t.Any] | None = None,
    prefix: str = "",
    *,
    written_as: WrittenAs | None = None,
) -> dict[str, t.Any]:
    """Validate ``settings`` and return the configuration, keyed by Flask's names.

    Public, beside :class:`SessionConfig` (whose ``config`` this is): a Flask
    app can take the result as its ``app.config`` from a shared ini section.
    With a ``prefix`` (``"session."`` for an ini file's shared section) only keys
    that start with it are read, and a string ``secret_key_fallbacks`` is split
    on spaces and commas. Without one, every key must be known.

    Messages name a setting as ``written_as(name)`` (by default ``prefix +
    name``), so an adapter whose users spell settings their own way (a
    PasteDeploy section, where the prefix is optional) names them that way.
    """
    spell = written_as or (lambda name: prefix + name)
    if settings is None:
        settings = {}
    if not isinstance(settings, Mapping):
        raise TypeError(f"settings must be a mapping, got {type(settings).__name__}")
    config = {setting.config_key: setting.default for setting in _SETTINGS.values()}
    config["SECRET_KEY_FALLBACKS"] = []
    for raw_name, value in settings.items():
        if not isinstance(raw_name, str):
            raise TypeError(f"setting names must be str, got {raw_name!r}")
        if prefix:
            if not raw_name.startswith(prefix):
                continue
            name = raw_name[len(prefix) :]
        else:
            name = raw_name
        if name == "secret_key_fallbacks":
            config["SECRET_KEY_FALLBACKS"] = _to_fallbacks(spell(name), value, bool(prefix))
            continue
        setting = _SETTINGS.get(name)
        if setting is None:
            known = ", ".join(sorted([*_SETTINGS, "secret_key_fallbacks"]))
            raise ValueError(f"unknown setting {spell(name)!r}; the settings are: {known}")
        config[setting.config_key] = setting.convert(spell(name), value)
    _check_combinations(config, spell)
    return config


class SessionConfig:
    """Validated settings, in the shape an interface takes as Flask's ``app``.

    Interfaces read ``config`` (Flask's key names), ``secret_key`` and
    ``permanent_session_lifetime``, so one interface serves a Flask app and
    this object alike. :class:`~wsgi_sessions.SessionMiddleware`, the Pyramid
    adapter and the CLI each hold one; none needs a WSGI app for it.

    ``config`` stays a plain, mutable dict: interfaces read it on every call, so
    a change takes effect on the next request, as with Flask's ``app.config``.
    """

    def __init__(
        self,
        settings: Mapping[str, t.Any] | None = None,
        *,
        prefix: str = "",
        written_as: WrittenAs | None = None,
        warn_without_secret: bool = True,
    ) -> None:
        #: A setting's name as the user writes it, for messages (see :func:`parse_settings`).
        self.setting_name: WrittenAs = written_as or (lambda name: prefix + name)
        self.config: dict[str, t.Any] = parse_settings(settings, prefix, written_as=written_as)
        if warn_without_secret:
            # As in Flask, no key means NullSession; unlike Flask, say so once,
            # at start-up, rather than on the first write of the first user.
            self.warn_if_no_secret()

    def warn_if_no_secret(self) -> None:
        """Log that sessions are unavailable, if no secret key is set.

        At start-up by default; an adapter that may find a session opened by
        :class:`~wsgi_sessions.SessionMiddleware` (with its own key) calls it
        only when it would open one itself (``warn_without_secret=False``).
        """
        if self.config["SECRET_KEY"] is None:
            logger.warning(
                "no secret key is set (setting %r): sessions are unavailable and every "
                "session write will raise. Set it to a long random string (%s).",
                self.setting_name("secret_key"),
                _HOW_TO_MAKE_A_KEY,
            )

    @property
    def secret_key(self) -> str | bytes | None:
        return self.config["SECRET_KEY"]  # type: ignore[no-any-return]

    @property
    def permanent_session_lifetime(self) -> timedelta:
        return self.config["PERMANENT_SESSION_LIFETIME"]  # type: ignore[no-any-return]

    @property
    def environ_key(self) -> str:
        return self.config["ENVIRON_KEY"]  # type: ignore[no-any-return]


def _check_combinations(config: dict[str, t.Any], spell: WrittenAs) -> None:
    """Refuse cookie attribute combinations that browsers reject outright."""
    name = config["SESSION_COOKIE_NAME"]
    secure = config["SESSION_COOKIE_SECURE"]
    if config["SESSION_COOKIE_SAMESITE"] == "None" and not secure:
        raise ValueError(
            f"setting {spell('cookie_samesite')}='None' requires {spell('cookie_secure')}=true: "
            "browsers reject SameSite=None cookies that are not Secure"
        )
    if config["SESSION_COOKIE_PARTITIONED"] and not secure:
        raise ValueError(
            f"setting {spell('cookie_partitioned')}=true requires {spell('cookie_secure')}=true: "
            "browsers reject Partitioned cookies that are not Secure"
        )
    if name.startswith("__Secure-") and not secure:
        raise ValueError(
            f"setting {spell('cookie_name')}={name!r} requires {spell('cookie_secure')}=true "
            "(the __Secure- prefix)"
        )
    if name.startswith("__Host-"):
        path = config["SESSION_COOKIE_PATH"] or config["APPLICATION_ROOT"]
        if not secure:
            raise ValueError(
                f"setting {spell('cookie_name')}={name!r} requires {spell('cookie_secure')}=true "
                "(the __Host- prefix)"
            )
        if config["SESSION_COOKIE_DOMAIN"]:
            raise ValueError(
                f"setting {spell('cookie_domain')} must be empty with "
                f"{spell('cookie_name')}={name!r} (the __Host- prefix forbids a Domain)"
            )
        if path != "/":
            raise ValueError(
                f"setting {spell('cookie_path')} must be '/' with {spell('cookie_name')}={name!r} "
                "(the __Host- prefix requires Path=/)"
            )
