"""Tagged JSON: round trips, refusals that name the place, and Flask's wire format."""

from __future__ import annotations

import json
import re
import typing as t
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from enum import IntEnum
from uuid import UUID

import pytest
from flask.json.tag import TaggedJSONSerializer as FlaskTaggedJSONSerializer
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup
from werkzeug.http import http_date, parse_date

from wsgi_sessions import TaggedJSONSerializer
from wsgi_sessions.serialization import (
    UNREADABLE,
    JSONTag,
    dump_fields,
    field_loader,
    format_http_date,
    load_fields,
    read_http_date,
)

UTC_SECOND = datetime(2024, 2, 29, 23, 59, 58, tzinfo=timezone.utc)

VALUES: dict[str, t.Any] = {
    "str": "héllo ☃",
    "int": 42,
    "float": 1.5,
    "bool": True,
    "none": None,
    "list": [1, "a", None],
    "empty-dict": {},
    "tuple": (1, "a"),
    "empty-tuple": (),
    "bytes": b"\x00\xffbinary",
    "empty-bytes": b"",
    "uuid": UUID("12345678-1234-5678-1234-567812345678"),
    "datetime": UTC_SECOND,
    "markup": Markup("<b>bold</b> &amp;"),
    "dict-one-tag-key": {" t": [1, 2]},
    "dict-one-tag-key-suffixed": {" t__": "x"},
    "dict-di-key": {" di": {" u": "not a uuid"}},
    "dict-two-tag-keys": {" t": 1, " b": 2},
    "dict-non-tag-space-key": {" x": 1},
    "nested": {
        "cart": [(1, b"a"), {"when": UTC_SECOND}],
        "ids": (UUID(int=1), UUID(int=2)),
        "deep": {"a": {"b": {"c": [[(" t",)]]}}},
    },
}


@pytest.mark.parametrize("value", VALUES.values(), ids=VALUES.keys())
def test_round_trip(value: t.Any) -> None:
    serializer = TaggedJSONSerializer()
    session = {"value": value}
    text = serializer.dumps(session)
    json.loads(text)  # plain JSON on the wire
    back = serializer.loads(text)
    assert back == session
    assert type(back["value"]) is type(value)


def test_round_trip_keeps_nested_types() -> None:
    serializer = TaggedJSONSerializer()
    back = serializer.loads(serializer.dumps(VALUES["nested"]))
    assert type(back["cart"][0]) is tuple
    assert type(back["cart"][0][1]) is bytes
    assert type(back["ids"][1]) is UUID
    assert type(back["deep"]["a"]["b"]["c"][0][0]) is tuple


def test_datetime_comes_back_in_utc_whole_seconds() -> None:
    serializer = TaggedJSONSerializer()
    local = datetime(2024, 1, 1, 12, 0, 0, 999, tzinfo=timezone(timedelta(hours=2)))
    back = serializer.loads(serializer.dumps({"d": local}))["d"]
    assert back == datetime(2024, 1, 1, 10, 0, 0, tzinfo=timezone.utc)
    assert back.utcoffset() == timedelta(0)


def test_markup_round_trip_keeps_it_safe() -> None:
    serializer = TaggedJSONSerializer()
    back = serializer.loads(serializer.dumps({"m": Markup("<i>x</i>")}))["m"]
    assert isinstance(back, Markup)
    assert Markup.escape(back) == "<i>x</i>"


def test_anything_with_html_is_stored_as_markup() -> None:
    class Html:
        def __html__(self) -> str:
            return "<p>hi</p>"

    serializer = TaggedJSONSerializer()
    assert serializer.loads(serializer.dumps({"h": Html()})) == {"h": Markup("<p>hi</p>")}


def test_output_is_compact() -> None:
    assert TaggedJSONSerializer().dumps({"a": [1, 2], "b": (3,)}) == '{"a":[1,2],"b":{" t":[3]}}'


class Color(IntEnum):
    RED = 1


