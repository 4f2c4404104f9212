"""Tagged JSON: the session payload format, wire-compatible with Flask's.

JSON carries only strings, numbers, booleans, null, lists and objects. A session
often holds a little more (a tuple, bytes, a UUID, a datetime, Markup), so such
values are written as a one-key object whose key is a *tag*, e.g. ``{" t": [1, 2]}``
for the tuple ``(1, 2)``. The tags and their encodings are the ones Flask 3.x
uses, so a cookie written by either library is read by the other.

Anything else is a :class:`TypeError` that names where in the session the value
sits. JSON would otherwise turn a ``set`` into an error deep inside ``json`` and
an ``IntEnum`` or a dict with integer keys into something else without a word;
a session should give back what was put in, or refuse it.

Server-side stores keep each session key as its own field, so the same format
is used per value: :func:`dump_fields`, and :func:`field_loader` when the key is read.
"""

from __future__ import annotations

import json
import logging
import re
import typing as t
from base64 import b64decode, b64encode
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from json.scanner import make_scanner
from uuid import UUID

from werkzeug.http import parse_date

__all__ = [
    "UNREADABLE",
    "JSONTag",
    "TaggedJSONSerializer",
    "dump_fields",
    "field_loader",
    "load_field",
    "load_fields",
    "session_json_serializer",
]

logger = logging.getLogger("wsgi_sessions")

# What json.dumps(obj, separators=(",", ":")) uses, without building it per call.
_COMPACT_ENCODER = json.JSONEncoder(separators=(",", ":"))
# Exact types that JSON carries unchanged, each with the encoder that writes it
# as the general encoder would (float: the general one, for NaN and infinity).
# Subclasses (``Markup``, enums) are not in here on purpose: they would come
# back as their base type.
_PLAIN_TYPES: dict[type, Callable[[t.Any], str]] = {
    str: json.encoder.encode_basestring_ascii,
    int: int.__repr__,
    bool: lambda value: "true" if value else "false",
    type(None): lambda value: "null",
    float: _COMPACT_ENCODER.encode,
}


class JSONTag:
    """One kind of value that JSON cannot carry, and how to carry it.

    Subclass it, set :attr:`key`, implement the three methods, and
    :meth:`TaggedJSONSerializer.register` it to teach a serializer a new type.
    """

    #: The key of the one-key object that marks a tagged value. Starts with a
    #: space so it cannot collide with an ordinary identifier-like key.
    key: t.ClassVar[str] = ""

    def __init__(self, serializer: TaggedJSONSerializer) -> None:
        self.serializer = serializer

    def check(self, value: t.Any) -> bool:
        """Whether this tag is the one to encode ``value`` with."""
        raise NotImplementedError

    def to_json(self, value: t.Any) -> t.Any:
        """Turn ``value`` into something JSON carries; nested values are tagged too."""
        raise NotImplementedError

    def to_python(self, value: t.Any) -> t.Any:
        """Turn the decoded JSON back into the value; nested values arrive decoded."""
        raise NotImplementedError


class TagDict(JSONTag):
    """A dict whose only key is itself a tag key; the key gets a ``__`` suffix
    so the object is not mistaken for a tagged value when read back."""

    key = " di"

    def check(self, value: t.Any) -> bool:
        return False  # dicts are handled by the serializer's fast path

    def to_json(self, value: t.Any) -> t.Any:
        ((key, item),) = value.items()
        return {f"{key}__": self.serializer.tag(item)}

    def to_python(self, value: t.Any) -> t.Any:
        ((key, item),) = value.items()
        return {key[:-2]: item}


class TagTuple(JSONTag):
    key = " t"

    def check(self, value: t.Any) -> bool:
        return isinstance(value, tuple)

    def to_json(self, value: t.Any) -> t.Any:
        return [self.serializer.tag(item) for item in value]

    def to_python(self, value: t.Any) -> t.Any:
        return tuple(value)


class TagBytes(JSONTag):
    key = " b"

    def check(self, value: t.Any) -> bool:
        return isinstance(value, bytes)

    def to_json(self, value: t.Any) -> t.Any:
        return b64encode(value).decode("ascii")

    def to_python(self, value: t.Any) -> t.Any:
        return b64decode(value)


class TagMarkup(JSONTag):
    """Anything with an ``__html__`` method is stored as its HTML and read back
    as :class:`markupsafe.Markup`, so escaping decisions survive the round trip."""

    key = " m"

    def check(self, value: t.Any) -> bool:
        return callable(getattr(value, "__html__", None))

    def to_json(self, value: t.Any) -> t.Any:
        return str(value.__html__())

    def to_python(self, value: t.Any) -> t.Any:
        from markupsafe import Markup  # optional: only needed when such a value exists

        return Markup(value)  # noqa: S704 - signed data we wrote from Markup


