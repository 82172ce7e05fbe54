"""Field values from text: the forms a query parameter or path variable may
take for each field type, the union of what the two anchors read.

* integers: decimal, range checked (a sign only on signed types);
* floats: decimal with optional exponent, ``NaN``, ``Infinity``/``inf`` in any
  case (Go's ParseFloat; Envoy takes ``NaN``/``Infinity``);
* bools: ``true/false/t/f/1/0`` (Go's ParseBool, grpc-gateway) and
  ``yes/no/y/n`` (protobuf's safe_strtob, Envoy), any case;
* enums: transcoding/enums.py;
* bytes: standard or URL-safe base64, padded or not (grpc-gateway takes both
  alphabets padded, Envoy both either way);
* Timestamp: RFC 3339; Duration: the JSON form (``1.5s``) or Go's
  (``1h30m``, ``-1.5s``, ``300ms``; grpc-gateway reads only Go's, Envoy only
  the JSON form, and every JSON form is also a Go form but for range);
* FieldMask: ``a,b.c``, lowerCamel or snake_case paths (both become snake_case,
  as Envoy converts them and the proto3 JSON form says), and Envoy's compact
  ``a(b,c)``;
* wrappers: their value's form;
* Struct/ListValue: JSON text (grpc-gateway); Value: JSON text, and text that
  is not JSON a string, or (``value_json=False``) always a string, as Envoy
  renders a binding into a Value.

Every parser raises ValueError with a reason; callers turn that into a 400
naming the parameter or path variable.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any, Callable

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from .enums import enum_parser

__all__ = ["JSON_TEXT_TYPES", "FillMessage", "Parse", "field_mask_paths", "go_duration_nanos", "scalar_parser", "string_form_filler"]

Parse = Callable[[str], Any]
FillMessage = Callable[[Message, str], None]

_INT_RE = re.compile(r"[+-]?[0-9]+\Z")
_UINT_RE = re.compile(r"[0-9]+\Z")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_FLOAT_SPECIALS = {
    "nan": math.nan, "+nan": math.nan, "-nan": math.nan,
    "inf": math.inf, "+inf": math.inf, "infinity": math.inf, "+infinity": math.inf,
    "-inf": -math.inf, "-infinity": -math.inf,
}
_FLOAT32_MAX = 3.4028234663852886e38
# Go's strconv.ParseBool (grpc-gateway) and protobuf's safe_strtob (Envoy), any case.
_BOOLS = {
    "true": True, "t": True, "1": True, "yes": True, "y": True,
    "false": False, "f": False, "0": False, "no": False, "n": False,
}


# ---------------------------------------------------------------- scalars

def _int_parser(lo: int, hi: int, pattern: re.Pattern[str], label: str) -> Parse:
    def parse(text: str) -> int:
        if len(text) > 40 or not pattern.match(text):
            raise ValueError(f"{text!r} is not a valid {label}")
        number = int(text)
        if not lo <= number <= hi:
            raise ValueError(f"{text} is out of range for {label}")
        return number

    return parse


def _float_parser(single: bool) -> Parse:
    label = "float" if single else "double"

    def parse(text: str) -> float:
        special = _FLOAT_SPECIALS.get(text.lower())
        if special is not None:
            return special
        if not _FLOAT_RE.match(text):
            raise ValueError(f"{text!r} is not a valid {label}")
        number = float(text)
        if math.isinf(number) or (single and abs(number) > _FLOAT32_MAX):
            raise ValueError(f"{text} is out of range for {label}")
        return number

    return parse


def _parse_bool(text: str) -> bool:
    try:
        return _BOOLS[text.lower()]
    except KeyError:
        raise ValueError(f"{text!r} is not a valid bool (use true or false)") from None


def _parse_string(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid UTF-8") from None
    return text


def _parse_bytes(text: str) -> bytes:
    text = text.replace(" ", "+")
    core = text.rstrip("=")
    if len(text) - len(core) > 2 or len(core) % 4 == 1:
        raise ValueError("not valid base64")
    altchars = b"-_" if ("-" in core or "_" in core) else None
    try:
        return base64.b64decode(core + "=" * (-len(core) % 4), altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64 (standard or URL-safe)") from None


_T = FieldDescriptor
_SCALAR_PARSERS: dict[int, Parse] = {
    _T.TYPE_INT32: _int_parser(-(2**31), 2**31 - 1, _INT_RE, "int32"),
    _T.TYPE_SINT32: _int_parser(-(2**31), 2**31 - 1, _INT_RE, "int32"),
    _T.TYPE_SFIXED32: _int_parser(-(2**31), 2**31 - 1, _INT_RE, "int32"),
    _T.TYPE_INT64: _int_parser(-(2**63), 2**63 - 1, _INT_RE, "int64"),
    _T.TYPE_SINT64: _int_parser(-(2**63), 2**63 - 1, _INT_RE, "int64"),
    _T.TYPE_SFIXED64: _int_parser(-(2**63), 2**63 - 1, _INT_RE, "int64"),
    _T.TYPE_UINT32: _int_parser(0, 2**32 - 1, _UINT_RE, "uint32"),
    _T.TYPE_FIXED32: _int_parser(0, 2**32 - 1, _UINT_RE, "uint32"),
    _T.TYPE_UINT64: _int_parser(0, 2**64 - 1, _UINT_RE, "uint64"),
    _T.TYPE_FIXED64: _int_parser(0, 2**64 - 1, _UINT_RE, "uint64"),
    _T.TYPE_FLOAT: _float_parser(single=True),
    _T.TYPE_DOUBLE: _float_parser(single=False),
    _T.TYPE_BOOL: _parse_bool,
    _T.TYPE_STRING: _parse_string,
    _T.TYPE_BYTES: _parse_bytes,
}


def scalar_parser(field: FieldDescriptor, *, case_insensitive_enums: bool = False) -> Parse:
    """str -> Python value for a scalar or enum field (ValueError with a reason)."""
    if field.type == _T.TYPE_ENUM:
        return enum_parser(field.enum_type, case_insensitive=case_insensitive_enums)
    return _SCALAR_PARSERS[field.type]


# ------------------------------------------------- well-known text forms

_GO_UNITS = {
    "ns": 1, "us": 10**3, "\u00b5s": 10**3, "\u03bcs": 10**3, "ms": 10**6,
    "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9,
}
_GO_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_GO_MAX = 2**63  # Go's time.Duration: int64 nanoseconds


def go_duration_nanos(text: str) -> int:
    """Nanoseconds of a Go duration (``1h30m``, ``-1.5s``, ``300ms``, ``0``), as
    Go's time.ParseDuration reads it (what grpc-gateway accepts); ValueError else."""
    rest = text
    sign = 1
    if rest[:1] in ("+", "-"):
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest or len(rest) > 100:
        raise ValueError(f"{text!r} is not a duration")
    total = 0
    position = 0
    while position < len(rest):
        match = _GO_PART.match(rest, position)
        if match is None or (not match.group(1) and not match.group(2)):
            raise ValueError(f"{text!r} is not a duration")
        whole, fraction, unit = match.groups()
        scale = _GO_UNITS[unit]
        total += int(whole or "0") * scale
        if fraction:
            total += int(fraction) * scale // 10 ** len(fraction)
        if total > _GO_MAX:
            raise ValueError(f"{text!r} is out of range for a duration")
        position = match.end()
    if sign > 0 and total == _GO_MAX:
        raise ValueError(f"{text!r} is out of range for a duration")
    return sign * total


