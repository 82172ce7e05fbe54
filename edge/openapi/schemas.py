"""Component schemas: proto3 JSON as a backend prints it, in OpenAPI 3.1 terms.

Field names lowerCamelCase or proto names (`use_proto_names`), enums as value
names or integers (`enums_as_ints`), unset message fields nullable where they
print as null (`unset_messages_as_null`); 64-bit integers are strings,
well-known types take their JSON forms, maps are objects. Floats are plain
numbers, as grpc-gateway and gnostic write them (generated clients choke on
number-or-string unions); descriptions say NaN and Infinity arrive as strings.
Messages are components named by full proto name, so recursion is a `$ref`;
a backend that prints differently gets its own, suffixed components.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from transcoding.options import TranscodingOptions

__all__ = ["BINARY", "Printing", "Schemas", "message_type_of", "print_note", "prints_differently"]

_T = FieldDescriptor

_SCALARS: dict[int, dict[str, Any]] = {
    _T.TYPE_INT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SINT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    _T.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    _T.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    _T.TYPE_INT64: {"type": "string", "format": "int64"},
    _T.TYPE_SINT64: {"type": "string", "format": "int64"},
    _T.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    _T.TYPE_UINT64: {"type": "string", "format": "uint64"},
    _T.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    _T.TYPE_FLOAT: {"type": "number", "format": "float"},
    _T.TYPE_DOUBLE: {"type": "number", "format": "double"},
    _T.TYPE_BOOL: {"type": "boolean"},
    _T.TYPE_STRING: {"type": "string"},
    _T.TYPE_BYTES: {"type": "string", "format": "byte", "contentEncoding": "base64"},
}
_FLOATS = (_T.TYPE_FLOAT, _T.TYPE_DOUBLE)
_INT_KEYS = frozenset(
    (_T.TYPE_INT32, _T.TYPE_SINT32, _T.TYPE_SFIXED32, _T.TYPE_UINT32, _T.TYPE_FIXED32,
     _T.TYPE_INT64, _T.TYPE_SINT64, _T.TYPE_SFIXED64, _T.TYPE_UINT64, _T.TYPE_FIXED64)
)
_FLOAT_NOTE = "NaN, Infinity and -Infinity are written as the strings \"NaN\", \"Infinity\", \"-Infinity\"."


def _nullable(schema: dict[str, Any], what: str) -> dict[str, Any]:
    out = dict(schema)
    out["type"] = [schema["type"], "null"]
    article = "An" if what[0] in "aeiou" else "A"
    out["description"] = f"{article} {what}, or null for none (google.protobuf wrapper)."
    return out


_WKT: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {
        "type": "string", "format": "date-time",
        "description": "An RFC 3339 timestamp, e.g. \"2024-01-31T12:00:00Z\".",
    },
    "google.protobuf.Duration": {
        "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
        "description": "A duration in seconds with an \"s\" suffix, e.g. \"1.5s\".",
    },
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": "Comma-separated field paths in lowerCamelCase, e.g. \"title,author\".",
    },
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True, "description": "Any JSON object."},
    "google.protobuf.Value": {"description": "Any JSON value."},
    "google.protobuf.ListValue": {"type": "array", "items": {}, "description": "Any JSON array."},
    "google.protobuf.Empty": {"type": "object", "description": "An empty JSON object."},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string", "description": "The type URL, e.g. \"type.googleapis.com/google.rpc.ErrorInfo\"."}},
        "required": ["@type"],
        "additionalProperties": True,
        "description": "A message of the type named by @type, with that message's fields beside it "
        "(or a \"value\" field for types with a JSON form of their own).",
    },
    "google.protobuf.DoubleValue": _nullable(_SCALARS[_T.TYPE_DOUBLE], "double"),
    "google.protobuf.FloatValue": _nullable(_SCALARS[_T.TYPE_FLOAT], "float"),
    "google.protobuf.Int64Value": _nullable(_SCALARS[_T.TYPE_INT64], "64-bit integer (as a string)"),
    "google.protobuf.UInt64Value": _nullable(_SCALARS[_T.TYPE_UINT64], "unsigned 64-bit integer (as a string)"),
    "google.protobuf.Int32Value": _nullable(_SCALARS[_T.TYPE_INT32], "32-bit integer"),
    "google.protobuf.UInt32Value": _nullable(_SCALARS[_T.TYPE_UINT32], "unsigned 32-bit integer"),
    "google.protobuf.BoolValue": _nullable(_SCALARS[_T.TYPE_BOOL], "boolean"),
    "google.protobuf.StringValue": _nullable(_SCALARS[_T.TYPE_STRING], "string"),
    "google.protobuf.BytesValue": _nullable(_SCALARS[_T.TYPE_BYTES], "base64 string"),
}
BINARY = {"type": "string", "format": "binary"}


def _or_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema`, or null (a schema that admits null already is left alone)."""
    kind = schema.get("type")
    if "type" not in schema and "$ref" not in schema or kind == "null" or (isinstance(kind, list) and "null" in kind):
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def _is_map(f: FieldDescriptor) -> bool:
    return bool(f.message_type is not None and f.is_repeated and f.message_type.GetOptions().map_entry)


