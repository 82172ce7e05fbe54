"""Query parameters onto request messages: every field kind, every refusal.

Each case runs against the generated classes and against classes built from a
fresh DescriptorPool (the gateway's real situation). The route-level rules
(profiles, body fields, path fields, unknown and ignored names) and the
anchors' own tables live in tests/test_query_rules.py; this file is the value
and name side of the mapper.
"""
from __future__ import annotations

import math

import grpc
import pytest

from tests.support.kinds import KindsTypes, both
from transcoding.errors import (
    BadRequest,
    MethodNotAllowed,
    NotImplementedByGateway,
    PayloadTooLarge,
    RouteNotFound,
    TranscodeError,
    UnsupportedMediaType,
)
from transcoding.query import QueryMapper, apply_query, mapper_for


@pytest.fixture(params=both(), ids=lambda t: t.flavour)
def kt(request: pytest.FixtureRequest) -> KindsTypes:
    return request.param


def parsed(kt: KindsTypes, *params: tuple[str, str], bound: set[str] | None = None):
    message = kt.Kinds()
    apply_query(message, list(params), bound or set())
    return message


def refused(kt: KindsTypes, *params: tuple[str, str], bound: set[str] | None = None) -> BadRequest:
    with pytest.raises(BadRequest) as info:
        parsed(kt, *params, bound=bound)
    return info.value


# ---------------------------------------------------------------- scalars

@pytest.mark.parametrize(
    "key, value, field, expected",
    [
        ("f_int32", "-2147483648", "f_int32", -(2**31)),
        ("fInt32", "2147483647", "f_int32", 2**31 - 1),
        ("f_int32", "+7", "f_int32", 7),
        ("f_int64", "-9223372036854775808", "f_int64", -(2**63)),
        ("fInt64", "9223372036854775807", "f_int64", 2**63 - 1),
        ("f_uint32", "4294967295", "f_uint32", 2**32 - 1),
        ("f_uint64", "18446744073709551615", "f_uint64", 2**64 - 1),
        ("f_sint32", "-5", "f_sint32", -5),
        ("f_sint64", "-5000000000", "f_sint64", -5_000_000_000),
        ("f_fixed32", "7", "f_fixed32", 7),
        ("f_fixed64", "18446744073709551615", "f_fixed64", 2**64 - 1),
        ("f_sfixed32", "-7", "f_sfixed32", -7),
        ("fSfixed64", "-7", "f_sfixed64", -7),
        ("f_double", "1.5e300", "f_double", 1.5e300),
        ("f_double", "-0.25", "f_double", -0.25),
        ("f_double", ".5", "f_double", 0.5),
        ("f_double", "Infinity", "f_double", math.inf),
        ("f_double", "-Infinity", "f_double", -math.inf),
        ("f_double", "inf", "f_double", math.inf),  # Go's ParseFloat spelling
        ("f_float", "1.5", "f_float", 1.5),
        ("f_float", "-Infinity", "f_float", -math.inf),
        ("f_bool", "true", "f_bool", True),
        ("f_bool", "True", "f_bool", True),
        ("f_bool", "1", "f_bool", True),
        ("f_bool", "t", "f_bool", True),
        ("f_bool", "tRUE", "f_bool", True),  # Envoy's safe_strtob: any case
        ("f_bool", "yes", "f_bool", True),  # Envoy
        ("f_bool", "Y", "f_bool", True),
        ("f_bool", "false", "f_bool", False),
        ("f_bool", "0", "f_bool", False),
        ("f_bool", "no", "f_bool", False),
        ("f_string", "héllo wörld ✓", "f_string", "héllo wörld ✓"),
        ("customName", "by json_name", "json_named", "by json_name"),
        ("json_named", "by proto name", "json_named", "by proto name"),
        ("f_bytes", "aGVsbG8/Pz8+", "f_bytes", b"hello???>"),  # standard, padded
        ("f_bytes", "aGVsbG8_Pz8-", "f_bytes", b"hello???>"),  # URL-safe
        ("f_bytes", "aGk", "f_bytes", b"hi"),  # unpadded
        ("f_bytes", "aGk=", "f_bytes", b"hi"),
        ("f_bytes", "+/8 ", "f_bytes", b"\xfb\xff>"),  # '+' arrives as ' ' after form-decoding
        ("f_bytes", "", "f_bytes", b""),  # an empty value is empty bytes
        ("f_string", "", "f_string", ""),
        ("color", "BLUE", "color", 3),
        ("color", "2", "color", 2),
        ("opt_int32", "0", "opt_int32", 0),
    ],
)
def test_scalar_values(kt: KindsTypes, key: str, value: str, field: str, expected: object) -> None:
    message = parsed(kt, (key, value))
    assert getattr(message, field) == expected
    if field == "opt_int32":
        assert message.HasField("opt_int32")  # proto3 optional: explicit zero is set


