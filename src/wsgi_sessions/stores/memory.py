"""A store in a dict: one process, for tests and development."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .base import MAX_FORWARDS, Store, check_fields

__all__ = ["MemoryStore"]


@dataclass(slots=True)
class _Record:
    fields: dict[str, str]
    lifetime: int
    expires_at: float
    moved_to: str | None = field(default=None)
    moved_at: float = field(default=0.0)


class MemoryStore(Store):
    """Sessions in this process's memory, guarded by one lock.

    Every operation holds the lock for a few dict operations, never across a
    request, so requests of one session still run in parallel. Sessions are
    lost on restart and not shared between processes: use SQLite or Redis for
    anything beyond one development server.
    """

    def __init__(self) -> None:
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> _Record | None:
        record = self._records.get(key)
        if record is None:
            return None
        if record.expires_at <= now:
            del self._records[key]
            return None
        return record

    def load(self, key: str, touch: bool = False) -> dict[str, str] | None:
        now = time.time()
        with self._lock:
            record = self._live(key, now)
            if record is None or record.moved_to is not None:
                return None
            if touch:
                record.expires_at = now + record.lifetime
            return dict(record.fields)

    def create(self, key: str, fields: Mapping[str, str], lifetime: int) -> bool:
        check_fields(fields)
        now = time.time()
        with self._lock:
            if self._live(key, now) is not None:
                return False
            self._records[key] = _Record(dict(fields), lifetime, now + lifetime)
            return True

    def apply(
        self,
        key: str,
        set_fields: Mapping[str, str],
        delete_fields: Iterable[str],
        lifetime: int | None = None,
        opened_at: float | None = None,
    ) -> bool:
        delete_fields = tuple(delete_fields)
        check_fields(set_fields, delete_fields)
        now = time.time()
        with self._lock:
            record = self._live(key, now)
            for _ in range(MAX_FORWARDS):
                if record is None or record.moved_to is None:
                    break
                if opened_at is None or opened_at >= record.moved_at:
                    return False  # not in flight at the rename: the old id is dead
                record = self._live(record.moved_to, now)
            if record is None or record.moved_to is not None:
                return False
            record.fields.update(set_fields)
            for name in delete_fields:
                record.fields.pop(name, None)
            if lifetime is not None:
                record.lifetime = lifetime
            record.expires_at = now + record.lifetime
            return True

    def delete(self, key: str) -> bool:
        now = time.time()
        with self._lock:
            record = self._live(key, now)
            self._records.pop(key, None)
            return record is not None and record.moved_to is None

    def rename(self, old_key: str, new_key: str) -> bool:
        now = time.time()
        with self._lock:
            record = self._live(old_key, now)
            if record is None or record.moved_to is not None:
                return False
            self._records[new_key] = record
            self._records[old_key] = _Record({}, 0, now + self.moved_grace, new_key, now)
            return True

    def touch(self, key: str) -> bool:
        now = time.time()
        with self._lock:
            record = self._live(key, now)
            if record is None or record.moved_to is not None:
                return False
            record.expires_at = now + record.lifetime
            return True

    def purge_expired(self) -> int:
        now = time.time()
        with self._lock:
            expired = [key for key, record in self._records.items() if record.expires_at <= now]
            for key in expired:
                del self._records[key]
            return len(expired)
