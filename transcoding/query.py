"""Query parameters (and path variables) onto fields of a request message.

Semantics follow grpc-gateway's query parser and the HttpRule spec, with
the gateway stricter where silence would lose data:

* a key is a dotted field path; every element may be the proto name or the
  json_name of its field; only singular message fields can be traversed;
* scalars take their plain text form: decimal integers (range checked),
  floats (also ``NaN``/``Infinity``), bools as Go's ``strconv.ParseBool``
  reads them (``true/false/1/0/t/f``...), enums by name or defined number,
  bytes as standard or URL-safe base64, padded or not;
* well-known types with a JSON string form take it (Timestamp RFC 3339,
  Duration ``"1.5s"``, FieldMask ``"a,b.c"`` in camelCase or snake_case,
  wrappers the scalar form of their value, Struct/Value/ListValue JSON text);
* repeated fields take one element per occurrence (``ids=1&ids=2``);
* an empty value is skipped, as grpc-gateway does (blank HTML form inputs);
* form-decoding turns ``+`` into a space: bytes and Timestamp values, which
  can never hold a space, read it back as ``+``.

Errors are ``BadRequest`` naming the parameter: unknown field, bad value,
a singular field given twice, a field already bound by the path or body
("field set twice"), a plain message or a map field (not settable from a
query string), and two members of one oneof.
"""
from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Collection, Iterable

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from .errors import BadRequest

__all__ = ["QueryMapper", "FieldTarget", "PathError", "apply_query", "mapper_for"]

_INT_RE = re.compile(r"[+-]?[0-9]+\Z")
_UINT_RE = re.compile(r"[0-9]+\Z")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_FLOAT_SPECIALS = {
    "nan": math.nan,
    "+nan": math.nan,
    "-nan": math.nan,
    "inf": math.inf,
    "+inf": math.inf,
    "infinity": math.inf,
    "+infinity": math.inf,
    "-inf": -math.inf,
    "-infinity": -math.inf,
}
_FLOAT32_MAX = 3.4028234663852886e38
_BOOLS = {
    "true": True, "True": True, "TRUE": True, "t": True, "T": True, "1": True,
    "false": False, "False": False, "FALSE": False, "f": False, "F": False, "0": False,
}
_PATH_CACHE_LIMIT = 4096

Parse = Callable[[str], Any]
FillMessage = Callable[[Message, str], None]


class PathError(ValueError):
    """A field path that does not name a settable field of the message;
    `unknown` when some element names no field at all."""

    def __init__(self, message: str, *, unknown: bool = False) -> None:
        super().__init__(message)
        self.unknown = unknown


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
        return _BOOLS[text]
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


def _enum_parser(enum: EnumDescriptor) -> Parse:
    names = {value.name: value.number for value in enum.values}
    numbers = frozenset(names.values())
    full_name = enum.full_name

    def parse(text: str) -> int:
        number = names.get(text)
        if number is not None:
            return number
        if _INT_RE.match(text) and len(text) < 12 and int(text) in numbers:
            return int(text)
        raise ValueError(f"{text!r} is not a value of enum {full_name}")

    return parse


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


def scalar_parser(field: FieldDescriptor) -> Parse:
    """str -> Python value for a scalar or enum field (ValueError with a reason)."""
    if field.type == _T.TYPE_ENUM:
        return _enum_parser(field.enum_type)
    return _SCALAR_PARSERS[field.type]


# ------------------------------------------------- well-known string forms

def _fill_generic(message: Message, text: str) -> None:
    message.FromJsonString(text)  # json_format's own WKT mixin (Duration)


def _fill_timestamp(message: Message, text: str) -> None:
    message.FromJsonString(text.replace(" ", "+"))


def _fill_field_mask(message: Message, text: str) -> None:
    """json_format reads camelCase paths only; snake_case (proto names) is
    what most clients send in a query string, so accept both, per path."""
    for path in text.split(","):
        if not path:
            continue
        if "_" in path:
            message.paths.append(path)
        else:
            one = type(message)()
            one.FromJsonString(path)
            message.paths.extend(one.paths)


