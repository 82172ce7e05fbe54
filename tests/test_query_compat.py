"""Query parameters end to end: a real gateway per profile in front of the echo
backend (tests/support/echo.py) serving protos/compatquery, which answers with
the request message the gateway built. Each row is one HTTP request and the
exact answer under each profile: `edge`, `envoy` and `grpc-gateway` as they
come, and `envoy-tuned`, Envoy's profile with the options an Envoy deployment
may turn on (`case_insensitive_enum_parsing`, `query_param_unescape_plus`,
`ignore_unknown_query_parameters`, `reject_binding_body_field_collisions`).

Every gateway also ignores the names `key`, `access_token` and `_`
(`ignored_query_parameters`), refuses unknown body fields, and prints proto3
JSON the same way (the body and print options are not what these tables are
about). The unit-level tables of the
same rules are tests/test_query_rules.py.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.echo import echo_backend_running
from tests.support.gateway import gateway_config, running_gateway

QUERY_SET = Path(__file__).resolve().parent.parent / "protos" / "compatquery" / "descriptors.binpb"
PROFILES = {
    "edge": {"profile": "edge"},
    "envoy": {"profile": "envoy"},
    "grpc-gateway": {"profile": "grpc-gateway"},
    "envoy-tuned": {
        "profile": "envoy", "case_insensitive_enums": True, "query_unescape_plus": True,
        "unknown_query_parameters": "ignore", "query_body_fields": "reject_conflicts",
    },
}
COMMON = {
    "ignored_query_parameters": ["key", "access_token", "_"], "emit_unpopulated": False, "use_proto_names": False,
    # an enum name no spelling matches is refused rather than dropped, so the case-insensitive
    # row says what it means under every profile
    "unknown_body_fields": "reject", "unknown_body_enum_names": "reject",
}


@pytest.fixture(scope="module")
def echo():
    with echo_backend_running(QUERY_SET) as backend:
        yield backend


@pytest.fixture(scope="module", params=sorted(PROFILES))
def profile(request: pytest.FixtureRequest, echo):
    name = request.param
    config = gateway_config([{"name": "query", "target": echo.target}], transcoding={**PROFILES[name], **COMMON},
                            access_log={"enabled": False})
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        yield name, client


def refused(field: str) -> tuple[int, str]:
    """A 400 whose google.rpc.Status names `field`."""
    return (400, field)


SAME = object()
ROWS: list[tuple[str, str, str, bytes | None, dict[str, Any]]] = []


def row(name: str, method: str, url: str, body: bytes | None, edge: Any, *, envoy: Any = SAME,
        gg: Any = SAME, tuned: Any = SAME) -> None:
    """Expected answers: a JSON dict (200) or refused(field); `envoy-tuned` defaults to `envoy`'s."""
    envoy_answer = edge if envoy is SAME else envoy
    ROWS.append((name, method, url, body, {
        "edge": edge, "envoy": envoy_answer, "grpc-gateway": edge if gg is SAME else gg,
        "envoy-tuned": envoy_answer if tuned is SAME else tuned,
    }))


# -- item 5: query parameters inside the body's part of the message
P = {"parent": "rooms/r1"}
row("body-field-empty-body", "POST", "/v1/rooms/r1/shelves?shelf.theme=x", None, {**P, "shelf": {"theme": "x"}}, gg=P)
row("body-field-unset-by-body", "POST", "/v1/rooms/r1/shelves?shelf.theme=x", b'{"name":"n"}',
    {**P, "shelf": {"name": "n", "theme": "x"}}, gg={**P, "shelf": {"name": "n"}})
row("body-field-same-value", "POST", "/v1/rooms/r1/shelves?shelf.theme=x", b'{"theme":"x"}',
    {**P, "shelf": {"theme": "x"}})
row("body-field-conflict", "POST", "/v1/rooms/r1/shelves?shelf.theme=x", b'{"theme":"y"}',
    refused("shelf.theme"), envoy={**P, "shelf": {"theme": "y"}}, gg={**P, "shelf": {"theme": "y"}},
    tuned=refused("shelf.theme"))
row("body-field-list-takes-both", "POST", "/v1/rooms/r1/shelves?shelf.labels=b&shelf.labels=c", b'{"labels":["a"]}',
    {**P, "shelf": {"labels": ["a", "b", "c"]}}, gg={**P, "shelf": {"labels": ["a"]}})
row("body-field-map-entry", "POST", "/v1/rooms/r1/shelves?shelf.attrs%5Bb%5D=2", b'{"attrs":{"a":"1"}}',
    {**P, "shelf": {"attrs": {"a": "1", "b": "2"}}}, gg={**P, "shelf": {"attrs": {"a": "1"}}})
