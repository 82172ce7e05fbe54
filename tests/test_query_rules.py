"""Query parameters the way the two anchors read them, as tables, at the unit level.

Ported in our own data from grpc-gateway's runtime/query_test.go (populate,
filters, invalid nested paths), grpc-httpjson-transcoding's path_matcher_test.cc
(query bindings, `+` handling, system parameters), request_weaver_test.cc
(binding/body collisions) and request_message_translator_test.cc (case-insensitive
enums), plus every form each anchor reads that the other does not (maps, Go
durations, Envoy's compact field masks, bools, Value text, names with brackets).
Each route-level case runs under each profile where the profiles differ
(transcoding/options.py), through RequestCodec, against the generated classes
and classes from a fresh DescriptorPool. Everything here runs in milliseconds;
tests/test_query_compat.py runs the profile tables through a real gateway.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import Descriptor

from compatquery import query_pb2
from edge.protocols.rest import parse_query
from transcoding.codec import RequestCodec
from transcoding.errors import BadRequest
from transcoding.options import PROFILES, TranscodingOptions
from transcoding.query import mapper_for
from transcoding.textforms import field_mask_paths, go_duration_nanos

SET = Path(__file__).resolve().parent.parent / "protos" / "compatquery" / "descriptors.binpb"
PACKAGE = "compatquery.v1"
EDGE, ENVOY, GG = PROFILES["edge"], PROFILES["envoy"], PROFILES["grpc-gateway"]


def _fresh_pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_pb2.FileDescriptorSet.FromString(SET.read_bytes()).file:
        pool.Add(file)
    return pool


POOLS = {"generated": query_pb2.DESCRIPTOR.pool, "pool": _fresh_pool()}


@pytest.fixture(params=sorted(POOLS))
def pool(request: pytest.FixtureRequest) -> descriptor_pool.DescriptorPool:
    return POOLS[request.param]


def _type(pool: descriptor_pool.DescriptorPool, name: str) -> Descriptor:
    return pool.FindMessageTypeByName(f"{PACKAGE}.{name}")


def as_json(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def bag(pool, params: list[tuple[str, str]], options: TranscodingOptions = EDGE) -> dict[str, Any]:
    """The Bag the query alone makes (GET /v1/bags)."""
    descriptor = _type(pool, "Bag")
    message = message_factory.GetMessageClass(descriptor)()
    mapper_for(descriptor, options).route(options=options).apply(message, params)
    return as_json(message)


def bag_refused(pool, params: list[tuple[str, str]], options: TranscodingOptions = EDGE) -> BadRequest:
    with pytest.raises(BadRequest) as info:
        bag(pool, params, options)
    assert info.value.http_status == 400
    return info.value


# ------------------------------------------- grpc-gateway's populate table

POPULATE = [
    (
        "scalars-by-proto-name",
        [("f_double", "2.5"), ("f_float", "-0.25"), ("f_int32", "-12"), ("f_int64", "-9000000000"),
         ("f_uint32", "12"), ("f_uint64", "9000000000"), ("f_sint32", "-3"), ("f_sint64", "-4"),
         ("f_fixed32", "5"), ("f_fixed64", "6"), ("f_sfixed32", "-7"), ("f_sfixed64", "-8"),
         ("f_bool", "true"), ("f_string", "plain"), ("f_bytes", "AQID"), ("shade", "DARK_BLUE")],
        {"f_double": 2.5, "f_float": -0.25, "f_int32": -12, "f_int64": "-9000000000", "f_uint32": 12,
         "f_uint64": "9000000000", "f_sint32": -3, "f_sint64": "-4", "f_fixed32": 5, "f_fixed64": "6",
         "f_sfixed32": -7, "f_sfixed64": "-8", "f_bool": True, "f_string": "plain", "f_bytes": "AQID",
         "shade": "DARK_BLUE"},
    ),
    (
        "scalars-by-json-name",
        [("fDouble", "-3.5"), ("fFloat", "0.75"), ("fInt32", "21"), ("fInt64", "22"), ("fUint32", "23"),
         ("fUint64", "24"), ("fSint32", "25"), ("fSint64", "26"), ("fFixed32", "27"), ("fFixed64", "28"),
         ("fSfixed32", "29"), ("fSfixed64", "30"), ("fBool", "false"), ("fString", "camel"),
         ("fBytes", "Ynl0ZXM="), ("shade", "1")],
        {"f_double": -3.5, "f_float": 0.75, "f_int32": 21, "f_int64": "22", "f_uint32": 23, "f_uint64": "24",
         "f_sint32": 25, "f_sint64": "26", "f_fixed32": 27, "f_fixed64": "28", "f_sfixed32": 29,
         "f_sfixed64": "30", "f_string": "camel", "f_bytes": "Ynl0ZXM=", "shade": "LIGHT"},
    ),
    (
        "bytes-url-safe-alphabet",
        [("f_bytes", "c2hlbGY_PiE-")],  # b"shelf?>!>" in the URL-safe alphabet
        {"f_bytes": "c2hlbGY/PiE+"},
    ),
    (
        "repeated-by-repetition",
        [("words", "a"), ("words", "b"), ("words", "c"), ("numbers", "1"), ("numbers", "-2"), ("numbers", "3"),
         ("shades", "LIGHT"), ("shades", "3"), ("shades", "0"), ("blobs", "AA=="), ("blobs", "_w"),
         ("flags", "true"), ("flags", "0"), ("flags", "yes"), ("boxed_counts", "7"), ("boxed_counts", "0"),
         ("laps", "1s"), ("laps", "1m30s")],
        {"words": ["a", "b", "c"], "numbers": [1, -2, 3], "shades": ["LIGHT", "PALE_GREEN", "SHADE_UNSPECIFIED"],
         "blobs": ["AA==", "/w=="], "flags": [True, False, True], "boxed_counts": ["7", "0"],
         "laps": ["1s", "90s"]},
    ),
    (
        "repeated-enum-by-json-name",
        [("shades", "DARK_BLUE"), ("shades", "1")],
        {"shades": ["DARK_BLUE", "LIGHT"]},
    ),
    (
        "proto3-optional-keeps-zero-values",
        [("maybe_text", "opt"), ("maybe_count", "0"), ("maybe_shade", "SHADE_UNSPECIFIED"), ("maybeFlag", "false")],
        {"maybe_text": "opt", "maybe_count": "0", "maybe_shade": "SHADE_UNSPECIFIED", "maybe_flag": False},
    ),
    (
        "wrappers",
        [("w_double", "2.5"), ("w_float", "-1.5"), ("w_int64", "-3"), ("w_uint64", "4"), ("w_int32", "0"),
         ("w_uint32", "6"), ("w_bool", "false"), ("w_string", "w"), ("w_bytes", "d3JhcA")],
        {"w_double": 2.5, "w_float": -1.5, "w_int64": "-3", "w_uint64": "4", "w_int32": 0, "w_uint32": 6,
         "w_bool": False, "w_string": "w", "w_bytes": "d3JhcA=="},
    ),
    (
        "wrappers-by-json-name",
        [("wDouble", "1"), ("wUint32", "7"), ("wString", "json")],
        {"w_double": 1.0, "w_uint32": 7, "w_string": "json"},
    ),
    (
        "well-known-types",
        [("at", "2016-12-15T12:23:32.000000049Z"), ("took", "13h0m0s"), ("mask", "f_float,f_double")],
        {"at": "2016-12-15T12:23:32.000000049Z", "took": "46800s", "mask": "fFloat,fDouble"},
    ),
    (
        "maps-every-key-type",
        [("tags[k]", "v"), ("tags[second]", "w"), ("tags[~!@#$%^&*()]", "odd"), ("tags[]", "empty key"),
         ("by_int32[-2]", "neg"), ("by_int64[-9000000000]", "big"), ("by_uint32[3]", "u"),
         ("by_uint64[18446744073709551615]", "max"), ("by_sint32[-5]", "s"), ("by_fixed64[7]", "f"),
         ("by_bool[true]", "yes"), ("by_bool[0]", "no")],
        {"tags": {"k": "v", "second": "w", "~!@#$%^&*()": "odd", "": "empty key"}, "by_int32": {"-2": "neg"},
         "by_int64": {"-9000000000": "big"}, "by_uint32": {"3": "u"}, "by_uint64": {"18446744073709551615": "max"},
         "by_sint32": {"-5": "s"}, "by_fixed64": {"7": "f"}, "by_bool": {"true": "yes", "false": "no"}},
    ),
    (
        "maps-every-value-kind",
        [("sizes[k]", "-2"), ("totals[k]", "-1"), ("counts32[k]", "3"), ("counts64[k]", "4"),
         ("ratios32[k]", "1.5"), ("ratios[k]", "2.5"), ("switches[k]", "true"), ("payloads[k]", "aGk"),
         ("shade_by_name[k]", "PALE_GREEN"), ("shade_by_name[n]", "2"), ("boxed[k]", "2"),
         ("stamps[k]", "2020-01-01T00:00:00Z"), ("spans[k]", "1h"), ("spans[j]", "0.5s")],
        {"sizes": {"k": -2}, "totals": {"k": "-1"}, "counts32": {"k": 3}, "counts64": {"k": "4"},
         "ratios32": {"k": 1.5}, "ratios": {"k": 2.5}, "switches": {"k": True}, "payloads": {"k": "aGk="},
         "shade_by_name": {"k": "PALE_GREEN", "n": "DARK_BLUE"}, "boxed": {"k": "2"},
         "stamps": {"k": "2020-01-01T00:00:00Z"}, "spans": {"k": "3600s", "j": "0.500s"}},
    ),
    (
        "maps-by-json-name",
        [("byInt32[1]", "one"), ("shadeByName[x]", "LIGHT")],
        {"by_int32": {"1": "one"}, "shade_by_name": {"x": "LIGHT"}},
    ),
    (
        "map-empty-string-value",
        [("tags[fourth]", "")],
        {"tags": {"fourth": ""}},
    ),
    (
        "nested-messages",
        [("nested.nested.nested.words", "a"), ("nested.nested.nested.words", "b"),
         ("nested.nested.nested.f_string", "s"), ("nested.nested.f_string", "t"), ("nested.fString", "u"),
         ("nested.nested.tags[first]", "foo"), ("nested.nested.tags[second]", "bar")],
        {"nested": {"f_string": "u", "nested": {"f_string": "t", "tags": {"first": "foo", "second": "bar"},
                                                "nested": {"words": ["a", "b"], "f_string": "s"}}}},
    ),
    ("oneof-by-proto-name", [("pick_text", "foobar")], {"pick_text": "foobar"}),
    ("oneof-by-json-name", [("pickText", "foobar")], {"pick_text": "foobar"}),
    ("oneof-number", [("pick_number", "0")], {"pick_number": 0}),
    (
        "oneof-message-member",
        [("pick_note.stars", "-1"), ("pick_note.text", "foo")],
        {"pick_note": {"stars": -1, "text": "foo"}},
    ),
    ("value-json-object", [("any_json", '{"a":{"b":1}}')], {"any_json": {"a": {"b": 1.0}}}),
    ("value-json-string", [("any_json", '""')], {"any_json": ""}),
    ("value-empty-object", [("any_json", "{}")], {"any_json": {}}),
    ("value-empty-list", [("any_json", "[]")], {"any_json": []}),
    ("value-bool", [("any_json", "true")], {"any_json": True}),
    ("value-number", [("any_json", "0")], {"any_json": 0.0}),
    ("value-null", [("any_json", "null")], {"any_json": None}),
    ("struct", [("meta", '{"a":{"b":1}}')], {"meta": {"a": {"b": 1.0}}}),
    ("struct-empty", [("meta", "{}")], {"meta": {}}),
    (
        "struct-nested-lists",
        [("meta", '{"c":[1,2],"d":[{"e":1,"f":{}}]}')],
        {"meta": {"c": [1.0, 2.0], "d": [{"e": 1.0, "f": {}}]}},
    ),
    ("list-value", [("items", '[1,"a",null,{"k":[]}]')], {"items": [1.0, "a", None, {"k": []}]}),
]


@pytest.mark.parametrize("params, expected", [c[1:] for c in POPULATE], ids=[c[0] for c in POPULATE])
def test_populate(pool, params, expected) -> None:
    assert bag(pool, params) == expected


# grpc-gateway refuses these; so does every profile of edge.
POPULATE_ERRORS = [
    ("timestamp-null", [("at", "null")], "at"),
    ("duration-null", [("took", "null")], "took"),
    ("oneof-twice", [("pick_text", "x"), ("pick_number", "1")], "pick_number"),
    ("oneof-member-then-message", [("pick_number", "10"), ("pick_note.stars", "-1")], "pick_note.stars"),
    ("oneof-message-then-member", [("pick_note.stars", "-1"), ("pick_number", "10")], "pick_number"),
    ("too-many-values", [("f_uint64", "1"), ("f_uint64", "2")], "f_uint64"),
    ("map-entry-twice", [("tags[k]", "1"), ("tags[k]", "2")], "tags[k]"),
    ("map-entry-twice-spellings", [("by_int32[1]", "a"), ("byInt32[01]", "b")], "byInt32[01]"),
    ("list-of-messages", [("notes_list.text", "1")], "notes_list.text"),
    ("timestamp-before-year-1", [("at", "0000-01-01T00:00:00.00Z")], "at"),
    ("map-of-messages", [("notes[k]", "x")], "notes[k]"),
    ("map-bad-int-key", [("by_int32[x]", "v")], "by_int32[x]"),
    ("map-int-key-range", [("by_int32[2147483648]", "v")], "by_int32[2147483648]"),
    ("map-bad-bool-key", [("by_bool[maybe]", "v")], "by_bool[maybe]"),
    ("map-negative-unsigned-key", [("by_uint32[-1]", "v")], "by_uint32[-1]"),
    ("map-bad-value", [("sizes[k]", "big")], "sizes[k]"),
    ("map-bad-enum-value", [("shade_by_name[k]", "PURPLE")], "shade_by_name[k]"),
    ("map-without-key", [("tags", "v")], "tags"),
    ("map-on-a-list", [("words[0]", "v")], "words[0]"),
    ("message-without-text-form", [("note", "x")], "note"),
] + [
    (f"nested-under-{name}", [(f"{name}.nested", "test")], f"{name}.nested")
    for name in ("f_float", "f_double", "f_int64", "f_int32", "f_uint64", "f_uint32", "f_bool", "f_string",
                 "words", "shade", "shades")
]


@pytest.mark.parametrize("params, field", [c[1:] for c in POPULATE_ERRORS], ids=[c[0] for c in POPULATE_ERRORS])
@pytest.mark.parametrize("options", [EDGE, ENVOY, GG], ids=["edge", "envoy", "grpc-gateway"])
def test_populate_errors_name_the_parameter(pool, params, field, options) -> None:
    error = bag_refused(pool, params, options)
    assert error.field == field
    assert repr(field) in error.message


@pytest.mark.parametrize("key", ["took.nested", "at.nested", "w_int32.nested", "nested.nested.nope", "nope", "nope[k]"])
def test_unknown_names_below_messages(pool, key) -> None:
    """A name no field has, at any depth (inside a well-known type too): refused by
    Envoy (and the edge profile), ignored by grpc-gateway."""
    for options in (EDGE, ENVOY):
        error = bag_refused(pool, [(key, "1")], options)
        assert error.field == key and error.message.startswith(f"unknown query parameter {key!r}")
    assert bag(pool, [(key, "1"), ("f_int32", "1")], GG) == {"f_int32": 1}


# ---------------------------------------------------------------- values

VALUES = [
    # (key, text, expected JSON of the field; None: a 400)
    ("f_int32", "0", None),  # zero: not printed, so checked apart below
    ("f_int32", "-0", None),
    ("f_int32", "007", 7),
    ("f_int32", "+2147483647", 2147483647),
    ("f_int32", "-2147483648", -2147483648),
    ("f_int64", "-9223372036854775808", "-9223372036854775808"),
    ("f_uint64", "18446744073709551615", "18446744073709551615"),
    ("f_sint64", "9223372036854775807", "9223372036854775807"),
    ("f_fixed32", "4294967295", 4294967295),
    ("f_double", "1e-300", 1e-300),
    ("f_double", "-1.5E+3", -1500.0),
    ("f_double", "5.", 5.0),
    ("f_double", "Infinity", "Infinity"),
    ("f_double", "-inf", "-Infinity"),
    ("f_double", "+Inf", "Infinity"),
    ("f_double", "NaN", "NaN"),
    ("f_float", "3.4e38", 3.4e38),
    ("f_float", "NaN", "NaN"),
    ("f_string", "with spaces & symbols=?", "with spaces & symbols=?"),
    ("f_string", "\u00e9\u4e2d\U0001f600", "\u00e9\u4e2d\U0001f600"),
    ("f_string", "a\x00b", "a\x00b"),
    ("f_bytes", "////", "////"),
    ("f_bytes", "____", "////"),
    ("f_bytes", "-_-_", "+/+/"),
    ("f_bytes", "AAECAw", "AAECAw=="),
    ("f_bytes", "AAECAw==", "AAECAw=="),
    ("f_bytes", "AAECAwQ", "AAECAwQ="),
    ("f_bytes", "+/+/", "+/+/"),
    ("f_bytes", " / /", "+/+/"),  # '+' turned into ' ' by form-decoding
    ("shade", "PALE_GREEN", "PALE_GREEN"),
    ("shade", "3", "PALE_GREEN"),
    ("shade", "+2", "DARK_BLUE"),
    ("at", "1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
    ("at", "2024-02-29T23:59:59.5-05:00", "2024-03-01T04:59:59.500Z"),
    ("at", "2024-02-29T23:59:59 05:30", "2024-02-29T18:29:59Z"),  # '+05:30' after form-decoding
    ("at", "9999-12-31T23:59:59.999999999Z", "9999-12-31T23:59:59.999999999Z"),
    ("took", "0", "0s"),
    ("took", "-0", "0s"),
    ("took", "1.5s", "1.500s"),
    ("took", "-1.5s", "-1.500s"),
    ("took", "315576000000s", "315576000000s"),
    ("took", "1h", "3600s"),
    ("took", "1h30m", "5400s"),
    ("took", "2h45m30.5s", "9930.500s"),
    ("took", "300ms", "0.300s"),
    ("took", "1.5us", "0.000001500s"),
    ("took", "7ns", "0.000000007s"),
    ("took", "-90m", "-5400s"),
    ("took", "1m-", None),
    ("took", "1d", None),
    ("took", "1", None),
    ("took", "s", None),
    ("took", "315576000001s", None),
    ("took", "3000000h", None),
    ("mask", "a,b", "a,b"),
    ("mask", "fooBar,baz.quxQuux", "fooBar,baz.quxQuux"),
    ("mask", "foo_bar", "fooBar"),
    ("mask", "a(b,c)", "a.b,a.c"),
    ("mask", "a(", None),
    ("w_int32", "-1", -1),
    ("w_uint32", "-1", None),
    ("w_int64", "9223372036854775807", "9223372036854775807"),
    ("w_uint64", "18446744073709551615", "18446744073709551615"),
    ("w_float", "-0.5", -0.5),
    ("w_double", "NaN", "NaN"),
    ("w_bool", "TRUE", True),
    ("w_bool", "n", False),
    ("w_string", "wrapped", "wrapped"),
    ("w_bytes", "AP8", "AP8="),
    ("w_bytes", "AP8*", None),
    ("any_json", "hello", "hello"),
    ("any_json", '"quoted"', "quoted"),
    ("any_json", "[1,", "[1,"),  # not JSON: a string
    ("any_json", "NaN", "NaN"),  # not JSON either
    ("any_json", "-1.5", -1.5),
    ("meta", "[]", None),
    ("meta", "nope", None),
    ("items", '{"a":1}', None),
    ("items", "[true]", [True]),
]


@pytest.mark.parametrize("key, text, expected", VALUES, ids=[f"{k}={t!r}" for k, t, _ in VALUES])
def test_values(pool, key, text, expected) -> None:
    if expected is None and not (key == "f_int32" and text in ("0", "-0")):
        error = bag_refused(pool, [(key, text)])
        assert error.field == key and f"invalid value for query parameter {key!r}" in error.message
        return
    got = bag(pool, [(key, text)])
    if expected is None:  # a zero: nothing printed, nothing refused
        assert got == {}
    else:
        assert got == {key: expected}


BOOLS = {
    **{text: True for text in ("true", "True", "TRUE", "tRuE", "t", "T", "1", "yes", "YES", "Yes", "y", "Y")},
    **{text: False for text in ("false", "False", "FALSE", "f", "F", "0", "no", "NO", "n", "N")},
    **{text: None for text in ("2", "-1", "on", "off", "yess", "truth", " true", "true ", "\u0131", "1.0")},
}


@pytest.mark.parametrize("text, expected", BOOLS.items(), ids=[repr(t) for t in BOOLS])
def test_bools_as_either_anchor_reads_them(pool, text, expected) -> None:
    if expected is None:
        assert bag_refused(pool, [("maybe_flag", text)]).field == "maybe_flag"
    else:
        assert bag(pool, [("maybe_flag", text)]) == {"maybe_flag": expected}


GO_DURATIONS = {
    "0": 0, "+0": 0, "-0": 0, "5s": 5 * 10**9, "+5s": 5 * 10**9, "-5s": -5 * 10**9, "1.5s": 1_500_000_000,
    ".5s": 500_000_000, "5.s": 5 * 10**9, "1h30m": 5400 * 10**9, "1h30m45.5s": 5445_500_000_000,
    "300ms": 300_000_000, "2us": 2000, "2\u00b5s": 2000, "2\u03bcs": 2000, "7ns": 7, "1.0000000001s": 10**9,
    "2h45m": 9900 * 10**9, "-1.5h": -5400 * 10**9, "1m0.5s": 60_500_000_000, "13h0m0s": 46800 * 10**9,
    "0.5m": 30 * 10**9, "1h1h": 7200 * 10**9, "1.5ms": 1_500_000, "2562047h47m16.854775807s": 2**63 - 1,
    "-2562047h47m16.854775808s": -(2**63),
    **{text: None for text in ("", "s", "1", "1x", "h", ".s", "1.5", "1 h", "--1s", "1s ", " 1s", "1e3s", "+",
                               "-", "0.0", "00", "1hh", "1.2.3s", "2562047h47m16.854775808s", "9999999999999h",
                               "1m-1s", "١s")},
}


@pytest.mark.parametrize("text, nanos", GO_DURATIONS.items(), ids=[repr(t) for t in GO_DURATIONS])
def test_go_durations(text, nanos) -> None:
    if nanos is None:
        with pytest.raises(ValueError):
            go_duration_nanos(text)
    else:
        assert go_duration_nanos(text) == nanos


FIELD_MASKS = {
    "a": ["a"], "a,b": ["a", "b"], "aB,c.dE": ["a_b", "c.d_e"], "a(b,c)": ["a.b", "a.c"],
    "a(b(c,d),e),f": ["a.b.c", "a.b.d", "a.e", "f"], "": [], "a,,b": ["a", "b"], "foo_bar,fooBar": ["foo_bar", "foo_bar"],
    " a , b ": ["a", "b"], "shelf(theme,sizeCm)": ["shelf.theme", "shelf.size_cm"], "a()": [], "x.y(z)": ["x.y.z"],
    "a(b": None, "a)": None, "(a)": None, "a(b))": None,
}


@pytest.mark.parametrize("text, paths", FIELD_MASKS.items(), ids=[repr(t) for t in FIELD_MASKS])
def test_field_mask_text(text, paths) -> None:
    if paths is None:
        with pytest.raises(ValueError):
            field_mask_paths(text)
    else:
        assert field_mask_paths(text) == paths


EMPTY_VALUES = [
    # An empty value is a value for strings and bytes (both anchors set it), a blank input elsewhere.
    ("maybe_text", {"maybe_text": ""}),
    ("w_string", {"w_string": ""}),
    ("w_bytes", {"w_bytes": ""}),
    ("pick_text", {"pick_text": ""}),
    ("words", {"words": [""]}),
    ("blobs", {"blobs": [""]}),
    ("tags[k]", {"tags": {"k": ""}}),
    ("payloads[k]", {"payloads": {"k": ""}}),
    ("any_json", {"any_json": ""}),
    ("f_string", {}),
    ("f_bytes", {}),
    ("f_int32", {}),
    ("maybe_count", {}),
    ("maybe_flag", {}),
    ("shade", {}),
    ("numbers", {}),
    ("at", {}),
    ("took", {}),
    ("mask", {}),
    ("meta", {}),
    ("w_int32", {}),
    ("sizes[k]", {}),
    ("pick_number", {}),
    ("nested.maybe_text", {"nested": {"maybe_text": ""}}),
]


@pytest.mark.parametrize("key, expected", EMPTY_VALUES, ids=[k for k, _ in EMPTY_VALUES])
def test_empty_values(pool, key, expected) -> None:
    assert bag(pool, [(key, "")]) == expected


# ----------------------------------------------------------------- names

NAMES = [
    # (key as it reaches the mapper, percent-decoded; the field it sets)
    ("search[decoded]", {"search_decoded": "v"}),  # a json_name with brackets (Envoy's type_helper test)
    ("search_decoded", {"search_decoded": "v"}),
    ("search%5Bencoded%5D", {"search_encoded": "v"}),  # that json_name as written
    ("search[encoded]", {"search_encoded": "v"}),  # ...and decoded, as Envoy also looks it up
    ("search_encoded", {"search_encoded": "v"}),
    ("a.b", {"dotted_name": "v"}),  # a json_name with a dot
    ("dotted_name", {"dotted_name": "v"}),
    ("Renamed-Field", {"dashed_name": "v"}),
    ("nested.search[decoded]", {"nested": {"search_decoded": "v"}}),
    ("nested.a.b", {"nested": {"dotted_name": "v"}}),
    ("nested.nested.Renamed-Field", {"nested": {"nested": {"dashed_name": "v"}}}),
    ("tags[a.b]", {"tags": {"a.b": "v"}}),  # the key may hold dots
    ("nested.tags[k]", {"nested": {"tags": {"k": "v"}}}),
    ("fString", {"f_string": "v"}),
]


@pytest.mark.parametrize("key, expected", NAMES, ids=[k for k, _ in NAMES])
def test_names(pool, key, expected) -> None:
    assert bag(pool, [(key, "v")]) == expected


@pytest.mark.parametrize(
    "key", ["search[nope]", "tags[x][y]", "tags[[x]]", "tags[a]b", "Search[decoded]", "a", "b", "renamed-field",
            "FString", ".f_string", "nested..f_string"]
)
def test_names_that_resolve_nothing(pool, key) -> None:
    error = bag_refused(pool, [(key, "v")])
    assert error.field == key and error.message.startswith(f"unknown query parameter {key!r}")


@pytest.mark.parametrize("key", ["a.b.c", "f_string.", "f_string.x", "words.x"])
def test_names_that_go_past_a_scalar(pool, key) -> None:
    error = bag_refused(pool, [(key, "v")], GG)  # refused even where unknown names are ignored
    assert error.field == key and "is not a message field" in error.message


def test_percent_encoded_names_from_the_query_string(pool) -> None:
    """Names are percent-decoded before the field lookup (`+` too, under form decoding)."""
    params = parse_query(b"search%5Bdecoded%5D=1&tags%5Bk%20j%5D=2&nested%2Ef_string=3&f%5Fint32=4")
    assert bag(pool, params) == {
        "search_decoded": "1", "tags": {"k j": "2"}, "nested": {"f_string": "3"}, "f_int32": 4,
    }
    assert bag(pool, parse_query(b"tags%5Bk+j%5D=a+b", True)) == {"tags": {"k j": "a b"}}
    assert bag(pool, parse_query(b"tags%5Bk+j%5D=a+b", False)) == {"tags": {"k+j": "a+b"}}


# ----------------------------------------------------------------- enums

ENUMS = [
    # (text, default profiles, with case_insensitive_enums)
    ("LIGHT", "LIGHT", "LIGHT"),
    ("1", "LIGHT", "LIGHT"),
    ("DARK_BLUE", "DARK_BLUE", "DARK_BLUE"),
    ("light", None, "LIGHT"),
    ("Light", None, "LIGHT"),
    ("dark-blue", None, "DARK_BLUE"),
    ("Dark_Blue", None, "DARK_BLUE"),
    ("PALE-GREEN", None, "PALE_GREEN"),
    ("darkblue", None, None),
    ("DARK BLUE", None, None),
    ("purple", None, None),
    ("4", None, None),
    ("-1", None, None),
    ("", None, None),
]


@pytest.mark.parametrize("text, plain, insensitive", ENUMS, ids=[repr(t) for t, _, _ in ENUMS])
def test_enum_names(pool, text, plain, insensitive) -> None:
    for options, expected in ((EDGE, plain), (EDGE.replace(case_insensitive_enums=True), insensitive)):
        params = [("maybe_shade", text), ("shades", text), ("shade_by_name[k]", text)]
        if text == "":
            assert bag(pool, params, options) == {}  # blank: skipped
        elif expected is None:
            assert bag_refused(pool, params, options).field == "maybe_shade"
        else:
            assert bag(pool, params, options) == {
                "maybe_shade": expected, "shades": [expected], "shade_by_name": {"k": expected},
            }


@pytest.mark.parametrize("insensitive", [False, True])
def test_case_insensitive_enums_in_bodies(pool, insensitive) -> None:
    """Envoy's case_insensitive_enum_parsing applies to the JSON body too."""
    # an enum name no spelling matches is refused, not dropped (unknown_body_enum_names: reject, as Envoy)
    options = EDGE.replace(case_insensitive_enums=insensitive, unknown_body_enum_names="reject")
    whole = RequestCodec(_type(pool, "Bag"), "*", [], options=options)
    body = (b'{"shade": "light", "shades": ["dark-blue", "PALE_GREEN", 1], "shadeByName": {"k": "Pale-Green"},'
            b' "nested": {"maybeShade": "dark_blue", "nested": {"shade": "LIGHT"}}}')
    field = RequestCodec(_type(pool, "ShelfRequest"), "shelf", ["parent"], options=options)
    if not insensitive:
        with pytest.raises(BadRequest):
            whole.decode([], [], body, "application/json")
        with pytest.raises(BadRequest):
            field.decode([(("parent",), "rooms/a")], [], b'{"shade": "dark-blue"}', None)
        return
    assert as_json(whole.decode([], [], body, "application/json")) == {
        "shade": "LIGHT", "shades": ["DARK_BLUE", "PALE_GREEN", "LIGHT"], "shade_by_name": {"k": "PALE_GREEN"},
        "nested": {"maybe_shade": "DARK_BLUE", "nested": {"shade": "LIGHT"}},
    }
    assert as_json(field.decode([(("parent",), "rooms/a")], [("shelf.shade", "pale-green")], b'{"name": "n"}', None)) == {
        "parent": "rooms/a", "shelf": {"name": "n", "shade": "PALE_GREEN"},
    }
    error = pytest.raises(BadRequest, whole.decode, [], [], b'{"shade": "purple"}', None).value
    assert error.field == "shade"


