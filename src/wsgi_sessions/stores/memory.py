"""A store in a dict: one process, for tests and development."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from .base import MAX_SUCCESSORS, Clock, Ended, Store

__all__ = ["MemoryStore"]

logger = logging.getLogger("wsgi_sessions")


@dataclass(slots=True)
class _Record:
    fields: dict[str, str]
    lifetime: int
    expires_at: float
    ended_at: float | None = None  # set: an ended marker, holding no fields
    successor: str | None = None  # the key a rename moved the record to


class MemoryStore(Store):
    """Sessions in this process's memory, guarded by one lock.

    Every operation holds the lock for a few dict operations, never across a
    request, so requests of one session still run in parallel. Sessions are
    lost on restart and not shared between processes: use SQLite or Redis for
    anything beyond one development server.

    Memory stays bounded without a background thread: expired records are
    swept out once the inserts since the last sweep reach half the records held
    (amortised O(1) per insert), and beyond ``max_sessions`` records the least
    recently used one is evicted (its user is logged out; a warning says so once).

    ``clock`` gives the time (epoch seconds) for expiry and ended markers; a
    test passes one it can move instead of sleeping.
    """

    def __init__(self, *, max_sessions: int = 10_000, clock: Clock = time.time) -> None:
        if isinstance(max_sessions, bool) or not isinstance(max_sessions, int):
            raise TypeError(
                f"MemoryStore max_sessions must be an int, got {type(max_sessions).__name__}"
            )
        if max_sessions < 1:
            raise ValueError(f"MemoryStore max_sessions must be at least 1, got {max_sessions}")
        self.max_sessions = max_sessions
        self.clock = clock
        # Least recently used first: every lookup of a key moves it to the end.
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._lock = threading.Lock()
        self._inserts = 0  # since the last sweep
        self._warned_full = False

    def __len__(self) -> int:
        """How many records (live, expired but not yet swept, ended markers) are held."""
        return len(self._records)

    def _get(self, key: str, now: float) -> _Record | None:
        """The unexpired record or marker at ``key``, marked as just used."""
        record = self._records.get(key)
        if record is None:
            return None
        if record.expires_at <= now:
            del self._records[key]
            return None
        self._records.move_to_end(key)
        return record

    def _live(self, key: str, now: float) -> _Record | Ended | None:
        record = self._get(key, now)
        if record is not None and record.ended_at is not None:
            return Ended(record.ended_at)
        return record

    def _insert(self, key: str, record: _Record, now: float) -> None:
        records = self._records
        records[key] = record
        records.move_to_end(key)
        self._inserts += 1
        if self._inserts >= max(1024, len(records) // 2):
            self._sweep(now)
        while len(records) > self.max_sessions:
            records.popitem(last=False)
            if not self._warned_full:
                self._warned_full = True
                logger.warning(
                    "MemoryStore holds max_sessions=%d sessions: the least recently used "
                    "are evicted (their users are logged out); use SQLite or Redis, or "
                    "raise max_sessions",
                    self.max_sessions,
                )

    def _sweep(self, now: float) -> int:
        self._inserts = 0
        expired = [key for key, record in self._records.items() if record.expires_at <= now]
        for key in expired:
            del self._records[key]
        return len(expired)

    def _end(self, record: _Record, now: float, successor: str | None = None) -> None:
        record.fields = {}
        record.ended_at = now
        record.successor = successor
        record.expires_at = max(record.expires_at, now + self.end_grace)

    def load(self, key: str, touch: bool = False) -> dict[str, str] | Ended | None:
        now = self.clock()
        with self._lock:
            record = self._live(key, now)
            if record is None or isinstance(record, Ended):
                return record
            if touch:
                record.expires_at = now + record.lifetime
            return dict(record.fields)

    def _create(self, key: str, fields: Mapping[str, str], lifetime: int) -> bool:
        now = self.clock()
        with self._lock:
            if self._get(key, now) is not None:
                return False
            self._insert(key, _Record(dict(fields), lifetime, now + lifetime), now)
            return True

    def _apply(
        self,
        key: str,
        set_fields: Mapping[str, str],
        delete_fields: tuple[str, ...],
        lifetime: int | None,
    ) -> bool | Ended:
        now = self.clock()
        with self._lock:
            record = self._live(key, now)
            if record is None:
                return False
            if isinstance(record, Ended):
                return record
            record.fields.update(set_fields)
            for name in delete_fields:
                record.fields.pop(name, None)
            if lifetime is not None:
                record.lifetime = lifetime
            record.expires_at = now + record.lifetime
            return True

    def end(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            for _ in range(MAX_SUCCESSORS + 1):
                record = self._get(key, now)
                if record is None:
                    return False
                if record.ended_at is None:
                    self._end(record, now)
                    return True
                if record.successor is None:
                    return False
                key = record.successor
            return False

    def rename(self, old_key: str, new_key: str) -> bool | Ended:
        now = self.clock()
        with self._lock:
            record = self._live(old_key, now)
            if record is None:
                return False
            if isinstance(record, Ended):
                return record
            moved = _Record(record.fields, record.lifetime, record.expires_at)
            self._end(record, now, successor=new_key)
            self._insert(new_key, moved, now)
            return True

    def touch(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            record = self._live(key, now)
            if record is None or isinstance(record, Ended):
                return False
            record.expires_at = now + record.lifetime
            return True

    def purge_expired(self) -> int:
        with self._lock:
            return self._sweep(self.clock())
