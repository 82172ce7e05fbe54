"""The response codec's fast dict encoder must give exactly json_format's output.

`ResponseCodec` builds a per-type plan instead of json_format's per-value
dispatch; it hands anything it does not know to json_format. These tests
compare the two on every field kind of edgetest's `Kinds` (scalars, 64-bit
integers, special floats, bytes, enums, maps, oneofs, wrappers, Timestamp,
Duration, FieldMask, Struct, Value, ListValue, Any, Empty, recursion).
"""
from __future__ import annotations

import math

from google.protobuf import any_pb2, json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetest import kinds_pb2
from transcoding.codec import ResponseCodec
from transcoding.options import TranscodingOptions

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
UINT64 = st.integers(0, 2**64 - 1)
TEXT = st.text(max_size=8)
FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32)
DOUBLES = st.floats(allow_nan=True, allow_infinity=True)


def reference(message, *, use_proto_names: bool = False, enums_as_ints: bool = False, emit_unpopulated: bool = False):
    return json_format.MessageToDict(
        message, preserving_proto_field_name=use_proto_names, use_integers_for_enums=enums_as_ints,
        always_print_fields_with_no_presence=emit_unpopulated,
    )


def same(a, b) -> bool:
    """Equality that treats NaN as equal to NaN (json_format prints it as "NaN" anyway)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@st.composite
def inners(draw, depth: int = 2):
    inner = kinds_pb2.Inner(name=draw(TEXT), count=draw(INT32), color=draw(st.sampled_from([0, 1, 2, 3])),
                            tags=draw(st.lists(TEXT, max_size=3)))
    if draw(st.booleans()):
        inner.when.seconds = draw(st.integers(-62135596800, 253402300799))
        inner.when.nanos = draw(st.sampled_from([0, 1_000_000, 1_000, 1, 999_999_999]))
    if depth and draw(st.booleans()):
        inner.child.CopyFrom(draw(inners(depth - 1)))
    return inner


@st.composite
def kinds(draw):
    k = kinds_pb2.Kinds(
        f_double=draw(DOUBLES), f_float=draw(FLOATS), f_int32=draw(INT32), f_int64=draw(INT64),
        f_uint32=draw(st.integers(0, 2**32 - 1)), f_uint64=draw(UINT64), f_sint32=draw(INT32), f_sint64=draw(INT64),
        f_fixed32=draw(st.integers(0, 2**32 - 1)), f_fixed64=draw(UINT64), f_sfixed32=draw(INT32),
        f_sfixed64=draw(INT64), f_bool=draw(st.booleans()), f_string=draw(TEXT), f_bytes=draw(st.binary(max_size=8)),
        color=draw(st.sampled_from([0, 1, 2, 3, 7])),  # 7: an unknown number of an open enum
        json_named=draw(TEXT),
        ids=draw(st.lists(INT64, max_size=3)), tags=draw(st.lists(TEXT, max_size=3)),
        colors=draw(st.lists(st.sampled_from([0, 1, 2, 3]), max_size=3)),
        blobs=draw(st.lists(st.binary(max_size=4), max_size=2)), ratios=draw(st.lists(DOUBLES, max_size=3)),
    )
    if draw(st.booleans()):
        k.opt_int32 = draw(INT32)
    if draw(st.booleans()):
        k.inner.CopyFrom(draw(inners()))
    k.items.extend(draw(st.lists(inners(1), max_size=2)))
    for key, value in draw(st.dictionaries(TEXT, TEXT, max_size=3)).items():
        k.labels[key] = value
    for key in draw(st.lists(INT32, max_size=2)):
        k.inner_by_id[key].CopyFrom(draw(inners(0)))
    choice = draw(st.sampled_from(["", "name", "id", "inner"]))
    if choice == "name":
        k.choice_name = draw(TEXT)
    elif choice == "id":
        k.choice_id = draw(INT64)
    elif choice == "inner":
        k.choice_inner.SetInParent()
    if draw(st.booleans()):
        k.ts.seconds, k.ts.nanos = draw(st.integers(0, 2**33)), draw(st.sampled_from([0, 5_000_000, 123]))
        k.dur.seconds, k.dur.nanos = draw(st.integers(-1000, 1000)), 0
        k.update_mask.paths.extend(["a", "b_c"])
    if draw(st.booleans()):
        k.w_int32.value, k.w_int64.value, k.w_uint64.value = draw(INT32), draw(INT64), draw(UINT64)
        k.w_float.value, k.w_double.value, k.w_bool.value = draw(FLOATS), draw(DOUBLES), draw(st.booleans())
        k.w_string.value, k.w_bytes.value, k.w_uint32.value = draw(TEXT), draw(st.binary(max_size=4)), 3
        k.w_int64s.add().value = draw(INT64)
    if draw(st.booleans()):
        k.st.update({"a": 1.5, "b": [True, None, "x"], "c": {"d": "e"}})
        k.val.string_value = draw(TEXT)
        k.list_val.extend([1, "two", None])
        k.empty.SetInParent()
        k.times.add().seconds = 86400
        k.masks.add().paths.append("x_y")
    if draw(st.booleans()):
        inner = kinds_pb2.Inner(name="packed")
        packed = any_pb2.Any()
        packed.Pack(inner)
        k.any.CopyFrom(packed)
    return k


@settings(max_examples=300, deadline=None)
@given(kinds(), st.booleans(), st.booleans(), st.booleans())
def test_fast_encoder_matches_json_format(message, use_proto_names, enums_as_ints, emit_unpopulated):
    """Every print option both anchors have that json_format has too, alone and together."""
    options = TranscodingOptions(use_proto_names=use_proto_names, enums_as_ints=enums_as_ints,
                                 emit_unpopulated=emit_unpopulated)
    codec = ResponseCodec(kinds_pb2.Kinds.DESCRIPTOR, options=options)
    expected = reference(message, use_proto_names=use_proto_names, enums_as_ints=enums_as_ints,
                         emit_unpopulated=emit_unpopulated)
    assert same(codec._to_dict(message), expected)
    assert same(codec._fast.message(message), expected)  # no Fallback: the plan covers every Kinds field


@settings(max_examples=200, deadline=None)
@given(kinds(), st.booleans(), st.booleans())
def test_null_unset_messages_fast_and_slow_agree(message, use_proto_names, enums_as_ints):
    """grpc-gateway's EmitUnpopulated (unset messages as null) has no json_format switch: the plan
    and the json_format-plus-walk fallback must agree, and differ from json_format only by nulls."""
    options = TranscodingOptions(use_proto_names=use_proto_names, enums_as_ints=enums_as_ints,
                                 emit_unpopulated=True, unset_messages_as_null=True)
    codec = ResponseCodec(kinds_pb2.Kinds.DESCRIPTOR, options=options)
    fast, slow = codec._fast.message(message), codec._to_dict_slow(message)
    assert same(fast, slow)
    plain = reference(message, use_proto_names=use_proto_names, enums_as_ints=enums_as_ints, emit_unpopulated=True)
    assert same({k: v for k, v in _without_nulls(fast).items()}, plain)


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def test_null_unset_messages_follow_protojson():
    """What Go's protojson (EmitUnpopulated, grpc-gateway's default marshaler) printed for Kinds:
    an unset message field outside a oneof is null, a set one holds its own nulls, oneof
    members and proto3 `optional` fields stay out; wrappers and well-known types are messages too."""
    options = TranscodingOptions(emit_unpopulated=True, unset_messages_as_null=True)
    codec = ResponseCodec(kinds_pb2.Kinds.DESCRIPTOR, options=options)
    message = kinds_pb2.Kinds(choice_name="c")
    message.inner.name = "n"
    message.items.add()
    message.inner_by_id[3].count = 1
    for out in (codec._fast.message(message), codec._to_dict_slow(message)):
        for name in ("ts", "dur", "updateMask", "wInt32", "st", "val", "listVal", "any", "empty"):
            assert name in out and out[name] is None, name
        assert "choiceInner" not in out and "choiceId" not in out and out["choiceName"] == "c"
        assert "optInt32" not in out
        assert out["inner"]["child"] is None and out["inner"]["when"] is None and out["inner"]["tags"] == []
        assert out["items"] == [{"name": "", "count": 0, "color": "COLOR_UNSPECIFIED", "child": None, "tags": [],
                                 "when": None}]
        assert out["innerById"]["3"]["child"] is None and out["innerById"]["3"]["count"] == 1
    packed = kinds_pb2.Kinds()
    packed.any.Pack(kinds_pb2.Inner(name="p"))
    out = codec.encode(packed)[0]
    import orjson

    inside = orjson.loads(out)["any"]
    assert inside["@type"].endswith("edgetest.kinds.v1.Inner") and inside["child"] is None and inside["name"] == "p"
    # without emit_unpopulated the switch does nothing (grpc-gateway ties both to EmitUnpopulated)
    quiet = ResponseCodec(kinds_pb2.Kinds.DESCRIPTOR, options=TranscodingOptions(unset_messages_as_null=True))
    assert orjson.loads(quiet.encode(kinds_pb2.Kinds(f_int32=1))[0]) == {"fInt32": 1}


def test_enums_as_ints_print_numbers_everywhere():
    codec = ResponseCodec(kinds_pb2.Kinds.DESCRIPTOR, options=TranscodingOptions(enums_as_ints=True))
    message = kinds_pb2.Kinds(color=2, colors=[1, 3, 9])
    message.inner.color = 3
    message.inner_by_id[1].color = 1
    assert codec._fast.message(message) == {"color": 2, "colors": [1, 3, 9], "inner": {"color": 3},
                                            "innerById": {"1": {"color": 1}}}


def test_encoded_bytes_match_json_format_for_a_full_message():
    message = kinds_pb2.Kinds(f_int64=-5, f_uint64=2**64 - 1, f_bytes=b"\xff\x00", f_float=0.1, color=2,
                              json_named="x", ids=[1, -2], colors=[1, 3])
    message.labels["k"] = "v"
    message.inner_by_id[7].name = "seven"
    message.ts.seconds = 1
    message.w_int64.value = 9
    codec = ResponseCodec(kinds_pb2.Kinds.DESCRIPTOR)
    body, content_type = codec.encode(message)
    import orjson

    assert content_type == "application/json"
    assert orjson.loads(body) == reference(message)
    assert orjson.loads(body)["customName"] == "x" and orjson.loads(body)["fUint64"] == str(2**64 - 1)


def test_emit_unpopulated_takes_the_fast_path():
    codec = ResponseCodec(kinds_pb2.Kinds.DESCRIPTOR, options=TranscodingOptions(emit_unpopulated=True))
    out = codec._fast.message(kinds_pb2.Kinds())  # no Fallback raised
    assert out["fInt64"] == "0" and out["tags"] == [] and out["labels"] == {} and out["color"] == "COLOR_UNSPECIFIED"
    assert "inner" not in out and "optInt32" not in out and "choiceName" not in out
    assert same(out, json_format.MessageToDict(kinds_pb2.Kinds(), always_print_fields_with_no_presence=True))


# ---------------------------------------------------------------- requests

import json

from transcoding.codec import RequestCodec
from transcoding.fastjson import Fallback as _Fallback
from transcoding.errors import BadRequest


class _Never:
    """Switches the fast request path off: every body goes to json_format."""

    def fill(self, *args):
        raise _Fallback("off")


KIND_KEYS = [f.name for f in kinds_pb2.Kinds.DESCRIPTOR.fields] + [f.json_name for f in kinds_pb2.Kinds.DESCRIPTOR.fields]
INNER_KEYS = ["name", "count", "color", "child", "tags", "when", "bogus", "7"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**65), 2**65), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["RED", "BLUE", "NOPE", "12", "-7", "1_2", " 3", "1.5", "1970-01-01T00:00:01Z", "2s",
                     "a,b_c", "aGk=", "", "18446744073709551616"]),
    TEXT,
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(INNER_KEYS), inner, max_size=3)),
    max_leaves=8,
)


def _outcome(codec: RequestCodec, body: bytes):
    try:
        return "ok", codec.decode([], [], body, "application/json").SerializeToString(deterministic=True)
    except BadRequest as exc:
        return "error", exc.message, exc.field


BODIES = st.dictionaries(st.sampled_from(KIND_KEYS + ["unknownKey", "[ext.name]"]), JSONISH, max_size=5)
UNKNOWN = st.sampled_from(["ignore", "reject"])


def _request_codec(fields: str, enums: str, fast: bool = True) -> RequestCodec:
    options = TranscodingOptions().replace(unknown_body_fields=fields, unknown_body_enum_names=enums)
    codec = RequestCodec(kinds_pb2.Kinds.DESCRIPTOR, "*", [], options=options)
    if not fast:
        codec._fast = _Never()
    return codec


@settings(max_examples=600, deadline=None)
@given(BODIES, UNKNOWN, UNKNOWN)
def test_fast_request_decoder_accepts_and_refuses_exactly_as_the_fallback(value, fields, enums):
    """Under every combination of the unknown-field and unknown-enum-name settings."""
    body = json.dumps(value).encode()
    assert _outcome(_request_codec(fields, enums), body) == _outcome(_request_codec(fields, enums, fast=False), body)


def _names_a_field_twice(value, descriptor) -> bool:
    """Both spellings of one field in one object, anywhere (edge refuses what json_format takes)."""
    if not isinstance(value, dict) or descriptor.full_name.startswith("google.protobuf."):
        return False
    fields = {}
    for key in value:
        field = descriptor.fields_by_name.get(key) or next((f for f in descriptor.fields if f.json_name == key), None)
        if field is None:
            continue
        if field in fields:
            return True
        fields[field] = key
        item, sub = value[key], field.message_type
        if sub is None:
            continue
        if sub.GetOptions().map_entry:
            sub = sub.fields_by_name["value"].message_type
            if sub is not None and isinstance(item, dict) and any(_names_a_field_twice(v, sub) for v in item.values()):
                return True
        elif field.is_repeated:
            if isinstance(item, list) and any(_names_a_field_twice(v, sub) for v in item):
                return True
        elif _names_a_field_twice(item, sub):
            return True
    return False


@settings(max_examples=600, deadline=None)
@given(BODIES, st.booleans())
def test_request_decoding_agrees_with_json_format(value, ignore):
    """json_format's ignore_unknown_fields=True is edge's default (unknown fields and enum names
    ignored), False is both set to reject: the same message, or an error where it errs, except
    that edge also refuses one field under both spellings."""
    body = json.dumps(value).encode()
    setting = "ignore" if ignore else "reject"
    ours = _outcome(_request_codec(setting, setting), body)
    if _names_a_field_twice(value, kinds_pb2.Kinds.DESCRIPTOR):
        assert ours[0] == "error" and "twice" in ours[1]
        return
    try:
        expected = json_format.ParseDict(value, kinds_pb2.Kinds(), ignore_unknown_fields=ignore, max_recursion_depth=100)
    except Exception:
        assert ours[0] == "error"
    else:
        assert ours == ("ok", expected.SerializeToString(deterministic=True))


def test_a_plain_body_takes_the_fast_path():
    value = {"fString": "x", "fInt64": "-12", "f_int32": 7, "fBool": True, "fDouble": 1.5, "color": "RED",
             "tags": ["a"], "ids": ["1", 2], "inner": {"name": "n", "when": "2024-01-01T00:00:00Z", "child": {}},
             "items": [{"count": 1}], "ts": "1970-01-01T00:00:01.5Z", "dur": "3s", "updateMask": "a,bC",
             "choiceName": "c"}
    expected = json_format.ParseDict(value, kinds_pb2.Kinds())
    message = kinds_pb2.Kinds()
    RequestCodec(kinds_pb2.Kinds.DESCRIPTOR, "*", [])._fast.fill(message, value, 0)  # no _Fallback raised
    assert message == expected and message.inner.HasField("child")


TIMESTAMP_TEXT = st.one_of(
    st.builds(
        lambda y, mo, d, h, mi, s, frac, zone: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}{zone}",
        st.integers(0, 10000), st.integers(0, 13), st.integers(0, 32), st.integers(0, 24), st.integers(0, 60),
        st.integers(0, 61), st.sampled_from(["", ".", ".5", ".123456789", ".1234567891", ".000000001", ".50"]),
        st.sampled_from(["Z", "z", "+01:00", "-00:30", "", "Z "]),
    ),
    st.sampled_from(["1970-01-01T00:00:00Z", "1970-1-01T00:00:00Z", "1970-01-01t00:00:00Z", " 1970-01-01T00:00:00Z",
                     "1970-01-01T00:00:00.Z", "２０２４-01-01T00:00:00Z"]),
)


@settings(max_examples=600, deadline=None)
@given(TIMESTAMP_TEXT)
def test_fast_timestamp_parse_agrees_with_json_format(text):
    """The RFC 3339 fast path gives json_format's seconds and nanos, and its verdict on bad input."""
    body = json.dumps({"ts": text}).encode()
    fast = RequestCodec(kinds_pb2.Kinds.DESCRIPTOR, "*", [])
    slow = RequestCodec(kinds_pb2.Kinds.DESCRIPTOR, "*", [])
    slow._fast = _Never()
    assert _outcome(fast, body) == _outcome(slow, body)


