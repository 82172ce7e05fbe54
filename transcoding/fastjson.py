"""The fast JSON engines: proto messages to and from the plain JSON values that
`json.loads` gives and `orjson.dumps` takes, from per-type plans built once.

Both engines handle only the unambiguous common cases and raise `Fallback` for
anything else; the codecs (transcoding/codec.py) then ask json_format, so every
accepted value gives json_format's message and every error is json_format's.
They exist because json_format's per-value type dispatch costs several times
more on the hot path (see each class). tests/test_codec_fast_json.py holds
their hypothesis tests against json_format.
"""
from __future__ import annotations

import base64
import re
from datetime import date
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

__all__ = ["DictDecoder", "DictEncoder", "Fallback", "json_enum_names", "utc_timestamp"]


# ------------------------------------------------------- fast response JSON

class Fallback(Exception):
    """A value the fast encoder does not handle: json_format takes the whole message."""


_WKT_STRING_FORMS = frozenset({"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"})
_WKT_DELEGATED = frozenset({"google.protobuf.Any", "google.protobuf.Struct", "google.protobuf.Value",
                            "google.protobuf.ListValue"})
_INT64_CPP = frozenset({FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64})


class DictEncoder:
    """Message -> the dict json_format.MessageToDict makes, from a plan built once
    per message type: one converter per field instead of json_format's per-value
    type dispatch (measured ~4x faster on the demo's Book list). Any field or
    value it does not know raises `Fallback`, and `ResponseCodec` then asks
    json_format, so output and errors stay json_format's. Any/Struct/Value/ListValue
    sub-messages are handed to `delegate` whole.

    The print options are plan variants, so none costs a per-value test:
    `enums_as_ints` (use_integers_for_enums), `emit_unpopulated`
    (always_print_fields_with_no_presence: each plan carries the JSON default of
    every field without presence, added where the message left it out) and
    `unset_messages_as_null` (with emit_unpopulated: protojson's EmitUnpopulated,
    which json_format lacks, printing an unset message field outside a oneof as null).
    """

    def __init__(
        self,
        use_proto_names: bool,
        delegate: Any,
        *,
        enums_as_ints: bool = False,
        emit_unpopulated: bool = False,
        unset_messages_as_null: bool = False,
    ) -> None:
        self._use_proto_names = use_proto_names
        self._enums_as_ints = enums_as_ints
        self._emit_unpopulated = emit_unpopulated
        self._null_messages = emit_unpopulated and unset_messages_as_null
        self._delegate = delegate
        self._plans: dict[Descriptor, dict[FieldDescriptor, tuple[str, Any]]] = {}
        self._unpopulated: dict[Descriptor, tuple[tuple[str, int, Any], ...]] = {}
        self._printer = json_format._Printer(
            preserving_proto_field_name=use_proto_names, use_integers_for_enums=enums_as_ints
        )

    def message(self, message: Message) -> Any:
        return self._message_converter(message.DESCRIPTOR)(message)

    def _message_converter(self, descriptor: Descriptor) -> Any:
        """The converter for a message of this type (WKTs have their own JSON forms)."""
        name = descriptor.full_name
        if name == "google.protobuf.Timestamp":
            return timestamp_json
        if name == "google.protobuf.Duration":
            return duration_json
        if name in _WKT_STRING_FORMS:
            return _wkt_string
        if name in _WKT_DELEGATED:
            return self._delegate
        if descriptor.file.name == "google/protobuf/wrappers.proto":
            inner = self._scalar(descriptor.fields_by_name["value"])
            return (lambda m: m.value) if inner is None else (lambda m: inner(m.value))
        return self._regular_unpopulated if self._emit_unpopulated else self._regular

    def _regular(self, message: Message) -> dict[str, Any]:
        descriptor = message.DESCRIPTOR
        plan = self._plans.get(descriptor)
        if plan is None:
            plan = self._plan(descriptor)
        out: dict[str, Any] = {}
        for field, value in message.ListFields():
            entry = plan.get(field)
            if entry is None:  # an extension
                raise Fallback(field.full_name)
            name, convert = entry
            out[name] = value if convert is None else convert(value)
        return out

    def _regular_unpopulated(self, message: Message) -> dict[str, Any]:
        """`_regular`, then every field it left out that json_format would print."""
        out = self._regular(message)
        for name, kind, default in self._unpopulated[message.DESCRIPTOR]:
            if name not in out:  # json_format's order: the set fields, then the rest
                out[name] = default if kind == _VALUE else [] if kind == _LIST else {}
        return out

    def _plan(self, descriptor: Descriptor) -> dict[FieldDescriptor, tuple[str, Any]]:
        """The converters of a message type (and, for emit_unpopulated, its fields' defaults)."""
        plan: dict[FieldDescriptor, tuple[str, Any]] = {}
        unpopulated: list[tuple[str, int, Any]] = []
        for field in descriptor.fields:
            name = field.name if self._use_proto_names else field.json_name
            is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
            if is_map:
                plan[field] = (name, self._map(field.message_type))
            else:
                one = self._single(field)
                if field.is_repeated:
                    plan[field] = (name, list if one is None else (lambda values, one=one: [one(v) for v in values]))
                else:
                    plan[field] = (name, one)
            if not self._emit_unpopulated:
                continue
            if is_map:
                unpopulated.append((name, _DICT, None))
            elif field.is_repeated:
                unpopulated.append((name, _LIST, None))
            elif not field.has_presence:
                unpopulated.append((name, _VALUE, self._printer._FieldToJsonObject(field, field.default_value)))
            elif self._null_messages and field.message_type is not None and field.containing_oneof is None:
                unpopulated.append((name, _VALUE, None))
        self._unpopulated[descriptor] = tuple(unpopulated)
        self._plans[descriptor] = plan
        return plan

    def _single(self, field: FieldDescriptor) -> Any:
        """Converter of one value of `field` (None: the value is its own JSON)."""
        if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            return self._message_converter(field.message_type)
        return self._scalar(field)

    def _scalar(self, field: FieldDescriptor) -> Any:
        cpp = field.cpp_type
        if cpp == FieldDescriptor.CPPTYPE_ENUM:
            if self._enums_as_ints:
                return None
            names = {v.number: self._printer._FieldToJsonObject(field, v.number) for v in field.enum_type.values}
            closed = field.enum_type.is_closed

            def enum(number: int) -> Any:
                try:
                    return names[number]
                except KeyError:  # an open enum prints an unknown number as it is; a closed one is an error
                    if closed:
                        raise Fallback(field.full_name) from None
                    return number

            return enum
        if field.type == FieldDescriptor.TYPE_BYTES:
            return lambda b: base64.b64encode(b).decode("utf-8")
        if cpp in _INT64_CPP:
            return str
        if cpp in (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE):
            printer = self._printer
            return lambda v: printer._FieldToJsonObject(field, v)
        return None  # string, bool, 32-bit integers

    def _map(self, entry: Descriptor) -> Any:
        key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
        convert = self._single(value_field)
        bool_keys = key_field.cpp_type == FieldDescriptor.CPPTYPE_BOOL

        def map_value(mapping: Any) -> dict[str, Any]:
            out = {}
            for key in mapping:
                text = ("true" if key else "false") if bool_keys else str(key)
                value = mapping[key]
                out[text] = value if convert is None else convert(value)
            return out

        return map_value