def test_nan(kt: KindsTypes) -> None:
    message = parsed(kt, ("f_double", "NaN"), ("fFloat", "nan"))
    assert math.isnan(message.f_double) and math.isnan(message.f_float)


@pytest.mark.parametrize(
    "key, value",
    [
        ("f_int32", "2147483648"),
        ("f_int32", "-2147483649"),
        ("f_int32", "1.5"),
        ("f_int32", "1e3"),
        ("f_int32", " 1"),
        ("f_int32", "1_000"),
        ("f_int32", "٣"),  # a non-ASCII digit Python's int() would take
        ("f_int32", "abc"),
        ("f_int64", "9223372036854775808"),
        ("fInt64", "-9223372036854775809"),
        ("f_int64", "1" * 5000),
        ("f_uint32", "-1"),
        ("f_uint32", "4294967296"),
        ("f_uint64", "18446744073709551616"),
        ("f_uint64", "+1"),
        ("f_sint32", "x"),
        ("f_fixed32", "-1"),
        ("f_sfixed64", "9223372036854775808"),
        ("f_float", "3.5e38"),
        ("f_float", "abc"),
        ("f_double", "1e400"),
        ("f_double", "0x10"),
        ("f_double", "1,5"),
        ("f_bool", "yess"),
        ("f_bool", "2"),
        ("f_bool", "on"),
        ("f_bytes", "a"),
        ("f_bytes", "a===="),
        ("f_bytes", "!!!!"),
        ("color", "PURPLE"),
        ("color", "red"),  # case-sensitive unless case_insensitive_enums
        ("color", "99"),
        ("colors", "NOPE"),
        ("ids", "x"),
        ("f_string", "\ud800"),
    ],
)
def test_bad_scalar_values_name_the_parameter(kt: KindsTypes, key: str, value: str) -> None:
    error = refused(kt, (key, value))
    assert error.field == key
    assert repr(key) in error.message
    assert error.http_status == 400 and error.grpc_code == grpc.StatusCode.INVALID_ARGUMENT


# ------------------------------------------------------- nesting, repeated

def test_nested_fields_in_either_spelling(kt: KindsTypes) -> None:
    message = parsed(kt, ("inner.name", "a"), ("inner.child.count", "3"), ("inner.child.child.color", "GREEN"))
    assert message.inner.name == "a"
    assert message.inner.child.count == 3
    assert message.inner.child.child.color == 2
    message = parsed(kt, ("inner.when", "2021-02-03T04:05:06Z"), ("inner.tags", "x"), ("inner.tags", "y"))
    assert message.inner.when.seconds == 1612325106
    assert list(message.inner.tags) == ["x", "y"]


def test_repeated_scalars_by_repetition(kt: KindsTypes) -> None:
    message = parsed(
        kt,
        ("ids", "1"),
        ("ids", "-9223372036854775808"),
        ("tags", "a"),
        ("tags", "b"),
        ("colors", "RED"),
        ("colors", "3"),
        ("blobs", "AA=="),
        ("blobs", "_w"),
        ("ratios", "0.5"),
        ("ratios", "NaN"),
    )
    assert list(message.ids) == [1, -(2**63)]
    assert list(message.tags) == ["a", "b"]
    assert list(message.colors) == [1, 3]
    assert list(message.blobs) == [b"\x00", b"\xff"]
    assert message.ratios[0] == 0.5 and math.isnan(message.ratios[1])


