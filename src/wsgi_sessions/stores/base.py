"""The store contract: what a server-side session needs of a backend, and what
each operation means when requests of one session run at the same time.

A store maps an opaque *key* (already a keyed hash of the session id; a store
never sees an id or a cookie) to a record: *fields* (session key -> serialized
value, both ``str``), a *lifetime* in seconds and an expiry. A record is live
until its expiry; an expired record is treated as absent by every operation,
whether or not :meth:`Store.purge_expired` has removed it yet.

A record that is ended (:meth:`Store.end`, at logout) or moved to a new key
(:meth:`Store.rename`, at login) leaves an *ended marker* at its key, with the
time it ended. The marker lives as long as the record would have (and at least
:attr:`Store.end_grace` seconds), so every request that opened the session
before it ended finds out, however late its save arrives; it never holds data.

Concurrency (every store gives these guarantees, across threads and, for the
shared stores, across processes and machines):

- Each operation is atomic: another request sees all of it or none of it.
- :meth:`~Store.apply` changes only the fields it names and never creates a
  record. Two requests changing different fields both survive; the same field:
  the last writer wins, with one whole value, never a mix.
- An ended record stays ended: a late :meth:`~Store.apply` of another request
  does not bring it back, and never lands anywhere else either (not in the
  record a rename moved it to: a write of a request that opened the old id is
  dropped, so whoever planted that id cannot write into the logged-in session).
- :meth:`~Store.end` ends the record and every record renamed from it, however
  the rename and the end interleave.

Why markers, and not just deleting: a request that opened the session before
its logout or login may save long after it, and must then be told "ended"
(its writes are dropped), not "absent" (it would start a fresh session) nor
be let through to the renamed record (whoever planted the old id would write
into the logged-in session). A marker after a rename names its *successor*,
so that a logout that opened the old id still ends the session it became.
Every backend's :meth:`~Store.end` follows successors with the same loop, in
one atomic step::

    for _ in range(MAX_SUCCESSORS + 1):
        record = the unexpired record or marker at key
        if there is none: return False
        if it is a live record: end it; return True
        if it names no successor: return False
        key = its successor
    return False
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

__all__ = ["MAX_SUCCESSORS", "Ended", "Store", "check_fields"]

#: The time source of a store (epoch seconds); ``time.time`` unless a test
#: passes one it can move.
Clock = Callable[[], float]

#: How many renames :meth:`Store.end` follows from an ended key to end its
#: successors (a session regenerated that many times within its lifetime).
MAX_SUCCESSORS = 64


@dataclass(frozen=True, slots=True)
class Ended:
    """What a store finds at the key of a record that was ended or renamed.

    Falsy, as "nothing was written" is: ``if store.apply(...)`` reads as
    "if it was applied".
    """

    #: When it ended (epoch seconds, the clock of the app server that ended it).
    at: float

    def __bool__(self) -> bool:
        return False


class Store(abc.ABC):
    """Base class of the session stores.

    Subclasses implement every abstract method: :meth:`_create` and
    :meth:`_apply` receive field names already checked (:func:`check_fields`).
    """

    #: Seconds an ended marker lives at least, even when the record it
    #: replaces would have expired sooner.
    end_grace: int = 30

    @abc.abstractmethod
    def load(self, key: str, touch: bool = False) -> Mapping[str, str] | Ended | None:
        """The fields of the live record at ``key``; :class:`Ended` if it was
        ended or renamed away; None if there is none (never created, expired).
        With ``touch``, push the expiry forward by the record's lifetime in the
        same atomic step (one round trip)."""

    def create(self, key: str, fields: Mapping[str, str], lifetime: int) -> bool:
        """Insert a new record; False, changing nothing, if a live record or an
        ended marker is there.

        Insert-only, so two requests can never both believe they created the
        same session. ``lifetime`` is in seconds; the record expires that long
        after its last write or touch.
        """
        check_fields(fields)
        return self._create(key, fields, lifetime)

    def apply(
        self,
        key: str,
        set_fields: Mapping[str, str],
        delete_fields: Iterable[str],
        lifetime: int | None = None,
    ) -> bool | Ended:
        """Set and delete fields of the live record at ``key``, and push its
        expiry forward by ``lifetime`` (None: by the lifetime it already has).

        True if applied. Otherwise nothing is written, so an ended session is
        never resurrected: :class:`Ended` if it was ended or renamed away (the
        write is dropped, not forwarded), False if there is no record."""
        delete_fields = tuple(delete_fields)
        check_fields(set_fields, delete_fields)
        return self._apply(key, set_fields, delete_fields, lifetime)

    @abc.abstractmethod
    def _create(self, key: str, fields: Mapping[str, str], lifetime: int) -> bool:
        """:meth:`create`, in one atomic step."""

    @abc.abstractmethod
    def _apply(
        self,
        key: str,
        set_fields: Mapping[str, str],
        delete_fields: tuple[str, ...],
        lifetime: int | None,
    ) -> bool | Ended:
        """:meth:`apply`, in one atomic step."""

    @abc.abstractmethod
    def end(self, key: str) -> bool:
        """End the live record that ``key`` is or was renamed to (following up
        to :data:`MAX_SUCCESSORS` successors, with the loop in the module
        docstring), leaving an ended marker; whether a live record was ended."""

    @abc.abstractmethod
    def rename(self, old_key: str, new_key: str) -> bool | Ended:
        """Move the live record at ``old_key`` to ``new_key`` (fields, lifetime
        and expiry) and leave an ended marker at ``old_key`` that names
        ``new_key`` as its successor.

        True if moved; :class:`Ended` if ``old_key`` was ended or renamed
        already (by a concurrent logout or login); False if there is none."""

    @abc.abstractmethod
    def touch(self, key: str) -> bool:
        """Push the expiry forward by the record's lifetime; whether it is live."""

    @abc.abstractmethod
    def purge_expired(self) -> int:
        """Remove expired records and markers and return how many; stores whose
        backend expires records by itself (Redis) return 0."""

    def schema_sql(self) -> str | None:
        """The DDL this store needs in its database (what it runs at start-up
        unless told not to), for ``wsgi-sessions schema``; None for a store
        that needs none."""
        return None

    def close(self) -> None:  # noqa: B027 - optional for subclasses
        """Release connections; the store must not be used afterwards."""


def check_fields(*groups: Iterable[str]) -> None:
    """Refuse field names the stores reserve for their own bookkeeping, to
    set or to delete (each group read once)."""
    for group in groups:
        for name in group:
            if type(name) is str and name[:1] != "\x00":
                continue  # on every save: the plain test first
            if not isinstance(name, str):
                raise TypeError(f"session keys must be str, got {type(name).__name__}")
            if name.startswith("\x00"):
                raise ValueError("session keys starting with NUL are reserved for the store")
