"""The `envoy` profile's query rules against a real Envoy, request by request.

Each request goes to Envoy's gRPC-JSON transcoder (default settings) and to a
gateway under the `envoy` profile, both in front of the same echo backend
serving protos/compatquery; both must accept or refuse it alike and, when they
accept it, hand the backend the same message. Where edge deliberately answers
otherwise (it reads a form only grpc-gateway knows, or keeps a documented
refusal), the request is listed in DIVERGES with the reason, and the test
checks it still differs exactly so (a new Envoy that changes is noticed).
Envoy answers a request it will not transcode (an unknown query parameter) by
passing it on untranscoded, which the gRPC backend refuses: any answer but 200
counts as a refusal. Skipped where no Envoy binary is found
(tests/support/envoy_transcoder.py).
"""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from google.protobuf import text_format

from compatquery import query_pb2
from tests.support.echo import echo_backend_running
from tests.support.envoy_transcoder import envoy_binary, envoy_transcoder_running
from tests.support.gateway import gateway_config, running_gateway

QUERY_SET = Path(__file__).parent.parent / "protos" / "compatquery" / "descriptors.binpb"
SERVICE = "compatquery.v1.QueryService"

CASES = [
    # scalars and their spellings
    ("GET", "/v1/bags?fInt32=-7&f_int64=9000000000&fUint64=18446744073709551615&fBool=true&fString=s", b""),
    ("GET", "/v1/bags?fDouble=1.5&fFloat=-0.25&fDouble=2", b""),
    ("GET", "/v1/bags?fDouble=NaN&fFloat=Infinity", b""),
    ("GET", "/v1/bags?fInt32=2147483648", b""),
    ("GET", "/v1/bags?fInt32=1.5", b""),
    ("GET", "/v1/bags?fInt32=abc", b""),
    ("GET", "/v1/bags?fBool=yes", b""),
    ("GET", "/v1/bags?fBool=TRUE", b""),
    ("GET", "/v1/bags?fBool=1", b""),
    ("GET", "/v1/bags?fBool=maybe", b""),
    ("GET", "/v1/bags?fBytes=aGVsbG8%3D", b""),
    ("GET", "/v1/bags?fBytes=aGVsbG8_Pz8-", b""),
    ("GET", "/v1/bags?shade=DARK_BLUE&shades=1&shades=PALE_GREEN", b""),
    ("GET", "/v1/bags?shade=dark_blue", b""),
    ("GET", "/v1/bags?shade=9", b""),
    # presence
    ("GET", "/v1/bags?maybeCount=0&maybeFlag=false", b""),
    ("GET", "/v1/bags?wInt32=0&wString=w&wBool=false", b""),
    # well-known types
    ("GET", "/v1/bags?at=2020-01-01T00:00:00Z&took=1.5s", b""),
    ("GET", "/v1/bags?took=1h30m", b""),
    ("GET", "/v1/bags?mask=fooBar,baz.quxQuux", b""),
    ("GET", "/v1/bags?mask=a(b,c)", b""),
    ("GET", "/v1/bags?anyJson=true", b""),
    ("GET", "/v1/bags?anyJson=hello", b""),
    ("GET", "/v1/bags?meta=%7B%7D", b""),
    # repeated
    ("GET", "/v1/bags?words=a&words=b&numbers=1&numbers=2", b""),
    # nested and oneofs
    ("GET", "/v1/bags?nested.fString=n&nested.nested.fInt32=2&note.stars=3", b""),
    ("GET", "/v1/bags?pickText=p", b""),
    # names
    ("GET", "/v1/bags?search%5Bdecoded%5D=v", b""),
    ("GET", "/v1/bags?search[decoded]=v", b""),
    ("GET", "/v1/bags?search%5Bencoded%5D=v", b""),
    ("GET", "/v1/bags?dotted_name=v&Renamed-Field=w", b""),
    # `+` and escapes
    ("GET", "/v1/bags?fString=a+b", b""),
    ("GET", "/v1/bags?fString=a%2Bb%20c", b""),
    ("GET", "/v1/bags?words=%24%25%2F%20%0A", b""),
    ("GET", "/v1/bags?fString=&words=", b""),
    ("GET", "/v1/bags?flag&fInt32=2", b""),
    # unknown names, maps
    ("GET", "/v1/bags?nope=1", b""),
    ("GET", "/v1/bags?nested.nope=1", b""),
    ("GET", "/v1/bags?tags%5Bk%5D=v", b""),
    # the path and the body
    ("GET", "/v1/bags/p?fString=q", b""),
    ("POST", "/v1/rooms/r1/shelves?shelf.theme=x", b""),
    ("POST", "/v1/rooms/r1/shelves?shelf.theme=x", b'{"name": "n"}'),
    ("POST", "/v1/rooms/r1/shelves?shelf.theme=x", b'{"theme": "y"}'),
    ("POST", "/v1/rooms/r1/shelves?shelf.size=6", b'{"size": 5}'),
    ("POST", "/v1/rooms/r1/shelves?shelf.labels=b", b'{"labels": ["a"]}'),
    ("POST", "/v1/rooms/r1/shelves?requestId=q&pageSize=3", b'{"name": "n"}'),
    ("POST", "/v1/rooms/r1/shelves?parent=rooms/r2", b"{}"),
    ("PATCH", "/v1/rooms/r1/shelves/s1?updateMask=theme", b'{"theme": "t"}'),
    ("PUT", "/v1/rooms/r1/shelves?pageSize=5", b"{}"),
    ("PUT", "/v1/rooms/r1/shelves?pageSize=6", b'{"pageSize": 5}'),
    ("PUT", "/v1/rooms/r1/shelves?pageSize=6", b'{"page_size": 5}'),
    ("PUT", "/v1/rooms/r1/shelves?page_size=6", b'{"page_size": 5}'),
    ("PUT", "/v1/rooms/r1/shelves?shelf.theme=x", b'{"shelf": {"theme": "y"}}'),
    ("PUT", "/v1/rooms/r1/shelves?requestId=q", b'{"request_id": "r"}'),
    ("POST", "/v1/rooms/r1/shelves?shelf.public=true", b'{"public": false}'),
    ("POST", "/v1/rooms/r1/shelves?shelf.attrs%5Bb%5D=2", b'{"attrs": {"a": "1"}}'),
    ("PUT", "/v1/bags?fInt32=4", b'{"fString": "s"}'),
]