class TagUUID(JSONTag):
    key = " u"

    def check(self, value: t.Any) -> bool:
        return isinstance(value, UUID)

    def to_json(self, value: t.Any) -> t.Any:
        return value.hex

    def to_python(self, value: t.Any) -> t.Any:
        return UUID(value)


class TagDateTime(JSONTag):
    """A datetime as an HTTP date (Flask's format): whole seconds, read back in UTC."""

    key = " d"

    def check(self, value: t.Any) -> bool:
        return isinstance(value, datetime)

    def to_json(self, value: t.Any) -> t.Any:
        return format_http_date(value)

    def to_python(self, value: t.Any) -> t.Any:
        return read_http_date(value)


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBERS = {name: number for number, name in enumerate(_MONTHS, 1)}
# Exactly what format_http_date writes, with a year from 1000 on (werkzeug's
# parser reads a year under 100 as 19xx/20xx: those take its way).
_HTTP_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) ([A-Z][a-z]{2}) ([1-9][0-9]{3}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT",
    re.ASCII,
)


def format_http_date(value: datetime) -> str:
    """``werkzeug.http.http_date(value)``, the same text, in under half its
    time (it goes through ``timetuple`` and ``email.utils``): a naive datetime
    is taken as UTC, an aware one converted to UTC."""
    if value.tzinfo is not None and value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    # %-formatting: half the time of the same f-string with format specs.
    return "%s, %02d %s %04d %02d:%02d:%02d GMT" % (  # noqa: UP031
        _DAYS[value.weekday()],
        value.day,
        _MONTHS[value.month - 1],
        value.year,
        value.hour,
        value.minute,
        value.second,
    )


def read_http_date(value: t.Any) -> datetime | None:
    """``werkzeug.http.parse_date(value)``, the same result: the text that
    :func:`format_http_date` writes is read directly, in a tenth of the time
    of ``email.utils``; anything else goes to werkzeug (None if not a date)."""
    match = _HTTP_DATE.fullmatch(value) if type(value) is str else None
    if match is not None:
        day, month, year, hour, minute, second = match.groups()
        number = _MONTH_NUMBERS.get(month)
        if number is not None:
            try:
                return datetime(
                    int(year),
                    number,
                    int(day),
                    int(hour),
                    int(minute),
                    int(second),
                    tzinfo=timezone.utc,
                )
            except ValueError:
                return None  # 31 Feb, 25:00: email.utils refuses them too
    return parse_date(value)


