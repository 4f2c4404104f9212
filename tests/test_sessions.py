"""The session objects: what counts as reading, what counts as changing."""

from __future__ import annotations

import typing as t
from collections.abc import Callable

import pytest

from wsgi_sessions import NullSession, SecureCookieSession, SessionMixin


def loaded(**data: t.Any) -> SecureCookieSession:
    """A session as ``open_session`` builds it from a cookie: untouched."""
    session = SecureCookieSession(data)
    assert not session.accessed
    assert not session.modified
    return session


def read_missing(session: SecureCookieSession) -> None:
    with pytest.raises(KeyError):
        session["absent"]


READS: dict[str, Callable[[SecureCookieSession], object]] = {
    "getitem": lambda s: s["name"],
    "getitem-missing": read_missing,
    "get": lambda s: s.get("name"),
    "get-missing": lambda s: s.get("absent", 1),
    "in": lambda s: "name" in s,
    "len": len,
    "iter": list,
    "keys": lambda s: s.keys(),
    "values": lambda s: s.values(),
    "items": lambda s: s.items(),
    "truthiness": bool,
    "setdefault-existing": lambda s: s.setdefault("name", "other"),
    "copy": lambda s: s.copy(),
    "eq": lambda s: s == {},
    "permanent": lambda s: s.permanent,
}


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_every_read_path_marks_accessed_and_not_modified(
    read: Callable[[SecureCookieSession], object],
) -> None:
    session = loaded(name="ada", cart=[1, 2])
    read(session)
    assert session.accessed
    assert not session.modified
    assert session.as_dict() == {"name": "ada", "cart": [1, 2]}


def test_reads_return_the_stored_values() -> None:
    session = loaded(name="ada", n=1)
    assert session["name"] == "ada"
    assert session.get("n") == 1
    assert session.get("absent") is None
    assert session.get("absent", "dflt") == "dflt"
    assert sorted(session) == ["n", "name"]
    assert sorted(session.keys()) == ["n", "name"]
    assert sorted(session.values(), key=str) == [1, "ada"]
    assert sorted(session.items()) == [("n", 1), ("name", "ada")]
    assert len(session) == 2
    assert session
    assert not loaded()
    copied = session.copy()
    assert type(copied) is dict
    assert copied == {"name": "ada", "n": 1}


