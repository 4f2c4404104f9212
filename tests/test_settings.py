"""Settings: defaults, string coercion for ini files, refusals naming the setting,
and the SessionConfig that interfaces take as Flask's ``app``."""

from __future__ import annotations

import logging
import typing as t
from datetime import timedelta

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from wsgi_sessions import SecureCookieSessionInterface, SessionConfig, parse_settings
from wsgi_sessions.settings import to_bool, to_timedelta

DEFAULTS = {
    "SECRET_KEY": None,
    "SECRET_KEY_FALLBACKS": [],
    "SESSION_COOKIE_NAME": "session",
    "SESSION_COOKIE_DOMAIN": None,
    "SESSION_COOKIE_PATH": None,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SECURE": False,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_PARTITIONED": False,
    "SESSION_COOKIE_ENCRYPTION": False,
    "SESSION_COOKIE_CACHE_CONTROL": True,
    "PERMANENT_SESSION_LIFETIME": timedelta(days=31),
    "SESSION_IDLE_LIFETIME": timedelta(days=1),
    "SESSION_REFRESH_EACH_REQUEST": True,
    "APPLICATION_ROOT": "/",
    "MAX_COOKIE_SIZE": 4093,
    "ENVIRON_KEY": "wsgi_sessions.session",
    "SESSION_STORE": None,
    "SESSION_IDLE_TIMEOUT": None,
    "SESSION_ABSOLUTE_TIMEOUT": None,
}


def test_defaults() -> None:
    assert parse_settings() == DEFAULTS
    assert parse_settings({}) == DEFAULTS
    assert parse_settings(None) == DEFAULTS


def test_defaults_are_not_shared_between_calls() -> None:
    first = parse_settings()
    first["SECRET_KEY_FALLBACKS"].append("x")
    assert parse_settings()["SECRET_KEY_FALLBACKS"] == []


# Every setting, given as Python values and as ini strings.
SETTINGS: dict[str, tuple[str, t.Any, t.Any]] = {
    # name: (config key, value given, value configured)
    "secret_key": ("SECRET_KEY", "s3cret", "s3cret"),
    "secret_key-bytes": ("SECRET_KEY", b"\x00s3cret", b"\x00s3cret"),
    "secret_key-none": ("SECRET_KEY", None, None),
    "cookie_name": ("SESSION_COOKIE_NAME", "sid", "sid"),
    "cookie_domain": ("SESSION_COOKIE_DOMAIN", "example.com", "example.com"),
    "cookie_domain-dot": ("SESSION_COOKIE_DOMAIN", ".example.com", ".example.com"),
    "cookie_domain-empty": ("SESSION_COOKIE_DOMAIN", "", None),
    "cookie_path": ("SESSION_COOKIE_PATH", " /app ", "/app"),
    "cookie_path-empty": ("SESSION_COOKIE_PATH", "", None),
    "cookie_httponly": ("SESSION_COOKIE_HTTPONLY", "false", False),
    "cookie_secure": ("SESSION_COOKIE_SECURE", "true", True),
    "cookie_samesite-strict": ("SESSION_COOKIE_SAMESITE", "strict", "Strict"),
    "cookie_samesite-lax": ("SESSION_COOKIE_SAMESITE", " LAX ", "Lax"),
    "cookie_samesite-empty": ("SESSION_COOKIE_SAMESITE", "", None),
    "cookie_samesite-none-value": ("SESSION_COOKIE_SAMESITE", None, None),
    "cookie_encryption": ("SESSION_COOKIE_ENCRYPTION", "yes", True),
    "cookie_cache_control": ("SESSION_COOKIE_CACHE_CONTROL", "off", False),
    "permanent_lifetime": ("PERMANENT_SESSION_LIFETIME", "12h", timedelta(hours=12)),
    "idle_lifetime": ("SESSION_IDLE_LIFETIME", "30m", timedelta(minutes=30)),
    "idle_timeout": ("SESSION_IDLE_TIMEOUT", "15m", timedelta(minutes=15)),
    "idle_timeout-none": ("SESSION_IDLE_TIMEOUT", None, None),
    "absolute_timeout": ("SESSION_ABSOLUTE_TIMEOUT", 3600, timedelta(hours=1)),
    "refresh_each_request": ("SESSION_REFRESH_EACH_REQUEST", "off", False),
    "application_root": ("APPLICATION_ROOT", "/app", "/app"),
    "max_cookie_size": ("MAX_COOKIE_SIZE", "8000", 8000),
    "max_cookie_size-int": ("MAX_COOKIE_SIZE", 0, 0),
    "environ_key": ("ENVIRON_KEY", "my.session", "my.session"),
    "store": ("SESSION_STORE", " memory:// ", "memory://"),
    "store-empty": ("SESSION_STORE", "  ", None),
}