UNSTORABLE: dict[str, tuple[t.Any, str, str]] = {
    "set": ({"tags": {1, 2}}, "session['tags']", "set"),
    "frozenset": ({"tags": frozenset()}, "session['tags']", "frozenset"),
    "object": ({"user": object()}, "session['user']", "object"),
    "int-enum": ({"color": Color.RED}, "session['color']", "Color"),
    "in-list": ({"cart": [1, 2, {3}]}, "session['cart'][2]", "set"),
    "in-tuple": ({"pair": (1, object())}, "session['pair'][1]", "object"),
    "deep": ({"a": {"b": [{"c": {4}}]}}, "session['a']['b'][0]['c']", "set"),
    "in-tag-like-dict": ({"x": {" t": {1}}}, "session['x'][' t']", "set"),
    "int-key": ({"a": {1: "x"}}, "session['a']", "dict key 1"),
    "top-level-int-key": ({1: "x"}, "session ", "dict key 1"),
    "tuple-key": ({"a": {(1, 2): "x"}}, "session['a']", "dict key (1, 2)"),
    "dict-subclass": ({"a": {"b": OrderedDict(c=1)}}, "session['a']['b']", "OrderedDict"),
}


@pytest.mark.parametrize(("value", "place", "reason"), UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_unstorable_value_is_a_type_error_naming_the_key_path(
    value: t.Any, place: str, reason: str
) -> None:
    with pytest.raises(TypeError) as info:
        TaggedJSONSerializer().dumps(value)
    message = str(info.value)
    assert place in message
    assert reason in message


def test_register_a_custom_tag() -> None:
    class TagComplex(JSONTag):
        key = " c"

        def check(self, value: t.Any) -> bool:
            return isinstance(value, complex)

        def to_json(self, value: t.Any) -> t.Any:
            return [value.real, value.imag]

        def to_python(self, value: t.Any) -> t.Any:
            return complex(*value)

    serializer = TaggedJSONSerializer()
    serializer.register(TagComplex)
    assert serializer.loads(serializer.dumps({"z": 1 + 2j})) == {"z": 1 + 2j}
    with pytest.raises(KeyError):
        serializer.register(TagComplex)
    serializer.register(TagComplex, force=True, index=0)
    assert serializer.order[0].key == " c"
    assert [tag.key for tag in serializer.order].count(" c") == 1
    # another serializer is not affected
    with pytest.raises(TypeError, match="complex"):
        TaggedJSONSerializer().dumps({"z": 1j})


# -- wire compatibility with Flask -------------------------------------------------

WIRE_VALUES = {key: value for key, value in VALUES.items() if key != "empty-dict"}


@pytest.mark.parametrize("value", WIRE_VALUES.values(), ids=WIRE_VALUES.keys())
def test_flask_reads_ours(value: t.Any) -> None:
    session = {"value": value}
    assert FlaskTaggedJSONSerializer().loads(TaggedJSONSerializer().dumps(session)) == session


@pytest.mark.parametrize("value", WIRE_VALUES.values(), ids=WIRE_VALUES.keys())
def test_we_read_flasks(value: t.Any) -> None:
    session = {"value": value}
    assert TaggedJSONSerializer().loads(FlaskTaggedJSONSerializer().dumps(session)) == session


def test_same_bytes_as_flask() -> None:
    session = {"all": list(WIRE_VALUES.values()), "_permanent": True}
    assert TaggedJSONSerializer().dumps(session) == FlaskTaggedJSONSerializer().dumps(session)


# -- per-field values (server-side stores) -------------------------------------------

FIELD_VALUES = ["x", 'é"\\\u2028', "", 0, -5, 10**30, True, False, None, 1.5, float("inf")]


@pytest.mark.parametrize(
    "value", [*FIELD_VALUES, [1, "a"], {"a": (1, 2)}, b"x", UTC_SECOND, Markup("<b>")]
)
def test_a_field_is_what_dumps_writes_and_reads_back(value: t.Any) -> None:
    serializer = TaggedJSONSerializer()
    fields = dump_fields(serializer, {"k": value})
    assert fields == {"k": serializer.dumps(value)}
    assert fields["k"] == FlaskTaggedJSONSerializer().dumps(value)
    assert load_fields(serializer, fields) == {"k": value}


def test_a_plain_value_is_written_as_the_general_encoder_writes_it() -> None:
    for value in FIELD_VALUES:
        assert TaggedJSONSerializer().dumps(value) == json.dumps(value, separators=(",", ":"))


def test_fields_that_parse_only_when_joined_are_each_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fields = {"ok": "1", "x": "[1", "y": "2]", "z": "3,4", "spaced": ' "s" '}
    assert load_fields(TaggedJSONSerializer(), fields) == {"ok": 1, "spaced": "s"}
    assert len([r for r in caplog.records if "dropped" in r.getMessage()]) == 3


def test_an_unstorable_field_names_its_place() -> None:
    with pytest.raises(TypeError, match=r"session\['cart'\]\[1\]"):
        dump_fields(TaggedJSONSerializer(), {"ok": 1, "cart": [1, object()]})


@pytest.mark.parametrize("text", ["", " ", "1 2", "[1,", '"a', "{}x", " [1]"])
def test_loads_refuses_and_accepts_what_json_does(text: str) -> None:
    try:
        expected = json.loads(text)
    except ValueError as exc:
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            TaggedJSONSerializer().loads(text)
    else:
        assert TaggedJSONSerializer().loads(text) == expected


# -- the short ways: the same bytes and values as the plain tagging walk ---------------
# tag() rebuilds only what needs a tag, exact types skip check(), dates have their own
# formatter and parser. Each is compared here with the way it replaces.


def reference_tag(serializer: TaggedJSONSerializer, value: t.Any) -> t.Any:
    """The tagging walk without a short way: every dict and list rebuilt, every
    other value offered to each tag in order (Flask's algorithm, with our refusals)."""
    if type(value) in (str, int, float, bool, type(None)):
        return value
    if type(value) is dict:
        if len(value) == 1 and next(iter(value)) in serializer.tags:
            ((key, item),) = value.items()
            return {" di": {f"{key}__": reference_tag(serializer, item)}}
        if any(type(key) is not str for key in value):
            raise TypeError("key")
        return {key: reference_tag(serializer, item) for key, item in value.items()}
    if type(value) is list:
        return [reference_tag(serializer, item) for item in value]
    for json_tag in serializer.order:
        if json_tag.check(value):
            if json_tag.key == " t":
                return {" t": [reference_tag(serializer, item) for item in value]}
            return {json_tag.key: json_tag.to_json(value)}
    raise TypeError(type(value).__name__)


class Tagged(str):
    """A str subclass with __html__: TagMarkup's, not a plain string."""

    def __html__(self) -> str:
        return f"<i>{self}</i>"


zones = st.one_of(
    st.none(),
    st.just(timezone.utc),
    st.timezones(),
    st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m))),
)
any_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=zones
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.binary(max_size=16),
    st.uuids(),
    any_datetimes,
    st.text(max_size=8).map(Markup),
    st.text(max_size=8).map(Tagged),
)
keys = st.one_of(
    st.text(max_size=6),
    st.sampled_from([" t", " b", " u", " d", " m", " di", " t__", " di__", " x", "_permanent"]),
)
trees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=25,
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(keys, trees, max_size=6))
def test_tag_writes_what_the_plain_walk_writes_and_leaves_the_value_alone(
    session: dict[str, t.Any],
) -> None:
    serializer = TaggedJSONSerializer()
    before = repr(session)
    expected = json.dumps(reference_tag(serializer, session), separators=(",", ":"))
    assert serializer.dumps(session) == expected
    assert repr(session) == before  # nothing rebuilt in place
    assert serializer.dumps(session) == FlaskTaggedJSONSerializer().dumps(session)