class TaggedJSONSerializer:
    """Compact JSON with tags for the Python types a session commonly holds.

    It has the ``dumps``/``loads`` pair that itsdangerous expects of a serializer.
    """

    default_tags: t.ClassVar[list[type[JSONTag]]] = [
        TagDict,
        TagTuple,
        TagBytes,
        TagMarkup,
        TagUUID,
        TagDateTime,
    ]

    def __init__(self) -> None:
        self.tags: dict[str, JSONTag] = {}
        self.order: list[JSONTag] = []
        for tag_class in self.default_tags:
            self.register(tag_class)
        # Built once: json.loads/json.dumps with any option build a new decoder
        # or encoder per call, a microsecond on a cookie of a few keys.
        self._decoder = json.JSONDecoder(object_hook=self.untag)
        # The scanner decode() runs after two whitespace regexes, which cost
        # more than parsing a short value.
        self._scan: Callable[[str, int], tuple[t.Any, int]] = make_scanner(
            self._decoder  # type: ignore[arg-type]  # typeshed's signature is wrong
        )

    def register(
        self, tag_class: type[JSONTag], force: bool = False, index: int | None = None
    ) -> None:
        """Add a tag. A key already taken is a :class:`KeyError` unless ``force``;
        ``index`` puts the tag earlier in the order in which tags are tried."""
        tag = tag_class(self)
        if tag.key in self.tags and not force:
            raise KeyError(f"tag {tag.key!r} is already registered")
        previous = self.tags.get(tag.key)
        if previous is not None:
            self.order.remove(previous)
        self.tags[tag.key] = tag
        if index is None:
            self.order.append(tag)
        else:
            self.order.insert(index, tag)
        self._exact = _exact_types(self.order)

    def tag(self, value: t.Any) -> t.Any:
        """Return ``value`` as plain JSON types, tagging what needs a tag.

        Only what needs a tag is rebuilt: a dict or list with nothing inside
        to tag is returned as it is, not copied, and so is each such part of a
        larger value. On realistic sessions (lists of small records) that
        walks them in two thirds of the time of rebuilding everything.
        """
        value_type = type(value)
        if value_type in _PLAIN_TYPES:
            return value
        if value_type is dict:
            if len(value) == 1 and next(iter(value)) in self.tags:
                return {TagDict.key: self.tags[TagDict.key].to_json(value)}
            tag = self.tag
            plain = _PLAIN_TYPES
            tagged = None
            for key, item in value.items():
                if type(key) is not str:
                    raise TypeError(f"dict key {key!r} is not a str")
                if type(item) not in plain:
                    new = tag(item)
                    if new is not item:
                        if tagged is None:
                            tagged = value.copy()
                        tagged[key] = new
            return value if tagged is None else tagged
        if value_type is list:
            tag = self.tag
            plain = _PLAIN_TYPES
            tagged_list = None
            for index, item in enumerate(value):
                if type(item) not in plain:
                    new = tag(item)
                    if new is not item:
                        if tagged_list is None:
                            tagged_list = value.copy()
                        tagged_list[index] = new
            return value if tagged_list is None else tagged_list
        json_tag = self._exact.get(value_type)
        if json_tag is not None:  # a datetime, tuple, bytes or UUID: no check() to ask
            return {json_tag.key: json_tag.to_json(value)}
        for json_tag in self.order:
            if json_tag.check(value):
                return {json_tag.key: json_tag.to_json(value)}
        raise TypeError(f"a {value_type.__name__} cannot be stored in a session")

    def untag(self, obj: dict[str, t.Any]) -> t.Any:
        """Undo :meth:`tag` for one decoded JSON object (its contents already undone)."""
        if len(obj) == 1:
            key = next(iter(obj))
            json_tag = self.tags.get(key)
            if json_tag is not None:
                return json_tag.to_python(obj[key])
        return obj

    def dumps(self, value: t.Any) -> str:
        """Serialize to compact tagged JSON.

        A value that cannot be stored is a :class:`TypeError` naming its place,
        e.g. ``session['cart'][2]``, so the fix is obvious from the message.
        """
        plain = _PLAIN_TYPES.get(type(value))
        if plain is not None:  # most values of a server-side session
            return plain(value)
        try:
            tagged = self.tag(value)
        except TypeError as exc:
            place, reason = _find_unstorable(self, value)
            raise TypeError(
                f"session{place} cannot be stored: {reason}. Sessions hold JSON types "
                "plus tuple, bytes, UUID, datetime and Markup; convert the value first."
            ) from exc
        return _COMPACT_ENCODER.encode(tagged)

    def loads(self, value: str | bytes) -> t.Any:
        """Parse tagged JSON; tags are undone bottom-up as objects are decoded."""
        if type(value) is not str:  # bytes: json.loads detects their encoding
            return json.loads(value, object_hook=self.untag)
        try:
            result, end = self._scan(value, 0)
        except StopIteration:  # whitespace first, or nothing: decode() says which
            return self._decoder.decode(value)
        if end != len(value):  # whitespace or more after the value
            return self._decoder.decode(value)
        return result


#: The exact types that a default tag takes whatever the value: none of them
#: has an ``__html__`` (TagMarkup's check) or is a dict, list or JSON scalar.
_EXACT_TYPES: dict[type[JSONTag], tuple[type, ...]] = {
    TagTuple: (tuple,),
    TagBytes: (bytes,),
    TagUUID: (UUID,),
    TagDateTime: (datetime,),
}
_DEFAULT_TAGS = frozenset({TagDict, TagTuple, TagBytes, TagMarkup, TagUUID, TagDateTime})


def _exact_types(order: list[JSONTag]) -> dict[type, JSONTag]:
    """Which tag an exact type gets, as far as the tags in ``order`` let that be
    known without calling ``check``: up to the first tag not of ours (which
    may claim anything), every type is the first default tag's that takes it."""
    exact: dict[type, JSONTag] = {}
    for json_tag in order:
        if type(json_tag) not in _DEFAULT_TAGS:
            break
        for value_type in _EXACT_TYPES.get(type(json_tag), ()):
            exact.setdefault(value_type, json_tag)
    return exact