# (method, path, body) -> (Envoy accepts it, why edge's `envoy` profile answers otherwise)
DIVERGES: dict[tuple[str, str, bytes], tuple[bool, str]] = {
    ("GET", "/v1/bags?took=1h30m", b""):
        (False, "Go's duration syntax: grpc-gateway's form, which every profile reads"),
    ("GET", "/v1/bags?meta=%7B%7D", b""):
        (False, "a Struct as JSON text: grpc-gateway's form, which every profile reads"),
    ("GET", "/v1/bags?tags%5Bk%5D=v", b""):
        (False, "a map entry as m[key]=value: grpc-gateway's form; to Envoy an unknown parameter"),
    ("POST", "/v1/rooms/r1/shelves?shelf.attrs%5Bb%5D=2", b'{"attrs": {"a": "1"}}'):
        (False, "a map entry as m[key]=value inside the body field: grpc-gateway's form"),
    ("PUT", "/v1/rooms/r1/shelves?pageSize=6", b'{"pageSize": 5}'):
        (False, "Envoy's weaver matches the body's JSON key against the proto name, so a lowerCamel key "
                "misses the collision and both values go in the message (Envoy then answers 502 here); "
                "edge's body_wins keeps the body's value under either spelling"),
}

# Envoy with the options an Envoy deployment may turn on, against edge's envoy profile with the same.
TUNED_ENVOY = {
    "case_insensitive_enum_parsing": True,
    "query_param_unescape_plus": True,
    "ignore_unknown_query_parameters": True,
    "ignored_query_parameters": ["key", "api_key"],
    "request_validation_options": {"reject_binding_body_field_collisions": True},
}
TUNED_EDGE = {
    "profile": "envoy", "case_insensitive_enums": True, "query_unescape_plus": True,
    "unknown_query_parameters": "ignore", "ignored_query_parameters": ["key", "api_key"],
    "query_body_fields": "reject_conflicts",
}
TUNED_CASES = [
    ("GET", "/v1/bags?shade=dark-blue&shades=Light&shades=pale_green", b""),
    ("GET", "/v1/bags?shade=darkblue", b""),
    ("PUT", "/v1/bags", b'{"shade": "pale-green", "shades": ["light"]}'),
    ("GET", "/v1/bags?fString=a+b&words=%2B+%20", b""),
    ("GET", "/v1/bags?nope=1&fInt32=2", b""),
    ("GET", "/v1/bags?key=k&api_key=a&fInt32=2", b""),
    ("POST", "/v1/rooms/r1/shelves?shelf.theme=x", b'{"theme": "y"}'),
    ("POST", "/v1/rooms/r1/shelves?shelf.theme=x", b'{"theme": "x"}'),
    ("POST", "/v1/rooms/r1/shelves?shelf.theme=x", b'{"name": "n"}'),
    ("POST", "/v1/rooms/r1/shelves?shelf.size=6", b'{"size": 5}'),
    ("POST", "/v1/rooms/r1/shelves?shelf.size=5", b'{"size": "5"}'),
    ("POST", "/v1/rooms/r1/shelves?shelf.public=true", b'{"public": false}'),
    ("POST", "/v1/rooms/r1/shelves?shelf.labels=b", b'{"labels": ["a"]}'),
    ("PUT", "/v1/rooms/r1/shelves?page_size=6", b'{"page_size": 5}'),
    ("PUT", "/v1/rooms/r1/shelves?page_size=5", b'{"page_size": 5}'),
]


