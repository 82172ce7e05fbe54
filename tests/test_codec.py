"""Request/response codecs: every body mode, HttpBody both ways, the JSON
edge cases (duplicates, depth, bad UTF-8, 64-bit ints) and Any from a
backend-only DescriptorPool. Each case runs against the generated classes
and against classes built from a fresh DescriptorPool."""
from __future__ import annotations

import json

import orjson
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from tests.support.kinds import KindsTypes, both, pool_types
from transcoding.codec import CodecConfigError, RequestCodec, ResponseCodec
from transcoding.errors import BadRequest, UnsupportedMediaType
from transcoding.options import TranscodingOptions


@pytest.fixture(params=both(), ids=lambda t: t.flavour)
def kt(request: pytest.FixtureRequest) -> KindsTypes:
    return request.param


def codec(kt: KindsTypes, body: str, path_fields: list[str] = (), message: str = "Kinds", **options) -> RequestCodec:
    return RequestCodec(getattr(kt, message).DESCRIPTOR, body, list(path_fields), options=TranscodingOptions().replace(**options))


def bad(request_codec: RequestCodec, body: bytes, *, path=(), query=(), content_type: str | None = "application/json") -> BadRequest:
    with pytest.raises(BadRequest) as info:
        request_codec.decode(list(path), list(query), body, content_type)
    return info.value


# ------------------------------------------------------------- body "*"

def test_whole_body_takes_both_spellings_and_returns_the_pool_class(kt: KindsTypes) -> None:
    body = orjson.dumps(
        {
            "fInt32": -3,
            "f_int64": "9223372036854775807",
            "fUint64": 18446744073709551615,
            "customName": "j",
            "inner": {"name": "n", "child": {"count": 2}},
            "ids": ["1", 2],
            "colors": ["RED", 3],
            "labels": {"a": "b"},
            "innerById": {"7": {"name": "seven"}},
            "ts": "2021-02-03T04:05:06Z",
            "dur": "1.5s",
            "updateMask": "fInt32,inner.name",
            "wInt32": 0,
            "st": {"x": [1, "y", None]},
            "fBytes": "aGk=",
            "fDouble": "NaN",
        }
    )
    message = codec(kt, "*").decode([], [], body, "application/json")
    assert type(message) is kt.Kinds
    assert message.f_int32 == -3 and message.f_int64 == 2**63 - 1 and message.f_uint64 == 2**64 - 1
    assert message.json_named == "j"
    assert message.inner.child.count == 2
    assert list(message.ids) == [1, 2] and list(message.colors) == [1, 3]
    assert message.labels["a"] == "b" and message.inner_by_id[7].name == "seven"
    assert message.ts.seconds == 1612325106 and message.dur.nanos == 500_000_000
    assert list(message.update_mask.paths) == ["f_int32", "inner.name"]
    assert message.HasField("w_int32")
    assert message.st.fields["x"].list_value.values[1].string_value == "y"
    assert message.f_bytes == b"hi"


def test_path_variables_win_over_the_body(kt: KindsTypes) -> None:
    request_codec = codec(kt, "*", ["f_int64", "inner.name", "ids"])
    message = request_codec.decode(
        [(("f_int64",), "42"), (("inner", "name"), "from-path"), (("ids",), "9")],
        [],
        b'{"fInt64": "1", "inner": {"name": "from-body", "count": 5}, "ids": [1, 2]}',
        "application/json",
    )
    assert message.f_int64 == 42
    assert message.inner.name == "from-path" and message.inner.count == 5
    assert list(message.ids) == [9]


def test_whole_body_and_query_parameters(kt: KindsTypes) -> None:
    """As Envoy's bindings: the query fills what the body left unset; a value other
    than the body's is refused (the profiles' other rules: tests/test_query_rules.py)."""
    message = codec(kt, "*").decode([], [("f_int32", "1")], b'{"fInt64": "2"}', None)
    assert (message.f_int32, message.f_int64) == (1, 2)
    error = bad(codec(kt, "*"), b'{"fInt32": 2}', query=[("f_int32", "1")])
    assert error.field == "f_int32" and "request body" in error.message


