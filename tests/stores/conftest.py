"""The store tests' clock: instant for the stores that keep their own time."""

from __future__ import annotations

import time
import typing as t

import pytest

#: The stores whose records expire by the server's clock, not the one they are given.
SERVER_CLOCK_STORES = {"RedisStore", "PostgreSQLStore", "MySQLStore"}


class Clock:
    """The time a store sees, moved by :meth:`advance`.

    Memory and SQLite take it as their clock, so time passes without a
    sleep. Redis and PostgreSQL expire records by their own clocks, so for
    them ``advance`` sleeps (the expiry tests are the only slow ones there).
    """

    def __init__(self, real: bool) -> None:
        self.real = real
        self.now = time.time()

    def __call__(self) -> float:
        return time.time() if self.real else self.now

    def advance(self, seconds: float) -> None:
        if self.real:
            time.sleep(seconds)
        else:
            self.now += seconds


@pytest.fixture
def fake_clock() -> Clock:
    """A clock that moves only when told, for a store a test builds itself."""
    return Clock(real=False)


@pytest.fixture
def clock(store: t.Any, other_store: t.Any) -> Clock:
    """A clock given to both handles of the store under test."""
    clock = Clock(real=type(store).__name__ in SERVER_CLOCK_STORES)
    store.clock = other_store.clock = clock
    return clock
