"""Per-route request and response codecs, built once per route.

Request decoding follows the HttpRule spec and its reference
implementations (grpc-gateway, Envoy's transcoder):

* ``body: ""`` -- the HTTP body is ignored (the spec: "omitted for not having
  any HTTP request body"; grpc-gateway and Envoy never read it);
* ``body: "*"`` -- the JSON object is the whole message;
* ``body: "<field>"`` -- the JSON value is that field;
* query parameters fill the remaining fields, and (as Envoy's bindings do)
  fields inside the body's part the body left unset; one the body did set is
  the `query_body_fields` option's to decide (transcoding/query.py);
* path variables win over the body: a field bound by the path keeps the path's
  value whatever the body says (grpc-gateway's order, Envoy's default), so
  what authorization saw in the URL is what the backend gets; the query can
  never set such a field;
* a PATCH that leaves its request's FieldMask empty gets the fields its body
  named as the mask, when `patch_update_mask` is on (grpc-gateway's PATCH
  feature, transcoding/patchmask.py);
* an empty body is an empty message / unset field; a body of only whitespace
  is a 400 (Envoy) unless `whitespace_body_is_empty` (grpc-gateway);
* ``google.api.HttpBody`` (as the request type with ``"*"``, or as the body
  field) takes the raw bytes and the Content-Type, no JSON involved;
* a client- or bidi-streaming body (`RequestCodec.decode_stream`) is one JSON
  array of message bodies (Envoy's; the bindings fill the first message) or a
  sequence of JSON values (NDJSON, or values one after another as Go's
  json.Decoder reads them; the bindings fill every message).

JSON is read strictly (transcoding/jsonbody.py: the stdlib parser plus a
duplicate-key check, as orjson would silently keep the last value), then
mapped by the fast decoder (transcoding/fastjson.py) or, for what it does not take, by json_format after
transcoding/bodycheck.py has refused one field under both spellings and
applied `unknown_body_enum_names`. Every failure is a BadRequest naming the
JSON field path. The Content-Type of a JSON body is not checked (grpc-gateway
and Envoy read whatever arrives as JSON, and ``curl -d`` says
form-urlencoded), except that a charset other than UTF-8 is a 415.

Responses are canonical proto3 JSON, compact, printed as the route's options
say (field names, enums as numbers, unpopulated fields, grpc-gateway's nulls):
the fast encoder's dict (json_format.MessageToDict for what it does not take)
then orjson.dumps, which measured ~20% faster and smaller than
MessageToJson(indent=None) (that still puts spaces after separators).
"""
from __future__ import annotations

from typing import Any, Iterable

import orjson
from google.protobuf import descriptor_pool as _descriptor_pool
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from .bodycheck import DROP, REJECT, BodyCheck
from .enums import CaseInsensitiveEnums
from .errors import BadRequest, TranscodeError
from .fastjson import DictDecoder, DictEncoder
from .fieldtarget import FieldTarget
from .jsonbody import JSON_SPACE, check_charset, json_error, json_kind, load_json, load_json_values
from .options import TranscodingOptions, UnknownFields
from .patchmask import mask_field, paths_from_body
from .query import ABSENT, RAW_BODY, PathError, QueryMapper, RouteQuery, mapper_for

__all__ = ["CodecConfigError", "RequestCodec", "ResponseCodec", "JSON_CONTENT_TYPE", "HTTP_BODY"]

HTTP_BODY = "google.api.HttpBody"
JSON_CONTENT_TYPE = "application/json"
OCTET_STREAM = "application/octet-stream"
DEFAULT_OPTIONS = TranscodingOptions()
_MAX_DEPTH = 100  # json_format's default; also upb's default decode depth at the backend


class CodecConfigError(ValueError):
    """An HttpRule that cannot work with its message types (a route problem,
    not a client error)."""


# ------------------------------------------------------------------ helpers

def _field_chain(descriptor: Descriptor, dotted: str, what: str) -> list[FieldDescriptor]:
    """Proto-name field path -> descriptors; every element but the last must
    be a singular message field."""
    chain: list[FieldDescriptor] = []
    current: Descriptor | None = descriptor
    for part in dotted.split("."):
        if current is None:
            raise CodecConfigError(f"{what} {dotted!r}: {chain[-1].name!r} is not a singular message field")
        field = current.fields_by_name.get(part)
        if field is None:
            raise CodecConfigError(f"{what} {dotted!r}: {current.full_name} has no field {part!r}")
        chain.append(field)
        singular_message = field.message_type is not None and not field.is_repeated
        current = field.message_type if singular_message else None
    return chain