# ------------------------------------------------------ Value text forms

VALUE_TEXT = [
    # (text, query_value_json: true (edge, grpc-gateway), false (envoy))
    ("true", True, "true"),
    ("1", 1.0, "1"),
    ('{"a":1}', {"a": 1.0}, '{"a":1}'),
    ("[1,2]", [1.0, 2.0], "[1,2]"),
    ('"q"', "q", '"q"'),
    ("null", None, "null"),
    ("hello", "hello", "hello"),
    ("", "", ""),
]


@pytest.mark.parametrize("text, as_json_text, as_string", VALUE_TEXT, ids=[repr(t) for t, _, _ in VALUE_TEXT])
def test_value_text(pool, text, as_json_text, as_string) -> None:
    assert bag(pool, [("any_json", text)], EDGE) == {"any_json": as_json_text}
    assert bag(pool, [("any_json", text)], GG) == {"any_json": as_json_text}
    assert bag(pool, [("any_json", text)], ENVOY) == {"any_json": as_string}


# ------------------------------------------ route rules, profile by profile

ROOM = (("parent",), "rooms/r1")
SHELF_NAME = (("shelf", "name"), "rooms/r1/shelves/s1")
REFUSED = "refused"

# (id, route, path bindings, query, body, {profile: expected JSON or REFUSED naming the first query key})
ROUTE_CASES: list[tuple[str, str, list, list, bytes, dict[str, Any]]] = []


