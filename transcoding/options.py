"""Every transcoding behaviour that may differ between gateways, in one table.

Teams come to edge from Envoy's gRPC-JSON transcoder or from grpc-gateway, with
clients written against one of them. Where the two anchors (or the spec) leave a
choice, the choice is a field of `TranscodingOptions`, in the style of
grpc-httpjson-transcoding's `UrlUnescapeSpec` and grpc-gateway's `ServeMuxOption`s:
one frozen value, built once from the config (`transcoding.profile` plus
overrides, per backend where that makes sense) and handed to the route table,
which gives each route its backend's options; the matcher, the codecs, the query
mapper, the pipeline and the OpenAPI document all read the same object.

A *profile* is a named instance (`PROFILES`):

* ``edge`` -- the default: on every behaviour it agrees with at least one
  anchor, and it keeps the documented security refusals (encoded control
  characters in paths);
* ``envoy`` -- Envoy's transcoder with its default settings;
* ``grpc-gateway`` -- grpc-gateway v2's `runtime.ServeMux` with its defaults.

The README's "Compatibility profiles" table lists each field, its values in
each profile and what the anchors do; keep the two in step.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping

__all__ = [
    "DEFAULT_PROFILE", "PROFILES", "HeaderRules", "QueryBodyFields", "StreamFormat", "TranscodingOptions",
    "UnknownFields", "option_fields", "profile",
]


# ---- paths (transcoding/matcher.py and RouteTable.lookup read these)


class PathUnescape(str, Enum):
    """How percent-escapes in a path become variable values (Envoy's `url_unescape_spec`,
    grpc-gateway's `UnescapingMode`). A variable bound to one segment is always fully
    decoded; the modes differ for variables spanning several (``{name=shelves/*}``, ``**``)."""

    ALL_EXCEPT_RESERVED = "all-except-reserved"  # RFC 6570 reserved escapes kept as sent (Envoy's default)
    ALL_EXCEPT_SLASH = "all-except-slash"  # only %2F kept (http.proto's {+var} rule)
    ALL_CHARACTERS = "all-characters"  # everything decoded, %2F into '/'
    LEGACY = "legacy"  # the whole path decoded before routing: %2F separates segments (grpc-gateway's default)

    @property
    def kept_escapes(self) -> str:
        """The characters whose percent-escapes a multi-segment variable keeps as sent
        ('' where every escape is decoded): the matcher decodes by it, the OpenAPI
        document describes it."""
        return _KEPT_ESCAPES.get(self, "")


_KEPT_ESCAPES = {
    PathUnescape.ALL_EXCEPT_RESERVED: "!#$&'()*+,/:;=?@[]",  # RFC 6570 reserved characters
    PathUnescape.ALL_EXCEPT_SLASH: "/",
}


class CustomVerbs(str, Enum):
    """What a `:xyz` at the end of a path's last segment is."""

    DECLARED = "declared"  # a verb if some template declares it, then only its templates match (Envoy)
    ANY = "any"  # always a verb (Envoy's match_unregistered_custom_verb: true)
    DECLARED_OR_SEGMENT = "declared-or-segment"  # a declared verb's templates first, then ':xyz' is data (grpc-gateway)


class EmptyDoubleWildcard(str, Enum):
    """Where a ``**`` may match no segment at all."""

    END_ONLY = "end-only"  # only as the template's last segment (Envoy)
    ANYWHERE = "anywhere"  # also before more segments; a variable then holds an empty segment (grpc-gateway)


class PathControlChars(str, Enum):
    """Encoded control characters (%00-%1F, %7F) in a request path."""

    REJECT = "reject"  # 400: a backend may cut a value at NUL or echo CR LF into a header
    ALLOW = "allow"  # decoded into the field like any other character (both anchors)


class UnknownFields(str, Enum):
    """What happens to a name the request message does not have."""

    REJECT = "reject"  # 400 naming it
    IGNORE = "ignore"  # dropped, so a newer client works against an older backend


class QueryBodyFields(str, Enum):
    """A query parameter naming a field inside the part of the message the body sets
    (under `body: "<field>"`, or any field with `body: "*"`)."""

    REJECT_CONFLICTS = "reject_conflicts"  # fills what the body left unset; a value other than the body's is a 400
    BODY_WINS = "body_wins"  # fills what the body left unset; where the body set it, the body's value stands
    IGNORE = "ignore"  # dropped whether the body set the field or not (and on `body: "*"` the query is never read)


class StreamFormat(str, Enum):
    """How a server stream's messages are written to the client (a request may ask for
    another by `Accept`; edge/streaming.py writes them)."""

    NDJSON = "ndjson"  # one message a line, application/x-ndjson (Envoy's stream_newline_delimited)
    JSON_ARRAY = "json-array"  # `[`, messages separated by `,`, `]`: application/json (Envoy's default)
    GRPC_GATEWAY = "grpc-gateway"  # `{"result": msg}` lines, `{"error": status}` at a failure (application/json)
    SSE = "sse"  # Server-Sent Events: `data: msg` a message, text/event-stream (Envoy's stream_sse_style_delimited)


class HeaderRules(str, Enum):
    """Which request headers become backend metadata, and how backend metadata is named in
    the reply (edge/header_rules.py). Identity, credential and the gateway's own names are
    never set from a client header under any of them."""

    ALLOW_LIST = "allow-list"  # only `forward_headers`; replies: Grpc-Metadata-*/Grpc-Trailer-*
    GRPC_GATEWAY = "grpc-gateway"  # Grpc-Metadata-<name> -> <name>, permanent headers -> grpcgateway-<name>
    ENVOY = "envoy"  # every end-to-end header by its own name; replies: metadata by its own name


def _option(
    edge: Any, doc: str, *, envoy: Any = None, grpc_gateway: Any = None, per_backend: bool = True,
    lower_case: bool = False,
) -> Any:
    """One row of the table: the ``edge`` default, the value under each anchor's
    profile (None: the same as edge's), what it means, and whether a backend may
    set its own (`lower_case`: a set of names compared lower-cased, like header names).
    The profiles and the README's table are built from these rows."""
    return field(
        default=edge,
        metadata={
            "doc": doc,
            "per_backend": per_backend,
            "lower_case": lower_case,
            "envoy": edge if envoy is None else envoy,
            "grpc-gateway": edge if grpc_gateway is None else grpc_gateway,
        },
    )


@dataclass(frozen=True, slots=True)
class TranscodingOptions:
    """One value per behaviour; the defaults are the ``edge`` profile."""

    # ---- paths (gateway-wide: a path is routed before its backend is known)
    path_unescape: PathUnescape = _option(
        PathUnescape.ALL_EXCEPT_RESERVED,
        "percent-escapes in a variable spanning several segments: `all-except-reserved` keeps "
        "`!#$&'()*+,/:;=?@[]` encoded (Envoy's default), `all-except-slash` keeps `%2F`, `all-characters` "
        "decodes all, `legacy` decodes the whole path before routing so `%2F` splits segments and a "
        "malformed escape is a 400 (grpc-gateway's default); one-segment variables are always fully decoded",
        grpc_gateway=PathUnescape.LEGACY, per_backend=False,
    )
    custom_verbs: CustomVerbs = _option(
        CustomVerbs.DECLARED_OR_SEGMENT,
        "a `:xyz` ending the last segment: `declared` is a verb only if a template declares it, and then "
        "only that verb's templates match (Envoy); `any` is always a verb (Envoy's "
        "`match_unregistered_custom_verb`); `declared-or-segment` tries the verb's templates, then the "
        "others with `:xyz` kept in the segment (grpc-gateway)",
        envoy=CustomVerbs.DECLARED, per_backend=False,
    )
    empty_double_wildcard: EmptyDoubleWildcard = _option(
        EmptyDoubleWildcard.END_ONLY,
        "where `**` may match no segment: `end-only` (Envoy: `/v1/{name=files/**}/contents` needs a "
        "segment after `files`) or `anywhere` (grpc-gateway: it binds `files/`)",
        grpc_gateway=EmptyDoubleWildcard.ANYWHERE, per_backend=False,
    )
    path_control_chars: PathControlChars = _option(
        PathControlChars.REJECT,
        "encoded control characters (`%00`-`%1F`, `%7F`) in a path: a 400 (edge's security refusal: a "
        "backend may cut a value at NUL or echo CR LF into a header) or passed into the field (both anchors)",
        envoy=PathControlChars.ALLOW, grpc_gateway=PathControlChars.ALLOW, per_backend=False,
    )

    # ---- query parameters (README "Query parameters" says what each anchor does)
    unknown_query_parameters: UnknownFields = _option(
        UnknownFields.REJECT,
        "a query parameter naming no field: a 400 naming it (Envoy rejects or passes the request on "
        "untranscoded) or ignored (grpc-gateway; Envoy's `ignore_unknown_query_parameters`)",
        grpc_gateway=UnknownFields.IGNORE,
    )
    ignored_query_parameters: frozenset[str] = _option(
        frozenset(),
        "names never read from the query, field or not (Envoy's `ignored_query_parameters`): API keys, "
        "`access_token`, cache busters",
    )
    query_body_fields: QueryBodyFields = _option(
        QueryBodyFields.REJECT_CONFLICTS,
        "a query parameter inside the body's part (`shelf.theme` with `body: \"shelf\"`, any field with "
        "`body: \"*\"`): fills what the body left unset, a value other than the body's is a 400 "
        "(Envoy's `reject_binding_body_field_collisions`); `body_wins` (Envoy's default); `ignore` "
        "(grpc-gateway drops it, and reads no query on `body: \"*\"`)",
        envoy=QueryBodyFields.BODY_WINS, grpc_gateway=QueryBodyFields.IGNORE,
    )
    query_unescape_plus: bool = _option(
        True,
        "`+` in query names and values is a space (grpc-gateway, HTML forms); false keeps it "
        "(Envoy's `query_param_unescape_plus`)",
        envoy=False,
    )
    query_value_json: bool = _option(
        True,
        "a `google.protobuf.Value` parameter is JSON text (`true`, `1`, `{\"a\":1}`: grpc-gateway), text that "
        "is not JSON a string; false: always a string (Envoy)",
        envoy=False,
    )
    case_insensitive_enums: bool = _option(
        False,
        "enum names also match upper-cased with `-` as `_`, in query, path and JSON body "
        "(Envoy's `case_insensitive_enum_parsing`)",
    )

    # ---- bodies
    unknown_body_fields: UnknownFields = _option(
        UnknownFields.IGNORE,
        "a JSON body field the request message does not have: ignored (both anchors, so a newer "
        "client works against an older backend) or a 400 naming it",
    )
    unknown_body_enum_names: UnknownFields = _option(
        UnknownFields.IGNORE,
        "an enum value name in a JSON body that the enum does not have: ignored like an unknown field, "
        "leaving the field unset and the list or map without that entry (grpc-gateway: protojson's "
        "DiscardUnknown), or a 400 naming the field (Envoy, whose unknown-field setting spares enums)",
        envoy=UnknownFields.REJECT,
    )
    patch_update_mask: bool = _option(
        True,
        "a PATCH whose request has one `google.protobuf.FieldMask` field, left empty by path and query, with "
        "`body` naming a message field: the mask is filled with the fields the JSON body names, so what the "
        "client did not send is not overwritten (grpc-gateway's PATCH feature); false: the backend gets no "
        "mask (Envoy)",
        envoy=False,
    )
    whitespace_body_is_empty: bool = _option(
        False,
        "a body of only whitespace: a 400 (Envoy) or, like an empty body, an empty message "
        "(grpc-gateway, whose JSON decoder reads it as the end of input)",
        grpc_gateway=True,
    )

    # ---- streaming replies
    stream_format: StreamFormat = _option(
        StreamFormat.NDJSON,
        "a server stream's format when the request's `Accept` asks for none of them: `ndjson`, "
        "`json-array` (Envoy), `grpc-gateway` (`{\"result\": ...}` lines) or `sse` (text/event-stream)",
        envoy=StreamFormat.JSON_ARRAY, grpc_gateway=StreamFormat.GRPC_GATEWAY,
    )

    # ---- headers and metadata
    forward_headers: frozenset[str] = _option(
        frozenset(), "more request headers passed to backends as metadata", lower_case=True
    )
    header_rules: HeaderRules = _option(
        HeaderRules.ALLOW_LIST,
        "request headers passed as metadata besides `forward_headers`: none (`allow-list`), grpc-gateway's "
        "(`Grpc-Metadata-*`, `grpcgateway-*`, `x-forwarded-*`) or Envoy's (every end-to-end header); "
        "credentials, identity and the gateway's own names never",
        envoy=HeaderRules.ENVOY, grpc_gateway=HeaderRules.GRPC_GATEWAY,
    )
    response_metadata: bool = _option(
        False,
        "backend metadata returned as response headers: `Grpc-Metadata-<key>` and, unary, "
        "`Grpc-Trailer-<key>` (under `header_rules: envoy`, by their own names)",
        envoy=True, grpc_gateway=True,
    )

    # ---- JSON output (both anchors' print options)
    emit_unpopulated: bool = _option(
        False,
        "print fields without presence that hold their zero value: `0`, `\"\"`, `false`, the zero "
        "enum name, `[]`, `{}` (Envoy's always_print_primitive_fields; grpc-gateway's default EmitUnpopulated)",
        grpc_gateway=True,
    )
    unset_messages_as_null: bool = _option(
        False,
        "with `emit_unpopulated`, an unset message field outside a oneof is printed as `null` "
        "(grpc-gateway: protojson's EmitUnpopulated) instead of left out (Envoy)",
        grpc_gateway=True,
    )
    use_proto_names: bool = _option(False, "print proto field names instead of lowerCamelCase")
    enums_as_ints: bool = _option(
        False, "print enum values as numbers (Envoy's always_print_enums_as_ints, grpc-gateway's UseEnumNumbers)"
    )

    def replace(self, **changes: Any) -> "TranscodingOptions":
        """A copy with some fields changed (values may be given as the config spells them)."""
        return dataclasses.replace(self, **{name: _coerce(name, value) for name, value in changes.items()})

    def differences(self, other: "TranscodingOptions") -> dict[str, tuple[Any, Any]]:
        """Fields whose values differ: name -> (self's, other's)."""
        return {
            f.name: (getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        }


def option_fields() -> tuple[dataclasses.Field, ...]:
    """The table's fields, in order (the config builds its keys from them)."""
    return dataclasses.fields(TranscodingOptions)


def _coerce(name: str, value: Any) -> Any:
    """Config spellings to field values: enums from their strings, sets from lists."""
    row = _ROWS.get(name)
    if row is None:
        raise TypeError(f"unknown transcoding option {name!r}")
    default = row.default
    if isinstance(default, Enum) and not isinstance(value, Enum):
        return type(default)(value)
    if isinstance(default, frozenset):
        return frozenset(str(v).lower() for v in value) if row.metadata["lower_case"] else frozenset(value)
    return value


_ROWS = {f.name: f for f in option_fields()}

DEFAULT_PROFILE = "edge"

PROFILES: Mapping[str, TranscodingOptions] = {
    name: TranscodingOptions(**{f.name: f.default if name == "edge" else f.metadata[name] for f in option_fields()})
    for name in ("edge", "envoy", "grpc-gateway")
}


def profile(name: str, overrides: Mapping[str, Any] | None = None) -> TranscodingOptions:
    """The named profile with `overrides` applied (None values are left at the profile's)."""
    try:
        base = PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown transcoding profile {name!r}; known: {', '.join(PROFILES)}") from None
    changes = {k: v for k, v in (overrides or {}).items() if v is not None}
    return base.replace(**changes) if changes else base


def markdown_table() -> str:
    """The README's table of every option and its value in each profile
    (`python -m transcoding.options` prints it; a test keeps the README in step)."""

    def show(value: Any) -> str:
        if isinstance(value, Enum):
            return f"`{value.value}`"
        if isinstance(value, frozenset):
            return "`[" + ", ".join(sorted(value)) + "]`"
        return f"`{str(value).lower()}`" if isinstance(value, bool) else f"`{value}`"

    lines = [
        "| option | what it decides | edge (default) | envoy | grpc-gateway | per backend |",
        "|---|---|---|---|---|---|",
    ]
    for row in option_fields():
        meta = row.metadata
        lines.append(
            f"| `{row.name}` | {meta['doc']} | {show(row.default)} | {show(meta['envoy'])} "
            f"| {show(meta['grpc-gateway'])} | {'yes' if meta['per_backend'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