def test_a_utc_timestamp_takes_the_fast_path():
    from transcoding.fastjson import utc_timestamp as _utc_timestamp

    assert _utc_timestamp("1969-12-31T23:59:59.000000001Z") == (-1, 1)
    assert _utc_timestamp("9999-12-31T23:59:59.999999999Z") == (253402300799, 999999999)
    assert _utc_timestamp("2024-02-30T00:00:00Z") is None  # json_format words the error
    assert _utc_timestamp("2024-01-01T00:00:00+01:00") is None  # offsets go to json_format


ENUM_SPELLINGS = st.sampled_from(["RED", "red", "Red", "bLuE", "GREEN", "green", "g-r-e-e-n", "COLOR-UNSPECIFIED",
                                  "color_unspecified", "purple", "2", 3, "", "RED "])
ENUM_BODIES = st.fixed_dictionaries({}, optional={
    "color": ENUM_SPELLINGS, "colors": st.lists(ENUM_SPELLINGS, max_size=3),
    "inner": st.fixed_dictionaries({}, optional={"color": ENUM_SPELLINGS, "child": st.fixed_dictionaries(
        {}, optional={"color": ENUM_SPELLINGS})}),
    "items": st.lists(st.fixed_dictionaries({}, optional={"color": ENUM_SPELLINGS}), max_size=2),
    "innerById": st.dictionaries(st.sampled_from(["1", "2"]), st.fixed_dictionaries({"color": ENUM_SPELLINGS}),
                                 max_size=2),
    "fString": st.sampled_from(["red", "x"]),
})


