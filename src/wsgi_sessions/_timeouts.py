"""Idle and absolute timeouts: when a session is over, and when its use must
be recorded again.

Two times live in a session's metadata, never in the mapping the application
sees: ``start``, when the session began (or was last regenerated, i.e. at
login), and ``used``, its last *recorded* use; both whole epoch seconds by the
app server's clock. A cookie session carries them inside its payload, next to
its data (so any cookie format that keeps the payload keeps them); a
server-side session in a hidden field of its record. The rules here are the
same for every kind of session, and never look at how the times travel.

Recording every use would mean a new cookie (or a store write) on every
request. As Pyramid's ``reissue_time`` does, a use is recorded only when more
than a tenth of ``idle_timeout`` has passed since the recorded one, or when
the session is written anyway. The idle check is strict (a session is over
once ``idle_timeout`` has passed since its recorded use), so the recorded use
may lag the real one by up to a tenth: a session used at least once every
nine tenths of ``idle_timeout`` never idles out, and one left alone for
``idle_timeout`` is always over.
"""

from __future__ import annotations

import typing as t
from datetime import timedelta
from functools import lru_cache

from .settings import to_timedelta

__all__ = ["START", "USED", "Timeouts", "timeouts_for"]

#: Metadata names: when the session began (or was last regenerated) ...
START = "start"
#: ... and its last recorded use.
USED = "used"

#: A use is recorded again once this fraction of ``idle_timeout`` has passed
#: since the recorded one (Pyramid's documentation advises a tenth too).
REISSUE_FRACTION = 0.1


def _time(meta: t.Mapping[str, t.Any] | None, name: str) -> int | None:
    """A time from the metadata; None where there is none (a cookie written by
    Flask or by a version without timeouts) or it is not a number. The
    metadata may be anything a Flask app stored under its key."""
    if type(meta) is not dict:
        return None
    value = meta.get(name)
    if type(value) is int:
        return value
    if type(value) is float:
        return int(value)
    return None


class Timeouts(t.NamedTuple):
    """The configured limits, in seconds; None: that limit is off."""

    idle: float | None
    absolute: float | None

    def over(self, meta: t.Mapping[str, t.Any] | None, now: int) -> bool:
        """Whether a session with this metadata is over at ``now``.

        Missing times count as "now": a session that has none (Flask's
        cookie, an older version's) is accepted, and gets them when saved.
        """
        idle = self.idle
        if idle is not None:
            used = _time(meta, USED)
            if used is not None and now - used > idle:
                return True
        absolute = self.absolute
        if absolute is not None:
            start = _time(meta, START)
            if start is not None and now - start > absolute:
                return True
        return False

    def due(self, meta: t.Mapping[str, t.Any] | None, now: int, writing: bool) -> dict[str, int]:
        """The times to record for a use at ``now``; empty when none is due.

        ``writing``: the session is saved anyway, so the recorded use is
        brought up to date for free. Otherwise a time is due only when it is
        missing, or the recorded use is more than a tenth of ``idle_timeout``
        old; a non-empty answer then means "save for the times alone".
        """
        due: dict[str, int] = {}
        if _time(meta, START) is None:
            due[START] = now
        idle = self.idle
        if idle is not None:
            used = _time(meta, USED)
            if writing or due or used is None or now - used >= idle * REISSUE_FRACTION:
                due[USED] = now
        return due

    @property
    def store_lifetime(self) -> float | None:
        """The longest a store need keep a record unused: past either limit it is over."""
        limits = [limit for limit in (self.idle, self.absolute) if limit is not None]
        return min(limits) if limits else None


def timeouts_for(config: t.Mapping[str, t.Any]) -> Timeouts | None:
    """The timeouts ``config`` sets (Flask's key names), or None when both are off.

    Flask's ``app.config`` is not validated at start-up, so a value there may
    be seconds or a string like ``"30m"``; a bad one is a ValueError naming
    the key, on the first request that needs it.
    """
    idle = config.get("SESSION_IDLE_TIMEOUT")
    absolute = config.get("SESSION_ABSOLUTE_TIMEOUT")
    if idle is None and absolute is None:  # the default: two lookups
        return None
    if isinstance(idle, (timedelta, int, str, type(None))) and isinstance(
        absolute, (timedelta, int, str, type(None))
    ):
        return _timeouts(idle, absolute)
    return _timeouts.__wrapped__(idle, absolute)  # unhashable: raises the ValueError


@lru_cache(maxsize=32)
def _timeouts(idle: t.Any, absolute: t.Any) -> Timeouts:
    return Timeouts(
        _seconds("SESSION_IDLE_TIMEOUT", idle), _seconds("SESSION_ABSOLUTE_TIMEOUT", absolute)
    )


def _seconds(name: str, value: t.Any) -> float | None:
    if value is None:
        return None
    return to_timedelta(name, value).total_seconds()
