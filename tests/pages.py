"""Reading the example apps' pages in tests: the CSRF token, the counter, the flashes."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"""name=["']csrf_token["'] value=["']([^"']+)["']""")
_VISITS = re.compile(r"""<b id=["']visits["']>(\d+)</b>""")
_FLASH = re.compile(r"""<p class=["']flash["']>(.*?)</p>""")
_USER = re.compile(r"""<b id=["']user["']>(.*?)</b>""")


def csrf_token(page: str) -> str:
    match = _TOKEN.search(page)
    assert match, f"no CSRF token in {page!r}"
    return match[1]


def visits(page: str) -> int:
    match = _VISITS.search(page)
    assert match, f"no visit counter in {page!r}"
    return int(match[1])


def flashes(page: str) -> list[str]:
    return _FLASH.findall(page)


def user(page: str) -> str | None:
    match = _USER.search(page)
    return match[1] if match else None
