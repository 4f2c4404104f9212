"""Shared test helpers (fixtures only; each one self-contained)."""

from __future__ import annotations

import os
import typing as t

import pytest

#: Set by .ci/run: a test that needs a service or a browser must run, not skip.
REQUIRE_SERVICES_ENV = "WSGI_SESSIONS_REQUIRE_SERVICES"


def skip_or_fail(reason: str) -> t.NoReturn:
    """Skip for a missing service or browser, or fail under
    WSGI_SESSIONS_REQUIRE_SERVICES=1, where a skip would hide a broken CI."""
    if os.environ.get(REQUIRE_SERVICES_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_SERVICES_ENV}=1 requires it)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def service_unavailable() -> t.Callable[[str], t.NoReturn]:
    """:func:`skip_or_fail`, for tests: ``service_unavailable("no browser: ...")``."""
    return skip_or_fail
