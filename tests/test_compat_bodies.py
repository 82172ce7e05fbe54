"""Request and response bodies against the anchors' own tables, at codec level (milliseconds).

Ported, in our own data, from grpc-httpjson-transcoding's json_request_translator_test.cc,
request_message_translator_test.cc and response_to_json_translator_test.cc (Envoy's
transcoder) and grpc-gateway's runtime/marshal_jsonpb_test.go, plus what a real Envoy 1.40
and Go protojson v1.33 (grpc-gateway's default marshaler) answered for the cases their
tables leave out (the per-profile columns). Each case runs under each profile where the
profiles differ. tests/test_compat_bodies_e2e.py sends the cases that differ through a real
gateway, and tests/test_compat_bodies_envoy.py sends them to a real Envoy as well.

Messages are written in protobuf text format, as the anchors' tables write them.
"""
from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from google.protobuf import any_pb2, json_format, text_format

from compatbody import body_pb2
from transcoding.codec import RequestCodec, ResponseCodec
from transcoding.errors import BadRequest
from transcoding.options import PROFILES, profile

Record = body_pb2.Record
RecordRequest = body_pb2.RecordRequest
OK = "ok"


def codec(message_type: Any, body: str, path: tuple[str, ...] = (), name: str = "edge", **overrides) -> RequestCodec:
    return RequestCodec(message_type.DESCRIPTOR, body, list(path), options=profile(name, overrides))


def text(message_type: Any, proto_text: str) -> Any:
    return text_format.Parse(proto_text, message_type())


def decode(request_codec: RequestCodec, body: bytes, path=(), query=()) -> Any:
    return request_codec.decode(list(path), list(query), body, "application/json")


def refused(request_codec: RequestCodec, body: bytes, path=(), query=()) -> BadRequest:
    with pytest.raises(BadRequest) as info:
        decode(request_codec, body, path, query)
    return info.value


# ------------------------------------------------ json_request_translator_test.cc

UNARY = [
    # (id, message type, body rule, path variables, bindings, JSON body, expected message)
    ("flat", Record, "*", (), [], b'{ "name" : "1", "title" : "Russian" }', 'name: "1" title: "Russian"'),
    ("nested", Record, "*", (), [],
     b'{"name": "8", "title": "War and Peace", "author": {"firstName": "Leo", "lastName": "Tolstoy",'
     b' "bio": {"yearBorn": 1828, "yearDied": "1910", "text": "some text"}}}',
     'name: "8" title: "War and Peace" author { first_name: "Leo" last_name: "Tolstoy" '
     'bio { year_born: 1828 year_died: 1910 text: "some text" } }'),
    ("prefix", RecordRequest, "record", (), [], b'{"name": "9", "title": "War and Peace"}',
     'record { name: "9" title: "War and Peace" }'),
    ("prefix and bindings", RecordRequest, "record", ("shelf", "record.author.first_name"),
     [(("shelf",), "12"), (("record", "author", "first_name"), "Leo")], b'{"name": "11", "title": "Anna Karenina"}',
     'shelf: 12 record { name: "11" title: "Anna Karenina" author { first_name: "Leo" } }'),
    ("nested prefix and bindings", RecordRequest, "record.author.bio", ("shelf", "record.name", "record.author.last_name"),
     [(("shelf",), "7"), (("record", "name"), "idiot"), (("record", "author", "last_name"), "Dostoevsky")],
     b'{"yearBorn": "1821", "yearDied": "1881", "text": "bio text"}',
     'shelf: 7 record { name: "idiot" author { last_name: "Dostoevsky" '
     'bio { year_born: 1821 year_died: 1881 text: "bio text" } } }'),
    ("only bindings", RecordRequest, "*", ("shelf", "theme"), [(("shelf",), "1"), (("theme",), "Fiction")], b"",
     'shelf: 1 theme: "Fiction"'),
    ("scalar body", RecordRequest, "theme", ("shelf",), [(("shelf",), "3")], b'"History"', 'shelf: 3 theme: "History"'),
    ("struct body", Record, "attributes", (), [], b'{"payload": "Hello World!"}',
     'attributes { fields { key: "payload" value { string_value: "Hello World!" } } }'),
    ("nested struct body", Record, "attributes", (), [], b'{"nested": {"payload": "Hello World!"}}',
     'attributes { fields { key: "nested" value { struct_value { fields { key: "payload" '
     'value { string_value: "Hello World!" } } } } } }'),
    ("empty body", Record, "*", (), [], b"", ""),
    ("empty object", Record, "*", (), [], b"{}", ""),
    ("large", Record, "*", (), [], b'{"name": "1", "title": "' + b"0123456789abcdefgh" * 3641 + b'"}',
     'name: "1" title: "' + "0123456789abcdefgh" * 3641 + '"'),
    ("unknowns ignored", Record, "*", (), [],
     b'{"name": "1", "title": "Russian", "unknownField": "ignored", "unknownObject": {"name": "value"},'
     b' "unknownArray": [1, 2, 3, 4], "author": {"nickname": {"a": [null]}, "firstName": "F"}}',
     'name: "1" title: "Russian" author { first_name: "F" }'),
    ("list body", RecordRequest, "records", (), [], b'[{"name": "1", "title": "History"}, {"name": "2", "title": "Mystery"}]',
     'records { name: "1" title: "History" } records { name: "2" title: "Mystery" }'),
    ("repeated scalar body", RecordRequest, "tags", ("shelf",), [(("shelf",), "3")], b'["a", "b"]',
     'shelf: 3 tags: "a" tags: "b"'),
    ("path wins over the body", RecordRequest, "*", ("shelf",), [(("shelf",), "5")], b'{"shelf": "9", "theme": "t"}',
     'shelf: 5 theme: "t"'),
    ("both spellings of different fields", Record, "*", (), [], b'{"pageCount": 3, "price_cents": "4"}',
     "page_count: 3 price_cents: 4"),
    ("custom json_name and the proto name", Record, "*", (), [], b'{"label": "x", "in_print": true}',
     'display_name: "x" in_print: true'),
    ("lowerCamel of a renamed field is unknown", Record, "*", (), [], b'{"displayName": "x"}', ""),
]