def test_empty_values_set_strings_and_skip_the_rest(kt: KindsTypes) -> None:
    message = parsed(kt, ("f_int32", ""), ("ids", ""), ("ids", "4"), ("ts", ""), ("tags", ""), ("tags", "x"))
    assert message.f_int32 == 0
    assert list(message.ids) == [4]
    assert not message.HasField("ts")
    assert list(message.tags) == ["", "x"]  # both anchors append the empty string
    # an empty string is a value: it selects its oneof member, sets a StringValue
    message = parsed(kt, ("choice_name", ""), ("w_string", ""), ("w_int32", ""))
    assert message.WhichOneof("choice") == "choice_name"
    assert message.HasField("w_string") and not message.HasField("w_int32")


def test_oneof_members(kt: KindsTypes) -> None:
    assert parsed(kt, ("choice_id", "7")).choice_id == 7
    message = parsed(kt, ("choice_inner.name", "n"), ("choice_inner.count", "2"))
    assert message.WhichOneof("choice") == "choice_inner"
    assert (message.choice_inner.name, message.choice_inner.count) == ("n", 2)


@pytest.mark.parametrize(
    "params, field",
    [
        ([("choice_name", "a"), ("choice_id", "1")], "choice_id"),
        ([("choice_inner.name", "a"), ("choiceName", "b")], "choiceName"),
        ([("choice_id", "1"), ("choice_inner.count", "2")], "choice_inner.count"),
    ],
)
def test_two_members_of_one_oneof_are_refused(kt: KindsTypes, params: list[tuple[str, str]], field: str) -> None:
    error = refused(kt, *params)
    assert error.field == field
    assert "oneof 'choice'" in error.message


# ---------------------------------------------------------- well-known types

def test_timestamp_and_duration(kt: KindsTypes) -> None:
    message = parsed(kt, ("ts", "2021-02-03T04:05:06.789+01:00"), ("dur", "-1.5s"))
    assert (message.ts.seconds, message.ts.nanos) == (1612321506, 789_000_000)
    assert (message.dur.seconds, message.dur.nanos) == (-1, -500_000_000)
    # '+' of an offset arrives as ' ' after form-decoding
    assert parsed(kt, ("ts", "2021-02-03T04:05:06 01:00")).ts.seconds == 1612321506
    # the epoch and a zero duration are still *set*
    message = parsed(kt, ("ts", "1970-01-01T00:00:00Z"), ("dur", "0s"))
    assert message.HasField("ts") and message.HasField("dur")
    # Go's duration syntax, as grpc-gateway reads it
    assert parsed(kt, ("dur", "1h30m")).dur.seconds == 5400


def test_field_mask_in_camel_or_snake_case(kt: KindsTypes) -> None:
    message = parsed(kt, ("updateMask", "fInt32,inner.childCount,snake_case.path_x"))
    assert list(message.update_mask.paths) == ["f_int32", "inner.child_count", "snake_case.path_x"]
    message = parsed(kt, ("update_mask.paths", "a_b"), ("update_mask.paths", "c"))
    assert list(message.update_mask.paths) == ["a_b", "c"]
    message = parsed(kt, ("masks", "a,bC"), ("masks", "d"))
    assert [list(m.paths) for m in message.masks] == [["a", "b_c"], ["d"]]


def test_wrappers_take_the_scalar_form(kt: KindsTypes) -> None:
    message = parsed(
        kt,
        ("w_int32", "0"),
        ("wInt64", "-9223372036854775808"),
        ("w_uint32", "4294967295"),
        ("w_uint64", "18446744073709551615"),
        ("w_float", "0.5"),
        ("w_double", "-Infinity"),
        ("w_bool", "false"),
        ("w_string", "s"),
        ("w_bytes", "aGk"),
        ("w_int64s", "1"),
        ("w_int64s", "0"),
    )
    assert message.HasField("w_int32") and message.w_int32.value == 0
    assert message.w_int64.value == -(2**63)
    assert message.w_uint32.value == 2**32 - 1
    assert message.w_uint64.value == 2**64 - 1
    assert message.w_float.value == 0.5
    assert message.w_double.value == -math.inf
    assert message.HasField("w_bool") and message.w_bool.value is False
    assert message.w_string.value == "s"
    assert message.w_bytes.value == b"hi"
    assert [w.value for w in message.w_int64s] == [1, 0]


