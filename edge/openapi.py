"""OpenAPI 3.1 for the routes the gateway serves, built from the live route table.

The document describes what the gateway does, not what the protos might
mean: it is built from the same `RouteTable` requests are matched against,
so a route left out by a conflict is absent here too, and a reload that adds
a method adds its operation (callers cache per table generation).

Mapping choices (grpc-gateway's protoc-gen-openapiv2 is the reference):

* Paths: a variable is one path parameter named after its field (json names
  unless the backend's `use_proto_names`). A variable spanning several segments
  (``{name=shelves/*}``, ``**``) is still one parameter, as grpc-gateway does
  by default: its schema carries the pattern as a regex and its description
  says the value contains '/' that must be sent unescaped (the gateway, per
  http.proto, keeps ``%2F`` as data inside such a variable). Templates that
  would then share a path and method (``/v1/{name=shelves/*}`` and
  ``/v1/{name=shelves/*/books/*}`` both read ``/v1/{name}``) get their first
  parameter renamed ``name_1``, ``name_2``... (grpc-gateway's scheme), with
  ``x-edge-field`` naming the real field. `expand_path_patterns=True` instead
  writes the pattern's literals into the path
  (``/v1/shelves/{shelf}/books/{book}``, grpc-gateway's
  ``expand_slashed_path_patterns``): every parameter is then one segment, which
  generated clients percent-encode safely.
* An operation whose template has the same segments and variable patterns as
  an existing path item's (``/v1/users/{user_id}``, ``/v1/users/{user.user_id}``)
  joins it when its method slot is free, its parameters renamed positionally
  (``x-edge-field`` keeps the field), since OpenAPI forbids templated paths
  that differ only in parameter names. Each operation names its gRPC method
  and original template in ``x-edge-grpc-method`` / ``x-edge-template``.
* Custom verbs stay in the path (``/v1/{name}:move``). Custom HTTP methods
  OpenAPI 3.1 has no slot for (anything but head/options/trace) are listed in
  the top-level ``x-edge-skipped``.
* Query parameters: the list the route's own query rules give
  (`RouteQuery.parameters` in transcoding/query.py, the object that reads them
  per request): every field the path and body leave free, flattened with
  dots, message fields recursing until a type repeats on the way down; map
  fields as deepObject (``labels[key]=value``); the names the options always
  ignore, as such. A route whose rules drop the query lists none.
* Schemas are proto3 JSON as the route's backend prints it (`route.options`,
  per backend): field names lowerCamelCase or proto names (`use_proto_names`),
  enums as value names or integers (`enums_as_ints`), unset message fields
  nullable where they print as null (`unset_messages_as_null`); 64-bit
  integers are strings, well-known types take their JSON forms, maps are
  objects. Messages are components named by full proto name, so recursion is
  a `$ref`; a backend that prints differently from the gateway-wide options
  gets its own components, suffixed (``pkg.Book-proto_names``), its own
  parameter names, and a sentence in its responses' description. Floats
  are plain numbers, as grpc-gateway and gnostic write them (generated
  clients choke on number-or-string unions); descriptions say NaN and
  Infinity arrive as strings.
* Comments come from `source_code_info`, which only descriptor-set files
  built with ``--include_source_info`` carry (grpcio's server reflection
  serves descriptors without it): pass the loaded files as `files`.
"""
from __future__ import annotations

import html
import json
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

import orjson
from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.rpc import status_pb2

from transcoding.codec import HTTP_BODY
from transcoding.httprule import bindings_for
from transcoding.options import StreamFormat, TranscodingOptions
from transcoding.routes import Route, RouteTable
from transcoding.template import PathTemplate, Segment

if TYPE_CHECKING:
    from .backends import BackendRegistry, ReloadReport
    from .config import GatewayConfig

__all__ = [
    "OPENAPI_VERSION",
    "OpenApiCache",
    "SecurityInfo",
    "build_from_config",
    "build_openapi",
    "docs_html",
    "registry_files",
]

OPENAPI_VERSION = "3.1.0"
STATUS_SCHEMA = "google.rpc.Status"
_OPERATION_KINDS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_T = FieldDescriptor


def _edge_version() -> str:
    try:
        return metadata.version("edge-gateway")
    except metadata.PackageNotFoundError:
        return "0"


@dataclass(frozen=True)
class SecurityInfo:
    """What the auth policies say, in OpenAPI terms.

    `schemes` goes to ``components.securitySchemes`` as is; `requirements_for`
    gets ``package.Service/Method`` and returns that operation's security
    requirements (``[{"bearer": ["scope"]}]``; ``[]`` for a public route) or
    None to say nothing.
    """

    schemes: dict[str, dict[str, Any]] = field(default_factory=dict)
    requirements_for: Callable[[str], list[dict[str, list[str]]] | None] = lambda full_method: None