def _received(echo, before: int) -> list[str]:
    out = []
    for call in echo.calls[before:]:
        name = call.method.rsplit("/", 1)[-1]
        message_type = {"Find": query_pb2.Bag, "FindNamed": query_pb2.Bag, "Put": query_pb2.Bag}.get(
            name, query_pb2.ShelfRequest)
        out.extend(text_format.MessageToString(message_type.FromString(raw), as_one_line=True) for raw in call.requests)
    return out


def _ask(cases: list, envoy_options: dict, edge_transcoding: dict) -> dict:
    """(method, path, body) -> {"envoy": (accepted, messages, status), "edge": (...)}."""
    binary = envoy_binary()
    if binary is None:
        pytest.skip("no envoy binary (set EDGE_TEST_ENVOY, or run scripts/bench once to install one)")
    out: dict = {}
    with echo_backend_running(QUERY_SET) as echo:
        config = gateway_config([{"name": "echo", "target": echo.target}], transcoding=edge_transcoding,
                                access_log={"enabled": False})
        with envoy_transcoder_running(binary, QUERY_SET, [SERVICE], echo.port, envoy_options) as envoy_url, \
                running_gateway(config) as gw:
            for who, url in (("envoy", envoy_url), ("edge", gw.url)):
                with httpx.Client(base_url=url, timeout=10) as client:
                    for method, path, body in cases:
                        before = len(echo.calls)
                        reply = client.request(method, path, content=body, headers={"content-type": "application/json"})
                        # Envoy passes a request with an unknown parameter on untranscoded (the backend
                        # answers 503 through it) and answers 502 where it put one field in the message
                        # twice (path and query): anything but 200 is a refusal here.
                        accepted = reply.status_code == 200
                        received = _received(echo, before) if accepted else []
                        out.setdefault((method, path, body), {})[who] = (accepted, received, reply.status_code)
    return out


@pytest.fixture(scope="module")
def answers():
    return _ask(CASES, {}, {"profile": "envoy"})


@pytest.fixture(scope="module")
def tuned_answers():
    return _ask(TUNED_CASES, TUNED_ENVOY, TUNED_EDGE)


@pytest.mark.parametrize("case", CASES, ids=[f"{m} {p} {b[:30]!r}" for m, p, b in CASES])
def test_edge_under_the_envoy_profile_reads_the_query_as_envoy(answers, case) -> None:
    envoy, edge = answers[case]["envoy"], answers[case]["edge"]
    if case in DIVERGES:
        envoy_accepts, why = DIVERGES[case]
        assert envoy[0] is envoy_accepts and edge[0] is not envoy_accepts, why
    else:
        assert edge[:2] == envoy[:2], (envoy, edge)


@pytest.mark.parametrize("case", TUNED_CASES, ids=[f"{m} {p} {b[:30]!r}" for m, p, b in TUNED_CASES])
def test_envoy_options_and_their_edge_options_agree(tuned_answers, case) -> None:
    envoy, edge = tuned_answers[case]["envoy"], tuned_answers[case]["edge"]
    assert edge[:2] == envoy[:2], (envoy, edge)