@settings(max_examples=300, deadline=None)
@given(ENUM_BODIES)
def test_case_insensitive_enums_keep_fast_and_json_format_in_step(value):
    """case_insensitive_enums rewrites the parsed body before either engine sees it: both
    still agree, and a body the default accepts means the same with the option on."""
    body = json.dumps(value).encode()
    strict = TranscodingOptions().replace(unknown_body_fields="reject", unknown_body_enum_names="reject")
    insensitive = strict.replace(case_insensitive_enums=True)
    fast = RequestCodec(kinds_pb2.Kinds.DESCRIPTOR, "*", [], options=insensitive)
    slow = RequestCodec(kinds_pb2.Kinds.DESCRIPTOR, "*", [], options=insensitive)
    slow._fast = _Never()
    assert _outcome(fast, body) == _outcome(slow, body)
    default = _outcome(RequestCodec(kinds_pb2.Kinds.DESCRIPTOR, "*", [], options=strict), body)
    if default[0] == "ok":
        assert _outcome(fast, body) == default
    if _outcome(fast, body)[0] == "ok":  # every enum string left is a value name, or a number
        message = kinds_pb2.Kinds.FromString(_outcome(fast, body)[1])
        assert message.color in (0, 1, 2, 3) and all(c in (0, 1, 2, 3) for c in message.colors)

