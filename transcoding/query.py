"""Query parameters (and path variables) onto fields of a request message.

* a key is a dotted field path; every element may be the proto name or the
  json_name of its field (a json_name holding brackets or dots resolves too,
  and one holding percent-escapes also by its decoded spelling, as Envoy's
  lookup does); only singular message fields can be traversed;
* a map field takes ``m[key]=value`` (grpc-gateway): string, integer and bool
  keys; scalar, enum and well-known-type values (plain message values have no
  text form: a 400, as in grpc-gateway);
* values take the text forms of transcoding/textforms.py;
* repeated fields take one element per occurrence (``ids=1&ids=2``); a
  singular field or a map entry given twice is a 400;
* an empty value sets a string or bytes field (and a StringValue, BytesValue
  or Value), as both anchors do, and is skipped for every other type (blank
  HTML form inputs), where both anchors would refuse it;
* with form-decoding ``+`` is a space: bytes and Timestamp values, which can
  never hold a space, read it back as ``+``.

`QueryMapper` holds the per-message-type part (names, parsers), shared by
every route of that type: it resolves a key to a `FieldTarget`
(transcoding/fieldtarget.py), which sets the values. `RouteQuery` holds one
route's rules over it: what its path
and body bind and what the options say about unknown names, always-ignored
names and fields inside the body. Each key a request sends is resolved and
classified once per route and then served from a dict, so a request does dict
lookups and the final set. Errors are ``BadRequest`` naming the parameter.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Collection, Iterable
from urllib.parse import unquote

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from .errors import BadRequest
from .fieldtarget import FieldInfo, FieldTarget, error_reason, field_info, make_target
from .options import QueryBodyFields, TranscodingOptions, UnknownFields
from .textforms import JSON_TEXT_TYPES

__all__ = [
    "ABSENT", "RAW_BODY", "PathError", "QueryMapper", "QueryParameter", "RouteQuery", "apply_query", "mapper_for",
]

_MAP_KEY = re.compile(r"(.*)\[(.*)\]\Z", re.DOTALL)  # greedy, as grpc-gateway's `^(.*)\[(.*)\]$`
_CACHE_LIMIT = 4096
_PARAMETER_DEPTH = 8  # nesting levels the OpenAPI parameter list goes down, on top of the cycle check
_T = FieldDescriptor


class PathError(ValueError):
    """A field path that does not name a settable field of the message;
    `unknown` when some element names no field at all."""

    def __init__(self, message: str, *, unknown: bool = False) -> None:
        super().__init__(message)
        self.unknown = unknown


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()  # "the request had no body" (unlike a JSON null or {})
RAW_BODY: Any = object()  # the body went whole into a google.api.HttpBody field


@dataclass(frozen=True, slots=True)
class QueryParameter:
    """One query parameter a route takes, as the OpenAPI document describes it."""

    name: str  # as spelled in the document (json or proto names, dotted)
    field: FieldDescriptor | None  # the leaf field; None for an ignored name
    kind: str  # "value", "list" (repeat it), "map" (name[key]=value), "json" (JSON text), "ignored"


class QueryMapper:
    """Per-message-type query mapping, built once and shared by its routes.

    Each message type gets one dict from every spelling of every field name to
    its precomputed parse/fill routine; each spelled key resolves once and is
    then cached, so a request only does dict lookups and the final set.
    """

    def __init__(
        self, descriptor: Descriptor, *, case_insensitive_enums: bool = False, value_json: bool = True
    ) -> None:
        self.descriptor = descriptor
        self.case_insensitive_enums = case_insensitive_enums
        self.value_json = value_json
        self._types: dict[str, tuple[dict[str, FieldInfo], bool]] = {}
        self._targets: dict[str, FieldTarget] = {}
        self._maps: dict[str, FieldTarget] = {}  # "m" of m[key]=value, resolved
        self._routes: dict[tuple[Any, ...], RouteQuery] = {}

    # ---- resolution

    def _index(self, descriptor: Descriptor) -> tuple[dict[str, FieldInfo], bool]:
        """name -> field for every spelling, and whether some json_name holds a '.'."""
        entry = self._types.get(descriptor.full_name)
        if entry is None:
            index: dict[str, FieldInfo] = {}
            for field in descriptor.fields:
                info = field_info(field, self.case_insensitive_enums, self.value_json)
                index.setdefault(field.name, info)
                index.setdefault(field.json_name, info)
                if "%" in field.json_name:  # Envoy also matches such a json_name by its decoded spelling
                    index.setdefault(unquote(field.json_name), info)
            entry = (index, any("." in f.json_name for f in descriptor.fields))
            self._types[descriptor.full_name] = entry
        return entry

    def target(self, key: str) -> FieldTarget:
        """Resolve a query key (dotted path in proto or json names, or ``m[key]``
        on a map field) to a settable target. PathError says why it cannot be set."""
        cached = self._targets.get(key)
        if cached is not None:
            return cached
        try:
            target = self._resolve(key.split("."), key)
        except PathError as exc:
            if not exc.unknown or not key.endswith("]"):
                raise
            match = _MAP_KEY.match(key)
            if match is None:
                raise
            target = self._entry(match.group(1), match.group(2), key, exc)
            return target  # entries are not cached: the keys are the client's to vary
        if len(self._targets) < _CACHE_LIMIT:
            self._targets[key] = target
        return target

    def _entry(self, path: str, key_text: str, key: str, unknown: PathError) -> FieldTarget:
        base = self._maps.get(path)
        if base is None:
            try:
                base = self._resolve(path.split("."), path, map_ok=True)
            except PathError as exc:
                raise unknown if exc.unknown else exc from None
            if not base.leaf.is_map:
                raise PathError(f"{base.path!r} is not a map field, so {key!r} names nothing")
            if len(self._maps) < _CACHE_LIMIT:
                self._maps[path] = base
        leaf = base.leaf
        assert leaf.key_parse is not None
        try:
            parsed = leaf.key_parse(key_text)
        except ValueError as exc:
            raise PathError(f"invalid key for map field {base.path!r}: {error_reason(exc)}") from None
        if leaf.key_type == _T.TYPE_BOOL:
            key_json = "true" if parsed else "false"
        else:
            key_json = str(parsed)
        return make_target(list(base.chain), parsed, key_json)

    def _resolve(self, parts: list[str], key: str, *, map_ok: bool = False) -> FieldTarget:
        descriptor = self.descriptor
        chain: list[FieldInfo] = []
        position = 0
        while position < len(parts):
            index, dotted_names = self._index(descriptor)
            info = index.get(parts[position])
            end = position
            if info is None and dotted_names:  # a json_name with dots in it: try the longer spellings
                for end in range(position + 1, min(len(parts), position + 8)):
                    info = index.get(".".join(parts[position: end + 1]))
                    if info is not None:
                        break
            walked = ".".join(f.name for f in chain)
            if info is None:
                raise PathError(f"{descriptor.full_name} has no field {parts[position]!r}", unknown=True)
            chain.append(info)
            here = _join(walked, info.name)
            position = end + 1
            last = position == len(parts)
            if info.is_map:
                if last and map_ok:
                    break
                if info.parse is None and info.fill is None:
                    raise PathError(
                        f"{here!r} is a map field with message values, which have no text form; "
                        "set it in a JSON body"
                    )
                raise PathError(f"{here!r} is a map field; set its entries as {here}[key]=value")
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
        if map_ok and chain and chain[-1].is_map and (chain[-1].parse is None and chain[-1].fill is None):
            raise PathError(
                f"{'.'.join(f.name for f in chain)!r} is a map field with message values, which have no text "
                "form; set it in a JSON body"
            )
        return make_target(chain)

    def proto_names(self, parts: list[str]) -> list[str]:
        """`parts` with every leading element that names a field (either spelling)
        replaced by its proto name; the rest as given (grpc-gateway's normalisation)."""
        descriptor: Descriptor | None = self.descriptor
        names: list[str] = []
        for position, part in enumerate(parts):
            info = self._index(descriptor)[0].get(part) if descriptor is not None else None
            if info is None:
                return names + parts[position:]
            names.append(info.name)
            descriptor = info.message_type if not info.repeated and not info.is_map else None
        return names

    def route(
        self, path_fields: Iterable[str] = (), body: str = "", *, raw_body: bool = False,
        options: TranscodingOptions | None = None,
    ) -> "RouteQuery":
        """The rules of one route over this mapper (cached: routes alike share one)."""
        options = options or _DEFAULT_OPTIONS
        key = (frozenset(path_fields), body, raw_body, options.unknown_query_parameters,
               options.ignored_query_parameters, options.query_body_fields)
        found = self._routes.get(key)
        if found is None:
            found = self._routes[key] = RouteQuery(self, key[0], body, raw_body=raw_body, options=options)
        return found

    def apply(self, message: Message, params: Iterable[tuple[str, str]], bound: Collection[str] = ()) -> None:
        """Set fields of `message` from decoded query parameters; a parameter at,
        under or above a field in `bound` (dotted proto names) is "set twice"."""
        self.route(bound).apply(message, params)


_DEFAULT_OPTIONS = TranscodingOptions()

# Dispositions of a resolved key on one route.
_FREE, _PATH, _BODY, _DROP = 0, 1, 2, 3
_SKIP: Any = object()  # an unknown key the route ignores


class RouteQuery:
    """One route's query rules: what its path and body bind and what its options
    say about unknown names, ignored names and fields inside the body.

    Built once per route (`QueryMapper.route`); each key a request sends is
    resolved and classified once per route and then served from a dict.
    """

    def __init__(
        self, mapper: QueryMapper, path_fields: Collection[str], body: str, *, raw_body: bool,
        options: TranscodingOptions,
    ) -> None:
        self.mapper = mapper
        self.path_fields = frozenset(path_fields)
        self.body = body
        self.raw_body = raw_body
        self._ignore_unknown = options.unknown_query_parameters is UnknownFields.IGNORE
        self._ignored = options.ignored_query_parameters
        self._mode = options.query_body_fields
        # grpc-gateway never reads the query of a `body: "*"` route.
        self.reads_nothing = body == "*" and self._mode is QueryBodyFields.IGNORE
        self._body_depth = 0 if body in ("", "*") else body.count(".") + 1
        self._entries: dict[str, Any] = {}

    def apply(self, message: Message, params: Iterable[tuple[str, str]], body_value: Any = ABSENT) -> None:
        """Set fields of `message` from decoded query parameters. `body_value` is
        the request body as parsed JSON (ABSENT: no body; RAW_BODY: an HttpBody),
        which says what the body set where a parameter lands inside it."""
        if self.reads_nothing:
            return
        ignored = self._ignored
        entries = self._entries
        seen: dict[Any, str] | None = None
        for key, value in params:
            if ignored and key in ignored:
                continue
            entry = entries.get(key)
            if entry is None:
                entry = self._classify(key)
            if entry is _SKIP:
                continue
            target, where = entry
            if where:
                if where == _DROP:
                    continue
                if where == _PATH:
                    raise BadRequest(
                        f"field set twice: query parameter {key!r} sets {target.path!r}, which the request path already sets",
                        field=key,
                    )
            if not value and not target.takes_empty:
                continue
            once = target.once
            if once is not None:
                if seen is None:
                    seen = {}
                earlier = seen.get(once)
                if earlier is not None:
                    again = "more than once" if earlier == key else f"as both {earlier!r} and {key!r}"
                    what = f"entry {target.key_json!r} of map" if target.is_entry else "field"
                    raise BadRequest(
                        f"query parameter {key!r} given {again}, but {what} {target.path!r} takes one value",
                        field=key,
                    )
                seen[once] = key
            if where == _BODY and self._body_has(message, target, key, value, body_value):
                continue
            target.assign(message, value, label="query parameter", field=key)

    def _classify(self, key: str) -> Any:
        try:
            target = self.mapper.target(key)
        except PathError as exc:
            if (exc.unknown and self._ignore_unknown) or self._dropped_unresolved(key):
                entry: Any = _SKIP
            else:
                what = "unknown query parameter" if exc.unknown else "query parameter"
                raise BadRequest(f"{what} {key!r}: {exc}", field=key) from None
        else:
            entry = (target, self._where(target.path, target.prefixes))
        if len(self._entries) < _CACHE_LIMIT:  # bounded: past it, keys resolve per request (still right)
            self._entries[key] = entry
        return entry

    def _dropped_unresolved(self, key: str) -> bool:
        """Under `ignore`, a key that does not resolve but starts at a field the path
        or body binds (`shelf`, `shelf.nope`) is dropped unread, as grpc-gateway's
        filter matches the key's leading names before looking at the rest."""
        if self._mode is not QueryBodyFields.IGNORE:
            return False
        names = self.mapper.proto_names(key.split("."))
        prefixes = _prefixes_of(".".join(names))
        return self._where(".".join(names), prefixes) == _DROP

    def _where(self, path: str, prefixes: frozenset[str]) -> int:
        """How a key at `path` (with its `prefixes`) stands to what the path and body bind."""
        ignore = self._mode is QueryBodyFields.IGNORE
        if _touches(path, prefixes, self.path_fields):
            return _DROP if ignore else _PATH
        body = self.body
        if body == "*" or (body and (body in prefixes or path in _prefixes_of(body))):
            return _DROP if ignore else _BODY
        return _FREE

    def _body_has(self, message: Message, target: FieldTarget, key: str, value: str, body_value: Any) -> bool:
        """For a parameter inside the body's part: True when the body decides (the
        parameter is dropped), False when the parameter is to be set; BadRequest
        for a conflict under `reject_conflicts`."""
        if body_value is ABSENT:
            return False
        if body_value is RAW_BODY:
            if self._mode is QueryBodyFields.BODY_WINS:
                return True
            raise BadRequest(
                f"field set twice: query parameter {key!r} sets {target.path!r}, which the raw request body sets",
                field=key,
            )
        if target.repeated or not _json_sets(target, body_value, self._body_depth):
            return False  # lists take the body's elements and the query's, as Envoy does
        if self._mode is QueryBodyFields.BODY_WINS:
            return True
        if target.holds(message, value, field=key):
            return True
        raise BadRequest(
            f"query parameter {key!r} sets {target.path!r} to a value other than the request body's",
            field=key,
        )

    def parameters(self, *, use_proto_names: bool = False) -> list[QueryParameter]:
        """The query parameters this route reads, for the OpenAPI document: every
        settable field the path and body leave free (recursing into singular
        messages until a type repeats or `_PARAMETER_DEPTH`), maps as ``m[key]``,
        and the names the options always ignore."""
        out: list[QueryParameter] = []
        if self.reads_nothing:
            return out
        if self.body != "*":
            descriptor = self.mapper.descriptor
            self._walk(descriptor, "", "", use_proto_names, [descriptor.full_name], out)
        ignored = self._ignored
        if ignored:
            out = [p for p in out if p.name not in ignored]
            out.extend(QueryParameter(name, None, "ignored") for name in sorted(ignored))
        return out

    def _walk(
        self, descriptor: Descriptor, proto_prefix: str, name_prefix: str, use_proto_names: bool,
        stack: list[str], out: list[QueryParameter],
    ) -> None:
        index, _ = self.mapper._index(descriptor)
        for field in descriptor.fields:
            info = index[field.name]
            proto_path = proto_prefix + field.name
            name = name_prefix + (field.name if use_proto_names else field.json_name)
            if self._where(proto_path, _prefixes_of(proto_path)) != _FREE:
                continue
            if field.enum_type is not None and field.enum_type.full_name == "google.protobuf.NullValue":
                continue  # only ever null: nothing to say in a query string
            if info.is_map:
                if info.parse is not None or info.fill is not None:
                    out.append(QueryParameter(name, field, "map"))
                continue
            message_type = info.message_type
            if message_type is not None and info.fill is None:
                if (
                    info.repeated
                    or message_type.full_name.startswith("google.protobuf.")
                    or message_type.full_name in stack
                    or len(stack) > _PARAMETER_DEPTH
                ):
                    continue
                self._walk(message_type, proto_path + ".", name + ".", use_proto_names, stack + [message_type.full_name], out)
                continue
            if message_type is not None and message_type.full_name in JSON_TEXT_TYPES:
                kind = "json"
            else:
                kind = "list" if info.repeated else "value"
            out.append(QueryParameter(name, field, kind))


def _prefixes_of(path: str) -> frozenset[str]:
    names = path.split(".")
    return frozenset(".".join(names[: i + 1]) for i in range(len(names)))


def _touches(path: str, prefixes: frozenset[str], bound: Collection[str]) -> bool:
    """At, under or above a bound field."""
    if not bound:
        return False
    if not prefixes.isdisjoint(bound):
        return True
    below = path + "."
    return any(b.startswith(below) for b in bound)


def _json_sets(target: FieldTarget, body_value: Any, depth: int) -> bool:
    """Whether the parsed JSON body (the value of the body field, or the whole
    message for ``*``) gives the field at `target` a value (null is no value)."""
    node = body_value
    if node is None:
        return False
    for info in target.chain[depth:]:
        if type(node) is not dict:
            return True  # the body set a whole value (a well-known type's JSON form) above it
        item = node.get(info.json_name)
        if item is None and info.name != info.json_name:
            item = node.get(info.name)
        if item is None:
            return False
        node = item
    if target.is_entry and type(node) is dict:
        return node.get(target.key_json) is not None
    return True


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


@lru_cache(maxsize=512)
def _mapper(descriptor: Descriptor, case_insensitive_enums: bool, value_json: bool) -> QueryMapper:
    return QueryMapper(descriptor, case_insensitive_enums=case_insensitive_enums, value_json=value_json)


def mapper_for(descriptor: Descriptor, options: TranscodingOptions | None = None) -> QueryMapper:
    """The shared QueryMapper of a message type under these options."""
    options = options or _DEFAULT_OPTIONS
    return _mapper(descriptor, options.case_insensitive_enums, options.query_value_json)


def apply_query(message: Message, params: list[tuple[str, str]], bound: Collection[str] = ()) -> None:
    """Set fields of `message` from already percent-decoded query parameters."""
    mapper_for(message.DESCRIPTOR).apply(message, params, bound)