def _fill_json(message: Message, text: str) -> None:
    try:
        json_format.Parse(text, message, descriptor_pool=message.DESCRIPTOR.file.pool)
    except json_format.ParseError as exc:
        raise ValueError(f"expected JSON: {exc}") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


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
    "google.protobuf.Duration": _fill_generic,
    "google.protobuf.FieldMask": _fill_field_mask,
    "google.protobuf.Struct": _fill_json,
    "google.protobuf.Value": _fill_json,
    "google.protobuf.ListValue": _fill_json,
}


def string_form_filler(message_type: Descriptor) -> FillMessage | None:
    """How to fill a message of this type from one text value, if it has a
    JSON string/scalar form (well-known types); None for plain messages."""
    if message_type.full_name in _WRAPPERS:
        return _wrapper_filler(message_type)
    return _STRING_FORMS.get(message_type.full_name)


# ------------------------------------------------------------ field index

@dataclass(frozen=True, slots=True)
class _Field:
    descriptor: FieldDescriptor
    name: str
    repeated: bool
    is_map: bool
    message_type: Descriptor | None
    oneof: str | None
    parse: Parse | None  # scalars and enums
    fill: FillMessage | None  # messages with a string form


def _field_info(field: FieldDescriptor) -> _Field:
    is_map = bool(
        field.message_type is not None and field.is_repeated and field.message_type.GetOptions().map_entry
    )
    oneof = field.containing_oneof.name if field.containing_oneof is not None else None
    message_type = field.message_type if field.type in (_T.TYPE_MESSAGE, _T.TYPE_GROUP) else None
    return _Field(
        descriptor=field,
        name=field.name,
        repeated=field.is_repeated,
        is_map=is_map,
        message_type=message_type,
        oneof=oneof,
        parse=None if message_type is not None else scalar_parser(field),
        fill=string_form_filler(message_type) if message_type is not None and not is_map else None,
    )


@dataclass(frozen=True, slots=True)
class FieldTarget:
    """A resolved, settable field path: the fields walked and the leaf."""

    chain: tuple[_Field, ...]
    path: str  # dotted proto names: what `bound` holds
    prefixes: frozenset[str]  # every proper and full prefix of `path`

    @property
    def leaf(self) -> _Field:
        return self.chain[-1]

    @property
    def repeated(self) -> bool:
        return self.chain[-1].repeated