@pytest.mark.parametrize("case", SETTINGS)
def test_each_setting(case: str) -> None:
    config_key, given, configured = SETTINGS[case]
    name = case.split("-", maxsplit=1)[0]
    config = parse_settings({name: given})
    assert config[config_key] == configured
    assert {key: value for key, value in config.items() if key != config_key} == {
        key: value for key, value in DEFAULTS.items() if key != config_key
    }


def test_secure_combinations_from_ini_strings() -> None:
    config = parse_settings(
        {
            "cookie_secure": "yes",
            "cookie_samesite": "None",
            "cookie_partitioned": "on",
            "cookie_name": "__Host-sid",
        }
    )
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["SESSION_COOKIE_SAMESITE"] == "None"
    assert config["SESSION_COOKIE_PARTITIONED"] is True
    assert config["SESSION_COOKIE_NAME"] == "__Host-sid"


def test_secure_prefix_with_secure() -> None:
    config = parse_settings({"cookie_name": "__Secure-sid", "cookie_secure": True})
    assert config["SESSION_COOKIE_NAME"] == "__Secure-sid"


def test_store_object_passes_through() -> None:
    store = object()
    assert parse_settings({"store": store})["SESSION_STORE"] is store


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        *[(word, True) for word in ("true", "True", "TRUE", "yes", "on", "1", " on ")],
        *[(word, False) for word in ("false", "False", "no", "NO", "off", "0", "0\n")],
        (True, True),
        (False, False),
    ],
)
def test_booleans_accept_ini_words(word: t.Any, expected: bool) -> None:
    assert to_bool("cookie_secure", word) is expected
    assert parse_settings({"refresh_each_request": word})["SESSION_REFRESH_EACH_REQUEST"] is (
        expected
    )


@pytest.mark.parametrize("word", ["", "y", "maybe", "2", "enabled", None, 1, 0, []])
def test_booleans_refuse_other_values(word: t.Any) -> None:
    for name in ("cookie_httponly", "cookie_secure", "cookie_partitioned", "refresh_each_request"):
        with pytest.raises(ValueError, match=name):
            parse_settings({name: word})


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3600", 3600),
        (" 3600 ", 3600),
        ("45s", 45),
        ("30m", 1800),
        ("12h", 43200),
        ("31d", 31 * 86400),
        ("2w", 14 * 86400),
        ("12H", 43200),
        (3600, 3600),
        (timedelta(minutes=5), 300),
        (timedelta(seconds=1.5), 1.5),
    ],
)
def test_durations(value: t.Any, seconds: float) -> None:
    assert to_timedelta("permanent_lifetime", value) == timedelta(seconds=seconds)
    config = parse_settings({"permanent_lifetime": value})
    assert config["PERMANENT_SESSION_LIFETIME"] == timedelta(seconds=seconds)


BAD_DURATIONS = ["", "abc", "12x", "1.5h", "-5", "12 h 3", "h", "0", "0d", 0, -1, 1.5, True, None]
# The last three fit a timedelta but not now + it: every save would be a 500.
TOO_LONG = [
    "999999999999d",
    "99999999999999999999",
    10**20,
    "3000000d",
    "500000w",
    timedelta(days=999_999_999),
]