@pytest.mark.parametrize("body", [b"", None])
def test_an_empty_body_is_an_empty_message(kt: KindsTypes, body: bytes | None) -> None:
    message = codec(kt, "*", ["f_int32"]).decode([(("f_int32",), "3")], [], body or b"", None)
    assert message == kt.Kinds(f_int32=3)


@pytest.mark.parametrize("body", [b" ", b"  \n", b"\r \t\n"])
def test_a_whitespace_body_is_refused_unless_the_profile_reads_it_as_empty(kt: KindsTypes, body: bytes) -> None:
    # Envoy: INVALID_ARGUMENT; grpc-gateway: its json.Decoder sees io.EOF, an empty message.
    assert "only whitespace" in bad(codec(kt, "*"), body).message
    assert "only whitespace" in bad(codec(kt, "inner"), body).message
    message = codec(kt, "*", ["f_int32"], whitespace_body_is_empty=True).decode([(("f_int32",), "3")], [], body, None)
    assert message == kt.Kinds(f_int32=3)


@pytest.mark.parametrize(
    "body, says",
    [
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b"{", "malformed JSON"),
        (b'{"fInt32": 1,}', "malformed JSON"),
        (b'{"fDouble": NaN}', "NaN is not valid JSON"),
        (b'{"fDouble": -Infinity}', "not valid JSON"),
        (b"\xef\xbb\xbf{}", "malformed JSON"),  # a BOM is not JSON
    ],
)
def test_malformed_bodies(kt: KindsTypes, body: bytes, says: str) -> None:
    assert says in bad(codec(kt, "*"), body).message


@pytest.mark.parametrize(
    "body, field",
    [
        (b'{"fInt32": "abc"}', "fInt32"),
        (b'{"fInt32": 2147483648}', "fInt32"),
        (b'{"fInt32": 1.5}', "fInt32"),
        (b'{"f_uint32": -1}', "f_uint32"),
        (b'{"fBool": "yes"}', "fBool"),
        (b'{"color": "PURPLE"}', "color"),
        (b'{"fFloat": 1e39}', "fFloat"),
        (b'{"inner": {"count": "x"}}', "inner.count"),
        (b'{"inner": {"child": {"color": []}}}', "inner.child.color"),
        (b'{"inner": 5}', "inner"),
        (b'{"ids": 5}', "ids"),
        (b'{"ids": [1, "x"]}', "ids"),
        (b'{"labels": {"a": 1}}', "labels"),
        (b'{"innerById": {"x": {}}}', "innerById"),
        (b'{"ts": "yesterday"}', "ts"),
        (b'{"dur": 5}', "dur"),
        (b'{"items": [{"name": "a"}, {"nope": 1}]}', "items[1].nope"),
        (b'{"nope": 1}', "nope"),
        (b'{"inner": {"child": {"nope": 1}}}', "inner.child.nope"),
        (b'{"choiceName": "a", "choiceId": "1"}', "choice"),
        (b'{"fString": "\\ud800"}', "fString"),
        (b'{"any": {"@type": "type.googleapis.com/no.Such"}}', "any"),
        (b'{"any": {"value": 1}}', "any"),
    ],
)
def test_wrong_types_name_the_json_field(kt: KindsTypes, body: bytes, field: str) -> None:
    # reject so the unknown-field and unknown-enum-name rows are refused too (the default ignores them)
    error = bad(codec(kt, "*", unknown_body_fields="reject", unknown_body_enum_names="reject"), body)
    assert error.field == field
    assert repr(field) in error.message


def test_unknown_fields_are_ignored_by_default(kt: KindsTypes) -> None:
    # Both anchors discard them: a newer client's new field must not break an older backend.
    body = b'{"nope": 1, "inner": {"nope": {}, "name": "x"}, "color": "NOT_YET_DEFINED"}'
    for request_codec in (codec(kt, "*"), codec(kt, "*", unknown_body_fields="ignore")):
        message = request_codec.decode([], [], body, None)
        assert message.inner.name == "x" and message.color == 0
    assert bad(codec(kt, "*", unknown_body_fields="reject"), body).field == "nope"