@pytest.mark.parametrize("name", sorted(PROFILES))
@pytest.mark.parametrize("case", UNARY, ids=[c[0] for c in UNARY])
def test_request_bodies(case, name) -> None:
    _, message_type, body_rule, path, bindings, body, expected = case
    got = decode(codec(message_type, body_rule, path, name), body, path=bindings)
    assert got == text(message_type, expected)


INVALID_JSON = [b"Invalid", b'{"name"', b'{"name" : 1', b'{"theme" , "name" : 1}', b'{"name" : 1]',
                b'["theme" , "name" : 1}', b'{"name" : 1, { "a" : [ "c", "d"} ]}', b'["name" : 1 ]}',
                b'[{"name" : 1 ]}', b'{"title": "t",}', b'{"title": "t"} {"title": "u"}', b"{'title': 't'}",
                b'{"title": NaN}', b'{"score": Infinity}', b'{"title": "t"}x', b"\xef\xbb\xbf{}"]


@pytest.mark.parametrize("name", sorted(PROFILES))
@pytest.mark.parametrize("body", INVALID_JSON)
def test_invalid_json_is_a_400_alone_and_in_a_stream(body, name) -> None:
    # Envoy accepts a trailing comma (its parser is lenient); grpc-gateway's encoding/json and
    # edge refuse it. grpc-gateway reads only the first of two values in a unary body; Envoy and
    # edge refuse what follows it.
    assert "JSON" in refused(codec(Record, "*", (), name), body).message
    if body != b'{"title": "t"} {"title": "u"}':  # two values: a stream of two messages
        with pytest.raises(BadRequest):
            codec(RecordRequest, "*", (), name).decode_stream([], [], body, None)


def test_a_wrong_binding_type_is_a_400() -> None:
    error = refused(codec(RecordRequest, "*", ("shelf",)), b"", path=[(("shelf",), "abc")])
    assert error.field == "shelf"


# ------------------------------------------------ whitespace, null, empty (item 12)

# (body rule, body, {profile: expected text or "400"}); Envoy and grpc-gateway answered these.
EMPTY_ISH = [
    ("*", b"", {"edge": "", "envoy": "", "grpc-gateway": ""}),
    ("*", b"   ", {"edge": 400, "envoy": 400, "grpc-gateway": ""}),
    ("*", b"\r  \t\n", {"edge": 400, "envoy": 400, "grpc-gateway": ""}),
    ("*", b"null", {"edge": 400, "envoy": 400, "grpc-gateway": 400}),
    ("*", b"[]", {"edge": 400, "envoy": 400, "grpc-gateway": 400}),
    ("*", b'"x"', {"edge": 400, "envoy": 400, "grpc-gateway": 400}),
    ("*", b"{}", {"edge": "", "envoy": "", "grpc-gateway": ""}),
    ("record", b"   ", {"edge": 400, "envoy": 400, "grpc-gateway": ""}),
    ("record", b"", {"edge": "", "envoy": "", "grpc-gateway": ""}),
    # Envoy leaves a message body field unset on null; grpc-gateway and edge refuse it.
    ("record", b"null", {"edge": 400, "envoy": 400, "grpc-gateway": 400}),
    ("theme", b"null", {"edge": "", "envoy": "", "grpc-gateway": ""}),
    ("tags", b"null", {"edge": "", "envoy": "", "grpc-gateway": ""}),
    ("theme", b" \n", {"edge": 400, "envoy": 400, "grpc-gateway": ""}),
]


