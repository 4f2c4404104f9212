"""The settings reference's data, read from the code: no Sphinx needed.

Names, Flask config keys and defaults come from ``wsgi_sessions.settings``;
only the one-paragraph description of each setting is written by hand, in
docs/settings.md. :func:`check` reports a setting the code has and the page
does not describe (or the other way round), so the page cannot drift: the
docs build (warnings as errors) and tests/test_docs.py both run it.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass
from datetime import timedelta

from wsgi_sessions import parse_settings, settings

# Accepted by parse_settings but kept out of its table (it has its own parser).
_OUTSIDE_THE_TABLE = {"secret_key_fallbacks": ("SECRET_KEY_FALLBACKS", [])}
_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60))


@dataclass(frozen=True)
class Setting:
    name: str
    config_key: str
    default: t.Any


def accepted_names() -> list[str]:
    """Every setting name parse_settings accepts, as its own error message lists them."""
    try:
        parse_settings({"-": None})
    except ValueError as error:
        return str(error).split("the settings are: ", 1)[1].split(", ")
    raise AssertionError("parse_settings accepted the setting '-'")


def code_settings() -> list[Setting]:
    """The settings in the code's table order; secret_key_fallbacks after secret_key."""
    rows = [Setting(name, row.config_key, row.default) for name, row in settings._SETTINGS.items()]
    for name, (key, default) in _OUTSIDE_THE_TABLE.items():
        after = next(i for i, row in enumerate(rows) if name.startswith(row.name))
        rows.insert(after + 1, Setting(name, key, default))
    return rows


def format_default(value: t.Any) -> str:
    """The default as an ini file would spell it (``none`` for no value)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        for unit, size in _UNITS:
            if seconds % size == 0:
                return f"{seconds // size}{unit}"
        return str(seconds)
    if isinstance(value, list) and not value:
        return "[]"
    return str(value)


_NAME_LINE = re.compile(r"^([a-z_]+)\s*$")


def parse_descriptions(lines: t.Iterable[str]) -> dict[str, str]:
    """``name`` on a line of its own, then its description indented below it."""
    descriptions: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if match := _NAME_LINE.match(line):
            if match[1] in descriptions:
                raise ValueError(f"setting {match[1]!r} is described twice")
            current = descriptions[match[1]] = []
        elif line.strip():
            if current is None or not line.startswith((" ", "\t")):
                raise ValueError(f"expected a setting name or an indented line, got {line!r}")
            current.append(line.strip())
        elif current is not None:
            current.append("")
    return {name: "\n".join(text).strip() for name, text in descriptions.items()}


def check(descriptions: t.Mapping[str, str]) -> list[str]:
    """What disagrees between the code and the page, one message each."""
    problems = []
    in_code = [row.name for row in code_settings()]
    if sorted(in_code) != sorted(accepted_names()):
        problems.append(
            f"docs/_ext/settings_table.py knows {sorted(in_code)}, but parse_settings accepts "
            f"{sorted(accepted_names())}: teach code_settings() the difference"
        )
    for name in in_code:
        if not descriptions.get(name):
            problems.append(
                f"setting {name!r} (in wsgi_sessions.settings) has no description in "
                "docs/settings.md: add one under the settings-reference directive"
            )
    problems += [
        f"docs/settings.md describes {name!r}, which wsgi_sessions.settings does not accept"
        for name in descriptions
        if name not in in_code
    ]
    return problems


def markdown(descriptions: t.Mapping[str, str]) -> str:
    """The reference as MyST Markdown: one ``setting`` object per setting."""
    parts = []
    for row in code_settings():
        key = f"`{row.config_key}`"
        parts.append(
            f"````{{setting}} {row.name}\n"
            f"Default: `{format_default(row.default)}` · config key: {key}\n\n"
            f"{descriptions.get(row.name, '')}\n"
            "````\n"
        )
    return "\n".join(parts)