@pytest.mark.parametrize(
    "body, field",
    [
        (b'{"fInt32": 1, "fInt32": 2}', "fInt32"),
        (b'{"inner": {"name": "a", "name": "b"}}', "name"),
        (b'{"st": {"k": 1, "k": 2}}', "k"),
    ],
)
def test_duplicate_keys_are_refused(kt: KindsTypes, body: bytes, field: str) -> None:
    error = bad(codec(kt, "*"), body)
    assert "duplicate key" in error.message and error.field == field


def test_invalid_utf8(kt: KindsTypes) -> None:
    error = bad(codec(kt, "*"), b'{"fString": "\xff\xfe"}')
    assert "UTF-8" in error.message
    assert "UTF-8" in bad(codec(kt, "f_string"), b'"\xc3\x28"').message


def test_non_utf8_charset_is_unsupported(kt: KindsTypes) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        codec(kt, "*").decode([], [], b"{}", "application/json; charset=iso-8859-1")
    assert info.value.http_status == 415
    assert codec(kt, "*").decode([], [], b"{}", "application/json; charset=UTF-8") == kt.Kinds()


@pytest.mark.parametrize(
    "body",
    [
        b'{"inner":' + b'{"child":' * 10_000 + b"{}" + b"}" * 10_001,
        b'{"st":' + b'{"a":' * 10_000 + b"1" + b"}" * 10_001,
        b'{"val":' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        b"[" * 10_000 + b"]" * 10_000,
    ],
    ids=["messages", "struct", "lists", "bare-arrays"],
)
def test_ten_thousand_levels_of_nesting_is_a_bad_request(kt: KindsTypes, body: bytes) -> None:
    assert "nested too deeply" in bad(codec(kt, "*"), body).message


def test_nesting_past_the_message_depth_limit(kt: KindsTypes) -> None:
    deep = b'{"inner":' + b'{"child":' * 150 + b"{}" + b"}" * 151
    assert "too deep" in bad(codec(kt, "*"), deep).message
    struct = b'{"st":' + b'{"a":' * 150 + b"1" + b"}" * 151
    assert "too deep" in bad(codec(kt, "*"), struct).message
    fine = b'{"inner":' + b'{"child":' * 50 + b"{}" + b"}" * 51
    assert codec(kt, "*").decode([], [], fine, None).inner.child.child.ByteSize() > 0


@pytest.mark.parametrize("depth", [150, 500, 900])
def test_deep_bodies_on_the_fallback_path_are_a_400(kt: KindsTypes, depth: int) -> None:
    """A map sends the body past the fast decoder to the checks and json_format: neither may
    overflow the stack, whatever the nesting (the checks stop where json_format refuses)."""
    deep = b'{"labels": {}, "inner":' + b'{"child":' * depth + b'{"name": "a"}' + b"}" * (depth + 1)
    message = bad(codec(kt, "*", unknown_body_enum_names="reject"), deep).message
    assert "too deep" in message or "nested too deeply" in message
    twice = b'{"labels": {}, "fInt32": 1, "f_int32": 2, "inner":' + b'{"child":' * depth + b"{}" + b"}" * (depth + 1)
    assert bad(codec(kt, "*"), twice).field == "f_int32"


# ----------------------------------------------------- body "<field>"

def test_message_body_field_with_path_and_query(kt: KindsTypes) -> None:
    request_codec = codec(kt, "inner", ["f_int64", "inner.name"])
    message = request_codec.decode(
        [(("f_int64",), "7"), (("inner", "name"), "path")],
        [("color", "GREEN"), ("tags", "a"), ("tags", "b")],
        b'{"name": "body", "count": 3, "child": {"color": "RED"}}',
        "application/json",
    )
    assert message.f_int64 == 7 and message.color == 2 and list(message.tags) == ["a", "b"]
    assert (message.inner.name, message.inner.count, message.inner.child.color) == ("path", 3, 1)


def test_message_body_field_must_be_an_object(kt: KindsTypes) -> None:
    error = bad(codec(kt, "inner"), b"[]")
    assert error.field == "inner" and "JSON object" in error.message
    error = bad(codec(kt, "inner"), b'{"count": "x"}')
    assert error.field == "inner.count"