@pytest.mark.parametrize("name", sorted(PROFILES))
@pytest.mark.parametrize("case", EMPTY_ISH, ids=[f"{c[0]}:{c[1]!r}" for c in EMPTY_ISH])
def test_empty_whitespace_and_null_bodies(case, name) -> None:
    body_rule, body, expected = case
    request_codec = codec(RecordRequest, body_rule, (), name)
    if expected[name] == 400:
        error = refused(request_codec, body)
        assert "whitespace" in error.message or "JSON object" in error.message or "not" in error.message
    else:
        assert decode(request_codec, body) == text(RecordRequest, expected[name])


# ------------------------------------------------ unknown enum names (item 11)

# body -> (what edge and grpc-gateway decode, the field Envoy's 400 names)
ENUM_NAMES = [
    (b'{"status": "NOPE"}', "", "status"),
    (b'{"status": "archived"}', "", "status"),  # names are case-sensitive by default in both anchors
    (b'{"status": ""}', "", "status"),
    (b'{"history": ["ACTIVE", "NOPE", "ARCHIVED"]}', "history: ACTIVE history: ARCHIVED", "history[1]"),
    (b'{"history": ["NOPE"]}', "", "history[0]"),
    (b'{"statusByRegion": {"eu": "NOPE", "us": "ACTIVE"}}', 'status_by_region { key: "us" value: ACTIVE }',
     "statusByRegion[eu]"),
    (b'{"author": {"firstName": "a"}, "status": "LATER", "title": "t"}', 'author { first_name: "a" } title: "t"', "status"),
    (b'{"editors": [{"lastName": "b"}], "history": [2, "NEW"]}', 'editors { last_name: "b" } history: ARCHIVED',
     "history[1]"),
    (b'{"status": "ARCHIVED", "history": [1]}', "status: ARCHIVED history: ACTIVE", None),
    (b'{"status": 2}', "status: ARCHIVED", None),
    (b'{"status": 7}', "status: 7", None),  # an open enum keeps an unknown number (all three)
]


@pytest.mark.parametrize("case", ENUM_NAMES, ids=[c[0].decode() for c in ENUM_NAMES])
def test_unknown_enum_names(case) -> None:
    body, dropped, envoy_field = case
    for name in ("edge", "grpc-gateway"):
        assert decode(codec(Record, "*", (), name), body) == text(Record, dropped)
        assert decode(codec(Record, "*", (), name, unknown_body_fields="reject"), body) == text(Record, dropped)
    for request_codec in (codec(Record, "*", (), "envoy"), codec(Record, "*", (), "edge", unknown_body_enum_names="reject"),
                          codec(Record, "*", (), "envoy", unknown_body_fields="reject")):
        if envoy_field is None:
            assert decode(request_codec, body) == text(Record, dropped)
        else:
            error = refused(request_codec, body)
            assert error.field == envoy_field and "edgecompat.body.v1.Status" in error.message


def test_unknown_enum_names_in_body_fields_and_nested_prefixes() -> None:
    assert decode(codec(RecordRequest, "record"), b'{"status": "NOPE", "title": "t"}') == text(RecordRequest, 'record { title: "t" }')
    assert refused(codec(RecordRequest, "record", (), "envoy"), b'{"status": "NOPE"}').field == "record.status"
    body_field = codec(RecordRequest, "status", (), "envoy")
    assert refused(body_field, b'"NOPE"').field == "status"
    assert decode(codec(RecordRequest, "status"), b'"NOPE"') == RecordRequest()
    assert decode(codec(RecordRequest, "status"), b'"ARCHIVED"') == RecordRequest(status=2)


# ------------------------------------------------ the same field twice (issue 13 item 5)