class QueryMapper:
    """Per-message-type query mapping, built once and reused.

    Each message type gets one dict from both spellings of every field name
    to its precomputed parse/fill routine; each spelled key resolves once and
    is then cached, so a request only does dict lookups and the final set.
    """

    def __init__(self, descriptor: Descriptor) -> None:
        self.descriptor = descriptor
        self._types: dict[str, dict[str, _Field]] = {}
        self._targets: dict[str, FieldTarget] = {}

    # ---- resolution

    def _index(self, descriptor: Descriptor) -> dict[str, _Field]:
        index = self._types.get(descriptor.full_name)
        if index is None:
            index = {}
            for field in descriptor.fields:
                info = _field_info(field)
                index[field.json_name] = info
                index[field.name] = info
            self._types[descriptor.full_name] = index
        return index

    def target(self, key: str) -> FieldTarget:
        """Resolve a dotted path (proto or json names) to a settable field.

        Raises PathError saying why the path cannot be set from text.
        """
        cached = self._targets.get(key)
        if cached is not None:
            return cached
        target = self._resolve(key)
        if len(self._targets) < _PATH_CACHE_LIMIT:
            self._targets[key] = target
        return target

    def _resolve(self, key: str) -> FieldTarget:
        descriptor = self.descriptor
        chain: list[_Field] = []
        parts = key.split(".")
        for position, part in enumerate(parts):
            index = self._index(descriptor)
            info = index.get(part)
            walked = ".".join(f.name for f in chain)
            if info is None:
                bare = part.split("[", 1)[0]
                if "[" in part and bare in index and index[bare].is_map:
                    raise PathError(f"{_join(walked, index[bare].name)!r} is a map field; map fields cannot be set from query parameters")
                raise PathError(f"{descriptor.full_name} has no field {part!r}", unknown=True)
            chain.append(info)
            here = _join(walked, info.name)
            if info.is_map:
                raise PathError(f"{here!r} is a map field; map fields cannot be set from query parameters")
            last = position == len(parts) - 1
            if last:
                if info.message_type is not None and info.fill is None:
                    if info.repeated:
                        raise PathError(f"{here!r} is a repeated message field; its elements cannot be set from query parameters")
                    raise PathError(
                        f"{here!r} is a message field of type {info.message_type.full_name}, which has no text form; "
                        f"set its fields individually (e.g. {key}.<field>)"
                    )
                break
            if info.message_type is None:
                raise PathError(f"{here!r} is not a message field, so {key!r} names nothing")
            if info.repeated:
                raise PathError(f"{here!r} is a repeated message field; its elements cannot be addressed")
            descriptor = info.message_type
        path = ".".join(f.name for f in chain)
        names = path.split(".")
        prefixes = frozenset(".".join(names[: i + 1]) for i in range(len(names)))
        return FieldTarget(tuple(chain), path, prefixes)

    # ---- setting

    def assign(self, message: Message, target: FieldTarget, value: str, *, label: str, field: str, check_oneof: bool = True) -> None:
        """Set (or append) one text value at `target`. BadRequest on a bad value
        or, with check_oneof, when another member of a oneof on the way is set."""
        node = message
        for info in target.chain[:-1]:
            if check_oneof and info.oneof is not None:
                _check_oneof(node, info, label, field)
            node = getattr(node, info.name)
        leaf = target.chain[-1]
        if check_oneof and leaf.oneof is not None:
            _check_oneof(node, leaf, label, field)
        try:
            if leaf.parse is not None:
                parsed = leaf.parse(value)
                if leaf.repeated:
                    getattr(node, leaf.name).append(parsed)
                else:
                    setattr(node, leaf.name, parsed)
            else:
                assert leaf.fill is not None
                if leaf.repeated:
                    leaf.fill(getattr(node, leaf.name).add(), value)
                else:
                    sub = getattr(node, leaf.name)
                    leaf.fill(sub, value)
                    sub.SetInParent()  # an epoch Timestamp or a zero wrapper is still "set"
        except (ValueError, TypeError) as exc:
            raise BadRequest(f"invalid value for {label} {field!r}: {_reason(exc)}", field=field) from None

    def apply(self, message: Message, params: Iterable[tuple[str, str]], bound: Collection[str] = ()) -> None:
        """Set fields of `message` from decoded query parameters.

        `bound` holds dotted proto-name paths already set by the path or the
        body; a parameter at, under or above one of them is "set twice".
        """
        seen: dict[str, str] | None = None
        for key, value in params:
            try:
                target = self.target(key)
            except PathError as exc:
                what = "unknown query parameter" if exc.unknown else "query parameter"
                raise BadRequest(f"{what} {key!r}: {exc}", field=key) from None
            if bound and _conflicts(target, bound):
                raise BadRequest(
                    f"field set twice: query parameter {key!r} sets {target.path!r}, "
                    "which the request path or body already sets",
                    field=key,
                )
            if value == "":
                continue
            if not target.chain[-1].repeated:
                if seen is None:
                    seen = {}
                earlier = seen.get(target.path)
                if earlier is not None:
                    again = "more than once" if earlier == key else f"as both {earlier!r} and {key!r}"
                    raise BadRequest(
                        f"query parameter {key!r} given {again}, but {target.path!r} is not a repeated field",
                        field=key,
                    )
                seen[target.path] = key
            self.assign(message, target, value, label="query parameter", field=key)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _conflicts(target: FieldTarget, bound: Collection[str]) -> bool:
    if not target.prefixes.isdisjoint(bound):
        return True
    below = target.path + "."
    return any(b.startswith(below) for b in bound)


def _check_oneof(node: Message, info: _Field, label: str, field: str) -> None:
    current = node.WhichOneof(info.oneof)
    if current is not None and current != info.name:
        raise BadRequest(
            f"{label} {field!r} sets {info.name!r}, but {current!r} of the same oneof {info.oneof!r} is already set",
            field=field,
        )


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".")
    return text or type(exc).__name__


@lru_cache(maxsize=512)
def mapper_for(descriptor: Descriptor) -> QueryMapper:
    """The shared QueryMapper of a message type."""
    return QueryMapper(descriptor)


def apply_query(message: Message, params: list[tuple[str, str]], bound: Collection[str] = ()) -> None:
    """Set fields of `message` from already percent-decoded query parameters."""
    mapper_for(message.DESCRIPTOR).apply(message, params, bound)