def test_struct_value_and_list_take_json(kt: KindsTypes) -> None:
    message = parsed(kt, ("st", '{"a": [1, "x"], "b": null}'), ("val", "true"), ("list_val", '[1, {"k": "v"}]'))
    assert message.st.fields["a"].list_value.values[1].string_value == "x"
    assert message.st.fields["b"].WhichOneof("kind") == "null_value"
    assert message.val.bool_value is True
    assert message.list_val.values[1].struct_value.fields["k"].string_value == "v"
    # a Value whose text is not JSON is that text, as a string
    assert parsed(kt, ("val", "hello")).val.string_value == "hello"


def test_repeated_timestamps(kt: KindsTypes) -> None:
    message = parsed(kt, ("times", "2000-01-01T00:00:00Z"), ("times", "1970-01-01T00:00:01Z"))
    assert [t.seconds for t in message.times] == [946684800, 1]


@pytest.mark.parametrize(
    "key, value",
    [
        ("ts", "yesterday"),
        ("ts", "2021-02-03T04:05:06"),  # no offset
        ("ts", "2021-13-03T04:05:06Z"),
        ("ts", "0000-01-01T00:00:00Z"),
        ("dur", "1d"),
        ("dur", "abc"),
        ("dur", "99999999999999s"),
        ("w_int32", "2147483648"),
        ("w_uint64", "-1"),
        ("w_bool", "maybe"),
        ("w_float", "1e39"),
        ("w_bytes", "@@"),
        ("w_int64s", "x"),
        ("times", "nope"),
        ("val", '{"a": 1, "a": 2}'),
        ("st", "[1]"),
        ("st", "hello"),  # Struct takes JSON text only
        ("st", '{"a": 1, "a": 2}'),
        ("list_val", "{}"),
        ("st", "[" * 5000),
        ("update_mask", "a(b"),
    ],
)
def test_bad_well_known_values_name_the_parameter(kt: KindsTypes, key: str, value: str) -> None:
    error = refused(kt, (key, value))
    assert error.field == key
    assert f"invalid value for query parameter {key!r}" in error.message


# ------------------------------------------------------------ refusals

@pytest.mark.parametrize(
    "key, says",
    [
        ("nope", "unknown query parameter 'nope'"),
        ("inner.nope", "unknown query parameter 'inner.nope'"),
        ("fint32", "unknown query parameter"),  # neither spelling
        ("inner..name", "unknown query parameter"),
        ("", "unknown query parameter"),
        ("nope[a]", "unknown query parameter 'nope[a]'"),
        ("inner", "message field"),
        ("inner.child", "message field"),
        ("any", "google.protobuf.Any"),
        ("empty", "google.protobuf.Empty"),
        ("labels", "set its entries as labels[key]=value"),
        ("innerById", "message values, which have no text form"),
        ("inner_by_id[1]", "message values, which have no text form"),
        ("inner_by_id.name", "map field"),
        ("inner_by_id[x]", "message values"),
        ("tags[a]", "'tags' is not a map field"),
        ("items", "repeated message"),
        ("items.name", "repeated message"),
        ("f_int32.x", "not a message field"),
        ("ts.seconds.x", "not a message field"),
    ],
)
def test_unsettable_parameters_are_refused(kt: KindsTypes, key: str, says: str) -> None:
    error = refused(kt, (key, "1"))
    assert error.field == key
    assert says in error.message


def test_a_singular_field_given_twice(kt: KindsTypes) -> None:
    error = refused(kt, ("f_int32", "1"), ("f_int32", "2"))
    assert error.field == "f_int32" and "more than once" in error.message
    error = refused(kt, ("f_int32", "1"), ("fInt32", "1"))
    assert error.field == "fInt32" and "'f_int32'" in error.message
    error = refused(kt, ("ts", "1970-01-01T00:00:00Z"), ("ts", "1970-01-01T00:00:00Z"))
    assert error.field == "ts"
    error = refused(kt, ("labels[a]", "1"), ("labels[a]", "2"))
    assert error.field == "labels[a]" and "entry 'a' of map 'labels'" in error.message