def message_type_of(f: FieldDescriptor) -> Descriptor | None:
    return f.message_type if f.type in (_T.TYPE_MESSAGE, _T.TYPE_GROUP) else None


def _behaviors(f: FieldDescriptor) -> set[int]:
    """google.api.field_behavior values; options from a reflection pool may hold
    the extension as unknown fields, so re-parse against the generated class."""
    options = descriptor_pb2.FieldOptions.FromString(f.GetOptions().SerializeToString())
    return set(options.Extensions[field_behavior_pb2.field_behavior])


@dataclass(frozen=True)
class Printing:
    """What the print options make a schema look like (emit_unpopulated alone changes
    which fields appear, not their schemas: it is said in descriptions)."""

    use_proto_names: bool
    enums_as_ints: bool
    nulls: bool  # emit_unpopulated with unset_messages_as_null: unset message fields are null

    @classmethod
    def of(cls, options: TranscodingOptions) -> "Printing":
        return cls(options.use_proto_names, options.enums_as_ints,
                   options.emit_unpopulated and options.unset_messages_as_null)

    def suffix(self, base: "Printing") -> str:
        """Component-name suffix of this variant's schemas, against the document's own."""
        parts = []
        if self.use_proto_names != base.use_proto_names:
            parts.append("proto_names" if self.use_proto_names else "json_names")
        if self.enums_as_ints != base.enums_as_ints:
            parts.append("enum_numbers" if self.enums_as_ints else "enum_names")
        if self.nulls != base.nulls:
            parts.append("nulls" if self.nulls else "no_nulls")
        return "".join(f"-{p}" for p in parts)


def print_note(options: TranscodingOptions) -> str:
    """One sentence: how responses are printed under `options`."""
    names = "proto field names" if options.use_proto_names else "lowerCamelCase JSON names"
    enums = "enums as numbers" if options.enums_as_ints else "enums as value names"
    if not options.emit_unpopulated:
        fields = "fields holding their zero value (0, \"\", false, empty lists) left out"
    elif options.unset_messages_as_null:
        fields = "every field, zero values too, and unset message fields as null"
    else:
        fields = "every field without presence, zero values too (unset message fields left out)"
    return f"Responses use {names}, {enums}, {fields}."