row("body-field-path-variable", "POST", "/v1/rooms/r1/shelves?parent=rooms/r2", b"{}",
    refused("parent"), gg={**P, "shelf": {}})
row("body-field-free-fields", "POST", "/v1/rooms/r1/shelves?requestId=q&pageSize=3", b'{"name":"n"}',
    {**P, "shelf": {"name": "n"}, "requestId": "q", "pageSize": 3})
row("path-inside-body-field", "PATCH", "/v1/rooms/r1/shelves/s1?shelf.name=other&updateMask=theme", b'{"theme":"t"}',
    refused("shelf.name"), gg={"shelf": {"name": "rooms/r1/shelves/s1", "theme": "t"}, "updateMask": "theme"})
row("whole-body-fills-unset", "PUT", "/v1/rooms/r1/shelves?pageSize=5&shelf.size=3", b'{"shelf":{"theme":"t"}}',
    {**P, "shelf": {"theme": "t", "size": "3"}, "pageSize": 5}, gg={**P, "shelf": {"theme": "t"}})
row("whole-body-conflict", "PUT", "/v1/rooms/r1/shelves?pageSize=6", b'{"pageSize":5}',
    refused("pageSize"), envoy={**P, "pageSize": 5}, gg={**P, "pageSize": 5}, tuned=refused("pageSize"))
row("whole-body-unknown-parameter", "PUT", "/v1/rooms/r1/shelves?nope=1", b"{}",
    refused("nope"), gg=P, tuned=P)
row("whole-bag-empty-body", "PUT", "/v1/bags?fInt32=4&tags%5Bk%5D=v", None,
    {"fInt32": 4, "tags": {"k": "v"}}, gg={})
row("raw-body-field", "POST", "/v1/buckets/b/files?file.contentType=x&overwrite=true", b"raw",
    refused("file.contentType"),
    envoy={"bucket": "b", "overwrite": True, "file": {"contentType": "application/octet-stream", "data": "cmF3"}},
    gg={"bucket": "b", "overwrite": True, "file": {"contentType": "application/octet-stream", "data": "cmF3"}},
    tuned=refused("file.contentType"))
row("path-bound-field", "GET", "/v1/bags/p?fString=q", None, refused("fString"), gg={"fString": "p"})

# -- item 6: unknown and ignored names
row("unknown-name", "GET", "/v1/bags?nope=1&fInt32=2", None, refused("nope"), gg={"fInt32": 2}, tuned={"fInt32": 2})
row("unknown-nested-name", "GET", "/v1/bags?nested.nope=1&fInt32=2", None, refused("nested.nope"),
    gg={"fInt32": 2}, tuned={"fInt32": 2})
row("ignored-names", "GET", "/v1/bags?key=AIza&access_token=t&_=1699999999&fInt32=2", None, {"fInt32": 2})
row("no-equals-sign", "GET", "/v1/bags?1699999999&fInt32=2&flag", None, {"fInt32": 2})
row("not-a-message", "GET", "/v1/bags?fInt32.x=1", None, refused("fInt32.x"))

# -- item 7: names are percent-decoded; json_names with brackets, escapes, dots
row("bracket-json-name", "GET", "/v1/bags?search%5Bdecoded%5D=v", None, {"search[decoded]": "v"})
row("bracket-json-name-raw", "GET", "/v1/bags?search[decoded]=v", None, {"search[decoded]": "v"})
row("escaped-json-name-decoded", "GET", "/v1/bags?search%5Bencoded%5D=v", None, {"search%5Bencoded%5D": "v"})
row("escaped-json-name-as-written", "GET", "/v1/bags?search%255Bencoded%255D=v", None, {"search%5Bencoded%5D": "v"})
row("dotted-json-name", "GET", "/v1/bags?a.b=v&nested.a.b=w", None, {"a.b": "v", "nested": {"a.b": "w"}})
row("escaped-dot-and-underscore", "GET", "/v1/bags?nested%2Ef%5Fstring=v", None, {"nested": {"fString": "v"}})

# -- item 8: `+`
row("plus-in-value", "GET", "/v1/bags?fString=a+b&words=%2B&words=+", None,
    {"fString": "a b", "words": ["+", " "]}, envoy={"fString": "a+b", "words": ["+", "+"]},
    tuned={"fString": "a b", "words": ["+", " "]})
row("plus-in-name", "GET", "/v1/bags?tags%5Bk+1%5D=v", None, {"tags": {"k 1": "v"}}, envoy={"tags": {"k+1": "v"}},
    tuned={"tags": {"k 1": "v"}})