@pytest.mark.parametrize(
    "key, bound",
    [
        ("f_int64", {"f_int64"}),
        ("fInt64", {"f_int64"}),
        ("inner.name", {"inner"}),  # under a bound field
        ("inner.child.count", {"inner.child"}),
        ("inner.name", {"inner.name"}),
        ("ts", {"ts.seconds"}),  # above a bound field
        ("labels[a]", {"labels"}),
    ],
)
def test_fields_bound_by_the_path_are_set_twice(kt: KindsTypes, key: str, bound: set[str]) -> None:
    error = refused(kt, (key, "1970-01-01T00:00:00Z" if key == "ts" else "1"), bound=bound)
    assert error.field == key
    assert error.message.startswith("field set twice")


def test_siblings_of_bound_fields_are_fine(kt: KindsTypes) -> None:
    message = parsed(kt, ("inner.count", "2"), ("f_int32", "1"), bound={"inner.name", "inner.child"})
    assert message.inner.count == 2 and message.f_int32 == 1


# --------------------------------------------------------------- mapper

def test_mapper_is_shared_and_resolution_cached(kt: KindsTypes) -> None:
    descriptor = kt.Kinds.DESCRIPTOR
    mapper = mapper_for(descriptor)
    assert mapper_for(descriptor) is mapper
    first = mapper.target("inner.child.count")
    assert mapper.target("inner.child.count") is first
    assert first.path == "inner.child.count"
    assert mapper.target("customName").path == "json_named"
    assert mapper.route(["f_int64"], "inner") is mapper.route(["f_int64"], "inner")


def test_a_mapper_on_its_own(kt: KindsTypes) -> None:
    mapper = QueryMapper(kt.Kinds.DESCRIPTOR)
    message = kt.Kinds()
    mapper.apply(message, [("fUint64", "18446744073709551615"), ("inner.color", "RED"), ("labels[k]", "v")])
    assert message.f_uint64 == 2**64 - 1 and message.inner.color == 1 and dict(message.labels) == {"k": "v"}


def test_recursive_types_resolve_deep_paths(kt: KindsTypes) -> None:
    key = "inner." + "child." * 40 + "name"
    message = parsed(kt, (key, "deep"))
    node = message.inner
    for _ in range(40):
        node = node.child
    assert node.name == "deep"


def test_a_bad_map_value_leaves_no_entry(kt: KindsTypes) -> None:
    message = kt.Kinds()
    with pytest.raises(BadRequest):
        QueryMapper(kt.Kinds.DESCRIPTOR).apply(message, [("labels[a]", "\ud800")])
    assert "a" not in message.labels


# --------------------------------------------------------------- errors

def test_status_dict_with_a_field_violation() -> None:
    error = BadRequest("invalid value for query parameter 'pageSize': 'x' is not a valid int32", field="pageSize")
    assert error.to_status_dict() == {
        "code": 3,
        "message": "invalid value for query parameter 'pageSize': 'x' is not a valid int32",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [
                    {"field": "pageSize", "description": "invalid value for query parameter 'pageSize': 'x' is not a valid int32"}
                ],
            }
        ],
    }


def test_error_family_statuses() -> None:
    cases = [
        (BadRequest("m"), 400, 3),
        (PayloadTooLarge("m"), 413, 8),
        (UnsupportedMediaType("m"), 415, 3),
        (RouteNotFound("m"), 404, 5),
        (MethodNotAllowed("m", ["POST", "GET", "GET"]), 405, 12),
        (NotImplementedByGateway("m"), 501, 12),
    ]
    for error, http_status, code in cases:
        assert isinstance(error, TranscodeError)
        assert error.http_status == http_status
        assert error.to_status_dict() == {"code": code, "message": "m", "details": []}
    assert MethodNotAllowed("m", ["POST", "GET", "GET"]).allowed == ["GET", "POST"]