def test_a_tag_registered_first_still_sees_exact_types() -> None:
    class EveryDate(JSONTag):
        key = " e"

        def check(self, value: t.Any) -> bool:
            return isinstance(value, datetime)

        def to_json(self, value: t.Any) -> t.Any:
            return value.isoformat()

        def to_python(self, value: t.Any) -> t.Any:
            return datetime.fromisoformat(value)

    serializer = TaggedJSONSerializer()
    serializer.register(EveryDate, index=0)
    text = serializer.dumps({"when": UTC_SECOND, "pair": (1, 2)})
    assert text == '{"when":{" e":"2024-02-29T23:59:58+00:00"},"pair":{" t":[1,2]}}'
    assert serializer.loads(text) == {"when": UTC_SECOND, "pair": (1, 2)}


@settings(max_examples=500, deadline=None)
@given(any_datetimes)
def test_dates_are_written_as_werkzeug_writes_them(value: datetime) -> None:
    try:
        expected = http_date(value)
    except (OverflowError, ValueError) as exc:
        with pytest.raises(type(exc)):
            format_http_date(value)
    else:
        assert format_http_date(value) == expected


def _werkzeug_date(value: datetime) -> str:
    try:
        return http_date(value)
    except (OverflowError, ValueError):
        return "not a date"