def test_query_fills_the_body_field_but_never_a_path_field(kt: KindsTypes) -> None:
    assert codec(kt, "inner").decode([], [("inner.count", "1")], b'{"name": "n"}', None).inner.count == 1
    error = bad(codec(kt, "inner"), b'{"count": 2}', query=[("inner.count", "1")])
    assert error.field == "inner.count" and "request body" in error.message
    error = bad(codec(kt, "inner", ["f_int64"]), b"{}", path=[(("f_int64",), "1")], query=[("fInt64", "2")])
    assert error.field == "fInt64" and error.message.startswith("field set twice")


def test_empty_body_leaves_the_body_field_unset(kt: KindsTypes) -> None:
    message = codec(kt, "inner").decode([], [("f_int32", "1")], b"", None)
    assert not message.HasField("inner") and message.f_int32 == 1
    # but an empty object sets it
    assert codec(kt, "inner").decode([], [], b"{}", None).HasField("inner")


@pytest.mark.parametrize(
    "body_field, body, check",
    [
        ("f_string", b'"hello"', lambda m: m.f_string == "hello"),
        ("f_int64", b'"-9223372036854775808"', lambda m: m.f_int64 == -(2**63)),
        ("color", b'"BLUE"', lambda m: m.color == 3),
        ("ids", b'[1, "2"]', lambda m: list(m.ids) == [1, 2]),
        ("items", b'[{"name": "a"}, {"count": 2}]', lambda m: [i.name for i in m.items] == ["a", ""]),
        ("labels", b'{"k": "v"}', lambda m: dict(m.labels) == {"k": "v"}),
        ("ts", b'"1970-01-01T00:00:00Z"', lambda m: m.HasField("ts")),
        ("w_int32", b"0", lambda m: m.HasField("w_int32")),
        ("st", b'{"a": {"b": true}}', lambda m: m.st.fields["a"].struct_value.fields["b"].bool_value),
        ("val", b'"s"', lambda m: m.val.string_value == "s"),
        ("update_mask", b'"a.bC"', lambda m: list(m.update_mask.paths) == ["a.b_c"]),
        ("inner.child", b'{"count": 4}', lambda m: m.inner.child.count == 4),
    ],
)
def test_body_field_of_every_kind(kt: KindsTypes, body_field: str, body: bytes, check) -> None:
    assert check(codec(kt, body_field).decode([], [], body, "application/json"))


@pytest.mark.parametrize(
    "body_field, body, field",
    [
        ("f_string", b"5", "f_string"),
        ("ids", b'{"a": 1}', "ids"),
        ("ids", b'["x"]', "ids"),
        ("items", b'[{"nope": 1}]', "items[0].nope"),
        ("labels", b"[]", "labels"),
        ("ts", b'"soon"', "ts"),
        ("inner.child", b'{"count": "x"}', "inner.child.count"),
    ],
)
def test_body_field_errors_name_the_field(kt: KindsTypes, body_field: str, body: bytes, field: str) -> None:
    assert bad(codec(kt, body_field, unknown_body_fields="reject"), body).field == field


# ------------------------------------------------------------- body ""

def test_no_body_rule_ignores_the_body(kt: KindsTypes) -> None:
    request_codec = codec(kt, "", ["f_int64"])
    message = request_codec.decode([(("f_int64",), "5")], [("inner.name", "q")], b'{"fInt32": 9} or anything', "text/plain")
    assert message == kt.Kinds(f_int64=5, inner=kt.Inner(name="q"))


# ----------------------------------------------------------- path vars

def test_path_variables_of_several_kinds(kt: KindsTypes) -> None:
    request_codec = codec(kt, "", ["f_int64", "color", "f_bool", "inner.child.name", "ts", "w_uint64", "tags"])
    message = request_codec.decode(
        [
            (("f_int64",), "-12"),
            (("color",), "GREEN"),
            (("f_bool",), "true"),
            (("inner", "child", "name"), "shelves/1/books/2"),
            (("ts",), "2000-01-01T00:00:00Z"),
            (("w_uint64",), "18446744073709551615"),
            (("tags",), "one"),
        ],
        [],
        b"",
        None,
    )
    assert message.f_int64 == -12 and message.color == 2 and message.f_bool
    assert message.inner.child.name == "shelves/1/books/2"
    assert message.ts.seconds == 946684800 and message.w_uint64.value == 2**64 - 1
    assert list(message.tags) == ["one"]  # a repeated field takes the one path value