def _walk(message: Message, chain: list[FieldDescriptor]) -> Message:
    for field in chain:
        message = getattr(message, field.name)
    return message


def _is_http_body(descriptor: Descriptor | None) -> bool:
    return descriptor is not None and descriptor.full_name == HTTP_BODY


# ------------------------------------------------------------------ request

class RequestCodec:
    """Path variables + query + body -> one request message, for one HttpRule."""

    def __init__(
        self,
        input_type: Descriptor,
        body: str,
        path_fields: Iterable[str],
        *,
        options: TranscodingOptions = DEFAULT_OPTIONS,
        http_method: str = "",
    ) -> None:
        """`http_method` is the route's (a PATCH may fill its update mask from the body)."""
        self.input_type = input_type
        self.body = body
        self.options = options
        self.ignore_unknown_fields = options.unknown_body_fields is UnknownFields.IGNORE
        ignore_enum_names = options.unknown_body_enum_names is UnknownFields.IGNORE
        self._whitespace_is_empty = options.whitespace_body_is_empty
        self._cls = message_factory.GetMessageClass(input_type)
        self._pool = input_type.file.pool
        self._query: QueryMapper = mapper_for(input_type, options)
        path_fields = list(path_fields)
        self._path_targets: dict[tuple[str, ...], FieldTarget] = {}
        for dotted in path_fields:
            _field_chain(input_type, dotted, "path variable")  # proto names only, as the spec says
            try:
                self._path_targets[tuple(dotted.split("."))] = self._query.target(dotted)
            except PathError as exc:
                raise CodecConfigError(f"path variable {dotted!r}: {exc}") from None

        self._body_chain: list[FieldDescriptor] = []
        self._body_raw = False  # HttpBody: raw bytes, no JSON
        self._body_object = False  # body must be a JSON object (a plain message)
        self._body_wkt = False  # singular message with a JSON form of its own
        self._body_list = False  # a repeated (not map) field: its body is a JSON array
        if body == "*":
            self._body_raw = _is_http_body(input_type)
        elif body:
            self._body_chain = _field_chain(input_type, body, "body field")
            leaf = self._body_chain[-1]
            singular_message = leaf.message_type is not None and not leaf.is_repeated
            self._body_raw = singular_message and _is_http_body(leaf.message_type)
            self._body_wkt = singular_message and leaf.message_type.full_name.startswith("google.protobuf.")
            self._body_object = singular_message and not self._body_raw and not self._body_wkt
            self._body_list = leaf.is_repeated and not (leaf.message_type and leaf.message_type.GetOptions().map_entry)
            for dotted in path_fields:
                if self._body_raw and (dotted == body or dotted.startswith(body + ".")):
                    raise CodecConfigError(f"path variable {dotted!r} is inside the raw body field {body!r}")
        self.query: RouteQuery = self._query.route(path_fields, body, raw_body=self._body_raw, options=options)
        #: the FieldMask a PATCH fills from its body's keys when left empty (None: none here)
        self.patch_mask = (mask_field(input_type) if options.patch_update_mask and http_method == "PATCH"
                            and self._body_object and len(self._body_chain) == 1 else None)
        self._enums = CaseInsensitiveEnums() if options.case_insensitive_enums else None
        self._fast = DictDecoder(
            ignore_unknown_fields=self.ignore_unknown_fields, ignore_unknown_enum_names=ignore_enum_names
        )
        # json_format's enum-name handling follows ignore_unknown_fields; where the route
        # decides them apart, the fallback path's check refuses or drops the names first.
        enum_names = None if ignore_enum_names == self.ignore_unknown_fields else DROP if ignore_enum_names else REJECT
        self._check = BodyCheck(self._pool, enum_names)

    def decode(
        self,
        path_bindings: list[tuple[tuple[str, ...], str]],
        query: list[tuple[str, str]],
        body: bytes,
        content_type: str | None,
    ) -> Message:
        """One request message; BadRequest (or UnsupportedMediaType) on bad input."""
        message = self._cls()
        body_value = ABSENT  # what the query rules see of the body (transcoding/query.py)
        if self.body:
            if self._body_raw:
                self._raw_body(message, body, content_type)
                body_value = RAW_BODY
            elif body:
                if body.strip(JSON_SPACE):
                    check_charset(content_type)
                    body_value = self._fill(message, load_json(body))
                else:
                    self._whitespace(content_type)
        if path_bindings:
            self._apply_path(message, path_bindings)
        if query:
            self.query.apply(message, query, body_value)
        if self.patch_mask is not None:
            self._fill_patch_mask(message, body_value)
        return message

    def _fill_patch_mask(self, message: Message, body_value: Any) -> None:
        """The update mask from the body's keys, unless the path or the query gave one."""
        mask = getattr(message, self.patch_mask.name)
        if mask.paths:
            return
        mask.SetInParent()  # with no body, an empty mask, as grpc-gateway sets
        if type(body_value) is dict:
            mask.paths.extend(paths_from_body(body_value, self._body_chain[-1].message_type, self.body))

    def decode_stream(
        self,
        path_bindings: list[tuple[tuple[str, ...], str]],
        query: list[tuple[str, str]],
        body: bytes,
        content_type: str | None,
    ) -> list[Message]:
        """The request messages of a client- or bidi-streaming call, from one body:

        * one JSON array (Envoy's format): each element is one message's body, as a
          unary body of this route would be (for a repeated body field Envoy also
          takes a bare element as a one-element list); ``[]`` is no message; the path
          and query bindings go to the first message only, as Envoy does;
        * otherwise a sequence of JSON values, one message each: NDJSON, or values
          one after another (pretty-printed too), as grpc-gateway's json.Decoder reads
          them; every message gets the path and query bindings (see the README).

        An empty body is no message; a google.api.HttpBody body is one message of
        the raw bytes; a route without a body rule (``body: ""``) ignores the body, as
        a unary call does, and sends one message of its bindings. BadRequest names
        the element or value, and its line.
        """
        if not self.body:
            return [self._one_of_stream(None, path_bindings, query)]
        if not body:
            return []
        if self._body_raw:
            return [self.decode(path_bindings, query, body, content_type)]
        if not body.strip(JSON_SPACE):
            self._whitespace(content_type)
            return []
        check_charset(content_type)
        values = load_json_values(body)
        if len(values) == 1 and type(values[0][0]) is list:
            messages = []
            for index, element in enumerate(values[0][0]):
                if self._body_list and type(element) is not list and element is not None:
                    element = [element]
                try:
                    first = index == 0
                    messages.append(self._one_of_stream(element, path_bindings if first else (), query if first else ()))
                except TranscodeError as exc:
                    exc.message = f"element {index} of the JSON array body: {exc.message}"
                    raise
            return messages
        messages = []
        for number, (value, line) in enumerate(values, start=1):
            try:
                messages.append(self._one_of_stream(value, path_bindings, query))
            except TranscodeError as exc:
                exc.message = f"value {number} (line {line}) of the request stream: {exc.message}"
                raise
        return messages

    def _one_of_stream(self, value: Any, path_bindings: Any, query: Any) -> Message:
        message = self._cls()
        body_value = ABSENT
        if self.body:
            body_value = self._fill(message, value)
        if path_bindings:
            self._apply_path(message, path_bindings)
        if query:
            self.query.apply(message, query, body_value)
        return message

    def _whitespace(self, content_type: str | None) -> None:
        """A body of only whitespace: Envoy refuses it, grpc-gateway reads an empty message."""
        check_charset(content_type)
        if not self._whitespace_is_empty:
            raise BadRequest(
                "request body is only whitespace: send a JSON value, or no body at all for an empty message"
            )

    def _apply_path(self, message: Message, bindings: list[tuple[tuple[str, ...], str]]) -> None:
        cleared: set[str] = set()
        for names, value in bindings:
            target = self._path_targets.get(names)
            dotted = ".".join(names)
            if target is None:
                try:
                    target = self._query.target(dotted)
                except PathError as exc:
                    raise CodecConfigError(f"path variable {dotted!r}: {exc}") from None
            if target.repeated and target.path not in cleared:
                # the path wins over whatever the body put in this field
                cleared.add(target.path)
                _walk_target(message, target).ClearField(target.leaf.name)
            target.assign(message, value, label="path variable", field=dotted, check_oneof=False)

    def _raw_body(self, message: Message, body: bytes, content_type: str | None) -> None:
        target = _walk(message, self._body_chain)
        target.SetInParent()
        target.content_type = content_type or ""
        target.data = body

    def _fill(self, message: Message, value: Any) -> Any:
        """The body's JSON value into `message`, as the route's body rule says;
        returns the value as decoded (what the query rules look at)."""
        if self._enums is not None:
            value = self._case_insensitive_enums(value)
        prefix = self.body if self._body_chain else ""
        try:
            if not self._body_chain:
                if not isinstance(value, dict):
                    raise BadRequest(f"request body must be a JSON object, not {json_kind(value)}")
                self._parse_into(value, message, "")
            elif self._body_object or self._body_wkt:
                if self._body_object and not isinstance(value, dict):
                    raise BadRequest(
                        f"request body must be a JSON object (field {self.body!r}), not {json_kind(value)}",
                        field=self.body,
                    )
                target = _walk(message, self._body_chain)
                target.SetInParent()
                self._parse_into(value, target, prefix)
            else:
                leaf = self._body_chain[-1]
                parent = _walk(message, self._body_chain[:-1])
                prefix = ".".join(f.name for f in self._body_chain[:-1])
                self._parse_into({leaf.name: value}, parent, prefix, fast=False)
        except BadRequest:
            raise
        except Exception as exc:  # json_format: ParseError, plus anything odd (RecursionError, TypeError...)
            raise json_error(exc, prefix) from None
        return value

    def _case_insensitive_enums(self, value: Any) -> Any:
        """Envoy's case_insensitive_enum_parsing on the parsed body, before decoding."""
        assert self._enums is not None
        if not self._body_chain:
            self._enums.rewrite(value, self.input_type)
            return value
        leaf = self._body_chain[-1]
        wrapped = {leaf.name: value}  # rewritten as the field of its parent message
        self._enums.rewrite(wrapped, leaf.containing_type)
        return wrapped[leaf.name]

    def _parse_into(self, value: Any, message: Message, prefix: str, fast: bool = True) -> None:
        descriptor = message.DESCRIPTOR
        if fast and type(value) is dict and not descriptor.full_name.startswith("google.protobuf."):
            try:
                self._fast.fill(message, value, 0)
                return
            except Exception:  # json_format decides, from a clean start, with its own errors
                message.Clear()
        self._check.check(value, descriptor, prefix)
        json_format.ParseDict(
            value,
            message,
            ignore_unknown_fields=self.ignore_unknown_fields,
            descriptor_pool=self._pool,
            max_recursion_depth=_MAX_DEPTH,
        )


