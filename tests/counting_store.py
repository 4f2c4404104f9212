"""A real store that counts the calls made to it (a counter, not a mock)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from wsgi_sessions.stores import Store
from wsgi_sessions.stores.base import Ended


class CountingStore(Store):
    """A real store, with a count of the calls made to it (a counter, not a mock)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.touches: list[bool] = []
        #: The writes, in order: (operation, store key).
        self.writes: list[tuple[str, str]] = []

    def total(self) -> int:
        return sum(self.calls.values())

    def load(self, key: str, touch: bool = False) -> dict[str, str] | Ended | None:
        self.calls["load"] += 1
        self.touches.append(touch)
        return self.inner.load(key, touch)

    def _create(self, key: str, fields: Mapping[str, str], lifetime: int) -> bool:
        self.calls["create"] += 1
        self.writes.append(("create", key))
        return self.inner.create(key, fields, lifetime)

    def _apply(
        self,
        key: str,
        set_fields: Mapping[str, str],
        delete_fields: tuple[str, ...],
        lifetime: int | None,
    ) -> bool | Ended:
        self.calls["apply"] += 1
        self.writes.append(("apply", key))
        return self.inner.apply(key, set_fields, delete_fields, lifetime)

    def end(self, key: str) -> bool:
        self.calls["end"] += 1
        self.writes.append(("end", key))
        return self.inner.end(key)

    def rename(self, old_key: str, new_key: str) -> bool | Ended:
        self.calls["rename"] += 1
        self.writes.append(("rename", old_key))
        return self.inner.rename(old_key, new_key)

    def touch(self, key: str) -> bool:
        self.calls["touch"] += 1
        return self.inner.touch(key)

    def purge_expired(self) -> int:
        return self.inner.purge_expired()