http_date_like = st.builds(
    "{}, {} {} {} {}:{}:{} {}".format,
    st.sampled_from(["Mon", "Tue", "Sun", "mon", "Xyz"]),
    st.integers(0, 39).map("{:02d}".format),
    st.sampled_from(["Jan", "Feb", "Jun", "Dec", "Foo", "jan", "JAN"]),
    st.one_of(st.integers(0, 9999).map("{:04d}".format), st.integers(0, 99).map(str)),
    st.integers(0, 29).map("{:02d}".format),
    st.integers(0, 69).map("{:02d}".format),
    st.integers(0, 69).map("{:02d}".format),
    st.sampled_from(["GMT", "UTC", "+0100", "gmt", "GMT "]),
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(http_date_like, any_datetimes.map(_werkzeug_date), st.text()))
def test_dates_are_read_as_werkzeug_reads_them(text: str) -> None:
    expected = parse_date(text)
    found = read_http_date(text)
    assert found == expected
    assert (found is None) == (expected is None)
    if found is not None and expected is not None:
        assert found.tzinfo == expected.tzinfo
        assert found.isoformat() == expected.isoformat()


# -- reading fields: texts without a tag skip the tag hook ------------------------------


@pytest.mark.parametrize("value", VALUES.values(), ids=VALUES.keys())
def test_a_field_reads_as_loads_reads_it(value: t.Any) -> None:
    serializer = TaggedJSONSerializer()
    for text in (serializer.dumps(value), FlaskTaggedJSONSerializer().dumps(value)):
        back = field_loader(serializer)(text)
        assert back == serializer.loads(text) == value
        assert type(back) is type(value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"\\u0020t":[1]}', (1,)),  # a tag key spelled with an escape
        ('[{"\\u0020t":[1]},{"a":{"\\u0020u":"' + "1" * 32 + '"}}]', [(1,), {"a": UUID("1" * 32)}]),
        ('{"a":{ " t":[1]}}', {"a": (1,)}),  # a space before the key
        ('{"\\u00e9":{"x":1}}', {"é": {"x": 1}}),
        ('{"a":"b \\" c"}', {"a": 'b " c'}),
    ],
)
def test_a_field_with_a_tag_in_any_spelling_is_untagged(text: str, value: t.Any) -> None:
    serializer = TaggedJSONSerializer()
    assert serializer.loads(text) == value
    assert field_loader(serializer)(text) == value


def test_a_custom_tag_whose_key_has_no_space_is_still_read() -> None:
    class TagSet(JSONTag):
        key = "set!"

        def check(self, value: t.Any) -> bool:
            return isinstance(value, set)

        def to_json(self, value: t.Any) -> t.Any:
            return sorted(value)

        def to_python(self, value: t.Any) -> t.Any:
            return set(value)

    serializer = TaggedJSONSerializer()
    serializer.register(TagSet)
    text = serializer.dumps({"s": {1, 2}})
    assert text == '{"s":{"set!":[1,2]}}'
    assert field_loader(serializer)(text) == {"s": {1, 2}}


@pytest.mark.parametrize("text", ['{" t":5}', '{" di":1}', '{" u":"zz"}', "[" * 100_000])
def test_a_field_that_decodes_to_an_error_is_dropped_not_raised(
    text: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert field_loader(TaggedJSONSerializer())(text) is UNREADABLE
    assert [r for r in caplog.records if "dropped" in r.getMessage()]