def case(name: str, route: str, path: list, query: list, body: bytes, edge: Any, envoy: Any = "=", gg: Any = "=") -> None:
    """`=`: the same as the edge profile's answer."""
    ROUTE_CASES.append((name, route, path, query, body, {
        "edge": edge, "envoy": edge if envoy == "=" else envoy, "grpc-gateway": edge if gg == "=" else gg,
    }))


P = {"parent": "rooms/r1"}
# body: "shelf" beside {parent}
case("body-field-empty-body-query-fills-it", "create", [ROOM], [("shelf.theme", "x")], b"",
     {**P, "shelf": {"theme": "x"}}, gg=P)
case("body-field-unset-by-body", "create", [ROOM], [("shelf.theme", "x")], b'{"name": "n"}',
     {**P, "shelf": {"name": "n", "theme": "x"}}, gg={**P, "shelf": {"name": "n"}})
case("body-field-set-differently", "create", [ROOM], [("shelf.theme", "x")], b'{"theme": "y"}',
     REFUSED, envoy={**P, "shelf": {"theme": "y"}}, gg={**P, "shelf": {"theme": "y"}})
case("body-field-set-the-same", "create", [ROOM], [("shelf.theme", "x")], b'{"theme": "x"}',
     {**P, "shelf": {"theme": "x"}})