def _fill_duration(message: Message, text: str) -> None:
    """The JSON form ("1.5s") first, else Go's (grpc-gateway's time.ParseDuration)."""
    try:
        message.FromJsonString(text)
        return
    except ValueError:
        pass
    try:
        nanos = go_duration_nanos(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration (e.g. \"1.5s\" or \"1h30m\")") from None
    seconds, remainder = divmod(abs(nanos), 10**9)
    sign = -1 if nanos < 0 else 1
    message.seconds, message.nanos = sign * seconds, sign * remainder


def _fill_timestamp(message: Message, text: str) -> None:
    message.FromJsonString(text.replace(" ", "+"))


def _snake_case(segment: str) -> str:
    if segment.islower() or not any("A" <= c <= "Z" for c in segment):
        return segment
    return "".join(f"_{c.lower()}" if "A" <= c <= "Z" else c for c in segment)


def field_mask_paths(text: str) -> list[str]:
    """``a,b.c`` and Envoy's compact ``a(b,c.d)`` (= a.b, a.c.d) to paths, each
    lowerCamel segment in snake_case (the proto3 JSON form; Envoy converts too)."""
    paths: list[str] = []
    prefixes: list[str] = []
    start = 0
    for position, char in enumerate(text):
        if char not in ",()":
            continue
        segment = text[start:position].strip()
        prefix = prefixes[-1] if prefixes else ""
        if char == "(":
            if not segment:
                raise ValueError(f"{text!r}: '(' must follow a field name")
            prefixes.append(f"{prefix}.{segment}" if prefix else segment)
        elif segment:
            paths.append(f"{prefix}.{segment}" if prefix else segment)
        if char == ")":
            if not prefixes:
                raise ValueError(f"{text!r}: unbalanced ')'")
            prefixes.pop()
        start = position + 1
    if prefixes:
        raise ValueError(f"{text!r}: unbalanced '('")
    tail = text[start:].strip()
    if tail:
        paths.append(tail)
    return [".".join(_snake_case(part) for part in path.split(".")) for path in paths]


def _fill_field_mask(message: Message, text: str) -> None:
    message.paths.extend(field_mask_paths(text))


class _JsonSyntax(ValueError):
    """Text that is not JSON at all (as opposed to JSON of the wrong shape)."""


def _no_constant(name: str) -> Any:
    raise _JsonSyntax(name)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key in JSON object")
    return result


def _load_json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise _JsonSyntax(str(exc)) from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _json_filler(*, string_fallback: bool) -> FillMessage:
    """Struct/ListValue/Value from JSON text; with `string_fallback`, text that is not
    JSON at all makes a Value's string_value (so `tag=blue` works like `tag="blue"`)."""

    def fill(message: Message, text: str) -> None:
        try:
            data = _load_json(text)
        except _JsonSyntax as exc:
            if string_fallback:
                message.string_value = text
                return
            raise ValueError(f"expected JSON: {exc}") from None
        try:
            json_format.ParseDict(data, message, descriptor_pool=message.DESCRIPTOR.file.pool)
        except json_format.ParseError as exc:
            raise ValueError(f"expected JSON: {exc}") from None
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None

    return fill


def _value_as_string(message: Message, text: str) -> None:
    message.string_value = text


def _wrapper_filler(wrapper: Descriptor) -> FillMessage:
    parse = scalar_parser(wrapper.fields_by_name["value"])

    def fill(message: Message, text: str) -> None:
        message.value = parse(text)

    return fill


_WRAPPERS = frozenset(
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)
_STRING_FORMS: dict[str, FillMessage] = {
    "google.protobuf.Timestamp": _fill_timestamp,
    "google.protobuf.Duration": _fill_duration,
    "google.protobuf.FieldMask": _fill_field_mask,
    "google.protobuf.Struct": _json_filler(string_fallback=False),
    "google.protobuf.ListValue": _json_filler(string_fallback=False),
}
JSON_TEXT_TYPES = frozenset({"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"})
_VALUE_FROM_JSON = _json_filler(string_fallback=True)


def string_form_filler(message_type: Descriptor, *, value_json: bool = True) -> FillMessage | None:
    """How to fill a message of this type from one text value, if it has a text
    form (well-known types); None for plain messages."""
    name = message_type.full_name
    if name in _WRAPPERS:
        return _wrapper_filler(message_type)
    if name == "google.protobuf.Value":
        return _VALUE_FROM_JSON if value_json else _value_as_string
    return _STRING_FORMS.get(name)