@pytest.mark.parametrize(
    "names, value",
    [(("f_int64",), "abc"), (("color",), "PURPLE"), (("inner", "count"), "9999999999"), (("ts",), "now")],
)
def test_bad_path_values_name_the_variable(kt: KindsTypes, names: tuple[str, ...], value: str) -> None:
    request_codec = codec(kt, "", [".".join(names)])
    error = bad(request_codec, b"", path=[(names, value)])
    assert error.field == ".".join(names)
    assert "path variable" in error.message


def test_path_can_set_a_oneof_member_the_body_also_set(kt: KindsTypes) -> None:
    message = codec(kt, "*", ["choice_id"]).decode([(("choice_id",), "5")], [], b'{"choiceName": "x"}', None)
    assert message.WhichOneof("choice") == "choice_id" and message.choice_id == 5


@pytest.mark.parametrize(
    "body, path_fields",
    [
        ("nope", []),
        ("inner.nope", []),
        ("items.name", []),  # through a repeated field
        ("f_int32.x", []),
        ("", ["nope"]),
        ("", ["inner"]),  # a plain message cannot come from one path segment
        ("", ["labels"]),
        ("", ["customName"]),  # path templates use proto names
        ("file", ["file.data"]),
    ],
)
def test_unusable_rules_are_config_errors(kt: KindsTypes, body: str, path_fields: list[str]) -> None:
    message = "UploadRequest" if body == "file" else "Kinds"
    with pytest.raises(CodecConfigError):
        codec(kt, body, path_fields, message=message)
    assert issubclass(CodecConfigError, ValueError)


# ------------------------------------------------------------ HttpBody in

def test_http_body_field_takes_raw_bytes(kt: KindsTypes) -> None:
    request_codec = codec(kt, "file", ["bucket", "name"], message="UploadRequest")
    raw = b"\x00\xff{not json"
    message = request_codec.decode([(("bucket",), "b"), (("name",), "a/b.png")], [("overwrite", "1")], raw, "image/png")
    assert (message.bucket, message.name, message.overwrite) == ("b", "a/b.png", True)
    assert (message.file.data, message.file.content_type) == (raw, "image/png")
    error = bad(request_codec, raw, query=[("file.data", "x")], content_type="image/png")
    assert error.message.startswith("field set twice")


def test_http_body_as_the_request_type(kt: KindsTypes) -> None:
    request_codec = RequestCodec(kt.HttpBody.DESCRIPTOR, "*", [])
    message = request_codec.decode([], [], b"a,b\n1,2\n", "text/csv")
    assert type(message) is kt.HttpBody
    assert (message.data, message.content_type) == (b"a,b\n1,2\n", "text/csv")
    empty = request_codec.decode([], [], b"", None)
    assert (empty.data, empty.content_type) == (b"", "")


# --------------------------------------------------------------- response

def test_response_is_compact_canonical_json(kt: KindsTypes) -> None:
    message = kt.Kinds(f_int64=2**63 - 1, f_uint64=2**64 - 1, f_int32=-1, color=2, f_bytes=b"\xff", f_double=float("nan"))
    message.ts.FromJsonString("2021-02-03T04:05:06.5Z")
    message.dur.FromJsonString("1.5s")
    message.update_mask.paths.extend(["f_int32", "inner.child_count"])
    message.w_int32.value = 0
    message.ids.extend([1, 2])
    body, content_type = ResponseCodec(kt.Kinds.DESCRIPTOR, "").encode(message)
    assert content_type == "application/json"
    assert b" " not in body and b"\n" not in body
    assert json.loads(body) == {
        "fInt64": "9223372036854775807",
        "fUint64": "18446744073709551615",
        "fInt32": -1,
        "color": "GREEN",
        "fBytes": "/w==",
        "fDouble": "NaN",
        "ts": "2021-02-03T04:05:06.500Z",
        "dur": "1.500s",
        "updateMask": "fInt32,inner.childCount",
        "wInt32": 0,
        "ids": ["1", "2"],
    }