def dump_fields(serializer: t.Any, values: Mapping[str, t.Any]) -> dict[str, str]:
    """Each value as its own text (a store field), by ``serializer.dumps``.

    A value that cannot be stored is a :class:`TypeError` naming its place in
    the session (``session['cart'][2]``), as for a whole cookie payload.
    """
    dumps = serializer.dumps
    fields = {}
    for name, value in values.items():
        try:
            fields[name] = dumps(value)
        except TypeError:
            dumps({name: value})  # raises, naming session['name'][...]
            raise
    return fields


#: What :func:`load_field` returns for a stored text that is not a value.
UNREADABLE: t.Any = type("Unreadable", (), {"__repr__": lambda self: "<unreadable>"})()

# What decoding a stored text may raise besides ValueError: a tag around the
# wrong JSON type (tuple(5), 5.items()), JSON nested beyond the stack.
_BAD_TEXT = (ValueError, TypeError, LookupError, AttributeError, RecursionError)


# JSON without the tag hook: objects are built in C, with no Python call each.
_PLAIN_SCAN: Callable[[str, int], tuple[t.Any, int]] = make_scanner(
    json.JSONDecoder()  # type: ignore[arg-type]  # typeshed's signature is wrong
)


def _dropped() -> t.Any:
    logger.warning("session value dropped: it is not valid tagged JSON")
    return UNREADABLE


def field_loader(serializer: t.Any) -> Callable[[str], t.Any]:
    """A function that turns one stored field's text into its value by
    ``serializer.loads``, or into :data:`UNREADABLE` (and a warning) when it
    is not one, so that one bad field never fails a request.

    Each text on its own, never joined to its neighbours: texts that are not
    JSON alone (``"[1"``, ``"2]"``) could then parse as parts of one another.
    Made once per session load: it decides once what the serializer allows.
    """
    loads = serializer.loads
    if type(serializer) is not TaggedJSONSerializer:

        def load(text: str) -> t.Any:
            try:
                return loads(text)
            except _BAD_TEXT:
                return _dropped()

        return load

    tagged_scan = serializer._scan
    # Every tag key starts with a space (all of Flask's do), so a text where
    # no JSON string starts with one, literally ('" ') or escaped ('"\\u'),
    # holds no tag and parses without the hook: twice as fast on realistic
    # values (nested dicts and lists), the hook being a Python call per object.
    spaced = all(key[:1] == " " for key in serializer.tags)

    def load_tagged(text: str) -> t.Any:
        if type(text) is str:
            # The scanners, called here: half the time of loads() per value.
            plain = spaced and '" ' not in text and '"\\u' not in text
            try:
                value, end = (_PLAIN_SCAN if plain else tagged_scan)(text, 0)
                if end == len(text):
                    return value
            except StopIteration:  # whitespace first, or nothing: loads() says which
                pass
            except _BAD_TEXT:
                return _dropped()
        try:  # anything else, or to report what is wrong
            return loads(text)
        except _BAD_TEXT:
            return _dropped()

    return load_tagged


def load_field(serializer: t.Any, text: str) -> t.Any:
    """One stored field's value: see :func:`field_loader`."""
    return field_loader(serializer)(text)


def load_fields(serializer: t.Any, fields: Mapping[str, str]) -> dict[str, t.Any]:
    """Every stored field parsed by :func:`field_loader`; a value that does not
    parse is left out (and logged), so the rest of the session still loads.
    (A server-side session parses each field only when its key is read.)"""
    load = field_loader(serializer)
    values = {}
    for name, text in fields.items():
        value = load(text)
        if value is not UNREADABLE:
            values[name] = value
    return values


def _find_unstorable(serializer: TaggedJSONSerializer, value: t.Any) -> tuple[str, str]:
    """Walk ``value`` to the first part that :meth:`TaggedJSONSerializer.tag`
    refuses; only called after tagging failed, so speed does not matter."""
    try:
        serializer.tag(value)
    except TypeError as exc:
        reason = str(exc)
    else:  # pragma: no cover - only called on failure
        return "", "unknown"
    children: t.Iterable[tuple[t.Any, t.Any]] = ()
    if type(value) is dict:
        if any(type(key) is not str for key in value):
            return "", reason
        children = value.items()
    elif isinstance(value, (list, tuple)):
        children = enumerate(value)
    for key, item in children:
        try:
            serializer.tag(item)
        except TypeError:
            place, reason = _find_unstorable(serializer, item)
            return f"[{key!r}]{place}", reason
    return "", reason


#: The serializer the cookie interface uses by default, shared: it is stateless.
session_json_serializer = TaggedJSONSerializer()