# (body rule, body, the field the 400 names); grpc-gateway's protojson refuses each
# ("duplicate field"); Envoy keeps the last value (merging messages). Every profile refuses.
TWICE = [
    ("*", b'{"pageCount": 1, "page_count": 2}', "page_count"),
    ("*", b'{"page_count": 1, "pageCount": 2}', "pageCount"),
    ("*", b'{"priceCents": "1", "price_cents": null}', "price_cents"),
    ("*", b'{"label": "x", "display_name": "y"}', "display_name"),
    ("*", b'{"inPrint": true, "in_print": true}', "in_print"),
    ("*", b'{"statusByRegion": {}, "status_by_region": {}}', "status_by_region"),
    ("*", b'{"sourceUrl": "a", "source_url": "b"}', "source_url"),
    ("*", b'{"createTime": "2024-01-01T00:00:00Z", "create_time": "2024-01-01T00:00:00Z"}', "create_time"),
    ("*", b'{"author": {"firstName": "a", "first_name": "b"}}', "author.first_name"),
    ("*", b'{"author": {"bio": {"yearBorn": 1, "year_born": 2}}}', "author.bio.year_born"),
    ("*", b'{"editors": [{}, {"lastName": "a", "last_name": "b"}]}', "editors[1].last_name"),
    ("*", b'{"authorsByRole": {"editor": {"firstName": "a", "first_name": "b"}}}', "authorsByRole[editor].first_name"),
    ("*", b'{"sourceAuthor": {"lastName": "a", "last_name": "b"}}', "sourceAuthor.last_name"),
    ("*", b'{"extra": {"@type": "type.googleapis.com/edgecompat.body.v1.Author", "firstName": "a", "first_name": "b"}}',
     "extra.first_name"),
    ("*", b'{"extra": {"@type": "type.googleapis.com/edgecompat.body.v1.Record", "author": {"lastName": "a",'
          b' "last_name": "b"}}}', "extra.author.last_name"),
    ("*", b'{"labelsById": {"1": "a", "01": "b"}}', "labelsById[01]"),
    ("*", b'{"labelsById": {"-2": "a", "-02": "b"}}', "labelsById[-02]"),
    ("record", b'{"pageCount": 1, "page_count": 2}', "record.page_count"),
    ("record", b'{"author": {"lastName": "a", "last_name": "b"}}', "record.author.last_name"),
    ("record.author.bio", b'{"yearDied": 1, "year_died": 2}', "record.author.bio.year_died"),
    ("records", b'[{"title": "a"}, {"inPrint": true, "in_print": false}]', "records[1].in_print"),
    ("*", b'{"records": [{"pageCount": 1, "page_count": 1}]}', "records[0].page_count"),
]


@pytest.mark.parametrize("name", sorted(PROFILES))
@pytest.mark.parametrize("case", TWICE, ids=[f"{c[0]}:{c[1].decode()}" for c in TWICE])
def test_one_field_under_both_spellings_is_refused(case, name) -> None:
    body_rule, body, field = case
    message_type = Record if body_rule == "*" and b'"records"' not in body else RecordRequest
    error = refused(codec(message_type, body_rule, (), name), body)
    assert error.field == field
    assert "twice" in error.message and repr(field) in error.message


def test_the_same_key_twice_is_refused_too() -> None:
    for body in (b'{"title": "a", "title": "b"}', b'{"author": {"firstName": "a", "firstName": "a"}}',
                 b'{"attributes": {"k": 1, "k": 2}}', b'{"statusByRegion": {"eu": "ACTIVE", "eu": "ACTIVE"}}'):
        assert "duplicate key" in refused(codec(Record, "*"), body).message


def test_different_fields_of_one_oneof_are_refused_as_a_oneof() -> None:
    error = refused(codec(Record, "*"), b'{"sourceUrl": "a", "sourceAuthor": {}}')
    assert error.field == "source" and "oneof" in error.message


# ------------------------------------------------ client-streaming bodies (item 13)

def stream(request_codec: RequestCodec, body: bytes, path=(), query=()) -> list[Any]:
    return request_codec.decode_stream(list(path), list(query), body, None)


def texts(message_type: Any, *protos: str) -> list[Any]:
    return [text(message_type, p) for p in protos]


