"""The session objects: a dict that knows whether it was read or changed."""

from __future__ import annotations

import hmac
import secrets
import typing as t
from collections.abc import MutableMapping
from copy import deepcopy

from ._timeouts import START

__all__ = ["NullSession", "SecureCookieSession", "SessionMixin"]

# Values that cannot change in place: handing one out needs no snapshot.
_IMMUTABLE_TYPES = frozenset({str, int, float, bool, bytes, type(None)})
_MISSING: t.Any = object()


class _NotLoaded:
    """The key a lazy session's own storage holds while part of it waits to be
    loaded or parsed (:data:`NOT_LOADED`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<not loaded>"


#: Kept in a lazy session's dict storage until everything is loaded. Code that
#: reads a dict's storage instead of calling its methods would otherwise take
#: the session for empty: the C JSON encoder writes ``{}`` for a dict whose
#: storage is empty without asking for its items, so ``json.dumps(session)``
#: (and Flask's ``jsonify``) of an unused session would be ``{}``. With this
#: key the storage is not empty, the encoder asks for ``items()``, and that
#: loads. Not a str: whatever serializes the storage itself fails loudly
#: (a TypeError) rather than writing an empty session. Our methods never
#: show it.
NOT_LOADED: t.Any = _NotLoaded()

#: Where flash messages live: a list of ``(queue, message)`` pairs. The key and
#: the shape are Flask's (``(category, message)``), so a message flashed with
#: ``flask.flash`` is seen by :meth:`SessionMixin.pop_flash` and the other way round.
FLASH_KEY = "_flashes"
#: Where the CSRF token lives.
CSRF_KEY = "_csrf_token"


class SessionMixin(MutableMapping[str, t.Any]):
    """The attributes every session has on top of being a mapping."""

    @property
    def permanent(self) -> bool:
        """Whether the session outlives the browser session; the ``_permanent`` key."""
        return self.get("_permanent", False)  # type: ignore[no-any-return]

    @permanent.setter
    def permanent(self, value: bool) -> None:
        self["_permanent"] = bool(value)

    #: Whether the session was created by this request (the request brought no
    #: valid session cookie); interfaces that cannot tell leave it False.
    new = False

    #: Whether the session changed; interfaces that cannot tell assume it did.
    modified = True

    #: Whether the session was read or written; decides ``Vary: Cookie``.
    accessed = True

    # -- flash messages: shown once, on the next page ------------------------
    # Written only through the mapping API (a top-level assignment), so every
    # session class tracks the change, and a read that finds nothing writes nothing.

    def flash(self, message: t.Any, queue: str = "", allow_duplicate: bool = True) -> None:
        """Queue ``message`` for the next page that pops the ``queue``."""
        flashes = list(self.get(FLASH_KEY) or ())
        if not allow_duplicate and (queue, message) in flashes:
            return
        flashes.append((queue, message))
        self[FLASH_KEY] = flashes

    def peek_flash(self, queue: str = "") -> list[t.Any]:
        """The messages waiting in ``queue``, left in place."""
        return [message for name, message in self.get(FLASH_KEY) or () if name == queue]

    def pop_flash(self, queue: str = "") -> list[t.Any]:
        """The messages waiting in ``queue``, removed so each is shown once."""
        flashes = self.get(FLASH_KEY) or ()
        popped = [message for name, message in flashes if name == queue]
        if popped:
            kept = [(name, message) for name, message in flashes if name != queue]
            if kept:
                self[FLASH_KEY] = kept
            else:
                del self[FLASH_KEY]
        return popped

    # -- CSRF: a per-session secret that forms echo back -----------------------

    def csrf_token(self) -> str:
        """The session's CSRF token for a form's hidden field, made on first use."""
        token = self.get(CSRF_KEY)
        if isinstance(token, str) and token:
            return token
        return self.new_csrf_token()

    def new_csrf_token(self) -> str:
        """Replace the CSRF token (at login, so a token seen before is worthless)."""
        token = secrets.token_urlsafe(32)
        self[CSRF_KEY] = token
        return token

    def check_csrf(self, token: object) -> bool:
        """Whether ``token`` (from the submitted form or a header) is the session's.

        The compare takes constant time, so timing reveals nothing of the
        token; a missing token on either side is never a match.
        """
        expected = self.get(CSRF_KEY)
        if not isinstance(token, str) or not token or not isinstance(expected, str):
            return False
        return hmac.compare_digest(expected.encode(), token.encode())

    # -- login and logout: the same calls on every kind of session -----------

    def regenerate(self) -> None:
        """Call at login, so that nothing seen before it is worth anything after.

        A server-side session gets a new id (see ServerSideSession). A cookie
        session has no id to replace (its data is its cookie): its CSRF token,
        if it has one, is replaced, and the cookie is sent again.
        """
        if CSRF_KEY in self:
            self.new_csrf_token()
        self.modified = True

    def invalidate(self) -> None:
        """Call at logout: the data goes and the cookie is deleted."""
        self.clear()

    # -- the owner: whose session it is, so that its other sessions can be ended --

    @property
    def owner(self) -> str | None:
        """Whose session this is; always None here: only a server-side session
        (:class:`~wsgi_sessions.ServerSideSession`) can have an owner."""
        return None

    @owner.setter
    def owner(self, value: str | None) -> None:
        # A cookie session lives only in its browser: nothing on the server
        # could list it or end it, so an owner would promise what it cannot do.
        raise TypeError(
            "session.owner needs a server-side store (the 'store' setting, or a "
            "ServerSideSessionInterface): a cookie session cannot be listed or ended "
            "from another session"
        )


class SecureCookieSession(dict[str, t.Any], SessionMixin):
    """A session held in a dict, with change tracking.

    Every read path sets :attr:`accessed` and every top-level write sets
    :attr:`modified` as well. A change *inside* a value (``session["cart"].append(x)``)
    is caught too: when a mutable value is handed out, a deep copy is kept, and
    :attr:`modified` compares against it. A request that only reads strings and
    numbers never pays for a copy.
    """

    _accessed = False
    _new = True
    #: Set by :meth:`lazy`: decodes the cookie on first use. None once loaded.
    _loader: t.Callable[[], tuple[dict[str, t.Any], t.Any] | None] | None = None
    # Class-level defaults, set on the instance only when they change: most
    # requests never write, so their sessions never get an instance dict.
    _modified = False
    #: key -> deep copy of a mutable value as it was when first handed out
    _handed_out: dict[str, t.Any] | None = None
    #: The library's own data about the session (Pyramid's ``created``): saved
    #: with it, but not part of the mapping the application sees.
    _meta: dict[str, t.Any] | None = None

    def __init__(self, initial: t.Mapping[str, t.Any] | None = None) -> None:
        if initial:
            dict.__init__(self, initial)

    @classmethod
    def lazy(
        cls, loader: t.Callable[[], tuple[dict[str, t.Any], t.Any] | None]
    ) -> SecureCookieSession:
        """A session whose contents ``loader`` produces on first use.

        A request that never touches its session then pays no HMAC and no
        decoding for the cookie it carries. ``loader`` returns the data and
        the metadata of a valid cookie, or None for a cookie that is not
        (the session is then fresh and empty, :attr:`new` True); it must not
        raise. Loading hangs on one hook: every read and write marks the
        session :attr:`accessed` before it looks at the dict, and marking it loads.
        """
        session = cls()
        session._make_lazy(loader)
        return session

    def _make_lazy(self, loader: t.Callable[[], tuple[dict[str, t.Any], t.Any] | None]) -> None:
        """Make this empty session one that ``loader`` fills on first use (see :meth:`lazy`)."""
        self._loader = loader
        dict.__setitem__(self, NOT_LOADED, None)

    def _load(self) -> None:
        loader = self._loader
        if loader is None:
            return
        self._loader = None
        dict.pop(self, NOT_LOADED, None)
        found = loader()
        if found is None:
            return
        data, meta = found
        dict.update(self, data)
        self._new = False
        if type(meta) is dict:
            self._meta = dict(meta)

    @property
    def accessed(self) -> bool:
        """Whether the session was read or written; decides ``Vary: Cookie``.
        Marking it True (every read and write does) loads a lazy session first."""
        return self._accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        if value and self._loader is not None:
            self._load()
        self._accessed = value

    @property
    def new(self) -> bool:
        """True until the interface finds the session in a valid cookie (which
        a lazy session knows only once loaded: asking loads it)."""
        if self._loader is not None:
            self._load()
        return self._new

    @new.setter
    def new(self, value: bool) -> None:
        self._new = value

    @property
    def modified(self) -> bool:
        """Whether the session must be saved: a top-level write, an explicit
        ``modified = True``, or a change inside a value that was handed out."""
        if self._modified:
            return True
        handed_out = self._handed_out
        if handed_out:
            get = dict.get
            for key, snapshot in handed_out.items():
                if get(self, key, _MISSING) != snapshot:
                    self._modified = True
                    return True
        return False

    @modified.setter
    def modified(self, value: bool) -> None:
        if value and self._loader is not None:
            self._load()  # "save it" needs what there is to save
        self._modified = value
        if not value:
            self._handed_out = None

    def _hand_out(self, key: str, value: t.Any) -> t.Any:
        if type(value) not in _IMMUTABLE_TYPES:
            handed_out = self._handed_out
            if handed_out is None:
                handed_out = self._handed_out = {}
            if key not in handed_out:
                handed_out[key] = deepcopy(value)
        return value

    def _hand_out_all(self) -> None:
        for key, value in dict.items(self):
            self._hand_out(key, value)

    def _changed(self) -> None:
        self.accessed = True
        self._modified = True

    # -- reads ---------------------------------------------------------------

    def __getitem__(self, key: str) -> t.Any:
        self.accessed = True
        return self._hand_out(key, dict.__getitem__(self, key))

    def get(self, key: str, default: t.Any = None) -> t.Any:
        self.accessed = True
        value = dict.get(self, key, _MISSING)
        if value is _MISSING:
            return default
        return self._hand_out(key, value)

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        return dict.__contains__(self, key)

    def __len__(self) -> int:
        self.accessed = True
        return dict.__len__(self)

    def __iter__(self) -> t.Iterator[str]:
        self.accessed = True
        return dict.__iter__(self)

    def keys(self) -> t.KeysView[str]:  # type: ignore[override]
        self.accessed = True
        return dict.keys(self)

    def values(self) -> t.ValuesView[t.Any]:  # type: ignore[override]
        self.accessed = True
        self._hand_out_all()
        return dict.values(self)

    def items(self) -> t.ItemsView[str, t.Any]:  # type: ignore[override]
        self.accessed = True
        self._hand_out_all()
        return dict.items(self)

    def copy(self) -> dict[str, t.Any]:
        """A plain dict copy; the values are shared, so they count as handed out."""
        self.accessed = True
        self._hand_out_all()
        return dict(dict.items(self))

    def __eq__(self, other: object) -> bool:
        self.accessed = True
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __reversed__(self) -> t.Iterator[str]:
        self.accessed = True
        return dict.__reversed__(self)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self._loader is not None:
            return f"<{type(self).__name__} (not loaded)>"
        return f"<{type(self).__name__} {dict.__repr__(self)}>"

    # -- writes --------------------------------------------------------------

    def __setitem__(self, key: str, value: t.Any) -> None:
        self._changed()
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        self._changed()
        dict.__delitem__(self, key)

    def setdefault(self, key: str, default: t.Any = None) -> t.Any:
        if self._loader is not None:
            self._load()
        value = dict.get(self, key, _MISSING)
        if value is _MISSING:
            self._changed()
            dict.__setitem__(self, key, default)
            return default
        self.accessed = True
        return self._hand_out(key, value)

    def pop(self, key: str, *default: t.Any) -> t.Any:
        self._changed()
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, t.Any]:
        self._changed()
        return dict.popitem(self)

    def update(self, *args: t.Any, **kwargs: t.Any) -> None:
        self._changed()
        dict.update(self, *args, **kwargs)

    def clear(self) -> None:
        self._changed()
        self._meta = None  # an emptied session is a new one
        dict.clear(self)

    def regenerate(self) -> None:
        """As :meth:`SessionMixin.regenerate`; it also restarts the
        ``absolute_timeout`` (the save records a new start): a login is where
        the session's age begins."""
        super().regenerate()
        meta = self._meta
        if meta and START in meta:
            del meta[START]

    def __ior__(self, other: t.Any) -> SecureCookieSession:  # type: ignore[override]
        self.update(other)
        return self

    def __or__(self, other: t.Any) -> dict[str, t.Any]:  # type: ignore[override]
        return self.copy() | dict(other)

    # -- for interfaces --------------------------------------------------------

    def as_dict(self) -> dict[str, t.Any]:
        """The contents as a plain dict, without marking the session accessed
        (saving is not the application reading it)."""
        if self._loader is not None:
            self._load()
        return dict(dict.items(self))

    def is_empty(self) -> bool:
        """Whether the session holds nothing, without marking it accessed."""
        if self._loader is not None:
            self._load()
        return not dict.__len__(self)

    # -- metadata: saved with the session, invisible through the mapping --------

    def get_meta(self, name: str, default: t.Any = None) -> t.Any:
        """One item of the library's data about the session (e.g. ``created``)."""
        self.accessed = True
        meta = self._meta
        return default if meta is None else meta.get(name, default)

    def set_meta(self, name: str, value: t.Any) -> None:
        """Record ``value``; it is saved whenever the session is next written
        (set ``modified`` to have it written now), and is not a change itself."""
        if self._loader is not None:
            self._load()  # the cookie's metadata first, then this on top
        if self._meta is None:
            self._meta = {}
        self._meta[name] = value

    def meta(self) -> dict[str, t.Any]:
        """All the metadata, for interfaces (no read is recorded)."""
        if self._loader is not None:
            self._load()
        return dict(self._meta) if self._meta else {}


class NullSession(SecureCookieSession):
    """The stand-in when sessions cannot work (no secret key).

    Reads see an empty session, so pages that merely look at it still render;
    a write is a :class:`RuntimeError` that says what to configure, naming the
    setting as the user's framework spells it (``secret_key_setting``, set by
    the interface; Flask's ``SECRET_KEY`` when there is none).
    """

    #: The secret key's setting as the user writes it ("secret_key",
    #: "session.secret_key"); None in Flask, where it is ``SECRET_KEY``.
    secret_key_setting: str | None = None

    def _fail(self, *args: t.Any, **kwargs: t.Any) -> t.NoReturn:
        where = (
            f"the setting {self.secret_key_setting!r}"
            if self.secret_key_setting
            else "SECRET_KEY in the Flask app's config"
        )
        raise RuntimeError(
            f"The session is unavailable because no secret key was set. Set {where} "
            "to a long random string, e.g. the output of `wsgi-sessions secret` or "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`."
        )

    __setitem__ = __delitem__ = clear = pop = popitem = update = setdefault = _fail
    __ior__ = regenerate = _fail
