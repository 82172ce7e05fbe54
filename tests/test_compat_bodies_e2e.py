"""Bodies through a real gateway in front of the echo backend, once per profile.

The cases where the profiles differ (whitespace bodies, unknown enum names, print
options) and the ones every profile must agree on (one field under both spellings,
streams as JSON arrays or NDJSON and which messages get the bindings), each with the
exact answer: the HTTP status and body, and for client streams the messages the
backend received. The `envoy` column is what a real Envoy 1.40 answers for the same
request (tests/test_compat_bodies_envoy.py checks it against Envoy itself), except for
one field under both spellings, which Envoy accepts (the last value wins) and every
profile refuses, and NDJSON streams, which Envoy does not take; the `grpc-gateway`
column is what Go protojson v1.33 prints and reads with grpc-gateway's default marshaler
options. Unit-level tables of the same behaviours: tests/test_compat_bodies.py.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from google.protobuf import text_format

from compatbody import body_pb2
from tests.support.echo import echo_backend_running
from tests.support.gateway import gateway_config, running_gateway

BODY_SET = Path(__file__).parent.parent / "protos" / "compatbody" / "descriptors.binpb"
PROFILES = ("edge", "envoy", "grpc-gateway")

ZEROS = {"name": "", "title": "", "pageCount": 0, "priceCents": "0", "status": "STATUS_UNSPECIFIED", "tags": [],
         "history": [], "editors": [], "authorsByRole": {}, "statusByRegion": {}, "labelsById": {}, "inPrint": False,
         "score": 0, "checksum": "", "label": "", "author": None, "extra": None, "attributes": None,
         "createTime": None, "edition": None}
REQUEST_ZEROS = {"shelf": "0", "record": None, "tags": [], "theme": "", "records": [], "status": "STATUS_UNSPECIFIED"}


@pytest.fixture(scope="module")
def echo():
    with echo_backend_running(BODY_SET) as backend:
        yield backend


@pytest.fixture(scope="module", params=PROFILES)
def gateway(request, echo):
    config = gateway_config([{"name": "echo", "target": echo.target}], transcoding={"profile": request.param},
                            access_log={"enabled": False})
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        yield request.param, client


def sent(echo, before: int, message_type: Any = body_pb2.RecordRequest) -> list[str]:
    """What the backend received since call `before`, one text-format message each."""
    out = []
    for call in echo.calls[before:]:
        for raw in call.requests:
            out.append(text_format.MessageToString(message_type.FromString(raw), as_one_line=True))
    return out


# (id, method, path, body, {profile: (status, reply JSON or the field a 400 names)}); "*" = every profile
UNARY = [
    ("empty body", "POST", "/v1/records", b"", {"*": (200, {}), "grpc-gateway": (200, ZEROS)}),
    ("whitespace body", "POST", "/v1/records", b" \r\n\t", {"*": (400, None), "grpc-gateway": (200, ZEROS)}),
    ("null body", "POST", "/v1/records", b"null", {"*": (400, None)}),
    ("array for a message", "POST", "/v1/records", b"[]", {"*": (400, None)}),
    ("unknown fields", "POST", "/v1/records", b'{"title": "t", "subtitle": {"x": [1]}}',
     {"*": (200, {"title": "t"}), "grpc-gateway": (200, {**ZEROS, "title": "t"})}),
    ("unknown enum name", "POST", "/v1/records", b'{"title": "t", "status": "LATER"}',
     {"*": (200, {"title": "t"}), "envoy": (400, "status"), "grpc-gateway": (200, {**ZEROS, "title": "t"})}),
    ("unknown enum name in a list", "POST", "/v1/records", b'{"history": ["ACTIVE", "LATER"]}',
     {"*": (200, {"history": ["ACTIVE"]}), "envoy": (400, "history[1]"),
      "grpc-gateway": (200, {**ZEROS, "history": ["ACTIVE"]})}),
    ("unknown enum name in a map", "POST", "/v1/records", b'{"statusByRegion": {"eu": "LATER", "us": "ARCHIVED"}}',
     {"*": (200, {"statusByRegion": {"us": "ARCHIVED"}}), "envoy": (400, "statusByRegion[eu]"),
      "grpc-gateway": (200, {**ZEROS, "statusByRegion": {"us": "ARCHIVED"}})}),
    ("both spellings", "POST", "/v1/records", b'{"pageCount": 1, "page_count": 2}', {"*": (400, "page_count")}),
    ("both spellings, nested", "POST", "/v1/records", b'{"editors": [{"firstName": "a", "first_name": "b"}]}',
     {"*": (400, "editors[0].first_name")}),
    ("both spellings in a body field", "PUT", "/v1/shelves/3/record", b'{"label": "a", "display_name": "b"}',
     {"*": (400, "record.display_name")}),
    ("print options", "POST", "/v1/records",
     b'{"status": "ARCHIVED", "author": {}, "sourceAuthor": {}, "rating": 0, "priceCents": 5}',
     {"*": (200, {"status": "ARCHIVED", "priceCents": "5", "author": {}, "sourceAuthor": {}, "rating": 0}),
      "grpc-gateway": (200, {**ZEROS, "status": "ARCHIVED", "priceCents": "5", "rating": 0,
                             "author": {"firstName": "", "lastName": "", "bio": None},
                             "sourceAuthor": {"firstName": "", "lastName": "", "bio": None}})}),
    ("repeated body field", "PUT", "/v1/shelves/3/tags", b'["a", "b"]',
     {"*": (200, {"shelf": "3", "tags": ["a", "b"]}), "grpc-gateway": (200, {**REQUEST_ZEROS, "shelf": "3",
                                                                          "tags": ["a", "b"]})}),
    ("repeated message body field", "PUT", "/v1/shelves/3/records", b'[{"title": "a"}, {"title": "b"}]',
     {"*": (200, {"shelf": "3", "records": [{"title": "a"}, {"title": "b"}]}),
      "grpc-gateway": (200, {**REQUEST_ZEROS, "shelf": "3", "records": [{**ZEROS, "title": "a"},
                                                                      {**ZEROS, "title": "b"}]})}),
    ("nested body field", "PUT", "/v1/shelves/3/bio", b'{"yearBorn": "1830", "text": "t"}',
     {"*": (200, {"shelf": "3", "record": {"author": {"bio": {"yearBorn": "1830", "text": "t"}}}}),
      "grpc-gateway": (200, {**REQUEST_ZEROS, "shelf": "3", "record": {
          **ZEROS, "author": {"firstName": "", "lastName": "", "bio": {"yearBorn": "1830", "yearDied": "0",
                                                                          "text": "t"}}}})}),
    ("null for a scalar body field", "PUT", "/v1/shelves/3/theme", b"null",
     {"*": (200, {"shelf": "3"}), "grpc-gateway": (200, {**REQUEST_ZEROS, "shelf": "3"})}),
]


def _expected(table: dict[str, Any], profile: str) -> tuple[int, Any]:
    return table.get(profile, table["*"])


@pytest.mark.parametrize("case", UNARY, ids=[c[0] for c in UNARY])
def test_unary_bodies(gateway, case) -> None:
    profile, client = gateway
    _, method, path, body, table = case
    status, expected = _expected(table, profile)
    reply = client.request(method, path, content=body, headers={"content-type": "application/json"})
    assert reply.status_code == status, reply.text
    if status == 200:
        assert reply.json() == expected
    else:
        error = reply.json()
        assert error["code"] == 3 and error["message"]
        if expected is not None:
            assert error["details"][0]["fieldViolations"][0]["field"] == expected


# (id, path, body, the messages the backend receives); the same under every profile
STREAMS = [
    ("array: bindings on the first message only", "/v1/shelves/3/records:upload",
     b'[{"theme": "a"}, {"theme": "b", "shelf": "9"}]', ['shelf: 3 theme: "a"', 'shelf: 9 theme: "b"']),
    ("array of nothing", "/v1/shelves/3/records:upload", b"[]", []),
    ("ndjson: bindings on every message", "/v1/shelves/3/records:upload",
     b'{"theme": "a"}\n{"theme": "b", "shelf": "9"}\n', ['shelf: 3 theme: "a"', 'shelf: 3 theme: "b"']),
    ("json values one after another", "/v1/shelves/3/records:upload", b'{"theme": "a"} {\n"theme": "b"}',
     ['shelf: 3 theme: "a"', 'shelf: 3 theme: "b"']),
    ("array: body field and query", "/v1/shelves/3/records:uploadEach?status=ACTIVE",
     b'[{"title": "a"}, {"title": "b"}]', ['shelf: 3 record { title: "a" } status: ACTIVE', 'record { title: "b" }']),
    ("ndjson: body field and query", "/v1/shelves/3/records:uploadEach?status=ACTIVE",
     b'{"title": "a"}\n{"title": "b"}', ['shelf: 3 record { title: "a" } status: ACTIVE',
                                         'shelf: 3 record { title: "b" } status: ACTIVE']),
    ("array: repeated body field", "/v1/shelves/3/tags:upload", b'[["a", "b"], ["c"]]',
     ['shelf: 3 tags: "a" tags: "b"', 'tags: "c"']),
    ("array: repeated body field, bare values", "/v1/shelves/3/tags:upload", b'["a", "b"]',
     ['shelf: 3 tags: "a"', 'tags: "b"']),
    ("array: scalar body field", "/v1/shelves/3/themes:upload", b'["a", "b"]', ['shelf: 3 theme: "a"', 'theme: "b"']),
]


@pytest.mark.parametrize("case", STREAMS, ids=[c[0] for c in STREAMS])
def test_client_stream_bodies(gateway, echo, case) -> None:
    _, client = gateway
    _, path, body, expected = case
    before = len(echo.calls)
    reply = client.post(path, content=body)
    assert reply.status_code == 200, reply.text
    assert sent(echo, before) == expected


def test_bidi_takes_the_same_bodies(gateway, echo) -> None:
    _, client = gateway
    for body, expected in ((b'[{"theme": "a"}, {"theme": "b"}]', ['shelf: 3 theme: "a"', 'theme: "b"']),
                           (b'{"theme": "a"}\n{"theme": "b"}', ['shelf: 3 theme: "a"', 'shelf: 3 theme: "b"'])):
        before = len(echo.calls)
        assert client.post("/v1/shelves/3:chat", content=body).status_code == 200
        assert sent(echo, before) == expected


@pytest.mark.parametrize(
    "body, says, field",
    [
        (b'[{"theme": "a"}, {"theme": 5}]', "element 1 of the JSON array body", "theme"),
        (b'{"theme": "a"}\n{"record": {"pageCount": 1, "page_count": 2}}', "value 2 (line 2)", "record.page_count"),
        (b'[{"theme": "a"}, null]', "element 1 of the JSON array body", None),
        (b'{"theme": "a"}\n{"theme": ', "malformed JSON in value 2 (line 2)", None),
    ],
)
def test_a_bad_message_refuses_the_whole_stream_before_the_call(gateway, echo, body, says, field) -> None:
    _, client = gateway
    before = len(echo.calls)
    reply = client.post("/v1/shelves/3/records:upload", content=body)
    assert reply.status_code == 400 and says in reply.json()["message"]
    if field is not None:
        assert reply.json()["details"][0]["fieldViolations"][0]["field"] == field
    assert len(echo.calls) == before  # nothing reached the backend


def test_whitespace_stream_body(gateway, echo) -> None:
    profile, client = gateway
    before = len(echo.calls)
    reply = client.post("/v1/shelves/3/records:upload", content=b" \n ")
    if profile == "grpc-gateway":
        assert reply.status_code == 200 and sent(echo, before) == []
    else:
        assert reply.status_code == 400 and len(echo.calls) == before


def test_the_openapi_document_describes_the_replies(gateway) -> None:
    """Each profile's replies validate against the schema its document gives them."""
    profile, client = gateway
    document = client.get("/openapi.json").json()
    create = document["paths"]["/v1/records"]["post"]
    schema = create["responses"]["200"]["content"]["application/json"]["schema"]
    validator = jsonschema.Draft202012Validator({**schema, "components": document["components"]})
    body = {"status": "ARCHIVED", "author": {"bio": {}}, "editors": [{}], "extra": {
        "@type": "type.googleapis.com/edgecompat.body.v1.Author", "firstName": "x"}}
    for sent_body in (body, {}):
        reply = client.post("/v1/records", content=json.dumps(sent_body)).json()
        assert list(validator.iter_errors(reply)) == [], (profile, reply)
    record = document["components"]["schemas"]["edgecompat.body.v1.Record"]["properties"]
    assert ("anyOf" in record["author"]) is (profile == "grpc-gateway")