SHELF = [(("shelf",), "3")]
STREAMS = [
    # (id, body rule, body, expected messages); the path binds shelf=3, the query status=ACTIVE
    ("array", "*", b'[{"theme": "a"}, {"theme": "b"}]',
     ['shelf: 3 status: ACTIVE theme: "a"', 'theme: "b"']),
    ("array: a later message sets a bound field", "*", b'[{"theme": "a"}, {"theme": "b", "shelf": "9"}]',
     ['shelf: 3 status: ACTIVE theme: "a"', 'shelf: 9 theme: "b"']),
    ("array of nothing", "*", b"[]", []),
    ("array of empty messages", "*", b"[{}, {\"theme\": \"Classic\"}, {}]",
     ["shelf: 3 status: ACTIVE", 'theme: "Classic"', ""]),
    ("array, pretty-printed", "*", b'[\n  {"theme": "a"},\n  {"theme": "b"}\n]\n',
     ['shelf: 3 status: ACTIVE theme: "a"', 'theme: "b"']),
    ("array: body field", "record", b'[{"title": "a"}, {"title": "b"}]',
     ['shelf: 3 status: ACTIVE record { title: "a" }', 'record { title: "b" }']),
    ("array: scalar body field", "theme", b'["Classic", "Fiction", "Documentary"]',
     ['shelf: 3 status: ACTIVE theme: "Classic"', 'theme: "Fiction"', 'theme: "Documentary"']),
    ("array: repeated body field, arrays", "tags", b'[["a", "b"], ["c"]]',
     ['shelf: 3 status: ACTIVE tags: "a" tags: "b"', 'tags: "c"']),
    ("array: repeated body field, bare values (Envoy)", "tags", b'["a", "b"]',
     ['shelf: 3 status: ACTIVE tags: "a"', 'tags: "b"']),
    ("array: repeated message body field", "records", b'[[{"name": "1"}, {"name": "2"}], [{"name": "3"}], {"name": "4"}]',
     ['shelf: 3 status: ACTIVE records { name: "1" } records { name: "2" }', 'records { name: "3" }',
      'records { name: "4" }']),
    ("ndjson", "*", b'{"theme": "a"}\n{"theme": "b"}\n',
     ['shelf: 3 status: ACTIVE theme: "a"', 'shelf: 3 status: ACTIVE theme: "b"']),
    ("ndjson with blank lines and CRLF", "*", b'\r\n{"theme": "a"}\r\n\r\n{"theme": "b"}',
     ['shelf: 3 status: ACTIVE theme: "a"', 'shelf: 3 status: ACTIVE theme: "b"']),
    ("ndjson: the path wins in every message", "*", b'{"shelf": "8"}\n{"shelf": "9"}',
     ["shelf: 3 status: ACTIVE", "shelf: 3 status: ACTIVE"]),
    ("values one after another (Go's json.Decoder)", "*", b'{"theme": "a"}{"theme":\n "b"} {}',
     ['shelf: 3 status: ACTIVE theme: "a"', 'shelf: 3 status: ACTIVE theme: "b"', "shelf: 3 status: ACTIVE"]),
    ("one object", "*", b'{"theme": "a"}', ['shelf: 3 status: ACTIVE theme: "a"']),
    ("ndjson: body field", "record", b'{"title": "a"}\n{"title": "b"}',
     ['shelf: 3 status: ACTIVE record { title: "a" }', 'shelf: 3 status: ACTIVE record { title: "b" }']),
    ("ndjson: scalar body field", "theme", b'"a"\n"b"', ['shelf: 3 status: ACTIVE theme: "a"',
                                                         'shelf: 3 status: ACTIVE theme: "b"']),
    ("two arrays are two values", "tags", b'["a", "b"]\n["c"]',
     ['shelf: 3 status: ACTIVE tags: "a" tags: "b"', 'shelf: 3 status: ACTIVE tags: "c"']),
    ("empty body", "*", b"", []),
]


@pytest.mark.parametrize("case", STREAMS, ids=[c[0] for c in STREAMS])
def test_client_stream_bodies(case) -> None:
    _, body_rule, body, expected = case
    if body_rule == "*":  # a whole-message body leaves no field to the query: bind status by path instead
        got = stream(codec(RecordRequest, body_rule, ("shelf", "status")), body, SHELF + [(("status",), "ACTIVE")])
    else:
        got = stream(codec(RecordRequest, body_rule, ("shelf",)), body, SHELF, [("status", "ACTIVE")])
    assert got == texts(RecordRequest, *expected)


def test_a_thousand_messages_in_each_format() -> None:
    request_codec = codec(RecordRequest, "*", ("shelf",))
    items = [{"theme": f"th{i}", "record": {"name": str(i)}} for i in range(1000)]
    array = stream(request_codec, json.dumps(items).encode(), SHELF)
    ndjson = stream(request_codec, b"\n".join(json.dumps(i).encode() for i in items), SHELF)
    assert [m.theme for m in array] == [m.theme for m in ndjson] == [f"th{i}" for i in range(1000)]
    assert [m.shelf for m in array[:2]] == [3, 0] and {m.shelf for m in ndjson} == {3}