@pytest.mark.parametrize("value", [*BAD_DURATIONS, *TOO_LONG, timedelta(0)])
@pytest.mark.parametrize("name", ["permanent_lifetime", "idle_lifetime"])
def test_bad_durations(name: str, value: t.Any) -> None:
    with pytest.raises(ValueError, match=name):
        parse_settings({name: value})


@pytest.mark.parametrize(
    "name", ["permanent_lifetime", "idle_lifetime", "idle_timeout", "absolute_timeout"]
)
def test_a_duration_that_ends_after_the_calendar_is_refused_with_its_prefix(name: str) -> None:
    with pytest.raises(ValueError, match=rf"'session\.{name}'.*too long"):
        parse_settings({f"session.{name}": "3000000d"}, prefix="session.")


def test_a_very_long_duration_that_fits_is_accepted() -> None:
    config = parse_settings({"permanent_lifetime": "36500d"})  # "forever": a century
    assert config["PERMANENT_SESSION_LIFETIME"] == timedelta(days=36500)


# -- prefix -----------------------------------------------------------------------


def test_prefix_takes_only_its_keys() -> None:
    config = parse_settings(
        {
            "session.secret_key": "k",
            "session.cookie_secure": "true",
            "session.permanent_lifetime": "30m",
            "debug": "true",  # someone else's setting
            "sqlalchemy.url": "sqlite://",
        },
        prefix="session.",
    )
    assert config["SECRET_KEY"] == "k"
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["PERMANENT_SESSION_LIFETIME"] == timedelta(minutes=30)


def test_prefix_unknown_key_names_the_full_key() -> None:
    with pytest.raises(ValueError, match=r"'session\.cokie_name'"):
        parse_settings({"session.cokie_name": "x"}, prefix="session.")


def test_prefix_bad_value_names_the_full_key() -> None:
    with pytest.raises(ValueError, match=r"'session\.cookie_secure'"):
        parse_settings({"session.cookie_secure": "maybe"}, prefix="session.")


def test_prefix_combination_error_names_prefixed_settings() -> None:
    with pytest.raises(ValueError, match=r"session\.cookie_samesite.*session\.cookie_secure"):
        parse_settings({"session.cookie_samesite": "None"}, prefix="session.")


# -- refusals -----------------------------------------------------------------------


def test_unknown_key_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="'cookie_secrue'") as info:
        parse_settings({"cookie_secrue": True})
    assert "cookie_secure" in str(info.value)  # the list of known settings


@pytest.mark.parametrize("key", ["SECRET_KEY", "SESSION_COOKIE_NAME", "secret", ""])
def test_flask_config_names_are_not_settings(key: str) -> None:
    with pytest.raises(ValueError, match="unknown setting"):
        parse_settings({key: "x"})