row("plus-in-bytes-and-time", "GET", "/v1/bags?fBytes=+/8%3D&at=2020-01-01T01:00:00+01:00", None,
    {"fBytes": "+/8=", "at": "2020-01-01T00:00:00Z"})

# -- item 9: grpc-gateway's forms
row("maps", "GET", "/v1/bags?tags%5Ba%5D=1&tags[b]=2&byBool[true]=t&byInt64[-5]=n&byUint32[7]=u"
    "&shadeByName[k]=LIGHT&boxed[k]=3&spans[k]=1h30m&switches[on]=yes", None,
    {"tags": {"a": "1", "b": "2"}, "byBool": {"true": "t"}, "byInt64": {"-5": "n"}, "byUint32": {"7": "u"},
     "shadeByName": {"k": "LIGHT"}, "boxed": {"k": "3"}, "spans": {"k": "5400s"}, "switches": {"on": True}})
row("map-message-values", "GET", "/v1/bags?notes[k]=x", None, refused("notes[k]"))
row("map-entry-twice", "GET", "/v1/bags?tags[a]=1&tags[a]=2", None, refused("tags[a]"))
row("go-durations", "GET", "/v1/bags?took=1h30m&laps=13h0m0s&laps=-1.5s&laps=300ms", None,
    {"took": "5400s", "laps": ["46800s", "-1.500s", "0.300s"]})
row("json-duration", "GET", "/v1/bags?took=1.5s", None, {"took": "1.500s"})
row("bad-duration", "GET", "/v1/bags?took=1d", None, refused("took"))
row("struct-list-value", "GET", "/v1/bags?meta=%7B%22a%22%3A1%7D&items=%5B1%2C%22x%22%5D", None,
    {"meta": {"a": 1}, "items": [1, "x"]})
row("value-text", "GET", "/v1/bags?anyJson=true", None, {"anyJson": True}, envoy={"anyJson": "true"})
row("value-not-json", "GET", "/v1/bags?anyJson=blue", None, {"anyJson": "blue"})
row("field-mask", "GET", "/v1/bags?mask=fooBar,a(b,c)", None, {"mask": "fooBar,a.b,a.c"})
row("bytes-both-alphabets", "GET", "/v1/bags?fBytes=c2hlbGY_PiE-&blobs=c2hlbGY/PiE%2B&blobs=aGk", None,
    {"fBytes": "c2hlbGY/PiE+", "blobs": ["c2hlbGY/PiE+", "aGk="]})
row("optional-zero", "GET", "/v1/bags?maybeCount=0&maybeFlag=false&maybeText=", None,
    {"maybeCount": "0", "maybeFlag": False, "maybeText": ""})
row("wrappers", "GET", "/v1/bags?wInt32=0&wString=&wBool=f&wUint64=18446744073709551615", None,
    {"wInt32": 0, "wString": "", "wBool": False, "wUint64": "18446744073709551615"})
row("repeated-enums", "GET", "/v1/bags?shades=LIGHT&shades=2&shades=0", None,
    {"shades": ["LIGHT", "DARK_BLUE", "SHADE_UNSPECIFIED"]})
row("bools-either-anchor", "GET", "/v1/bags?flags=t&flags=YES&flags=0&flags=n", None,
    {"flags": [True, True, False, False]})
row("bad-int", "GET", "/v1/bags?fInt32=2147483648", None, refused("fInt32"))

# -- item 10: case-insensitive enum names, in the query and in the body
row("enum-case", "GET", "/v1/bags?shade=dark-blue&shades=Light", None, refused("shade"),
    tuned={"shade": "DARK_BLUE", "shades": ["LIGHT"]})
row("enum-case-body", "PUT", "/v1/bags", b'{"shade":"pale-green","fInt32":1}',
    refused("shade"), tuned={"shade": "PALE_GREEN", "fInt32": 1})


@pytest.mark.parametrize("method, url, body, expected", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_query_compat(profile, method, url, body, expected) -> None:
    name, client = profile
    want = expected[name]
    headers = {"content-type": "application/octet-stream" if "/files" in url else "application/json"}
    response = client.request(method, url, content=body, headers=headers)
    if isinstance(want, tuple):
        status, field = want
        assert response.status_code == status, response.text
        error = response.json()
        assert error["code"] == 3 and repr(field) in error["message"], error
        assert error["details"][0]["fieldViolations"][0]["field"] == field
        return
    assert response.status_code == 200, response.text
    assert response.json() == want