@pytest.mark.parametrize(
    "body, says",
    [
        (b'[{"theme": "a"}, null]', "element 1 of the JSON array body: request body must be a JSON object"),
        (b'[{"theme": "a"}, 5]', "element 1 of the JSON array body"),
        (b'[{"theme": "a"}, {"theme": 5}]', "element 1 of the JSON array body: invalid request body field 'theme'"),
        (b'{"theme": "a"}\n{"theme": 5}', "value 2 (line 2) of the request stream: invalid request body field 'theme'"),
        (b'{"theme": "a"}\n\n{"theme": "b"}\n{"theme": ', "malformed JSON in value 3 (line 4)"),
        (b'{"theme": "a"}\n[1]', "value 2 (line 2) of the request stream: request body must be a JSON object"),
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
        (b'[{"pageCount": 1}, {"record": {"pageCount": 1, "page_count": 2}}]',
         "element 1 of the JSON array body: request body sets field 'record.page_count' twice"),
        (b"  \n ", "only whitespace"),
        (b'{"theme": "\xff"}', "not valid UTF-8"),
    ],
)
def test_bad_streams_name_the_message(body, says) -> None:
    with pytest.raises(BadRequest) as info:
        stream(codec(RecordRequest, "*", ("shelf",)), body, SHELF)
    assert says in info.value.message


def test_stream_profiles_differ_only_on_whitespace() -> None:
    assert stream(codec(RecordRequest, "*", (), "grpc-gateway"), b" \n\t") == []
    for name in ("edge", "envoy"):
        with pytest.raises(BadRequest):
            stream(codec(RecordRequest, "*", (), name), b" \n\t")
    # unknown enum names in a stream follow the profile like a unary body
    assert stream(codec(RecordRequest, "*"), b'[{"status": "NOPE"}]') == [RecordRequest()]
    with pytest.raises(BadRequest) as info:
        stream(codec(RecordRequest, "*", (), "envoy"), b'[{"status": "NOPE"}]')
    assert info.value.field == "status"


def test_a_stream_without_a_body_rule_is_one_message_of_its_bindings() -> None:
    """`body: ""` ignores the HTTP body, for a stream as for a unary call."""
    request_codec = codec(RecordRequest, "", ("shelf",))
    for body in (b"", b'[{"theme": "a"}, {"theme": "b"}]', b"not even JSON"):
        assert stream(request_codec, body, SHELF, [("theme", "q")]) == texts(RecordRequest, 'shelf: 3 theme: "q"')


def test_a_whole_body_stream_and_query_parameters() -> None:
    """A `body: "*"` stream reads the query as a unary `body: "*"` call does (the
    `query_body_fields` rules of transcoding/query.py), into the first message of an array."""
    body = b'[{"tags": ["a"]}, {"theme": "b"}]'
    assert stream(codec(RecordRequest, "*"), body, query=[("theme", "x")]) == texts(
        RecordRequest, 'tags: "a" theme: "x"', 'theme: "b"')
    with pytest.raises(BadRequest) as info:  # the first message sets it otherwise
        stream(codec(RecordRequest, "*"), b'[{"theme": "a"}]', query=[("theme", "x")])
    assert info.value.field == "theme"
    assert stream(codec(RecordRequest, "*", (), "envoy"), b'[{"theme": "a"}]', query=[("theme", "x")]) == texts(
        RecordRequest, 'theme: "a"')
    assert stream(codec(RecordRequest, "*", (), "grpc-gateway"), body, query=[("theme", "x")]) == texts(
        RecordRequest, 'tags: "a"', 'theme: "b"')


# ------------------------------------------------ response_to_json_translator_test.cc

def printed(message: Any, name: str = "edge", response_body: str = "", **overrides) -> Any:
    return orjson.loads(ResponseCodec(message.DESCRIPTOR, response_body, options=profile(name, overrides)).encode(message)[0])


ZEROS = {"name": "", "title": "", "pageCount": 0, "priceCents": "0", "status": "STATUS_UNSPECIFIED", "tags": [],
         "history": [], "editors": [], "authorsByRole": {}, "statusByRegion": {}, "labelsById": {}, "inPrint": False,
         "score": 0.0, "checksum": "", "label": ""}
NULLS = {"author": None, "extra": None, "attributes": None, "createTime": None, "edition": None}