BAD_VALUES: dict[str, tuple[str, t.Any, type[Exception]]] = {
    "secret_key-int": ("secret_key", 123, TypeError),
    "secret_key-list": ("secret_key", ["a"], TypeError),
    "cookie_name-empty": ("cookie_name", "", ValueError),
    "cookie_name-space": ("cookie_name", "my session", ValueError),
    "cookie_name-semicolon": ("cookie_name", "a;b", ValueError),
    "cookie_name-equals": ("cookie_name", "a=b", ValueError),
    "cookie_name-non-ascii": ("cookie_name", "séssion", ValueError),
    "cookie_name-int": ("cookie_name", 5, ValueError),
    "cookie_domain-int": ("cookie_domain", 5, TypeError),
    "cookie_domain-semicolon": ("cookie_domain", "example.com; Secure", ValueError),
    "cookie_domain-space": ("cookie_domain", "example .com", ValueError),
    "cookie_domain-newline": ("cookie_domain", "example.com\r\nX-Evil: 1", ValueError),
    "cookie_domain-port": ("cookie_domain", "example.com:8080", ValueError),
    "cookie_path-relative": ("cookie_path", "app", ValueError),
    "cookie_path-int": ("cookie_path", 1, TypeError),
    "cookie_samesite-bad": ("cookie_samesite", "sometimes", ValueError),
    "cookie_samesite-bool": ("cookie_samesite", True, ValueError),
    "application_root-relative": ("application_root", "app", ValueError),
    "max_cookie_size-negative": ("max_cookie_size", -1, ValueError),
    "max_cookie_size-negative-str": ("max_cookie_size", "-1", ValueError),
    "max_cookie_size-word": ("max_cookie_size", "4kb", ValueError),
    "max_cookie_size-bool": ("max_cookie_size", True, ValueError),
    "max_cookie_size-float": ("max_cookie_size", 4093.0, ValueError),
    "max_cookie_size-superscript": ("max_cookie_size", "²", ValueError),
    "environ_key-empty": ("environ_key", "", ValueError),
    "environ_key-int": ("environ_key", 1, ValueError),
    "fallbacks-int": ("secret_key_fallbacks", 1, TypeError),
    "fallbacks-empty-key": ("secret_key_fallbacks", ["ok", ""], ValueError),
    "fallbacks-empty-bytes-key": ("secret_key_fallbacks", [b""], ValueError),
    "secret_key-empty": ("secret_key", "", ValueError),
    "secret_key-blank": ("secret_key", "  ", ValueError),
    "secret_key-empty-bytes": ("secret_key", b"", ValueError),
    "fallbacks-int-key": ("secret_key_fallbacks", ["ok", 1], TypeError),
}