case("body-field-json-name", "create", [ROOM], [("shelf.theme", "x")], b'{"theme": "x"}',
     {**P, "shelf": {"theme": "x"}})
case("body-field-null-is-unset", "create", [ROOM], [("shelf.theme", "x")], b'{"theme": null}',
     {**P, "shelf": {"theme": "x"}}, gg={**P, "shelf": {}})
case("body-field-empty-object", "create", [ROOM], [("shelf.theme", "x")], b"{}",
     {**P, "shelf": {"theme": "x"}}, gg={**P, "shelf": {}})
case("body-field-int64-same-as-string", "create", [ROOM], [("shelf.size", "5")], b'{"size": "5"}',
     {**P, "shelf": {"size": "5"}})
case("body-field-int64-differs", "create", [ROOM], [("shelf.size", "6")], b'{"size": 5}',
     REFUSED, envoy={**P, "shelf": {"size": "5"}}, gg={**P, "shelf": {"size": "5"}})
case("body-field-bad-value-where-body-set-it", "create", [ROOM], [("shelf.size", "big")], b'{"size": 5}',
     REFUSED, envoy={**P, "shelf": {"size": "5"}}, gg={**P, "shelf": {"size": "5"}})
case("body-field-bad-value-where-body-did-not", "create", [ROOM], [("shelf.size", "big")], b"{}",
     REFUSED, gg={**P, "shelf": {}})