@pytest.mark.parametrize(
    "proto, options, expected",
    [
        ('name: "1" title: "History"', {}, {"name": "1", "title": "History"}),
        ("", {}, {}),
        ('name: "" title: ""', {"emit_unpopulated": True}, ZEROS),
        ("", {"emit_unpopulated": True, "unset_messages_as_null": False}, ZEROS),
        ('author { bio { year_born: 1828 year_died: 1910 text: "t" } }', {},
         {"author": {"bio": {"yearBorn": "1828", "yearDied": "1910", "text": "t"}}}),
        ("author { bio { } }", {"emit_unpopulated": True},
         {**ZEROS, "author": {"firstName": "", "lastName": "", "bio": {"yearBorn": "0", "yearDied": "0", "text": ""}}}),
        ('attributes { fields { key: "payload" value { string_value: "Hello World!" } } }', {},
         {"attributes": {"payload": "Hello World!"}}),
        ('attributes { fields { key: "nested" value { struct_value { fields { key: "payload" value { string_value: "x" } } } } } }',
         {}, {"attributes": {"nested": {"payload": "x"}}}),
        ("status: ARCHIVED history: ACTIVE history: ARCHIVED", {"enums_as_ints": True}, {"status": 2, "history": [1, 2]}),
        ('status_by_region { key: "eu" value: ACTIVE }', {"enums_as_ints": True}, {"statusByRegion": {"eu": 1}}),
        ("status: ARCHIVED", {}, {"status": "ARCHIVED"}),
        ("status: 7", {}, {"status": 7}),
        ('page_count: 3 display_name: "x" status_by_region { key: "eu" value: ACTIVE }', {"use_proto_names": True},
         {"page_count": 3, "display_name": "x", "status_by_region": {"eu": "ACTIVE"}}),
        ('page_count: 3 display_name: "x"', {}, {"pageCount": 3, "label": "x"}),
        ("rating: 0", {}, {"rating": 0}),
        ("source_author { }", {}, {"sourceAuthor": {}}),
    ],
)
def test_response_print_options(proto, options, expected) -> None:
    assert printed(text(Record, proto), **options) == expected


# What each anchor's default print options make of one message (Envoy 1.40 and Go protojson
# answered these; key order aside).
ANCHORED = 'status: ARCHIVED history: ACTIVE history: ARCHIVED author { } editors { } source_author { } rating: 0 ' \
           'status_by_region { key: "eu" value: ACTIVE }'


def test_each_profile_prints_as_its_anchor() -> None:
    message = text(Record, ANCHORED)
    sparse = {"status": "ARCHIVED", "history": ["ACTIVE", "ARCHIVED"], "author": {}, "editors": [{}],
              "statusByRegion": {"eu": "ACTIVE"}, "sourceAuthor": {}, "rating": 0}
    assert printed(message, "edge") == printed(message, "envoy") == sparse
    author = {"firstName": "", "lastName": "", "bio": None}
    assert printed(message, "grpc-gateway") == {
        **ZEROS, **NULLS, "status": "ARCHIVED", "history": ["ACTIVE", "ARCHIVED"], "author": author,
        "editors": [author], "statusByRegion": {"eu": "ACTIVE"}, "sourceAuthor": author, "rating": 0,
    }
    assert printed(Record(), "grpc-gateway") == {**ZEROS, **NULLS}


def test_a_response_body_field_under_each_profile() -> None:
    reply = RecordRequest(shelf=3)
    reply.records.add(title="t")
    assert printed(reply, "edge", "records") == [{"title": "t"}]
    full = printed(reply, "grpc-gateway", "records")
    assert full == [{**ZEROS, **NULLS, "title": "t"}]
    assert printed(RecordRequest(), "grpc-gateway", "records") == []
    assert printed(RecordRequest(), "edge", "status") == "STATUS_UNSPECIFIED"
    assert printed(RecordRequest(), "edge", "status", enums_as_ints=True) == 0
    assert printed(RecordRequest(), "grpc-gateway", "record") == {**ZEROS, **NULLS}


def test_any_prints_its_message_with_the_options() -> None:
    message = Record()
    message.extra.Pack(body_pb2.Author(first_name="a"))
    assert printed(message)["extra"] == {"@type": "type.googleapis.com/edgecompat.body.v1.Author", "firstName": "a"}
    full = printed(message, "grpc-gateway")["extra"]
    assert full == {"@type": "type.googleapis.com/edgecompat.body.v1.Author", "firstName": "a", "lastName": "",
                    "bio": None}
    assert printed(message, use_proto_names=True)["extra"]["first_name"] == "a"


# ------------------------------------------------ marshal_jsonpb_test.go