_VALUE, _LIST, _DICT = 0, 1, 2  # how an unpopulated field prints: its default, [] or {}


def _wkt_string(message: Message) -> str:
    return message.ToJsonString()


_TIMESTAMP_MIN, _TIMESTAMP_MAX = -62135596800, 253402300799  # 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z
_DURATION_MAX = 315576000000  # 10,000 years, as json_format bounds it
_TWO_DIGITS = [f"{i:02d}" for i in range(60)]  # "%02d" costs ~0.25 us a field, an f-string spec more
_DATES: dict[int, str] = {}  # days since the epoch -> "YYYY-MM-DDT", the first _MAX_DATES seen
_MAX_DATES = 4096


def timestamp_json(message: Message) -> str:
    """Timestamp.ToJsonString() without its datetime and timedelta objects: a list reply of
    a few thousand items spent ~40% of its encoding in the two WKT printers. Anything out
    of range raises Fallback, and json_format reports it. tests/test_codec_fast_json.py
    checks it against ToJsonString over the whole range."""
    seconds, nanos = message.seconds, message.nanos
    if not (_TIMESTAMP_MIN <= seconds <= _TIMESTAMP_MAX and 0 <= nanos < 1_000_000_000):
        raise Fallback("google.protobuf.Timestamp")
    days, rest = divmod(seconds, 86400)
    day = _DATES.get(days)
    if day is None:
        day = date.fromordinal(days + _EPOCH_ORDINAL).isoformat() + "T"
        if len(_DATES) < _MAX_DATES:
            _DATES[days] = day
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    digits = _TWO_DIGITS
    text = day + digits[hour] + ":" + digits[minute] + ":" + digits[second]
    if nanos == 0:
        return text + "Z"
    if nanos % 1_000_000 == 0:
        return "%s.%03dZ" % (text, nanos // 1_000_000)
    if nanos % 1000 == 0:
        return "%s.%06dZ" % (text, nanos // 1000)
    return "%s.%09dZ" % (text, nanos)


def duration_json(message: Message) -> str:
    """Duration.ToJsonString() for whole seconds, the common case; anything else is its own."""
    seconds, nanos = message.seconds, message.nanos
    if nanos == 0 and -_DURATION_MAX <= seconds <= _DURATION_MAX:
        return f"{seconds}s"
    return message.ToJsonString()


# -------------------------------------------------------- fast request JSON

_INT_TEXT = re.compile(r"-?[0-9]{1,20}\Z")
_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_FAST_DEPTH = 32
_UTC_TIMESTAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?Z\Z")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def utc_timestamp(text: str) -> tuple[int, int] | None:
    """(seconds, nanos) of the common RFC 3339 form ("2024-05-01T12:00:00.5Z"); None for
    anything else (offsets, odd digit counts, invalid dates), which json_format then
    parses or rejects with its own message. Timestamp.FromJsonString costs ~6 µs (strptime)."""
    m = _UTC_TIMESTAMP.match(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction = m.groups()
    h, mi, sec = int(hour), int(minute), int(second)
    if h > 23 or mi > 59 or sec > 59:
        return None
    try:
        days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None
    return days * 86400 + h * 3600 + mi * 60 + sec, int(fraction.ljust(9, "0")) if fraction else 0


class DictDecoder:
    """JSON value (from json.loads) -> message, for the plain cases only.

    A per-type plan maps both spellings of each field name to a setter that
    accepts just the unambiguous JSON forms: strings for string fields, booleans,
    in-range integers (int64 also as decimal strings), finite numbers for
    doubles, enum names, objects for messages, Timestamp/Duration/FieldMask
    strings, arrays of those. Anything else (null, a field set twice, a second
    member of a oneof, maps, bytes, floats, wrappers, Struct, Any, deep nesting)
    raises `Fallback` and json_format parses the whole body, so every accepted
    body gives json_format's message and every error is still json_format's.
    282-byte CreateBook body: 41 us -> ~10 us.

    Where the route ignores them (`ignore_unknown_fields`, `ignore_unknown_enum_names`,
    json_format's ignore_unknown_fields), an unknown key is skipped and an unknown
    enum name leaves the field unset or the list without it, here, so a newer
    client's extra field costs nothing; otherwise they fall back too (json_format,
    or the codec's checks, name them).
    """

    def __init__(self, *, ignore_unknown_fields: bool = False, ignore_unknown_enum_names: bool = False) -> None:
        self._plans: dict[Descriptor, dict[str, tuple[FieldDescriptor, Any]]] = {}
        self._skip_unknown = ignore_unknown_fields
        self._skip_enum_names = ignore_unknown_enum_names

    def fill(self, message: Message, value: dict, depth: int) -> None:
        if depth > _FAST_DEPTH:
            raise Fallback("deep")
        descriptor = message.DESCRIPTOR
        plan = self._plans.get(descriptor)
        if plan is None:
            plan = self._plans[descriptor] = self._plan(descriptor)
        seen: set[Any] = set()
        for key, item in value.items():
            entry = plan.get(key)
            if entry is None:
                # json_format skips an unknown name too, but not "[...]": an extension's
                if self._skip_unknown and key[:1] != "[":
                    continue
                raise Fallback(key)
            if item is None:
                raise Fallback(key)
            field, setter = entry
            group = field.containing_oneof or field
            if group in seen:  # the same field twice (both spellings) or two members of a oneof
                raise Fallback(key)
            seen.add(group)
            setter(message, item, depth)

    def _plan(self, descriptor: Descriptor) -> dict[str, tuple[FieldDescriptor, Any]]:
        plan: dict[str, tuple[FieldDescriptor, Any]] = {}
        for field in descriptor.fields:
            setter = self._setter(field)
            plan[field.name] = plan[field.json_name] = (field, setter)
        return plan

    def _setter(self, field: FieldDescriptor) -> Any:
        name = field.name
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            return _refuse
        one = self._one(field)
        if one is None:
            return _refuse
        skips = field.cpp_type == FieldDescriptor.CPPTYPE_ENUM and self._skip_enum_names
        if field.is_repeated:
            if skips:
                def repeated_enum(message: Message, items: Any, depth: int) -> None:
                    if type(items) is not list:
                        raise Fallback(name)
                    numbers = [one(item) for item in items]
                    getattr(message, name).extend([n for n in numbers if n is not _SKIP])

                return repeated_enum
            if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                fill_new = one

                def repeated_messages(message: Message, items: Any, depth: int) -> None:
                    if type(items) is not list:
                        raise Fallback(name)
                    container = getattr(message, name)
                    for item in items:
                        fill_new(container.add(), item, depth)

                return repeated_messages

            def repeated(message: Message, items: Any, depth: int) -> None:
                if type(items) is not list:
                    raise Fallback(name)
                getattr(message, name).extend([one(item) for item in items])

            return repeated
        if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            fill_sub = one

            def singular_message(message: Message, item: Any, depth: int) -> None:
                sub = getattr(message, name)
                fill_sub(sub, item, depth)
                sub.SetInParent()

            return singular_message

        if skips:
            def singular_enum(message: Message, item: Any, depth: int) -> None:
                number = one(item)
                if number is not _SKIP:
                    setattr(message, name, number)

            return singular_enum

        def scalar(message: Message, item: Any, depth: int) -> None:
            setattr(message, name, one(item))

        return scalar

    def _one(self, field: FieldDescriptor) -> Any:
        """Converter of one JSON value (for messages: filler of one message); None: always fall back."""
        if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            return self._message_filler(field.message_type.full_name)
        return self._scalar_converter(field)

    def _message_filler(self, full_name: str) -> Any:
        """`(sub, item, depth)` filling one message of this type from a JSON value; None for the
        well-known types json_format alone reads (wrappers, Struct, Value, ListValue, Any...)."""
        if full_name == "google.protobuf.Timestamp":
            def timestamp(sub: Message, item: Any, depth: int) -> None:
                if type(item) is not str:
                    raise Fallback(full_name)
                parsed = utc_timestamp(item)
                if parsed is not None:
                    sub.seconds, sub.nanos = parsed
                    return
                try:
                    sub.FromJsonString(item)
                except Exception:
                    raise Fallback(full_name) from None

            return timestamp
        if full_name in _WKT_STRING_FORMS:
            def wkt(sub: Message, item: Any, depth: int) -> None:
                if type(item) is not str:
                    raise Fallback(full_name)
                try:
                    sub.FromJsonString(item)
                except Exception:
                    raise Fallback(full_name) from None

            return wkt
        if full_name.startswith("google.protobuf."):
            return None  # wrappers, Struct, Value, ListValue, Any, Empty...

        def regular(sub: Message, item: Any, depth: int) -> None:
            if type(item) is not dict:
                raise Fallback(full_name)
            self.fill(sub, item, depth + 1)

        return regular

    def _scalar_converter(self, field: FieldDescriptor) -> Any:
        """`(item) -> value` taking only the unambiguous JSON forms of a scalar or enum field;
        None where json_format alone decides (bytes, float32, NullValue)."""
        cpp = field.cpp_type
        if cpp == FieldDescriptor.CPPTYPE_STRING:
            if field.type == FieldDescriptor.TYPE_BYTES:
                return None

            def string(item: Any) -> str:
                if type(item) is not str:
                    raise Fallback(field.name)
                return item

            return string
        if cpp == FieldDescriptor.CPPTYPE_BOOL:
            def boolean(item: Any) -> bool:
                if type(item) is not bool:
                    raise Fallback(field.name)
                return item

            return boolean
        if cpp in _INT_RANGES:
            low, high = _INT_RANGES[cpp]
            text_ok = cpp in _INT64_CPP

            def integer(item: Any) -> int:
                if type(item) is not int:
                    if not (text_ok and type(item) is str and _INT_TEXT.match(item)):
                        raise Fallback(field.name)
                    item = int(item)
                if not low <= item <= high:
                    raise Fallback(field.name)
                return item

            return integer
        if cpp == FieldDescriptor.CPPTYPE_DOUBLE:
            def double(item: Any) -> float:
                if type(item) is float:
                    if item != item or item in (float("inf"), float("-inf")):
                        raise Fallback(field.name)
                    return item
                if type(item) is int and -(2**53) <= item <= 2**53:
                    return float(item)
                raise Fallback(field.name)

            return double
        if cpp == FieldDescriptor.CPPTYPE_ENUM:
            if field.enum_type.full_name == "google.protobuf.NullValue":
                return None
            numbers = json_enum_names(field)
            skip = self._skip_enum_names

            def enum(item: Any) -> Any:
                number = numbers.get(item) if type(item) is str else None
                if number is None:
                    if skip and type(item) is str and not _is_int_text(item):
                        return _SKIP  # an unknown name: json_format drops it too
                    raise Fallback(field.name)  # numbers, numeric strings: json_format decides
                return number

            return enum
        return None  # float32: json_format's range checks and rounding


def _refuse(message: Message, item: Any, depth: int) -> None:
    raise Fallback("unsupported field")


_SKIP = object()  # an unknown enum name the route ignores


def _is_int_text(text: str) -> bool:
    """Whether json_format reads this enum string as a number (it tries int())."""
    try:
        int(text)
    except ValueError:
        return False
    return True


def json_enum_names(field: FieldDescriptor) -> dict[str, int]:
    """Every name json_format reads as a value of the field's enum: the value
    names and any custom JSON names (`pb.enumvalue.json`), as its printer spells them."""
    printer = json_format._Printer()
    names = {v.name: v.number for v in field.enum_type.values}
    for v in field.enum_type.values:
        printed = printer._FieldToJsonObject(field, v.number)
        if type(printed) is str:
            names.setdefault(printed, v.number)
    return names