case("body-field-float-same", "create", [ROOM], [("shelf.weight", "0.1")], b'{"weight": 0.1}',
     {**P, "shelf": {"weight": 0.1}})
case("body-field-false-is-set", "create", [ROOM], [("shelf.public", "true")], b'{"public": false}',
     REFUSED, envoy={**P, "shelf": {}}, gg={**P, "shelf": {}})
case("body-field-empty-string-is-set", "create", [ROOM], [("shelf.motto", "m")], b'{"motto": ""}',
     REFUSED, envoy={**P, "shelf": {"motto": ""}}, gg={**P, "shelf": {"motto": ""}})
case("body-field-timestamp-same-instant", "create", [ROOM], [("shelf.opened", "2020-01-01T01:00:00+01:00")],
     b'{"opened": "2020-01-01T00:00:00Z"}', {**P, "shelf": {"opened": "2020-01-01T00:00:00Z"}})
case("body-field-timestamp-differs", "create", [ROOM], [("shelf.opened", "2021-01-01T00:00:00Z")],
     b'{"opened": "2020-01-01T00:00:00Z"}', REFUSED,
     envoy={**P, "shelf": {"opened": "2020-01-01T00:00:00Z"}}, gg={**P, "shelf": {"opened": "2020-01-01T00:00:00Z"}})