def test_round_trip_under_every_print_variant() -> None:
    """grpc-gateway's TestJSONPbMarshal: whatever the options, what is printed parses back to the message."""
    message = text(Record, 'name: "6EC2446F" editors { first_name: "foo" } price_cents: -5 status: ACTIVE '
                           'source_url: "bar" status_by_region { key: "a" value: ACTIVE } '
                           'status_by_region { key: "b" value: STATUS_UNSPECIFIED } labels_by_id { key: 1 value: "x" } '
                           'author { } create_time { seconds: 1462875553 nanos: 123000000 }')
    for names in (False, True):
        for ints in (False, True):
            for emit in (False, True):
                for nulls in (False, True):
                    out = printed(message, use_proto_names=names, enums_as_ints=ints, emit_unpopulated=emit,
                                  unset_messages_as_null=nulls)
                    back = decode(codec(Record, "*"), orjson.dumps(out))
                    assert back == message, (names, ints, emit, nulls)
                    assert ("ACTIVE" in json.dumps(out)) is not ints
                    assert (("price_cents" if names else "priceCents") in out)
                    assert ("tags" in out) is emit


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "u", "editors": [{"firstName": "foo"}], "priceCents": -5, "status": "ACTIVE", "sourceUrl": "bar",'
        b' "statusByRegion": {"a": 1, "b": 0}}',
        b'{"name": "u", "editors": [{"firstName": "foo"}], "priceCents": "-5", "status": "ACTIVE", "sourceUrl": "bar",'
        b' "statusByRegion": {"a": "ACTIVE", "b": "STATUS_UNSPECIFIED"}}',
        b'{"name": "u", "editors": [{"first_name": "foo"}], "price_cents": -5, "status": 1, "source_url": "bar",'
        b' "status_by_region": {"a": 1, "b": 0}}',
    ],
)
def test_unmarshal_spellings(body) -> None:
    """grpc-gateway's TestJSONPbUnmarshal: 64-bit numbers or strings, enums by name or number, either spelling."""
    expected = text(Record, 'name: "u" editors { first_name: "foo" } price_cents: -5 status: ACTIVE source_url: "bar" '
                            'status_by_region { key: "a" value: ACTIVE } status_by_region { key: "b" value: STATUS_UNSPECIFIED }')
    for name in PROFILES:
        assert decode(codec(Record, "*", (), name), body) == expected


def test_unknown_fields_are_a_400_only_when_asked() -> None:
    """grpc-gateway's TestJSONPbDecoderUnknownField: DiscardUnknown false refuses; every profile discards."""
    body = b'{"name": "u", "unknownField": "111"}'
    for name in PROFILES:
        assert decode(codec(Record, "*", (), name), body) == Record(name="u")
        assert refused(codec(Record, "*", (), name, unknown_body_fields="reject"), body).field == "unknownField"


@pytest.mark.parametrize(
    "field, proto, expected",
    [
        ("edition", "edition { value: -123 }", -123),
        ("edition", "edition { }", 0),
        ("createTime", "create_time { seconds: 1462875553 nanos: 123000000 }", "2016-05-10T10:19:13.123Z"),
        ("attributes", 'attributes { fields { key: "foo_bar" value { bool_value: true } } }', {"foo_bar": True}),
        ("checksum", 'checksum: "abc"', "YWJj"),
        ("score", "score: 1.5", 1.5),
        ("score", "score: inf", "Infinity"),
        ("labelsById", 'labels_by_id { key: 1 value: "foo" }', {"1": "foo"}),
        ("authorsByRole", 'authors_by_role { key: "foo" value { first_name: "bar" } }', {"foo": {"firstName": "bar"}}),
        ("priceCents", "price_cents: 1", "1"),
        ("extra", "extra { }", {}),
    ],
)
def test_field_fixtures(field, proto, expected) -> None:
    """grpc-gateway's fieldFixtures: the JSON form of each kind of value, and back."""
    message = text(Record, proto)
    assert printed(message)[field] == expected
    if field != "extra":
        assert decode(codec(Record, "*"), orjson.dumps({field: expected})) == message


def test_struct_keys_keep_their_spelling_under_proto_names() -> None:
    message = text(Record, 'attributes { fields { key: "fooBar" value { bool_value: true } } }')
    assert printed(message, use_proto_names=True) == {"attributes": {"fooBar": True}}


def test_packed_any_request_round_trip() -> None:
    packed = any_pb2.Any()
    packed.Pack(body_pb2.Author(first_name="a"))
    message = Record(extra=packed)
    body = orjson.dumps(json_format.MessageToDict(message))
    assert decode(codec(Record, "*"), body) == message


def test_a_raw_body_stream_is_one_message_of_the_bytes() -> None:
    from edgetest import kinds_pb2  # noqa: F401 - loads google.api.HttpBody into the default pool
    from google.api import httpbody_pb2

    request_codec = RequestCodec(httpbody_pb2.HttpBody.DESCRIPTOR, "*", [])
    [message] = request_codec.decode_stream([], [], b"line 1\nline 2\n", "text/plain")
    assert (message.data, message.content_type) == (b"line 1\nline 2\n", "text/plain")
    assert request_codec.decode_stream([], [], b"", "text/plain") == []