def _walk_target(message: Message, target: FieldTarget) -> Message:
    for info in target.chain[:-1]:
        message = getattr(message, info.name)
    return message


# ----------------------------------------------------------------- response

class ResponseCodec:
    """One reply message -> HTTP body bytes and content type, for one HttpRule."""

    def __init__(
        self,
        output_type: Descriptor,
        response_body: str = "",
        *,
        options: TranscodingOptions = DEFAULT_OPTIONS,
    ) -> None:
        self.output_type = output_type
        self.response_body = response_body if response_body != "*" else ""
        self.options = options
        self.emit_unpopulated = emit_unpopulated = options.emit_unpopulated
        self.use_proto_names = use_proto_names = options.use_proto_names
        self.enums_as_ints = enums_as_ints = options.enums_as_ints
        self.unset_messages_as_null = emit_unpopulated and options.unset_messages_as_null
        self._chain: list[FieldDescriptor] = []
        self._leaf_message = False
        self._leaf_key = ""
        self._leaf_parent_cls: type[Message] | None = None
        self._leaf_default: Any = None
        if self.response_body:
            self._chain = _field_chain(output_type, self.response_body, "response_body")
            leaf = self._chain[-1]
            self._leaf_message = leaf.message_type is not None and not leaf.is_repeated
            self.is_http_body = self._leaf_message and _is_http_body(leaf.message_type)
            if not self._leaf_message:
                self._leaf_key = leaf.name if use_proto_names else leaf.json_name
                self._leaf_parent_cls = message_factory.GetMessageClass(leaf.containing_type)
                self._leaf_default = json_format.MessageToDict(
                    self._leaf_parent_cls(),
                    always_print_fields_with_no_presence=True,
                    preserving_proto_field_name=use_proto_names,
                    use_integers_for_enums=enums_as_ints,
                ).get(self._leaf_key)
        else:
            self.is_http_body = _is_http_body(output_type)
        # A stream's JSON framing (NDJSON, array, SSE...) is chosen per request by edge/streaming.py;
        # None: a stream of HttpBody chunks, raw, typed by the first chunk's content_type.
        self.stream_content_type: str | None = None if self.is_http_body else JSON_CONTENT_TYPE
        self._fast = DictEncoder(
            use_proto_names, self._to_dict_slow, enums_as_ints=enums_as_ints,
            emit_unpopulated=emit_unpopulated, unset_messages_as_null=self.unset_messages_as_null,
        )

    def encode(self, message: Message) -> tuple[bytes, str]:
        """(body, content type): compact proto3 JSON, or an HttpBody's raw bytes."""
        if self.is_http_body:
            body = _walk(message, self._chain)
            return bytes(body.data), body.content_type or OCTET_STREAM
        return orjson.dumps(self._json_value(message)), JSON_CONTENT_TYPE

    def encode_stream_item(self, message: Message) -> bytes:
        """One server-streaming item: compact JSON with no delimiter (the stream's
        format frames it), or an HttpBody's raw bytes as they come (stream_content_type
        is then None: use `stream_chunk_type` of the first item)."""
        if self.is_http_body:
            return bytes(_walk(message, self._chain).data)
        return orjson.dumps(self._json_value(message))

    def stream_chunk_type(self, message: Message) -> str:
        """An HttpBody stream's content type: its first chunk's own."""
        return _walk(message, self._chain).content_type or OCTET_STREAM

    def _json_value(self, message: Message) -> Any:
        if not self._chain:
            return self._to_dict(message)
        if self._leaf_message:
            return self._to_dict(_walk(message, self._chain))
        # A scalar, repeated or map field: print it alone in a scratch parent
        # so json_format does the proto3 JSON form (int64 strings, enum names...).
        leaf = self._chain[-1]
        parent = _walk(message, self._chain[:-1])
        assert self._leaf_parent_cls is not None
        scratch = self._leaf_parent_cls()
        if leaf.is_repeated:
            getattr(scratch, leaf.name).MergeFrom(getattr(parent, leaf.name))
        elif not leaf.has_presence or parent.HasField(leaf.name):
            setattr(scratch, leaf.name, getattr(parent, leaf.name))
        else:
            return None
        return self._to_dict(scratch).get(self._leaf_key, self._leaf_default)

    def _to_dict(self, message: Message) -> Any:
        try:
            return self._fast.message(message)
        except Exception:  # anything unusual: json_format decides (and reports errors its way)
            return self._to_dict_slow(message)

    def _to_dict_slow(self, message: Message) -> Any:
        try:
            out = self._print(message, message.DESCRIPTOR.file.pool)
        except TypeError as exc:
            # An Any whose type the backend's pool lacks may still be a type
            # the gateway itself knows (google.rpc.*, google.protobuf.*).
            if "Can not find message descriptor" not in str(exc):
                raise
            out = self._print(message, _descriptor_pool.Default())
        if self.unset_messages_as_null:
            self._null_unset_messages(message, out)
        return out

    def _print(self, message: Message, pool: Any) -> Any:
        return json_format.MessageToDict(
            message,
            always_print_fields_with_no_presence=self.emit_unpopulated,
            preserving_proto_field_name=self.use_proto_names,
            use_integers_for_enums=self.enums_as_ints,
            descriptor_pool=pool,
        )

    def _null_unset_messages(self, message: Message, out: Any) -> None:
        """protojson's EmitUnpopulated on top of json_format's output (which has no
        such option): an unset message field outside a oneof prints as null, at
        every level, in lists, map values and the message an Any holds."""
        descriptor = message.DESCRIPTOR
        if descriptor.full_name == "google.protobuf.Any":
            packed = _unpack_any(message)
            if packed is not None and not packed.DESCRIPTOR.full_name.startswith("google.protobuf."):
                self._null_unset_messages(packed, out)
            return
        if not isinstance(out, dict) or descriptor.full_name.startswith("google.protobuf."):
            return
        for field in descriptor.fields:
            if field.message_type is None:
                continue
            name = field.name if self.use_proto_names else field.json_name
            if field.message_type.GetOptions().map_entry:
                value_field = field.message_type.fields_by_name["value"]
                printed = out.get(name)
                if value_field.message_type is not None and printed:
                    bool_keys = field.message_type.fields_by_name["key"].cpp_type == FieldDescriptor.CPPTYPE_BOOL
                    for key, sub in getattr(message, field.name).items():
                        text = ("true" if key else "false") if bool_keys else str(key)
                        self._null_unset_messages(sub, printed[text])
            elif field.is_repeated:
                for sub, printed in zip(getattr(message, field.name), out.get(name, ())):
                    self._null_unset_messages(sub, printed)
            elif message.HasField(field.name):
                self._null_unset_messages(getattr(message, field.name), out[name])
            elif field.containing_oneof is None:
                out[name] = None


def _unpack_any(message: Message) -> Message | None:
    """The message an Any holds, from the Any's own pool or the gateway's; None if neither knows it."""
    name = message.type_url.rpartition("/")[2]
    for pool in (message.DESCRIPTOR.file.pool, _descriptor_pool.Default()):
        try:
            cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
        except KeyError:
            continue
        packed = cls()
        packed.ParseFromString(message.value)
        return packed
    return None