TIMESTAMP_SECONDS = st.one_of(st.integers(-62135596800, 253402300799),
                              st.sampled_from([-62135596800, 253402300799, 0, -1, 86399, 86400, 951782400]),
                              st.integers(-2**63, 2**63 - 1))  # out of range too
NANOS = st.one_of(st.sampled_from([0, 1, 999_999_999, 1_000_000, 5_000, 120_000_000, -1, 1_000_000_000]),
                  st.integers(-(2**31), 2**31 - 1))


def _printed(fn, message):
    try:
        return "ok", fn(message)
    except Exception:  # noqa: BLE001 - which way it refuses is the codec's business: json_format then reports it
        return "refused", None


@settings(max_examples=1000, deadline=None)
@given(TIMESTAMP_SECONDS, NANOS)
def test_fast_timestamp_print_agrees_with_to_json_string(seconds, nanos):
    from google.protobuf import timestamp_pb2

    from transcoding.fastjson import timestamp_json

    message = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    assert _printed(timestamp_json, message) == _printed(timestamp_pb2.Timestamp.ToJsonString, message)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.integers(-315576000000, 315576000000), st.integers(-2**63, 2**63 - 1),
                 st.sampled_from([0, -1, 1, 315576000000, -315576000000, 315576000001])), NANOS)
def test_fast_duration_print_agrees_with_to_json_string(seconds, nanos):
    from google.protobuf import duration_pb2

    from transcoding.fastjson import duration_json

    message = duration_pb2.Duration(seconds=seconds, nanos=nanos)
    assert _printed(duration_json, message) == _printed(duration_pb2.Duration.ToJsonString, message)
