"""A session mapping whose values arrive as stored texts, each parsed when
its key is first read.

A server-side store hands back a session as one JSON text per key. Parsing
them all at the load would cost every request the whole session, though most
read a key or two: a request that reads the user id of a 500-key session
parses one value here, not 500. Keeping the texts aside, behind a mapping
that answers as the dict of parsed values would (``len``, ``in``, iteration,
equality, change tracking), takes an override of nearly every dict method.
They live here, apart from the session's life in the store
(:mod:`wsgi_sessions.server_session`), so that each module has one job.
"""

from __future__ import annotations

import typing as t
from collections.abc import Callable

from .serialization import UNREADABLE
from .sessions import _IMMUTABLE_TYPES, _MISSING, NOT_LOADED, SecureCookieSession

__all__ = ["LazyFieldsSession"]


class LazyFieldsSession(SecureCookieSession):
    """A :class:`~wsgi_sessions.sessions.SecureCookieSession` filled with
    stored texts that are parsed one key at a time.

    Where the texts come from is the subclass's business: its
    :meth:`_ensure_loaded` fetches them once and hands them over with
    :meth:`_hold_texts`. The load hangs on one hook: every read marks the
    session :attr:`accessed` before it looks at the dict (a rule of
    :class:`SecureCookieSession`), and marking it loads (so does
    ``accessed = True`` set by hand). Writes mark it without loading (a blind
    write): a key set before the load keeps the value set.

    Until its key is read, a text waits in ``_unread``, outside the dict, so
    ``len`` and writes need no parse; iterating, or anything that sees every
    value, parses the rest first. Keys enter the dict as they are read or set,
    and iterating adds the rest in the store's order. A text that does not parse
    is dropped (and logged by the loader) when its key is read; ``len`` counts
    it until then. While a text waits (or nothing is loaded yet) the storage
    also holds :data:`~wsgi_sessions.sessions.NOT_LOADED`, so that code which
    checks the storage's size instead of calling ``len`` (the C JSON encoder)
    does not take the session for empty and asks for its items.

    Besides the cookie session's change tracking it records, per key, whether
    this request set or deleted it (``_touched``), so that a subclass can save
    only those keys. ``clear()`` is left to the subclass too: what emptying a
    session means (a server-side one ends) is not the mapping's to decide.
    """

    _loaded = True  # nothing to load until a subclass says otherwise
    # Loaded keys not parsed yet, with their stored texts; never in the dict too.
    _unread: dict[str, str] | None = None
    _load_value: Callable[[str], t.Any] | None = None  # parses one text (the loader)
    # key -> True (set here) or False (deleted here); None until the first write.
    _touched: dict[str, bool] | None = None

    def _ensure_loaded(self) -> None:
        """Load the texts if not done yet."""
        if self._loaded:
            return
        try:
            self._load_texts()
        finally:
            self._mark_unparsed()

    def _load_texts(self) -> None:
        """Fetch the texts (a subclass knows from where), hand them to
        :meth:`_hold_texts` and set ``_loaded``."""
        raise NotImplementedError

    def _mark_unparsed(self) -> None:
        """Keep :data:`~wsgi_sessions.sessions.NOT_LOADED` in the storage
        exactly while something is not loaded or not parsed."""
        if not self._loaded or self._unread:
            dict.__setitem__(self, NOT_LOADED, None)
        else:
            dict.pop(self, NOT_LOADED, None)

    @property
    def accessed(self) -> bool:
        """As for cookie sessions; marking it True (every read does) loads first."""
        return self._accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        if value and not self._loaded:
            self._ensure_loaded()
        self._accessed = value

    def _hold_texts(self, texts: dict[str, str], load: Callable[[str], t.Any]) -> None:
        """Keep ``texts`` (key -> stored text; the dict is taken over) to be
        parsed by ``load`` on first read. A key this request wrote before the
        load is skipped: its write is newer than the text."""
        touched = self._touched
        if touched:
            for name in touched:
                texts.pop(name, None)
        if texts:
            self._unread = texts
            self._load_value = load

    def _drop_contents(self) -> None:
        """Forget every key, parsed or not, and what this request did to them."""
        dict.clear(self)
        self._unread = None
        self._touched = None
        self._handed_out = None
        self._mark_unparsed()

    # -- parsing -----------------------------------------------------------------

    def _parse(self, key: str, snapshot: bool) -> t.Any:
        """Move ``key`` (in ``_unread``) into the dict with its parsed value;
        return the value, or _MISSING if its text is not one (the key is gone).

        ``snapshot``: the value is being handed out, so a mutable one gets the
        copy that change tracking compares against, made by parsing the text
        a second time (several times cheaper than ``deepcopy`` of the value).
        """
        unread, load = self._unread, self._load_value
        assert unread is not None and load is not None
        text = unread.pop(key)
        if not unread:
            self._mark_unparsed()
        value = load(text)
        if value is UNREADABLE:
            return _MISSING
        dict.__setitem__(self, key, value)
        if snapshot and type(value) not in _IMMUTABLE_TYPES:
            handed_out = self._handed_out
            if handed_out is None:
                handed_out = self._handed_out = {}
            if key not in handed_out:
                handed_out[key] = load(text)
        return value

    def _parse_all(self, snapshot: bool) -> None:
        """Parse every key not parsed yet: before anything iterates, so that
        keys whose text does not parse are gone first."""
        unread = self._unread
        if unread:
            for key in list(unread):
                self._parse(key, snapshot)
        self._unread = None
        self._mark_unparsed()

    def _is_unread(self, key: object) -> bool:
        unread = self._unread
        return unread is not None and key in unread

    def _holds(self, key: str) -> bool:
        """Whether ``key`` is in the session, parsed or not (its text may
        still turn out unreadable); no parse, no read recorded."""
        return dict.__contains__(self, key) or self._is_unread(key)

    def _peek(self, key: str, default: t.Any = None) -> t.Any:
        """The value of ``key`` for the library's own use: parsed if need be,
        not handed out, not marking the session accessed."""
        value = dict.get(self, key, _MISSING)
        if value is _MISSING and self._is_unread(key):
            value = self._parse(key, snapshot=False)
        return default if value is _MISSING else value

    # -- reads: a value not parsed yet is parsed first ----------------------------

    def _read(self, key: str) -> t.Any:
        """The value of ``key`` handed out to the app (parsed first if need
        be), or _MISSING."""
        self.accessed = True
        value = dict.get(self, key, _MISSING)
        if value is _MISSING:
            return self._parse(key, snapshot=True) if self._is_unread(key) else _MISSING
        return self._hand_out(key, value)

    def __getitem__(self, key: str) -> t.Any:
        value = self._read(key)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def get(self, key: str, default: t.Any = None) -> t.Any:
        value = self._read(key)
        return default if value is _MISSING else value

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        if dict.__contains__(self, key):
            return True
        if not self._is_unread(key):
            return False
        return self._parse(t.cast(str, key), snapshot=False) is not _MISSING  # unreadable: gone

    def __len__(self) -> int:
        self.accessed = True
        unread = self._unread
        if not unread:
            return dict.__len__(self)
        return dict.__len__(self) - 1 + len(unread)  # less NOT_LOADED

    # Whatever walks the keys parses the rest first (an unreadable text drops
    # its key); what also hands out the values snapshots the mutable ones.

    def __iter__(self) -> t.Iterator[str]:
        self.accessed = True
        self._parse_all(snapshot=False)
        return dict.__iter__(self)

    def keys(self) -> t.KeysView[str]:  # type: ignore[override]
        self.accessed = True
        self._parse_all(snapshot=False)
        return dict.keys(self)

    def __reversed__(self) -> t.Iterator[str]:
        self.accessed = True
        self._parse_all(snapshot=False)
        return dict.__reversed__(self)

    def values(self) -> t.ValuesView[t.Any]:  # type: ignore[override]
        self.accessed = True
        self._parse_all(snapshot=True)
        return super().values()

    def items(self) -> t.ItemsView[str, t.Any]:  # type: ignore[override]
        self.accessed = True
        self._parse_all(snapshot=True)
        return super().items()

    def copy(self) -> dict[str, t.Any]:
        self.accessed = True
        self._parse_all(snapshot=True)
        return super().copy()

    def __eq__(self, other: object) -> bool:
        self.accessed = True
        self._parse_all(snapshot=False)
        return dict.__eq__(self, other)

    __hash__ = SecureCookieSession.__hash__  # None: unhashable, as any dict

    def as_dict(self) -> dict[str, t.Any]:
        self._ensure_loaded()
        self._parse_all(snapshot=False)
        return super().as_dict()

    def is_empty(self) -> bool:
        self._ensure_loaded()
        return not (dict.__len__(self) or self._unread)  # NOT_LOADED only with _unread

    # -- writes (per key; a plain set needs no load) -----------------------------

    def _changed(self) -> None:
        self._accessed = True  # not the property: a write needs no load
        self._modified = True

    def _touched_keys(self) -> dict[str, bool]:
        if self._touched is None:
            self._touched = {}
        return self._touched

    def __setitem__(self, key: str, value: t.Any) -> None:
        super().__setitem__(key, value)
        self._touched_keys()[key] = True
        unread = self._unread
        if unread:
            unread.pop(key, None)
            if not unread:
                self._mark_unparsed()

    def update(self, *args: t.Any, **kwargs: t.Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value  # per key: each is recorded as set
        self._changed()  # an empty update is a write too, as for cookie sessions

    def __delitem__(self, key: str) -> None:
        self._ensure_loaded()
        unread = self._unread
        if unread is not None and key in unread:
            del unread[key]  # no need to parse what goes
            if not unread:
                self._mark_unparsed()
            self._changed()
        else:
            super().__delitem__(key)
        self._touched_keys()[key] = False

    def setdefault(self, key: str, default: t.Any = None) -> t.Any:
        self._ensure_loaded()
        if self._is_unread(key):
            self._parse(key, snapshot=True)  # handed out below
        if not dict.__contains__(self, key):
            self._touched_keys()[key] = True
        return super().setdefault(key, default)

    def pop(self, key: str, *default: t.Any) -> t.Any:
        self._ensure_loaded()
        if self._is_unread(key):
            self._parse(key, snapshot=False)
        if dict.__contains__(self, key):
            self._touched_keys()[key] = False
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, t.Any]:
        self._ensure_loaded()
        self._parse_all(snapshot=False)
        key, value = super().popitem()
        self._touched_keys()[key] = False
        return key, value

    def __repr__(self) -> str:
        state = "" if self._loaded else " (not loaded)"
        unread = f" (+{len(self._unread)} keys not read)" if self._unread else ""
        parsed = {key: value for key, value in dict.items(self) if key is not NOT_LOADED}
        return f"<{type(self).__name__}{state} {parsed!r}{unread}>"
