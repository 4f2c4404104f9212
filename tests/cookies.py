"""The tests' one reader of ``Set-Cookie`` headers."""

from __future__ import annotations

from collections.abc import Iterable


def parse_set_cookie(header: str) -> tuple[str, str, dict[str, str]]:
    """Split a ``Set-Cookie`` header into name, value and {attribute: value},
    attribute names lowercased, flags mapped to ``""``."""
    first, *rest = header.split(";")
    name, _, value = first.strip().partition("=")
    attributes: dict[str, str] = {}
    for part in rest:
        key, _, attr_value = part.strip().partition("=")
        assert key.lower() not in attributes, f"attribute {key} twice in {header!r}"
        attributes[key.lower()] = attr_value
    return name, value, attributes


def cookie_value(set_cookie_headers: Iterable[str], name: str = "session") -> str | None:
    """The value the headers set for cookie ``name`` ("" for a deletion), or None."""
    for header in set_cookie_headers:
        cookie_name, value, _ = parse_set_cookie(header)
        if cookie_name == name:
            return value
    return None