WRITES: dict[str, Callable[[SecureCookieSession], object]] = {
    "setitem": lambda s: s.__setitem__("new", 1),
    "setitem-same-value": lambda s: s.__setitem__("name", "ada"),
    "delitem": lambda s: s.__delitem__("name"),
    "setdefault-missing": lambda s: s.setdefault("new", []),
    "pop": lambda s: s.pop("name"),
    "pop-default": lambda s: s.pop("absent", None),
    "popitem": lambda s: s.popitem(),
    "update": lambda s: s.update(new=1),
    "clear": lambda s: s.clear(),
    "ior": lambda s: s.__ior__({"new": 1}),
    "permanent": lambda s: setattr(s, "permanent", True),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_every_top_level_write_marks_modified_and_accessed(
    write: Callable[[SecureCookieSession], object],
) -> None:
    session = loaded(name="ada")
    write(session)
    assert session.modified
    assert session.accessed


def test_writes_change_the_contents() -> None:
    session = loaded(a=1, b=2)
    session["c"] = 3
    del session["a"]
    assert session.setdefault("d", [4]) == [4]
    assert session.setdefault("d", "ignored") == [4]
    assert session.pop("b") == 2
    session.update({"e": 5})
    session |= {"f": 6}
    assert session.as_dict() == {"c": 3, "d": [4], "e": 5, "f": 6}
    merged = session | {"g": 7}
    assert merged == {"c": 3, "d": [4], "e": 5, "f": 6, "g": 7}
    assert "g" not in session
    session.clear()
    assert session.is_empty()


def test_permanent_is_the_permanent_key() -> None:
    session = loaded()
    assert session.permanent is False
    session.permanent = True
    assert session.as_dict() == {"_permanent": True}
    assert SecureCookieSession({"_permanent": True}).permanent is True
    session.permanent = 0  # type: ignore[assignment]
    assert session.as_dict() == {"_permanent": False}


def test_saving_helpers_do_not_count_as_reading() -> None:
    session = loaded(a=1)
    assert session.as_dict() == {"a": 1}
    assert not session.is_empty()
    assert loaded().is_empty()
    repr(session)
    assert not session.accessed


def test_a_cookie_session_is_new_until_the_interface_says_it_came_from_a_cookie() -> None:
    assert SecureCookieSession().new is True
    session = SecureCookieSession({"a": 1})
    session.new = False  # what the interface does for a valid cookie
    assert session.new is False


def test_metadata_is_kept_out_of_the_mapping() -> None:
    session = loaded(a=1)
    session.set_meta("created", 1234.5)
    assert session.get_meta("created") == 1234.5
    assert session.get_meta("missing", "default") == "default"
    assert list(session) == ["a"]
    assert list(session.keys()) == ["a"]
    assert list(session.items()) == [("a", 1)]
    assert len(session) == 1
    assert session.copy() == {"a": 1}
    assert session.as_dict() == {"a": 1}
    assert session.meta() == {"created": 1234.5}
    assert "created" not in session
    assert session == {"a": 1}


def test_setting_metadata_is_not_a_change_but_clearing_drops_it() -> None:
    session = loaded(a=1)
    session.set_meta("created", 1.0)
    assert not session.modified
    session.clear()
    assert session.get_meta("created") is None
    assert session.meta() == {}


def test_modified_can_be_set_explicitly() -> None:
    session = loaded(a=1)
    session.modified = True
    assert session.modified
    session.modified = False
    assert not session.modified


def test_sessions_are_not_hashable() -> None:
    with pytest.raises(TypeError):
        hash(SecureCookieSession())


def test_session_satisfies_the_mixin() -> None:
    assert isinstance(SecureCookieSession(), SessionMixin)


# -- changes inside values -----------------------------------------------------


NESTED_CHANGES: dict[str, Callable[[SecureCookieSession], object]] = {
    "list-append-getitem": lambda s: s["cart"].append(3),
    "list-append-get": lambda s: s.get("cart").append(3),
    "dict-item-set": lambda s: s["prefs"].__setitem__("theme", "dark"),
    "dict-item-deleted": lambda s: s["prefs"].pop("lang"),
    "deep": lambda s: s["deep"]["a"][0].append("x"),
    "via-values": lambda s: next(v for v in s.values() if isinstance(v, list)).append(3),
    "via-items": lambda s: dict(s.items())["prefs"].clear(),
    "via-copy": lambda s: s.copy()["cart"].append(3),
    "via-setdefault": lambda s: s.setdefault("cart", []).append(3),
}


@pytest.mark.parametrize("change", NESTED_CHANGES.values(), ids=NESTED_CHANGES.keys())
def test_change_inside_a_value_is_detected(change: Callable[[SecureCookieSession], object]) -> None:
    session = loaded(cart=[1, 2], prefs={"lang": "en"}, deep={"a": [[]]})
    change(session)
    assert session.modified


def test_mutable_value_read_but_not_changed_is_not_modified() -> None:
    session = loaded(cart=[1, 2], prefs={"lang": "en"})
    assert session["cart"] == [1, 2]
    assert session.get("prefs") == {"lang": "en"}
    list(session.items())
    assert not session.modified


def test_reading_only_scalars_takes_no_snapshot() -> None:
    session = loaded(name="ada", n=1, ratio=0.5, flag=True, raw=b"x", nothing=None)
    session["name"]
    session.get("n")
    session.get("ratio")
    session.setdefault("flag", False)
    list(session.values())
    list(session.items())
    session.copy()
    assert session._handed_out is None
    assert not session.modified


def test_snapshot_is_taken_once_per_key() -> None:
    session = loaded(cart=[1])
    session["cart"].append(2)
    assert session["cart"] == [1, 2]  # handed out again: the first snapshot stays
    assert session.modified


def test_nested_change_reverted_is_not_modified() -> None:
    session = loaded(cart=[1])
    cart = session["cart"]
    cart.append(2)
    cart.pop()
    assert not session.modified


def test_modified_false_forgets_snapshots() -> None:
    session = loaded(cart=[1])
    session["cart"].append(2)
    session.modified = False
    assert not session.modified
    session["cart"].append(3)
    assert session.modified


def test_nested_change_is_saved_without_setting_modified(make_testapp: t.Any) -> None:
    def append(session: SessionMixin) -> str:
        cart = session.setdefault("cart", [])  # existing key: a read, not a write
        cart.append(len(cart))
        return repr(cart)

    app = make_testapp(append)
    assert app.get("/").text == "[0]"
    second = app.get("/")  # only the list inside changed
    assert second.text == "[0, 1]"
    assert second.headers.getall("Set-Cookie")
    assert app.get("/").text == "[0, 1, 2]"


# -- NullSession ---------------------------------------------------------------


def test_null_session_reads_as_empty() -> None:
    session = NullSession()
    assert len(session) == 0
    assert not session
    assert session.get("a") is None
    assert "a" not in session
    assert list(session) == []
    assert session.copy() == {}
    assert session.permanent is False
    with pytest.raises(KeyError):
        session["a"]


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_null_session_write_raises_with_the_secret_key_message(
    write: Callable[[SecureCookieSession], object],
) -> None:
    session = NullSession()
    with pytest.raises(RuntimeError) as info:
        write(session)
    message = str(info.value)
    assert "no secret key" in message
    assert "SECRET_KEY in the Flask app's config" in message  # no setting named: Flask's
    assert "secrets.token_hex" in message
    assert session.as_dict() == {}
    session.secret_key_setting = "session.secret_key"  # as an interface names it
    with pytest.raises(RuntimeError) as info:
        write(session)
    assert "the setting 'session.secret_key'" in str(info.value)
    assert "SECRET_KEY" not in str(info.value)


def test_a_cookie_session_regenerates_its_csrf_token_and_invalidates_to_empty() -> None:
    session = SecureCookieSession({"user": "alice"})
    session.regenerate()  # no token to rotate; the cookie is re-sent all the same
    assert session.modified
    assert session == {"user": "alice"}
    token = session.csrf_token()
    session.regenerate()
    assert session.csrf_token() != token
    assert session["user"] == "alice"
    session.invalidate()
    assert session == {}
    assert session.modified


def test_login_and_logout_code_runs_the_same_on_a_cookie_session(make_testapp: t.Any) -> None:
    def action(session: t.Any) -> str:
        path = session_path[0]
        if path == "login":
            session.regenerate()
            session["user"] = "alice"
        elif path == "refresh":
            session.regenerate()  # nothing else changes: the cookie is re-sent all the same
        elif path == "logout":
            session.invalidate()
        return str(session.get("user"))

    session_path = ["login"]
    app = make_testapp(action)
    assert app.get("/").text == "alice"
    session_path[0] = "refresh"
    assert "Set-Cookie" in app.get("/").headers
    session_path[0] = "logout"
    response = app.get("/")
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    session_path[0] = "read"
    assert app.get("/").text == "None"


def test_a_null_session_refuses_regenerate_and_invalidate_like_any_write() -> None:
    session = NullSession()
    with pytest.raises(RuntimeError, match="secret key"):
        session.regenerate()
    with pytest.raises(RuntimeError, match="secret key"):
        session.invalidate()