class Schemas:
    """Component schemas of one print variant, built on demand; messages go through
    a work list so recursive types end in a `$ref` instead of recursing here.

    Every variant of a document writes into one `components` dict: the document's
    own variant under the full proto names, a backend that prints differently
    (its `route.options`) under names with a suffix (`pkg.Book-proto_names`)."""

    def __init__(
        self, comments: Mapping[str, str], printing: Printing, *, suffix: str = "",
        components: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.comments = comments
        self.printing = printing
        self.use_proto_names = printing.use_proto_names
        self.suffix = suffix
        self.components: dict[str, dict[str, Any]] = {} if components is None else components
        self._pending: list[Descriptor | EnumDescriptor] = []
        self._synthetic: dict[str, frozenset[str]] = {}

    def json_name(self, f: FieldDescriptor) -> str:
        return f.name if self.use_proto_names else f.json_name

    def ref(self, name: str) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{name}"}

    def message(self, descriptor: Descriptor) -> dict[str, Any]:
        wkt = _WKT.get(descriptor.full_name)
        if wkt is not None:
            return dict(wkt)
        name = descriptor.full_name + self.suffix
        if name not in self.components:
            self.components[name] = {}
            self._pending.append(descriptor)
        return self.ref(name)

    def enum(self, descriptor: EnumDescriptor) -> dict[str, Any]:
        if descriptor.full_name == "google.protobuf.NullValue":
            return {"type": "null"}
        name = descriptor.full_name + self.suffix
        if name not in self.components:
            self.components[name] = {}
            self._pending.append(descriptor)
        return self.ref(name)

    def value(self, f: FieldDescriptor) -> dict[str, Any]:
        """One value of the field (an element, for repeated fields)."""
        message_type = message_type_of(f)
        if message_type is not None:
            return self.message(message_type)
        if f.type == _T.TYPE_ENUM:
            return self.enum(f.enum_type)
        return dict(_SCALARS[f.type])

    def field(self, f: FieldDescriptor, *, describe: bool = True) -> dict[str, Any]:
        if _is_map(f):
            key = f.message_type.fields_by_name["key"]
            schema: dict[str, Any] = {"type": "object", "additionalProperties": self.value(f.message_type.fields_by_name["value"])}
            if key.type in _INT_KEYS:
                schema["propertyNames"] = {"pattern": "^-?[0-9]+$"}
            elif key.type == _T.TYPE_BOOL:
                schema["propertyNames"] = {"enum": ["true", "false"]}
        elif f.is_repeated:
            schema = {"type": "array", "items": self.value(f)}
        else:
            schema = self.value(f)
            if self.printing.nulls and message_type_of(f) is not None and f.containing_oneof is None:
                schema = _or_null(schema)  # printed as null when unset (grpc-gateway)
        if describe:
            self.annotate(schema, f)
        return schema

    def annotate(self, schema: dict[str, Any], f: FieldDescriptor) -> None:
        notes = [self.comments.get(f.full_name, "")]
        behaviors = _behaviors(f)
        if field_behavior_pb2.REQUIRED in behaviors:
            notes.append("Required.")
        if field_behavior_pb2.IMMUTABLE in behaviors:
            notes.append("Immutable: set only when the resource is created.")
        if field_behavior_pb2.OUTPUT_ONLY in behaviors:
            schema["readOnly"] = True
        if field_behavior_pb2.INPUT_ONLY in behaviors:
            schema["writeOnly"] = True
        if f.type in _FLOATS:
            notes.append(_FLOAT_NOTE)
        oneof = f.containing_oneof
        if oneof is not None and f.name not in self._synthetic_fields(f.containing_type):
            others = [self.json_name(o) for o in oneof.fields if o is not f and o.name != f.name]
            notes.append(f"Member of oneof `{oneof.name}`: set at most one of `{self.json_name(f)}`"
                         + "".join(f", `{o}`" for o in others) + ".")
        if f.GetOptions().deprecated:
            schema["deprecated"] = True
        text = "\n\n".join(n for n in notes if n)
        if text:
            base = schema.get("description")
            schema["description"] = text if not base or "$ref" in schema else f"{text}\n\n{base}"

    def _synthetic_fields(self, descriptor: Descriptor) -> frozenset[str]:
        """proto3 `optional` fields: their oneof is synthetic, not a choice."""
        found = self._synthetic.get(descriptor.full_name)
        if found is None:
            proto = descriptor_pb2.DescriptorProto()
            descriptor.CopyToProto(proto)
            found = frozenset(f.name for f in proto.field if f.proto3_optional)
            self._synthetic[descriptor.full_name] = found
        return found

    def finish(self) -> dict[str, dict[str, Any]]:
        while self._pending:
            item = self._pending.pop()
            name = item.full_name + self.suffix
            if isinstance(item, EnumDescriptor):
                self.components[name] = self._enum_schema(item)
            else:
                self.components[name] = self._message_schema(item)
        return dict(sorted(self.components.items()))

    def _message_schema(self, descriptor: Descriptor) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "object", "properties": {self.json_name(f): self.field(f) for f in descriptor.fields}}
        comment = self.comments.get(descriptor.full_name)
        if comment:
            schema["description"] = comment
        return schema

    def _enum_schema(self, descriptor: EnumDescriptor) -> dict[str, Any]:
        lines = [self.comments.get(descriptor.full_name, "")]
        if self.printing.enums_as_ints:
            # printed as numbers (enums_as_ints); requests may still send the names
            schema: dict[str, Any] = {"type": "integer", "enum": sorted({v.number for v in descriptor.values})}
            lines.append("Printed as numbers; requests may send the value names too:\n" + "\n".join(
                f"- `{v.number}`: `{v.name}`" for v in descriptor.values
            ))
        else:
            schema = {"type": "string", "enum": [v.name for v in descriptor.values]}
        documented = [
            f"- `{v.name}`: {' '.join(self.comments[f'{descriptor.full_name}.{v.name}'].split())}"
            for v in descriptor.values
            if f"{descriptor.full_name}.{v.name}" in self.comments
        ]
        if documented:
            lines.append("\n".join(documented))
        text = "\n\n".join(line for line in lines if line)
        if text:
            schema["description"] = text
        return schema



def prints_differently(a: TranscodingOptions, b: TranscodingOptions) -> bool:
    def printing(o: TranscodingOptions) -> tuple[bool, ...]:
        return (o.use_proto_names, o.enums_as_ints, o.emit_unpopulated, o.emit_unpopulated and o.unset_messages_as_null)

    return printing(a) != printing(b)