case("body-field-list-takes-both", "create", [ROOM], [("shelf.labels", "b")], b'{"labels": ["a"]}',
     {**P, "shelf": {"labels": ["a", "b"]}}, gg={**P, "shelf": {"labels": ["a"]}})
case("body-field-map-new-entry", "create", [ROOM], [("shelf.attrs[b]", "2")], b'{"attrs": {"a": "1"}}',
     {**P, "shelf": {"attrs": {"a": "1", "b": "2"}}}, gg={**P, "shelf": {"attrs": {"a": "1"}}})
case("body-field-map-same-entry-differs", "create", [ROOM], [("shelf.attrs[a]", "2")], b'{"attrs": {"a": "1"}}',
     REFUSED, envoy={**P, "shelf": {"attrs": {"a": "1"}}}, gg={**P, "shelf": {"attrs": {"a": "1"}}})
case("body-field-nested-message", "create", [ROOM], [("shelf.note.stars", "3")], b'{"note": {"text": "t"}}',
     {**P, "shelf": {"note": {"text": "t", "stars": 3}}}, gg={**P, "shelf": {"note": {"text": "t"}}})
case("body-field-itself", "create", [ROOM], [("shelf", "x")], b"{}", REFUSED, gg={**P, "shelf": {}})
case("body-field-unknown-below", "create", [ROOM], [("shelf.nope", "x")], b"{}", REFUSED, gg={**P, "shelf": {}})
case("path-field", "create", [ROOM], [("parent", "rooms/r2")], b"{}", REFUSED, gg={**P, "shelf": {}})
case("free-field", "create", [ROOM], [("request_id", "r"), ("pageSize", "5")], b'{"name": "n"}',
     {**P, "shelf": {"name": "n"}, "request_id": "r", "page_size": 5})
case("unknown", "create", [ROOM], [("nope", "1")], b"{}", REFUSED, gg={**P, "shelf": {}})
# body: "shelf" with {shelf.name} in the path
case("path-inside-body-field", "update", [SHELF_NAME], [("shelf.name", "other")], b"{}",
     REFUSED, gg={"shelf": {"name": "rooms/r1/shelves/s1"}})
case("path-wins-over-body", "update", [SHELF_NAME], [], b'{"name": "other", "theme": "t"}',
     {"shelf": {"name": "rooms/r1/shelves/s1", "theme": "t"}})
case("path-inside-body-field-sibling", "update", [SHELF_NAME], [("shelf.theme", "q"), ("update_mask", "theme")], b"{}",
     {"shelf": {"name": "rooms/r1/shelves/s1", "theme": "q"}, "update_mask": "theme"},
     gg={"shelf": {"name": "rooms/r1/shelves/s1"}, "update_mask": "theme"})
# body: "*" beside {parent}
case("whole-body-fills-unset", "replace", [ROOM], [("page_size", "5")], b"{}", {**P, "page_size": 5}, gg=P)
case("whole-body-empty", "replace", [ROOM], [("shelf.theme", "x"), ("request_id", "r")], b"",
     {**P, "shelf": {"theme": "x"}, "request_id": "r"}, gg=P)