@pytest.mark.parametrize(("name", "value", "error"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_bad_value_names_the_setting(name: str, value: t.Any, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        parse_settings({name: value})
    assert f"'{name}'" in str(info.value)


def test_settings_must_be_a_mapping() -> None:
    with pytest.raises(TypeError, match="mapping"):
        parse_settings([("secret_key", "x")])  # type: ignore[arg-type]


def test_setting_names_must_be_strings() -> None:
    with pytest.raises(TypeError, match="str"):
        parse_settings({1: "x"})  # type: ignore[dict-item]


COMBINATIONS: dict[str, tuple[dict[str, t.Any], str]] = {
    "samesite-none-without-secure": ({"cookie_samesite": "None"}, "cookie_samesite"),
    "samesite-none-secure-false": (
        {"cookie_samesite": "none", "cookie_secure": "false"},
        "cookie_secure",
    ),
    "partitioned-without-secure": ({"cookie_partitioned": True}, "cookie_partitioned"),
    "secure-prefix-without-secure": ({"cookie_name": "__Secure-sid"}, "cookie_secure"),
    "host-prefix-without-secure": ({"cookie_name": "__Host-sid"}, "cookie_secure"),
    "host-prefix-with-domain": (
        {"cookie_name": "__Host-sid", "cookie_secure": True, "cookie_domain": "example.com"},
        "cookie_domain",
    ),
    "host-prefix-with-path": (
        {"cookie_name": "__Host-sid", "cookie_secure": True, "cookie_path": "/app"},
        "cookie_path",
    ),
    "host-prefix-with-application-root": (
        {"cookie_name": "__Host-sid", "cookie_secure": True, "application_root": "/app"},
        "cookie_path",
    ),
}


@pytest.mark.parametrize(("settings", "named"), COMBINATIONS.values(), ids=COMBINATIONS.keys())
def test_impossible_combination_is_a_value_error(settings: dict[str, t.Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        parse_settings(settings)


def test_host_prefix_with_root_path_is_fine() -> None:
    config = parse_settings(
        {"cookie_name": "__Host-sid", "cookie_secure": True, "cookie_path": "/"}
    )
    assert config["SESSION_COOKIE_PATH"] == "/"


# -- secret key fallbacks ---------------------------------------------------------


def test_fallbacks_as_a_list_or_tuple() -> None:
    config = parse_settings({"secret_key_fallbacks": ["old", b"older"]})
    assert config["SECRET_KEY_FALLBACKS"] == ["old", b"older"]
    config = parse_settings({"secret_key_fallbacks": ("old",)})
    assert config["SECRET_KEY_FALLBACKS"] == ["old"]


def test_fallbacks_bare_str_from_python_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="secret_key_fallbacks") as info:
        parse_settings({"secret_key_fallbacks": "old-key"})
    assert "one key per character" in str(info.value)


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("old-key", ["old-key"]),
        ("one two", ["one", "two"]),
        ("one,two", ["one", "two"]),
        (" one ,\n  two\tthree, ", ["one", "two", "three"]),
        ("", []),
    ],
)
def test_fallbacks_from_ini_are_split_on_spaces_and_commas(text: str, keys: list[str]) -> None:
    config = parse_settings({"session.secret_key_fallbacks": text}, prefix="session.")
    assert config["SECRET_KEY_FALLBACKS"] == keys


# -- an empty secret key is a mistake, not "no key" --------------------------------


@pytest.mark.parametrize(
    ("settings", "prefix", "named"),
    [
        ({"secret_key": ""}, "", "'secret_key'"),
        ({"session.secret_key": ""}, "session.", "'session.secret_key'"),  # `session.secret_key =`
    ],
)
def test_an_empty_secret_key_names_the_setting_as_written(
    settings: dict[str, str], prefix: str, named: str
) -> None:
    with pytest.raises(ValueError, match="empty") as info:
        parse_settings(settings, prefix)
    message = str(info.value)
    assert named in message
    if not prefix:
        assert "session." not in message
    assert "wsgi-sessions secret" in message  # says how to make one


def test_an_empty_key_among_ini_fallbacks_is_skipped_but_a_listed_one_is_refused() -> None:
    config = parse_settings({"session.secret_key_fallbacks": "old,,older"}, prefix="session.")
    assert config["SECRET_KEY_FALLBACKS"] == ["old", "older"]
    with pytest.raises(ValueError, match=r"'session\.secret_key_fallbacks'.*empty"):
        parse_settings({"session.secret_key_fallbacks": ["old", ""]}, prefix="session.")


# -- SessionConfig: what an interface gets as Flask's app ----------------------------------


def test_session_config_holds_the_parsed_settings() -> None:
    settings = {"session.secret_key": "k", "session.permanent_lifetime": "2h", "debug": "1"}
    config = SessionConfig(settings, prefix="session.")
    assert config.config == parse_settings(settings, "session.")
    assert config.secret_key == "k"
    assert config.permanent_session_lifetime == timedelta(hours=2)
    assert config.environ_key == "wsgi_sessions.session"
    with pytest.raises(ValueError, match=r"'session\.cookie_nmae'"):
        SessionConfig({"session.cookie_nmae": "x"}, prefix="session.")


def test_session_config_reads_its_config_on_each_access() -> None:
    """Flask's tests (and ours) change app.config between requests."""
    config = SessionConfig({"secret_key": "k"})
    config.config["SECRET_KEY"] = "other"
    config.config["PERMANENT_SESSION_LIFETIME"] = timedelta(minutes=5)
    assert config.secret_key == "other"
    assert config.permanent_session_lifetime == timedelta(minutes=5)


def test_an_interface_opens_and_saves_with_a_session_config() -> None:
    config = SessionConfig({"secret_key": "k", "cookie_name": "sid"})
    interface = SecureCookieSessionInterface()
    session = interface.open_session(config, Request(EnvironBuilder("/").get_environ()))
    assert session is not None
    session["n"] = 1
    response = Response()
    interface.save_session(config, session, response)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("sid=")
    request = Request(EnvironBuilder("/", headers={"Cookie": cookie.split(";")[0]}).get_environ())
    assert interface.open_session(config, request) == {"n": 1}


@pytest.mark.parametrize(("prefix", "named"), [("", "'secret_key'"), ("p.", "'p.secret_key'")])
def test_session_config_warns_once_without_a_secret_key(
    caplog: pytest.LogCaptureFixture, prefix: str, named: str
) -> None:
    with caplog.at_level(logging.DEBUG, logger="wsgi_sessions"):
        config = SessionConfig(prefix=prefix)
        SessionConfig({"secret_key": "k"})
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert named in record.getMessage()
    assert config.secret_key is None
