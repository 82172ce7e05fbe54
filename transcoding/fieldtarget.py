"""A resolved field path of a request message, and setting one text value there.

transcoding/query.py resolves a query key (or a path variable's field path) to a
`FieldTarget` once per key; every request then sets its value through it: text
parsed by the field's parser (transcoding/textforms.py), lists appended, map
entries keyed, messages with a text form filled, a oneof member refused while
another is set. `holds` compares instead of setting, for a query parameter that
lands on a field the JSON body already set.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from .errors import BadRequest
from .textforms import FillMessage, Parse, scalar_parser, string_form_filler

__all__ = ["FieldInfo", "FieldTarget", "error_reason", "field_info", "make_target"]

_T = FieldDescriptor
_TAKES_EMPTY = frozenset({_T.TYPE_STRING, _T.TYPE_BYTES})
_EMPTY_MESSAGES = frozenset({"google.protobuf.StringValue", "google.protobuf.BytesValue", "google.protobuf.Value"})


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """One field as query keys and path variables see it, built once per message type:
    both names, and the parser (or filler) of its text values."""

    descriptor: FieldDescriptor
    name: str
    json_name: str
    repeated: bool  # a list (maps are not)
    is_map: bool
    message_type: Descriptor | None  # the field's (for maps: the value's) message type
    oneof: str | None
    parse: Parse | None  # scalars and enums (for maps: of the value)
    fill: FillMessage | None  # messages with a text form (for maps: of the value)
    takes_empty: bool  # an empty text is a value (strings, bytes), not a blank input
    key_parse: Parse | None = None  # maps: the key
    key_type: int = 0


def field_info(field: FieldDescriptor, case_insensitive_enums: bool, value_json: bool) -> FieldInfo:
    """`field` under the options that change how its text reads (enum case, JSON text)."""
    is_map = bool(field.message_type is not None and field.is_repeated and field.message_type.GetOptions().map_entry)
    oneof = field.containing_oneof.name if field.containing_oneof is not None else None
    value = field.message_type.fields_by_name["value"] if is_map else field
    message_type = value.message_type if value.type in (_T.TYPE_MESSAGE, _T.TYPE_GROUP) else None
    key = field.message_type.fields_by_name["key"] if is_map else None
    return FieldInfo(
        descriptor=field,
        name=field.name,
        json_name=field.json_name,
        repeated=field.is_repeated and not is_map,
        is_map=is_map,
        message_type=message_type,
        oneof=oneof,
        parse=None if message_type is not None else scalar_parser(value, case_insensitive_enums=case_insensitive_enums),
        fill=string_form_filler(message_type, value_json=value_json) if message_type is not None else None,
        takes_empty=value.type in _TAKES_EMPTY or (message_type is not None and message_type.full_name in _EMPTY_MESSAGES),
        key_parse=scalar_parser(key) if key is not None else None,
        key_type=key.type if key is not None else 0,
    )


_NO_KEY: Any = object()


@dataclass(frozen=True, slots=True)
class FieldTarget:
    """A resolved, settable field path: the fields walked and the leaf (and for
    a map entry, ``m[key]``, the parsed key). Everything a request asks of it
    is computed here, once."""

    chain: tuple[FieldInfo, ...]
    path: str  # dotted proto names: what `bound` holds
    prefixes: frozenset[str]  # every proper and full prefix of `path`
    map_key: Any  # _NO_KEY unless a map entry
    key_json: str  # a map entry's key as a JSON object key
    once: Any  # what may be given only once: the path (singular), (path, key) (map entry); None for lists
    takes_empty: bool  # an empty text is a value here (strings, bytes), not a blank input

    @property
    def leaf(self) -> FieldInfo:
        return self.chain[-1]

    @property
    def repeated(self) -> bool:
        return self.chain[-1].repeated

    @property
    def is_entry(self) -> bool:
        return self.map_key is not _NO_KEY

    def assign(self, message: Message, value: str, *, label: str, field: str, check_oneof: bool = True) -> None:
        """Set (or append) one text value here, in `message`. BadRequest on a bad value
        or, with check_oneof, when another member of a oneof on the way is set."""
        node = message
        for info in self.chain[:-1]:
            if check_oneof and info.oneof is not None:
                _check_oneof(node, info, label, field)
            node = getattr(node, info.name)
        leaf = self.chain[-1]
        if check_oneof and leaf.oneof is not None:
            _check_oneof(node, leaf, label, field)
        try:
            if leaf.is_map:
                entries = getattr(node, leaf.name)
                if leaf.parse is not None:
                    entries[self.map_key] = leaf.parse(value)
                else:
                    assert leaf.fill is not None
                    assert leaf.message_type is not None
                    scratch = message_factory.GetMessageClass(leaf.message_type)()  # a bad value leaves no entry
                    leaf.fill(scratch, value)
                    entries[self.map_key].CopyFrom(scratch)
            elif leaf.parse is not None:
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
            raise BadRequest(f"invalid value for {label} {field!r}: {error_reason(exc)}", field=field) from None

    def holds(self, message: Message, value: str, *, field: str) -> bool:
        """Whether `message` already holds what `value` would set here
        (BadRequest when `value` is not valid for the field)."""
        node = message
        for info in self.chain[:-1]:
            node = getattr(node, info.name)
        leaf = self.chain[-1]
        current: Any = getattr(node, leaf.name)
        if leaf.is_map:
            if self.map_key not in current:
                return False
            current = current[self.map_key]
        try:
            if leaf.parse is not None:
                parsed = leaf.parse(value)
                if isinstance(parsed, float):
                    if math.isnan(parsed):
                        return isinstance(current, float) and math.isnan(current)
                    return math.isclose(parsed, current, rel_tol=1e-6 if leaf.descriptor.type == _T.TYPE_FLOAT else 1e-15)
                return bool(parsed == current)
            assert leaf.fill is not None
            scratch = type(current)()
            leaf.fill(scratch, value)
            return bool(scratch == current)
        except (ValueError, TypeError) as exc:
            raise BadRequest(f"invalid value for query parameter {field!r}: {error_reason(exc)}", field=field) from None


def make_target(chain: list[FieldInfo], map_key: Any = _NO_KEY, key_json: str = "") -> FieldTarget:
    names = [f.name for f in chain]
    path = ".".join(names)
    prefixes = frozenset(".".join(names[: i + 1]) for i in range(len(names)))
    leaf = chain[-1]
    if map_key is not _NO_KEY:
        once: Any = (path, map_key)
    else:
        once = None if leaf.repeated else path
    return FieldTarget(tuple(chain), path, prefixes, map_key, key_json, once, leaf.takes_empty)


def _check_oneof(node: Message, info: FieldInfo, label: str, field: str) -> None:
    """BadRequest when another member of `info`'s oneof is already set in `node`."""
    current = node.WhichOneof(info.oneof)
    if current is not None and current != info.name:
        raise BadRequest(
            f"{label} {field!r} sets {info.name!r}, but {current!r} of the same oneof {info.oneof!r} is already set",
            field=field,
        )


def error_reason(exc: BaseException) -> str:
    """A parser's error as the end of a client message."""
    text = str(exc).strip().rstrip(".")
    return text or type(exc).__name__