case("whole-body-differs", "replace", [ROOM], [("page_size", "6")], b'{"page_size": 5}',
     REFUSED, envoy={**P, "page_size": 5}, gg={**P, "page_size": 5})
case("whole-body-json-name-differs", "replace", [ROOM], [("pageSize", "6")], b'{"pageSize": 5}',
     REFUSED, envoy={**P, "page_size": 5}, gg={**P, "page_size": 5})
case("whole-body-merge-nested", "replace", [ROOM], [("shelf.size", "3")], b'{"shelf": {"theme": "t"}}',
     {**P, "shelf": {"theme": "t", "size": "3"}}, gg={**P, "shelf": {"theme": "t"}})
case("whole-body-unknown", "replace", [ROOM], [("nope", "1")], b"{}", REFUSED, gg=P)
case("whole-body-bad-value", "replace", [ROOM], [("page_size", "x")], b"{}", REFUSED, gg=P)
case("whole-body-path-field", "replace", [ROOM], [("parent", "rooms/r2")], b"{}", REFUSED, gg=P)
# no body
case("query-only", "find", [], [("f_int32", "2"), ("tags[k]", "v")], b"", {"f_int32": 2, "tags": {"k": "v"}})
case("query-only-unknown", "find", [], [("nope", "1"), ("f_int32", "2")], b"", REFUSED, gg={"f_int32": 2})
case("query-only-unknown-nested", "find", [], [("nested.nope", "1"), ("f_int32", "2")], b"", REFUSED,
     gg={"f_int32": 2})
case("query-only-unknown-map", "find", [], [("nope[k]", "1")], b"", REFUSED, gg={})
case("query-only-not-a-message", "find", [], [("f_int32.x", "1")], b"", REFUSED)
case("path-bound-proto-name", "named", [(("f_string",), "p")], [("f_string", "q")], b"", REFUSED, gg={"f_string": "p"})
case("path-bound-json-name", "named", [(("f_string",), "p")], [("fString", "q")], b"", REFUSED, gg={"f_string": "p"})
case("path-bound-sibling", "named", [(("f_string",), "p")], [("f_int32", "1")], b"", {"f_string": "p", "f_int32": 1})
# a raw (google.api.HttpBody) body field
case("raw-body-field", "store", [(("bucket",), "b")], [("file.content_type", "x")], b"raw",
     REFUSED, envoy={"bucket": "b", "file": {"content_type": "text/plain", "data": "cmF3"}},
     gg={"bucket": "b", "file": {"content_type": "text/plain", "data": "cmF3"}})
case("raw-body-sibling", "store", [(("bucket",), "b")], [("overwrite", "true")], b"raw",
     {"bucket": "b", "overwrite": True, "file": {"content_type": "text/plain", "data": "cmF3"}})

ROUTES = {
    "find": ("Bag", "", []),
    "named": ("Bag", "", ["f_string"]),
    "create": ("ShelfRequest", "shelf", ["parent"]),
    "update": ("ShelfRequest", "shelf", ["shelf.name"]),
    "replace": ("ShelfRequest", "*", ["parent"]),
    "store": ("Upload", "file", ["bucket"]),
}


@pytest.mark.parametrize("profile", ["edge", "envoy", "grpc-gateway"])
@pytest.mark.parametrize("route, path, query, body, expected", [c[1:] for c in ROUTE_CASES], ids=[c[0] for c in ROUTE_CASES])
def test_route_rules(pool, profile, route, path, query, body, expected) -> None:
    message_name, body_rule, path_fields = ROUTES[route]
    codec = RequestCodec(_type(pool, message_name), body_rule, path_fields, options=PROFILES[profile])
    want = expected[profile]
    if want == REFUSED:
        with pytest.raises(BadRequest) as info:
            codec.decode(list(path), list(query), body, "text/plain")
        assert info.value.field == query[0][0] and repr(query[0][0]) in info.value.message
        return
    assert as_json(codec.decode(list(path), list(query), body, "text/plain")) == want


def test_refusals_say_what_collided(pool) -> None:
    create = RequestCodec(_type(pool, "ShelfRequest"), "shelf", ["parent"])
    error = pytest.raises(BadRequest, create.decode, [ROOM], [("shelf.theme", "x")], b'{"theme": "y"}', None).value
    assert error.message == "query parameter 'shelf.theme' sets 'shelf.theme' to a value other than the request body's"
    error = pytest.raises(BadRequest, create.decode, [ROOM], [("parent", "x")], b"", None).value
    assert error.message.startswith("field set twice: query parameter 'parent' sets 'parent', which the request path")


# grpc-gateway's filter table (TestPopulateParametersWithFilters): what a path or
# body binding covers is dropped, at any depth, the rest is set.
FILTERS = [
    (["f_bool", "words"], [("f_bool", "true"), ("f_string", "str"), ("words", "a"), ("words", "b")],
     {"f_string": "str"}),
    (["nested"], [("nested.nested.f_bool", "true"), ("nested.nested.f_string", "s"), ("nested.f_string", "s"),
                  ("f_string", "s")], {"f_string": "s"}),
    (["nested.nested"], [("nested.nested.f_bool", "true"), ("nested.nested.f_string", "s"), ("nested.f_string", "s"),
                         ("f_string", "s")], {"nested": {"f_string": "s"}, "f_string": "s"}),
    (["nested.nested.f_string"], [("nested.nested.f_bool", "true"), ("nested.nested.f_string", "s"),
                                  ("nested.f_string", "s"), ("f_string", "s")],
     {"nested": {"f_string": "s", "nested": {"f_bool": True}}, "f_string": "s"}),
    (["nested"], [("nested.nope", "1"), ("nested", "x"), ("nested.tags[k]", "v")], {}),
]


@pytest.mark.parametrize("bound, params, expected", FILTERS)
def test_grpc_gateway_filters(pool, bound, params, expected) -> None:
    descriptor = _type(pool, "Bag")
    message = message_factory.GetMessageClass(descriptor)()
    mapper_for(descriptor, GG).route(bound, options=GG).apply(message, params)
    assert as_json(message) == expected
    with pytest.raises(BadRequest):  # under the other profiles, a bound field is never set from the query
        mapper_for(descriptor, EDGE).route(bound, options=EDGE).apply(message_factory.GetMessageClass(descriptor)(), params)


IGNORED = ["key", "access_token", "_", "f_string", "tags[k]"]


