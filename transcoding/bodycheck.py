"""Request-body rules json_format does not keep, applied before it parses.

The codecs fall back to json_format for every body the fast decoder does not
take (transcoding/fastjson.py). Two of its behaviours are not what edge promises:

* **The same field twice.** ``{"pageCount": 1, "page_count": 2}`` names one
  field under both of its spellings; json_format keeps the later value, and so
  does Envoy (whose JSON parser merges a message given twice and appends a list
  given twice). An integer-keyed map may likewise hold one key under two
  spellings (``"1"`` and ``"01"``). A body that says two things about one field
  is read differently by whatever looks at it first (a proxy, a WAF, an audit
  log) and by the backend, so it is a 400 naming the field, at every nesting
  level: in messages, in repeated messages, in maps' message values and in the
  message packed in an ``Any``. grpc-gateway (Go protojson) refuses both too;
  duplicate JSON keys are already refused by the parser (codec.load_json).
* **Unknown enum names** follow json_format's ``ignore_unknown_fields``, while
  the anchors decide them apart from unknown fields: Envoy refuses an unknown
  name even though it ignores unknown fields, grpc-gateway drops it. Where the
  route's `unknown_body_enum_names` differs from its `unknown_body_fields`, the
  walk refuses unknown names (a 400 naming the field) or drops them from the
  JSON value (the field unset, the list or map without that entry, as
  json_format's ignore_unknown_fields does) before json_format sees it.

`BodyCheck` walks the JSON value against the message descriptor once per
fallback (never on the fast path, which refuses both cases to this path). It
only looks at what it can name: an unknown key, a value of the wrong shape or a
type URL it cannot resolve is left to json_format, which reports it its way.
"""
from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.descriptor_pool import DescriptorPool

from .errors import BadRequest
from .fastjson import json_enum_names

__all__ = ["BodyCheck", "DROP", "REJECT"]

REJECT = "reject"
DROP = "drop"
_MAX_DEPTH = 100  # json_format refuses deeper messages itself
_INT_KEYS = frozenset({
    FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
    FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64,
})
_ANY = "google.protobuf.Any"


class BodyCheck:
    """The walk for one route: `enum_names` is None (json_format decides), REJECT or DROP."""

    def __init__(self, pool: DescriptorPool, enum_names: str | None = None) -> None:
        self._pool = pool
        self._enum_names = enum_names
        self._plans: dict[Descriptor, dict[str, FieldDescriptor]] = {}
        self._enums: dict[FieldDescriptor, dict[str, int]] = {}

    def check(self, value: Any, descriptor: Descriptor, path: str = "") -> None:
        """Refuse (BadRequest) or drop, in place, what the rules above say; `path`
        is where `value` sits in the request body (for messages)."""
        self._message(value, descriptor, path, 0)

    # ---------------------------------------------------------------- walk

    def _message(self, value: Any, descriptor: Descriptor, path: str, depth: int) -> None:
        if type(value) is not dict or depth > _MAX_DEPTH:
            return
        full_name = descriptor.full_name
        if full_name == _ANY:
            self._any(value, path, depth)
            return
        if full_name.startswith("google.protobuf."):
            return  # wrappers, Timestamp, Struct...: no field names of their own to repeat
        plan = self._plans.get(descriptor)
        if plan is None:
            plan = self._plans[descriptor] = {n: f for f in descriptor.fields for n in (f.name, f.json_name)}
        seen: dict[FieldDescriptor, str] = {}
        for key, item in list(value.items()):
            field = plan.get(key)
            if field is None:
                continue  # unknown: json_format ignores or names it, as the route says
            where = f"{path}.{key}" if path else key
            first = seen.get(field)
            if first is not None:
                raise BadRequest(
                    f"request body sets field {where!r} twice, as {first!r} and as {key!r}", field=where
                )
            seen[field] = key
            if item is not None:
                self._field(value, key, item, field, where, depth)

    def _field(self, parent: dict, key: str, item: Any, field: FieldDescriptor, where: str, depth: int) -> None:
        message_type = field.message_type
        if message_type is not None and message_type.GetOptions().map_entry:
            self._map(parent, key, item, message_type, where, depth)
        elif message_type is not None:
            if not field.is_repeated:
                self._message(item, message_type, where, depth + 1)
            elif type(item) is list:
                for i, element in enumerate(item):
                    self._message(element, message_type, f"{where}[{i}]", depth + 1)
        elif field.cpp_type == FieldDescriptor.CPPTYPE_ENUM and self._enum_names is not None:
            if not field.is_repeated:
                if self._unknown_name(field, item):
                    self._unknown(field, item, where)
                    del parent[key]
            elif type(item) is list:
                kept = []
                for i, element in enumerate(item):
                    if self._unknown_name(field, element):
                        self._unknown(field, element, f"{where}[{i}]")
                    else:
                        kept.append(element)
                if len(kept) != len(item):
                    parent[key] = kept

    def _map(self, parent: dict, key: str, item: Any, entry: Descriptor, where: str, depth: int) -> None:
        if type(item) is not dict:
            return
        key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
        if key_field.cpp_type in _INT_KEYS:
            spelled: dict[int, str] = {}
            for text in item:
                try:
                    number = int(text)
                except ValueError:
                    continue  # json_format names the bad key
                if number in spelled:
                    field = f"{where}[{text}]"
                    raise BadRequest(
                        f"request body sets field {field!r} twice: map key {number} as {spelled[number]!r} "
                        f"and as {text!r}",
                        field=field,
                    )
                spelled[number] = text
        value_type = value_field.message_type
        if value_type is not None:
            for text, element in item.items():
                self._message(element, value_type, f"{where}[{text}]", depth + 1)
        elif value_field.cpp_type == FieldDescriptor.CPPTYPE_ENUM and self._enum_names is not None:
            unknown = [text for text, element in item.items() if self._unknown_name(value_field, element)]
            for text in unknown:
                self._unknown(value_field, item[text], f"{where}[{text}]")
            if unknown:
                parent[key] = {t: e for t, e in item.items() if t not in unknown}

    def _any(self, value: dict, path: str, depth: int) -> None:
        type_url = value.get("@type")
        if type(type_url) is not str:
            return
        try:
            packed = self._pool.FindMessageTypeByName(type_url.rpartition("/")[2])
        except KeyError:
            return  # json_format refuses the type URL
        if packed.full_name.startswith("google.protobuf."):
            self._message(value.get("value"), packed, f"{path}.value" if path else "value", depth + 1)
        else:
            self._message(value, packed, path, depth + 1)  # "@type" is no field of it: passed over

    # --------------------------------------------------------------- enums

    def _unknown_name(self, field: FieldDescriptor, item: Any) -> bool:
        """A string json_format cannot read as a value of the enum (not a name, not a number)."""
        if type(item) is not str:
            return False
        names = self._enums.get(field)
        if names is None:
            names = self._enums[field] = json_enum_names(field)
        if item in names:
            return False
        try:
            int(item)
        except ValueError:
            return True
        return False

    def _unknown(self, field: FieldDescriptor, item: str, where: str) -> None:
        if self._enum_names == REJECT:
            raise BadRequest(
                f"invalid request body field {where!r}: {item!r} is not a value of enum {field.enum_type.full_name}",
                field=where,
            )