# ------------------------------------------------------------------ comments

def _comment_index(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> dict[str, str]:
    """Full element name -> its comment, for every commented element of `files`.

    Keys are proto full names (``pkg.Msg``, ``pkg.Msg.field``, ``pkg.Svc.Method``);
    enum values are keyed under their enum (``pkg.Enum.VALUE``).
    """
    comments: dict[str, str] = {}
    for proto in files:
        if not proto.source_code_info.location:
            continue
        names = _element_names(proto)
        for location in proto.source_code_info.location:
            name = names.get(tuple(location.path))
            if name is None or name in comments:
                continue
            text = _clean_comment(location.leading_comments or location.trailing_comments)
            if text:
                comments[name] = text
    return comments


def _element_names(proto: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    """source_code_info location path -> full name, for the elements we describe."""
    names: dict[tuple[int, ...], str] = {}
    prefix = f"{proto.package}." if proto.package else ""

    def enum(e: descriptor_pb2.EnumDescriptorProto, scope: str, path: tuple[int, ...]) -> None:
        name = scope + e.name
        names[path] = name
        for i, value in enumerate(e.value):
            names[(*path, 2, i)] = f"{name}.{value.name}"

    def message(m: descriptor_pb2.DescriptorProto, scope: str, path: tuple[int, ...]) -> None:
        name = scope + m.name
        names[path] = name
        for i, f in enumerate(m.field):
            names[(*path, 2, i)] = f"{name}.{f.name}"
        for i, nested in enumerate(m.nested_type):
            message(nested, name + ".", (*path, 3, i))
        for i, e in enumerate(m.enum_type):
            enum(e, name + ".", (*path, 4, i))

    for i, m in enumerate(proto.message_type):
        message(m, prefix, (4, i))
    for i, e in enumerate(proto.enum_type):
        enum(e, prefix, (5, i))
    for i, s in enumerate(proto.service):
        names[(6, i)] = prefix + s.name
        for j, method in enumerate(s.method):
            names[(6, i, 2, j)] = f"{prefix}{s.name}.{method.name}"
    return names


def _clean_comment(text: str) -> str:
    return textwrap.dedent(text.replace("\r\n", "\n")).strip()


def _summary(comment: str) -> str:
    """The first paragraph on one line, cut at its first sentence when long."""
    first = " ".join(comment.split("\n\n", 1)[0].split())
    if len(first) > 120:
        end = first.find(". ")
        if 0 < end < 120:
            return first[: end + 1]
    return first


# ------------------------------------------------------------------ schemas

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
_BINARY = {"type": "string", "format": "binary"}
_STATUS_DESCRIPTION = (
    "The error body of every failed call: the proto3 JSON form of google.rpc.Status. "
    "`code` is the gRPC status code, `details` carry typed error details (google.rpc.ErrorInfo, ...)."
)


def _or_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema`, or null (a schema that admits null already is left alone)."""
    kind = schema.get("type")
    if "type" not in schema and "$ref" not in schema or kind == "null" or (isinstance(kind, list) and "null" in kind):
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def _is_map(f: FieldDescriptor) -> bool:
    return bool(f.message_type is not None and f.is_repeated and f.message_type.GetOptions().map_entry)


def _message_type(f: FieldDescriptor) -> Descriptor | None:
    return f.message_type if f.type in (_T.TYPE_MESSAGE, _T.TYPE_GROUP) else None


def _behaviors(f: FieldDescriptor) -> set[int]:
    """google.api.field_behavior values; options from a reflection pool may hold
    the extension as unknown fields, so re-parse against the generated class."""
    options = descriptor_pb2.FieldOptions.FromString(f.GetOptions().SerializeToString())
    return set(options.Extensions[field_behavior_pb2.field_behavior])


@dataclass(frozen=True)
class _Printing:
    """What the print options make a schema look like (emit_unpopulated alone changes
    which fields appear, not their schemas: it is said in descriptions)."""

    use_proto_names: bool
    enums_as_ints: bool
    nulls: bool  # emit_unpopulated with unset_messages_as_null: unset message fields are null

    @classmethod
    def of(cls, options: TranscodingOptions) -> "_Printing":
        return cls(options.use_proto_names, options.enums_as_ints,
                   options.emit_unpopulated and options.unset_messages_as_null)

    def suffix(self, base: "_Printing") -> str:
        """Component-name suffix of this variant's schemas, against the document's own."""
        parts = []
        if self.use_proto_names != base.use_proto_names:
            parts.append("proto_names" if self.use_proto_names else "json_names")
        if self.enums_as_ints != base.enums_as_ints:
            parts.append("enum_numbers" if self.enums_as_ints else "enum_names")
        if self.nulls != base.nulls:
            parts.append("nulls" if self.nulls else "no_nulls")
        return "".join(f"-{p}" for p in parts)


def _print_note(options: TranscodingOptions) -> str:
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


class _Schemas:
    """Component schemas of one print variant, built on demand; messages go through
    a work list so recursive types end in a `$ref` instead of recursing here.

    Every variant of a document writes into one `components` dict: the document's
    own variant under the full proto names, a backend that prints differently
    (its `route.options`) under names with a suffix (`pkg.Book-proto_names`)."""

    def __init__(
        self, comments: Mapping[str, str], printing: _Printing, *, suffix: str = "",
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
        message_type = _message_type(f)
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
            if self.printing.nulls and _message_type(f) is not None and f.containing_oneof is None:
                schema = _or_null(schema)  # printed as null when unset (grpc-gateway)
        if describe:
            self._annotate(schema, f)
        return schema

    def _annotate(self, schema: dict[str, Any], f: FieldDescriptor) -> None:
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


# ------------------------------------------------------------------ paths

@dataclass
class _PathParam:
    name: str  # as written in the OpenAPI path
    field_path: str  # dotted proto names of the field it fills
    natural: str  # the name it would have without renaming
    pattern: str  # the segments it stands for: "*", "**", "shelves/*"...
    schema: dict[str, Any]
    description: str
    extensions: dict[str, Any] = field(default_factory=dict)

    def as_parameter(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "in": "path", "required": True, "schema": self.schema}
        if self.description:
            out["description"] = self.description
        if self.name != self.natural or "x-edge-field" in self.extensions:
            out["x-edge-field"] = self.field_path
        for key, value in self.extensions.items():
            out.setdefault(key, value)
        return out


def _pattern_text(segments: Iterable[Segment]) -> str:
    return "/".join(s.value if s.kind == "literal" else "*" if s.kind == "single" else "**" for s in segments)


_REGEX_SPECIAL = re.compile(r"([.^$|?*+()\[\]{}\\/])")


def _pattern_regex(segments: list[Segment]) -> str:
    out = ""
    for i, s in enumerate(segments):
        if s.kind == "multi":
            out += ".*" if i == 0 else "(/.*)?"
            continue
        if i:
            out += "/"
        out += _REGEX_SPECIAL.sub(r"\\\1", s.value) if s.kind == "literal" else "[^/]+"
    return f"^{out}$"


def _singular(word: str) -> str:
    """`shelves` -> `shelf`, `books` -> `book`: a name for the segment after a collection literal."""
    lower = word.lower()
    if lower.endswith("ies") and len(word) > 3:
        return word[:-3] + "y"
    if lower.endswith("lves"):
        return word[:-3] + "f"
    if lower.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if lower.endswith("s") and not lower.endswith(("ss", "us", "is")) and len(word) > 1:
        return word[:-1]
    return word


_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


class _Paths:
    """OpenAPI path strings and path parameters for the route templates."""

    def __init__(self, schemas: _Schemas, expand: bool) -> None:
        self.schemas = schemas
        self.expand = expand

    def convert(self, template: PathTemplate, input_type: Descriptor) -> tuple[str, list[_PathParam]]:
        segments = list(template.segments)
        starts = {v.start: v for v in template.variables}
        parts: list[str] = []
        params: list[_PathParam] = []
        used: set[str] = set()
        wildcards = 0
        i = 0
        while i < len(segments):
            variable = starts.get(i)
            if variable is None:
                segment = segments[i]
                i += 1
                if segment.kind == "literal":
                    parts.append(segment.value)
                    continue
                wildcards += 1
                name = self._unique(f"wildcard{wildcards}", used)
                multi = segment.kind == "multi"
                params.append(_PathParam(
                    name, "", name, "**" if multi else "*", {"type": "string"},
                    "Any path segments, ignored by the gateway (may contain '/')." if multi
                    else "Any single path segment, ignored by the gateway.",
                ))
                parts.append("{" + name + "}")
                continue
            end = len(segments) if variable.end is None else variable.end
            pattern = segments[variable.start:end]
            i = end
            chain = self._chain(input_type, variable.field_path)
            field_path = ".".join(variable.field_path)
            natural = ".".join(self.schemas.json_name(f) for f in chain)
            leaf = chain[-1]
            comment = self.schemas.comments.get(leaf.full_name, "")
            multi = len(pattern) > 1 or pattern[0].kind == "multi"
            if not multi:
                name = self._unique(natural, used)
                schema = self.schemas.value(leaf)
                params.append(_PathParam(name, field_path, natural, "*", schema, comment))
                parts.append("{" + name + "}")
            elif not self.expand:
                name = self._unique(natural, used)
                text = _pattern_text(pattern)
                note = (
                    f"A path matching `{text}`: the value contains '/', which must be sent as is, "
                    "not percent-encoded (an encoded %2F stays part of a segment)."
                )
                schema = {"type": "string", "pattern": _pattern_regex(pattern)}
                params.append(_PathParam(
                    name, field_path, natural, text, schema, "\n\n".join(p for p in (comment, note) if p),
                    {"x-edge-pattern": text},
                ))
                parts.append("{" + name + "}")
            else:
                self._expand(pattern, field_path, natural, comment, parts, params, used)
        path = "/" + "/".join(parts)
        if template.verb:
            path += ":" + template.verb
        return path, params

    def _expand(
        self, pattern: list[Segment], field_path: str, natural: str, comment: str,
        parts: list[str], params: list[_PathParam], used: set[str],
    ) -> None:
        """`{name=shelves/*/books/*}` -> `shelves/{shelf}/books/{book}`."""
        text = _pattern_text(pattern)
        spelled: list[str] = []
        new: list[_PathParam] = []
        previous = ""
        for segment in pattern:
            if segment.kind == "literal":
                parts.append(segment.value)
                spelled.append(segment.value)
                previous = segment.value
                continue
            if segment.kind == "multi":
                base = natural.rsplit(".", 1)[-1]
            else:
                base = _singular(_NAME_CHARS.sub("_", previous)) if previous else f"{natural.rsplit('.', 1)[-1]}_part"
            name = self._unique(base, used)
            parts.append("{" + name + "}")
            spelled.append("{" + name + "}")
            multi = segment.kind == "multi"
            note = "The rest of the path (may contain '/', sent as is)." if multi else "One path segment."
            new.append(_PathParam(
                name, field_path, natural, "**" if multi else "*", {"type": "string"}, note, {"x-edge-field": field_path}
            ))
            previous = ""
        whole = "/".join(spelled)
        for param in new:
            param.description = (
                f"{param.description} Part of `{natural}`, which the gateway sets to `{whole}` "
                f"(pattern `{text}`)." + (f"\n\n{comment}" if comment else "")
            )
        params.extend(new)

    @staticmethod
    def _unique(name: str, used: set[str]) -> str:
        candidate, n = name, 1
        while candidate in used:
            n += 1
            candidate = f"{name}_{n}"
        used.add(candidate)
        return candidate

    @staticmethod
    def _chain(descriptor: Descriptor, names: Iterable[str]) -> list[FieldDescriptor]:
        chain: list[FieldDescriptor] = []
        current: Descriptor | None = descriptor
        for name in names:
            assert current is not None  # the route table only holds templates its codec accepted
            f = current.fields_by_name[name]
            chain.append(f)
            current = _message_type(f)
        return chain


_PARAM_IN_PATH = re.compile(r"\{([^}]*)\}")


# ------------------------------------------------------------------ document

class _Document:
    def __init__(
        self,
        *,
        comments: Mapping[str, str],
        options: TranscodingOptions,
        expand_path_patterns: bool,
        security: SecurityInfo | None,
        extra_parameters: Callable[[Route], list[dict[str, Any]]] | None = None,
    ) -> None:
        self.options = options
        self.extra_parameters = extra_parameters  # parameters the gateway adds to routes (`fields`)
        self.comments = comments
        self._expand = expand_path_patterns
        self._components: dict[str, dict[str, Any]] = {}
        self._base = _Printing.of(options)
        self._variants: dict[_Printing, tuple[_Schemas, _Paths]] = {}
        self.schemas, self.paths_helper = self.base_schemas, _ = self._variant(options)
        self.security = security
        self.paths: dict[str, dict[str, Any]] = {}
        self._signatures: dict[str, list[str]] = {}  # path with variable patterns -> path strings
        self.operation_ids: set[str] = set()
        self.skipped: list[dict[str, str]] = []
        self.tags: dict[str, str] = {}  # service full name -> tag
        self._bindings: dict[str, list] = {}

    def _variant(self, options: TranscodingOptions) -> tuple[_Schemas, _Paths]:
        printing = _Printing.of(options)
        found = self._variants.get(printing)
        if found is None:
            schemas = _Schemas(self.comments, printing, suffix=printing.suffix(self._base), components=self._components)
            found = self._variants[printing] = (schemas, _Paths(schemas, self._expand))
        return found

    def message_schema(self, descriptor: Descriptor, options: TranscodingOptions) -> dict[str, Any]:
        """The schema (a `$ref`) of a message as a backend with `options` prints it: for
        `extra_operations` (composed routes) describing replies of their own."""
        return self._variant(options)[0].message(descriptor)

    def finish(self) -> dict[str, dict[str, Any]]:
        """Every variant's components (building one may not add to another's)."""
        for schemas, _ in self._variants.values():
            schemas.finish()
        return dict(sorted(self._components.items()))

    # -- operations

    def add(self, route: Route) -> None:
        # names, enums and nulls as this route's backend prints them
        self.schemas, self.paths_helper = self._variant(route.options)
        binding = route.binding
        kind = binding.http_method.lower()
        if kind not in _OPERATION_KINDS:
            self._skip(route, f"OpenAPI 3.1 has no operation for the HTTP method {binding.http_method}")
            return
        input_type = route.method.input_type
        path, params = self.paths_helper.convert(binding.template, input_type)
        placed = self._place(path, kind, params)
        if placed is None:
            self._skip(route, f"{binding.http_method} {path} is already described by another operation")
            return
        path = placed
        operation = self._operation(route, kind, params)
        self.paths[path][kind] = operation

    def _skip(self, route: Route, reason: str) -> None:
        self.skipped.append({
            "method": route.binding.http_method,
            "path": route.template,
            "grpcMethod": route.full_method,
            "reason": reason,
        })

    def _place(self, path: str, kind: str, params: list[_PathParam]) -> str | None:
        """The path string this operation goes under.

        It joins a path item whose template has the same segments and
        variable patterns (renaming its parameters to that item's names), else
        the item at its own path string, else a path of its own whose first
        parameter gets a `_1`, `_2`... suffix: never two operations on one
        path and method.
        """
        signature = self._render(path, ["{" + p.pattern + "}" for p in params], braces=False)
        same = self._signatures.setdefault(signature, [])
        for existing in sorted(same, key=lambda p: p != path):
            if kind not in self.paths[existing]:
                for param, name in zip(params, _PARAM_IN_PATH.findall(existing)):
                    param.name = name
                return existing
        candidate, n = path, 0
        base = params[0].name if params else ""
        while candidate in self.paths and kind in self.paths[candidate]:
            if not params:
                return None
            n += 1
            candidate = self._render(path, [f"{base}_{n}"] + [p.name for p in params[1:]])
        if n:
            params[0].name = f"{base}_{n}"
        same.append(candidate)
        self.paths.setdefault(candidate, {})
        return candidate

    @staticmethod
    def _render(path: str, names: list[str], braces: bool = True) -> str:
        """`path` with its parameters, in order, replaced by `names`."""
        it = iter(names)
        return _PARAM_IN_PATH.sub(lambda _: ("{%s}" if braces else "%s") % next(it), path)

    def _operation(self, route: Route, kind: str, path_params: list[_PathParam]) -> dict[str, Any]:
        method = route.method
        service = method.containing_service
        binding = route.binding
        operation: dict[str, Any] = {"tags": [self._tag(service)], "operationId": self._operation_id(route)}
        comment = self.comments.get(method.full_name, "")
        if comment:
            operation["summary"] = _summary(comment)
            if comment != operation["summary"]:
                operation["description"] = comment
        else:
            operation["summary"] = f"{service.name}.{method.name}"
        parameters = [p.as_parameter() for p in path_params]
        parameters.extend(self._query(route))
        if self.extra_parameters is not None:
            parameters.extend(self.extra_parameters(route))
        if parameters:
            operation["parameters"] = parameters
        if binding.body:
            operation["requestBody"] = self._request_body(route)
        operation["responses"] = self._responses(route, kind)
        if self.security is not None:
            requirements = self.security.requirements_for(route.full_method)
            if requirements is not None:
                operation["security"] = requirements
        operation["x-edge-grpc-method"] = route.full_method
        operation["x-edge-template"] = binding.template.text
        streaming = {(False, True): "server", (True, False): "client", (True, True): "bidi"}.get(
            (method.client_streaming, method.server_streaming)
        )
        if streaming:
            operation["x-edge-streaming"] = streaming
        return operation

    def _tag(self, service: Any) -> str:
        tag = self.tags.get(service.full_name)
        if tag is None:
            taken = set(self.tags.values())
            tag = service.name if service.name not in taken else service.full_name
            self.tags[service.full_name] = tag
        return tag

    def _operation_id(self, route: Route) -> str:
        method = route.method
        bindings = self._bindings.get(method.full_name)
        if bindings is None:
            bindings = self._bindings[method.full_name] = bindings_for(method)
        index = next((i for i, b in enumerate(bindings) if b == route.binding), 0)
        suffix = f"_{index}" if index else ""
        service = method.containing_service
        candidates = [
            f"{service.name}_{method.name}{suffix}",
            f"{service.full_name.replace('.', '_')}_{method.name}{suffix}",
        ]
        for candidate in candidates:
            if candidate not in self.operation_ids:
                break
        else:
            n = 1
            while f"{candidates[-1]}_{n}" in self.operation_ids:
                n += 1
            candidate = f"{candidates[-1]}_{n}"
        self.operation_ids.add(candidate)
        return candidate

    # -- query parameters

    def _query(self, route: Route) -> list[dict[str, Any]]:
        """The route's query parameters as its query rules list them
        (`RouteQuery.parameters`): the same object that reads them per request."""
        out: list[dict[str, Any]] = []
        for query_parameter in route.request_codec.query.parameters(use_proto_names=self.schemas.use_proto_names):
            parameter: dict[str, Any] = {"name": query_parameter.name, "in": "query"}
            f = query_parameter.field
            if f is None:  # a name the options always ignore
                parameter["schema"] = {"type": "string"}
                parameter["description"] = "Accepted and ignored by the gateway (`ignored_query_parameters`)."
                out.append(parameter)
                continue
            schema = self.schemas.field(f, describe=False)
            if query_parameter.kind == "json":
                parameter["content"] = {"application/json": {"schema": schema}}
            else:
                parameter["schema"] = schema
            if query_parameter.kind == "map":
                parameter["style"], parameter["explode"] = "deepObject", True
            probe: dict[str, Any] = {}
            self.schemas._annotate(probe, f)
            extra = {
                "list": "Repeat the parameter for each element.",
                "map": f"One parameter per entry: `{query_parameter.name}[key]=value`.",
            }.get(query_parameter.kind)
            if extra:
                probe["description"] = "\n\n".join(p for p in (probe.get("description", ""), extra) if p)
            if probe.get("description"):
                parameter["description"] = probe["description"]
            if probe.get("deprecated"):
                parameter["deprecated"] = True
            out.append(parameter)
        return out

    # -- bodies

    def _request_body(self, route: Route) -> dict[str, Any]:
        binding = route.binding
        method = route.method
        if binding.body == "*":
            raw = method.input_type.full_name == HTTP_BODY
            schema = None if raw else self.schemas.message(method.input_type)
            bound = binding.template.field_paths()
            description = "The request message." + (
                f" Fields bound by the path ({', '.join(f'`{p}`' for p in bound)}) take the path's values." if bound else ""
            )
        else:
            chain = _Paths._chain(method.input_type, binding.body.split("."))
            leaf = chain[-1]
            leaf_type = _message_type(leaf)
            raw = leaf_type is not None and not leaf.is_repeated and leaf_type.full_name == HTTP_BODY
            schema = None if raw else self.schemas.field(leaf)
            description = f"The request field `{binding.body}`." + (
                f" {self.comments[leaf.full_name]}" if leaf.full_name in self.comments else ""
            )
        if raw:
            return {
                "description": description + " Raw bytes, passed on with their Content-Type (google.api.HttpBody).",
                "content": {"*/*": {"schema": dict(_BINARY)}},
            }
        assert schema is not None
        if method.client_streaming:
            bound = "path and query parameters" if binding.body != "*" else "path parameters"
            return {
                "description": description + (
                    " A stream of request messages, each body as above: a JSON array (Envoy's form; "
                    f"the {bound} fill the first message only), or NDJSON, one message per line "
                    f"(or JSON values one after another; the {bound} fill every message)."
                ),
                "content": {
                    "application/json": {"schema": {"type": "array", "items": schema}},
                    "application/x-ndjson": {"schema": schema},
                },
            }
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    def _responses(self, route: Route, kind: str) -> dict[str, Any]:
        if kind == "head":
            return {
                "200": {"description": "Success; a HEAD reply has no body."},
                "default": {"description": "An error (its HTTP status; a HEAD reply has no body)."},
            }
        error = {
            "description": "An error: the HTTP status follows the gRPC code; the body is a google.rpc.Status.",
            "content": {"application/json": {"schema": self.schemas.ref(STATUS_SCHEMA)}},
        }
        method = route.method
        codec = route.response_codec
        output = method.output_type
        if codec.is_http_body:
            content = {"*/*": {"schema": dict(_BINARY)}}
            what = "Raw bytes with the Content-Type the backend set (google.api.HttpBody)"
        else:
            if codec.response_body:
                leaf = _Paths._chain(output, codec.response_body.split("."))[-1]
                schema = self.schemas.field(leaf)
                what = f"The reply field `{codec.response_body}` alone"
            else:
                schema = self.schemas.message(output)
                what = f"The reply message ({output.full_name})"
            content = _stream_content(route.options.stream_format, schema) if method.server_streaming else {
                "application/json": {"schema": schema}}
        if method.server_streaming:
            if codec.is_http_body:
                description = f"A stream: {what}, chunk after chunk."
            else:
                description = (
                    f"A stream of reply messages, each {what[0].lower() + what[1:]} as JSON, in the format the "
                    f"`Accept` header asks for (default `{route.options.stream_format.value}`): application/x-ndjson "
                    "(a line each), application/json (a JSON array, or grpc-gateway's `{\"result\": ...}` lines "
                    "where that is the default) or text/event-stream (a `data:` event each). An error after the "
                    "stream started arrives as a last `{\"error\": <google.rpc.Status>}` line or array element, "
                    "or an `event: error` event."
                )
        else:
            description = f"{what}."
        if not codec.is_http_body and _prints_differently(route.options, self.options):
            description += " " + _print_note(route.options)  # this backend's own print options
        return {"200": {"description": description, "content": content}, "default": error}


def _prints_differently(a: TranscodingOptions, b: TranscodingOptions) -> bool:
    def printing(o: TranscodingOptions) -> tuple[bool, ...]:
        return (o.use_proto_names, o.enums_as_ints, o.emit_unpopulated, o.emit_unpopulated and o.unset_messages_as_null)

    return printing(a) != printing(b)


def _stream_content(default: StreamFormat, item: dict[str, Any]) -> dict[str, Any]:
    """A server stream's media types (edge/streaming.py), the route's default first."""
    if default is StreamFormat.GRPC_GATEWAY:
        json_form = {"type": "object", "properties": {"result": item}}
    else:
        json_form = {"type": "array", "items": item}
    forms = {
        StreamFormat.NDJSON: ("application/x-ndjson", {"schema": item}),
        StreamFormat.JSON_ARRAY: ("application/json", {"schema": json_form}),
        StreamFormat.GRPC_GATEWAY: ("application/json", {"schema": json_form}),
        StreamFormat.SSE: ("text/event-stream", {"schema": {"type": "string"}}),
    }
    media, first = forms[default]
    content = {media: first}
    for fmt in (StreamFormat.NDJSON, StreamFormat.JSON_ARRAY, StreamFormat.SSE):
        other, form = forms[fmt]
        content.setdefault(other, form)
    return content


def build_openapi(
    table: RouteTable,
    *,
    title: str = "edge",
    version: str = _edge_version(),
    servers: list[str] | None = None,
    security: SecurityInfo | None = None,
    options: TranscodingOptions | None = None,
    files: Iterable[descriptor_pb2.FileDescriptorProto] = (),
    expand_path_patterns: bool = False,
    description: str | None = None,
    extra_parameters: Callable[[Route], list[dict[str, Any]]] | None = None,
    extra_operations: Callable[[Any, RouteTable], None] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route in `table`.

    `extra_parameters(route)` and `extra_operations(document, table)` add what
    the gateway itself serves beyond the protos (edge/apidocs.py
    `document_options`: the `fields` parameter, composed routes).

    `options` (default: the table's own, the gateway-wide transcoding options)
    say how field names and zero values are printed, so the schemas say what
    responses hold; `files` are the loaded FileDescriptorProtos, read for
    comments only (see `registry_files`).
    """
    options = table.options if options is None else options
    doc = _Document(
        comments=_comment_index(files),
        options=options,
        expand_path_patterns=expand_path_patterns,
        security=security,
        extra_parameters=extra_parameters,
    )
    for route in table.routes:
        doc.add(route)
    if extra_operations is not None:
        extra_operations(doc, table)
    doc.base_schemas.message(status_pb2.Status.DESCRIPTOR)  # error bodies: the gateway's own printing
    components: dict[str, Any] = {"schemas": doc.finish()}
    components["schemas"][STATUS_SCHEMA]["description"] = _STATUS_DESCRIPTION
    if security is not None and security.schemes:
        components["securitySchemes"] = dict(security.schemes)
    names_note = "proto field names" if options.use_proto_names else "lowerCamelCase JSON names"
    info: dict[str, Any] = {
        "title": title,
        "version": version,
        "description": description
        or (
            f"REST/JSON transcoding of gRPC services; bodies are proto3 JSON with {names_note} "
            "(requests may use either spelling). " + _print_note(options)
            + " An operation whose backend prints otherwise says so in its response. "
            "Errors are google.rpc.Status objects."
        ),
    }
    document: dict[str, Any] = {"openapi": OPENAPI_VERSION, "info": info}
    if servers:
        document["servers"] = [{"url": url} for url in servers]
    tags = []
    for full_name, tag in doc.tags.items():
        entry: dict[str, Any] = {"name": tag}
        if full_name in doc.comments:
            entry["description"] = doc.comments[full_name]
        entry["x-edge-grpc-service"] = full_name
        tags.append(entry)
    if tags:
        document["tags"] = tags
    document["paths"] = doc.paths
    document["components"] = components
    if doc.skipped:
        document["x-edge-skipped"] = doc.skipped
    return document


# ------------------------------------------------------------------ serving helpers

def registry_files(registry: BackendRegistry) -> list[descriptor_pb2.FileDescriptorProto]:
    """Every loaded FileDescriptorProto of every backend (for comments)."""
    return [f for state in registry.backends.values() if state.descriptors for f in state.descriptors.files]


class OpenApiCache:
    """The document of one route-table generation, rebuilt when it changes.

    `options` are `build_openapi` keyword arguments. The returned bytes and
    document are shared: do not mutate the document.
    """

    def __init__(self, **options: Any) -> None:
        self.options = options
        self._generation: object = None
        self._document: dict[str, Any] | None = None
        self._body = b""
        self.builds = 0

    def document(
        self, table: RouteTable, generation: object, files: Iterable[descriptor_pb2.FileDescriptorProto] = ()
    ) -> dict[str, Any]:
        if self._document is None or generation != self._generation:
            document = build_openapi(table, files=files, **self.options)
            self._body = orjson.dumps(document)
            self._document, self._generation = document, generation
            self.builds += 1
        return self._document

    def get(
        self, table: RouteTable, generation: object, files: Iterable[descriptor_pb2.FileDescriptorProto] = ()
    ) -> bytes:
        """The JSON document (orjson bytes) for this generation."""
        self.document(table, generation, files)
        return self._body


async def build_from_config(config: GatewayConfig, **options: Any) -> tuple[dict[str, Any] | None, ReloadReport]:
    """Load every backend's descriptors once (as `edge check` does) and build
    the document; None when some backend failed to load."""
    from .backends import BackendRegistry

    registry = BackendRegistry(config)
    try:
        report = await registry.start(watch=False)
        if report.failed:
            return None, report
        return build_openapi(registry.table, files=registry_files(registry), **options), report
    finally:
        await registry.close()


_SWAGGER_UI = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5"


def docs_html(openapi_url: str, document: Mapping[str, Any] | None = None, *, title: str = "API documentation") -> str:
    """An interactive page: Swagger UI from a CDN, over a server-rendered list
    of the operations that stays useful when the CDN cannot be reached."""
    url_js = json.dumps(openapi_url).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    rows = []
    if document is not None:
        for path, item in document.get("paths", {}).items():
            for kind, operation in item.items():
                if kind not in _OPERATION_KINDS:
                    continue
                rows.append(
                    "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td><code>{}</code></td></tr>".format(
                        html.escape(kind.upper()),
                        html.escape(path),
                        html.escape(operation.get("summary", "")),
                        html.escape(operation.get("operationId", "")),
                    )
                )
    table = (
        "<table><thead><tr><th>Method</th><th>Path</th><th>Summary</th><th>Operation</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else ""
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="{_SWAGGER_UI}/swagger-ui.css">
<style>body{{font-family:sans-serif;margin:0}}#fallback{{padding:1em 2em}}td,th{{text-align:left;padding:.2em .8em}}</style>
</head>
<body>
<div id="swagger-ui"></div>
<section id="fallback">
<h1>{html.escape(title)}</h1>
<p>The machine-readable document is at <a href="{html.escape(openapi_url)}">{html.escape(openapi_url)}</a>.</p>
{table}
</section>
<script src="{_SWAGGER_UI}/swagger-ui-bundle.js" crossorigin="anonymous"></script>
<script>
if (window.SwaggerUIBundle) {{
  window.ui = SwaggerUIBundle({{url: {url_js}, dom_id: "#swagger-ui", deepLinking: true}});
  document.getElementById("fallback").hidden = true;
}}
</script>
</body>
</html>
"""