@pytest.mark.parametrize("profile", ["edge", "envoy", "grpc-gateway"])
def test_ignored_query_parameters(pool, profile) -> None:
    """Envoy's ignored_query_parameters (its path_matcher's system parameters): never
    read, whether a field has that name or not; exact names, after percent-decoding."""
    options = PROFILES[profile].replace(ignored_query_parameters=IGNORED)
    params = parse_query(b"key=secret&f_int32=2&access%5Ftoken=t&_=1699999999&f_string=x&fString=y&tags%5Bk%5D=1&tags[j]=2")
    assert bag(pool, params, options) == {"f_int32": 2, "f_string": "y", "tags": {"j": "2"}}
    assert bag_refused(pool, [("KEY", "x")], options.replace(unknown_query_parameters="reject")).field == "KEY"


# ----------------------------------------------------- the query string

QUERY_STRINGS = [
    # (raw query, pairs with `+` as a space, pairs keeping `+`)  -- Envoy's path_matcher_test cases first
    (b"x=Hello%20world", [("x", "Hello world")], "="),
    (b"x=%24%25%2F%20%0A", [("x", "$%/ \n")], "="),
    (b"x=Hello+world&y=%2B+%20", [("x", "Hello world"), ("y", "+  ")], [("x", "Hello+world"), ("y", "++ ")]),
    (b"y=world&api_key=secret", [("y", "world"), ("api_key", "secret")], "="),
    (b"a.b%2Ec=1", [("a.b.c", "1")], "="),
    (b"search%5Bfoo%5D=1", [("search[foo]", "1")], "="),
    (b"n+m=1", [("n m", "1")], [("n+m", "1")]),
    (b"flag", [], "="),  # no '=': no value, dropped (Envoy)
    (b"flag&x=1", [("x", "1")], "="),
    (b"=v", [], "="),  # no name
    (b"x=", [("x", "")], "="),
    (b"x==", [("x", "=")], "="),
    (b"x=a=b", [("x", "a=b")], "="),
    (b"&&x=1&&", [("x", "1")], "="),
    (b"x=1&x=2", [("x", "1"), ("x", "2")], "="),
    (b"x=%zz&y=%4", [("x", "%zz"), ("y", "%4")], "="),  # not an escape: kept
    (b"x=%e2%9c%93", [("x", "\u2713")], "="),
    (b"x=\xe2\x9c\x93", [("x", "\u2713")], "="),  # raw UTF-8 bytes
    (b"x=1;y=2", [("x", "1;y=2")], "="),  # only '&' separates
    (b"%78=1", [("x", "1")], "="),
    (b"x%3D1=2", [("x=1", "2")], "="),
    (b"x=1%262", [("x", "1&2")], "="),
    (b"x=%2B", [("x", "+")], "="),
    (b"x=+", [("x", " ")], [("x", "+")]),
    (b"x=a%00b", [("x", "a\x00b")], "="),
    (b"", [], "="),
]


@pytest.mark.parametrize("raw, plus, no_plus", QUERY_STRINGS, ids=[repr(r) for r, _, _ in QUERY_STRINGS])
def test_query_strings(raw, plus, no_plus) -> None:
    assert parse_query(raw, True) == plus
    assert parse_query(raw, False) == (plus if no_plus == "=" else no_plus)


_TEXT = st.characters(exclude_categories=("Cs",))  # no lone surrogates: they have no UTF-8 form
_PAIRS = st.lists(st.tuples(st.text(_TEXT, min_size=1, max_size=8), st.text(_TEXT, max_size=8)), max_size=5)


@settings(max_examples=300, deadline=None)
@given(_PAIRS, st.booleans())
def test_query_strings_round_trip(pairs, plus) -> None:
    """Whatever a client encodes (form-style with '+', or %20 only) comes back as sent."""
    encode = quote_plus if plus else quote
    raw = "&".join(f"{encode(k, safe='')}={encode(v, safe='')}" for k, v in pairs).encode()
    assert parse_query(raw, plus) == pairs


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.booleans())
def test_any_query_string_parses_or_is_a_400(raw, plus) -> None:
    try:
        pairs = parse_query(raw, plus)
    except BadRequest as exc:
        assert exc.http_status == 400 and "UTF-8" in exc.message
        return
    assert all(isinstance(k, str) and k and isinstance(v, str) for k, v in pairs)


@pytest.mark.parametrize("raw", [b"x=%FF", b"x=\xff", b"%C3=1", b"x=%ED%A0%80"])
def test_query_strings_that_are_not_utf8(raw) -> None:
    with pytest.raises(BadRequest) as info:
        parse_query(raw)
    assert "UTF-8" in info.value.message


# ------------------------------------------------- what OpenAPI is told

def test_parameters_come_from_the_route_rules(pool) -> None:
    find = mapper_for(_type(pool, "Bag")).route()
    listed = {p.name: p.kind for p in find.parameters()}
    assert listed["fInt32"] == "value" and listed["words"] == "list" and listed["meta"] == "json"
    assert listed["tags"] == "map" and listed["shadeByName"] == "map" and listed["boxed"] == "map"
    assert "notes" not in listed and "notesList" not in listed and "note" not in listed  # no text form
    assert listed["search[decoded]"] == "value" and listed["a.b"] == "value"
    assert listed["pickNote.text"] == "value" and listed["note.stars"] == "value"
    assert not any(name.startswith("nested.") for name in listed)  # Bag again: the recursion stops
    assert {p.name for p in find.parameters(use_proto_names=True)} >= {"f_int32", "shade_by_name", "search_decoded"}
    for name, kind in listed.items():  # every listed name is one the mapper reads
        target = find.mapper.target(name + "[1]" if kind == "map" else name)
        assert target.path
    create = RequestCodec(_type(pool, "ShelfRequest"), "shelf", ["parent"]).query
    assert [p.name for p in create.parameters()] == ["requestId", "pageSize", "updateMask"]
    replace = RequestCodec(_type(pool, "ShelfRequest"), "*", ["parent"]).query
    assert replace.parameters() == []
    ignored = mapper_for(_type(pool, "Bag")).route(options=EDGE.replace(ignored_query_parameters=["key", "fInt32"]))
    names = {p.name: p for p in ignored.parameters()}
    assert "fInt32" not in {n for n, p in names.items() if p.kind != "ignored"}
    assert names["key"].kind == "ignored" and names["key"].field is None
    assert RequestCodec(_type(pool, "ShelfRequest"), "*", [], options=GG).query.parameters() == []


def test_float_comparison_is_to_the_field_precision(pool) -> None:
    create = RequestCodec(_type(pool, "ShelfRequest"), "shelf", [])
    message = create.decode([], [("shelf.weight", "0.30000001")], b'{"weight": 0.3}', None)
    assert math.isclose(message.shelf.weight, 0.3, rel_tol=1e-6)
    with pytest.raises(BadRequest):
        create.decode([], [("shelf.weight", "0.31")], b'{"weight": 0.3}', None)