def test_response_options(kt: KindsTypes) -> None:
    plain = json.loads(ResponseCodec(kt.Kinds.DESCRIPTOR, "").encode(kt.Kinds())[0])
    assert plain == {}
    full = json.loads(ResponseCodec(kt.Kinds.DESCRIPTOR, "", options=TranscodingOptions(emit_unpopulated=True)).encode(kt.Kinds())[0])
    assert full["fInt64"] == "0" and full["color"] == "COLOR_UNSPECIFIED" and full["ids"] == [] and full["labels"] == {}
    assert "inner" not in full and "optInt32" not in full  # fields with presence stay absent
    named = json.loads(ResponseCodec(kt.Kinds.DESCRIPTOR, "", options=TranscodingOptions(use_proto_names=True)).encode(kt.Kinds(json_named="x", f_int32=1))[0])
    assert named == {"json_named": "x", "f_int32": 1}
    camel = json.loads(ResponseCodec(kt.Kinds.DESCRIPTOR, "").encode(kt.Kinds(json_named="x"))[0])
    assert camel == {"customName": "x"}


def test_response_body_selects_a_field(kt: KindsTypes) -> None:
    reply = kt.ListReply(total=2**40, next_page_token="t")
    reply.items.add(name="a")
    reply.items.add(count=2)
    encode = lambda field, message=reply, **kw: json.loads(ResponseCodec(kt.ListReply.DESCRIPTOR, field, options=TranscodingOptions(**kw)).encode(message)[0])  # noqa: E731
    assert encode("items") == [{"name": "a"}, {"count": 2}]
    assert encode("items", kt.ListReply()) == []
    assert encode("total") == str(2**40)
    assert encode("total", kt.ListReply()) == "0"
    assert encode("next_page_token", use_proto_names=True) == "t"
    kinds = kt.Kinds(labels={"a": "b"}, colors=[1, 3], opt_int32=0)
    kinds.inner.child.name = "c"
    kinds.inner_by_id[3].count = 1
    encode_k = lambda field, **kw: json.loads(ResponseCodec(kt.Kinds.DESCRIPTOR, field, options=TranscodingOptions(**kw)).encode(kinds)[0])  # noqa: E731
    assert encode_k("inner") == {"child": {"name": "c"}}
    assert encode_k("inner.child") == {"name": "c"}
    assert encode_k("labels") == {"a": "b"}
    assert encode_k("inner_by_id") == {"3": {"count": 1}}
    assert encode_k("colors") == ["RED", "BLUE"]
    assert encode_k("opt_int32") == 0
    assert json.loads(ResponseCodec(kt.Kinds.DESCRIPTOR, "opt_int32").encode(kt.Kinds())[0]) is None
    assert encode_k("ts") == "1970-01-01T00:00:00Z"


def test_http_body_replies_are_raw(kt: KindsTypes) -> None:
    reply = kt.DownloadReply(etag="e")
    reply.content.data = b"\x89PNG"
    reply.content.content_type = "image/png"
    response_codec = ResponseCodec(kt.DownloadReply.DESCRIPTOR, "content")
    assert response_codec.encode(reply) == (b"\x89PNG", "image/png")
    assert response_codec.encode(kt.DownloadReply()) == (b"", "application/octet-stream")
    whole = ResponseCodec(kt.HttpBody.DESCRIPTOR, "")
    assert whole.encode(kt.HttpBody(data=b"x,y", content_type="text/csv")) == (b"x,y", "text/csv")
    assert whole.encode_stream_item(kt.HttpBody(data=b"chunk")) == b"chunk"
    assert whole.stream_content_type is None
    assert whole.stream_chunk_type(kt.HttpBody(data=b"chunk", content_type="text/csv")) == "text/csv"
    assert response_codec.stream_chunk_type(reply) == "image/png"


