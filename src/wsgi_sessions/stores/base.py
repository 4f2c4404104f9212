"""The store contract: what a server-side session needs of a backend, and what
each operation means when requests of one session run at the same time.

A store maps an opaque *key* (already a keyed hash of the session id; a store
never sees an id or a cookie) to a record: *fields* (session key -> serialized
value, both ``str``), a *lifetime* in seconds and an expiry. A record is live
until its expiry; an expired record is treated as absent by every operation,
whether or not :meth:`Store.purge_expired` has removed it yet.

Concurrency (every store gives these guarantees, across threads and, for the
shared stores, across processes and machines):

- Each operation is atomic: another request sees all of it or none of it.
- :meth:`~Store.apply` changes only the fields it names and never creates a
  record. Two requests changing different fields both survive; the same field:
  the last writer wins, with one whole value, never a mix.
- A deleted record stays deleted: a late :meth:`~Store.apply` of another
  request does not bring it back (it returns False).
- :meth:`~Store.rename` moves the record atomically and leaves at the old key a
  *forward* for :attr:`~Store.moved_grace` seconds: :meth:`~Store.load` of the
  old key finds nothing (the old id is dead), but an :meth:`~Store.apply` of a
  request that was already in flight (``opened_at`` before the rename) lands in
  the renamed record instead of being lost. A request that started after the
  rename is refused, so whoever still holds the old cookie (say, an attacker
  who planted it before the victim logged in) cannot write into the session.
  The times are the app servers' clocks: keep them in sync (NTP).
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Iterable, Mapping

__all__ = ["MAX_FORWARDS", "Store", "check_fields"]

#: How many forwards :meth:`Store.apply` follows (a session regenerated several
#: times within the grace period); beyond that the write is refused.
MAX_FORWARDS = 4


class Store(abc.ABC):
    """Base class of the session stores. Subclasses implement every method."""

    #: Seconds during which the old key of a renamed record forwards writes.
    moved_grace: int = 30

    @abc.abstractmethod
    def load(self, key: str, touch: bool = False) -> dict[str, str] | None:
        """The fields of the live record at ``key``, or None (absent, expired,
        or renamed away). With ``touch``, push the expiry forward by the
        record's lifetime in the same atomic step (one round trip where the
        backend allows)."""

    @abc.abstractmethod
    def create(self, key: str, fields: Mapping[str, str], lifetime: int) -> bool:
        """Insert a new record; False, changing nothing, if a live one exists.

        Insert-only, so two requests can never both believe they created the
        same session. ``lifetime`` is in seconds; the record expires that long
        after its last write or touch.
        """

    @abc.abstractmethod
    def apply(
        self,
        key: str,
        set_fields: Mapping[str, str],
        delete_fields: Iterable[str],
        lifetime: int | None = None,
        opened_at: float | None = None,
    ) -> bool:
        """Set and delete fields of the live record at ``key``, and push its
        expiry forward by ``lifetime`` (None: by the lifetime it already has).
        False if there is no such record: nothing is written then, so a deleted
        session is never resurrected.

        ``opened_at`` is when the writing request read the session id (epoch
        seconds): a rename's forward at ``key`` is followed only if the rename
        happened after that; None follows no forward."""

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """Remove the record; whether a live one was there."""

    @abc.abstractmethod
    def rename(self, old_key: str, new_key: str) -> bool:
        """Move the live record at ``old_key`` to ``new_key`` (fields, lifetime
        and expiry), leaving a forward at ``old_key``; False if there is none."""

    @abc.abstractmethod
    def touch(self, key: str) -> bool:
        """Push the expiry forward by the record's lifetime; whether it is live."""

    @abc.abstractmethod
    def purge_expired(self) -> int:
        """Remove expired records and return how many; stores whose backend
        expires records by itself (Redis) return 0."""

    def close(self) -> None:  # noqa: B027 - optional for subclasses
        """Release connections; the store must not be used afterwards."""


def check_fields(*groups: Iterable[str]) -> None:
    """Refuse field names the stores reserve for their own bookkeeping, to
    set or to delete (each group read once)."""
    for name in itertools.chain(*groups):
        if not isinstance(name, str):
            raise TypeError(f"session keys must be str, got {type(name).__name__}")
        if name.startswith("\x00"):
            raise ValueError("session keys starting with NUL are reserved for the store")