def test_stream_items_are_compact_json_without_delimiter(kt: KindsTypes) -> None:
    """The codec prints each streamed message; edge/streaming.py frames it (NDJSON, array, SSE...)."""
    response_codec = ResponseCodec(kt.Kinds.DESCRIPTOR, "")
    items = [response_codec.encode_stream_item(kt.Kinds(f_int64=i)) for i in range(3)]
    assert items == [b'{}', b'{"fInt64":"1"}', b'{"fInt64":"2"}']
    assert response_codec.stream_content_type == "application/json"
    assert ResponseCodec(kt.ListReply.DESCRIPTOR, "items").encode_stream_item(kt.ListReply()) == b"[]"


def test_round_trip(kt: KindsTypes) -> None:
    original = kt.Kinds(f_int64=-(2**63), f_uint64=2**64 - 1, f_float=1.5, color=3, tags=["a"], f_bytes=b"\x00\x01")
    original.inner.child.child.name = "deep"
    original.labels["k"] = "v"
    original.inner_by_id[-1].count = 5
    original.st.update({"a": [1, "b", None, {"c": True}]})
    original.choice_inner.name = "c"
    original.times.add().FromJsonString("2000-01-01T00:00:00.000000001Z")
    for options in ({}, {"use_proto_names": True}, {"emit_unpopulated": True}):
        body, _ = ResponseCodec(kt.Kinds.DESCRIPTOR, "", options=TranscodingOptions(**options)).encode(original)
        assert codec(kt, "*").decode([], [], body, "application/json") == original


# ----------------------------------------------------- Any, custom pools

def _pool_with_private_type() -> tuple[KindsTypes, type]:
    """Kinds from a fresh pool plus a type that exists only in that pool."""
    types = pool_types()
    secret = descriptor_pb2.FileDescriptorProto(name="edgetest/secret.proto", package="edgetest.secret", syntax="proto3")
    message = secret.message_type.add(name="Secret")
    message.field.add(name="code", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING, label=1)
    message.field.add(name="big", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT64, label=1)
    types.pool.Add(secret)
    secret_cls = message_factory.GetMessageClass(types.pool.FindMessageTypeByName("edgetest.secret.Secret"))
    return types, secret_cls


def test_any_resolves_from_the_messages_own_pool() -> None:
    types, secret_cls = _pool_with_private_type()
    with pytest.raises(KeyError):
        descriptor_pool.Default().FindMessageTypeByName("edgetest.secret.Secret")
    reply = types.Kinds()
    reply.any.Pack(secret_cls(code="s3", big=2**60))
    body, _ = ResponseCodec(types.Kinds.DESCRIPTOR, "").encode(reply)
    assert json.loads(body) == {
        "any": {"@type": "type.googleapis.com/edgetest.secret.Secret", "code": "s3", "big": str(2**60)}
    }
    # and back: the request side resolves the same type from the same pool
    decoded = RequestCodec(types.Kinds.DESCRIPTOR, "*", []).decode([], [], body, "application/json")
    assert decoded == reply
    unpacked = secret_cls()
    assert decoded.any.Unpack(unpacked) and unpacked.big == 2**60


def test_any_falls_back_to_the_gateways_own_types() -> None:
    from google.rpc import error_details_pb2

    types = pool_types()
    with pytest.raises(KeyError):
        types.pool.FindMessageTypeByName("google.rpc.ErrorInfo")
    reply = types.Kinds()
    reply.any.Pack(error_details_pb2.ErrorInfo(reason="QUOTA", domain="edge"))
    body, _ = ResponseCodec(types.Kinds.DESCRIPTOR, "").encode(reply)
    assert json.loads(body) == {
        "any": {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "QUOTA", "domain": "edge"}
    }


def test_any_of_an_unknown_type_is_a_server_side_error(kt: KindsTypes) -> None:
    reply = kt.Kinds()
    reply.any.type_url = "type.googleapis.com/no.such.Type"
    reply.any.value = b"\x08\x01"
    with pytest.raises(TypeError):
        ResponseCodec(kt.Kinds.DESCRIPTOR, "").encode(reply)


def test_any_of_a_well_known_type(kt: KindsTypes) -> None:
    reply = kt.Kinds()
    duration = kt.cls("google.protobuf.Duration")()
    duration.FromJsonString("3s")
    reply.any.Pack(duration)
    body, _ = ResponseCodec(kt.Kinds.DESCRIPTOR, "").encode(reply)
    assert json.loads(body) == {"any": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "3s"}}
