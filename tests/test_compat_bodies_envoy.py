"""The `envoy` profile against a real Envoy, request by request, on the same echo backend.

Each body is sent to Envoy's transcoder (default settings) and to a gateway under the
`envoy` profile; both must accept or refuse it alike and, when they accept it, hand the
backend the same messages. The few bodies where edge deliberately answers otherwise are
listed in DIVERGES with the reason, and the test checks that they still differ exactly
so (a new Envoy that changes is noticed). Skipped where no Envoy binary is found
(tests/support/envoy_transcoder.py).
"""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from google.protobuf import text_format

from compatbody import body_pb2
from tests.support.echo import echo_backend_running
from tests.support.envoy_transcoder import envoy_binary, envoy_transcoder_running
from tests.support.gateway import gateway_config, running_gateway

BODY_SET = Path(__file__).parent.parent / "protos" / "compatbody" / "descriptors.binpb"
SERVICE = "edgecompat.body.v1.BodyService"

CASES = [
    ("POST", "/v1/records", b""),
    ("POST", "/v1/records", b"{}"),
    ("POST", "/v1/records", b"   "),
    ("POST", "/v1/records", b"\r \t\n"),
    ("POST", "/v1/records", b"null"),
    ("POST", "/v1/records", b"[]"),
    ("POST", "/v1/records", b'"x"'),
    ("POST", "/v1/records", b"Invalid"),
    ("POST", "/v1/records", b'{"name" : 1'),
    ("POST", "/v1/records", b'{"title": "t"} {"title": "u"}'),
    ("POST", "/v1/records", b'{"name": "1", "title": "t", "unknownField": "x", "unknownObject": {"a": 1}, "unknownArray": [1]}'),
    ("POST", "/v1/records", b'{"author": {"firstName": "Leo", "bio": {"yearBorn": 1828, "yearDied": "1910"}}}'),
    ("POST", "/v1/records", b'{"status": "NOPE"}'),
    ("POST", "/v1/records", b'{"status": "archived"}'),
    ("POST", "/v1/records", b'{"history": ["ACTIVE", "NOPE"]}'),
    ("POST", "/v1/records", b'{"statusByRegion": {"eu": "NOPE", "us": "ACTIVE"}}'),
    ("POST", "/v1/records", b'{"status": "2"}'),
    ("POST", "/v1/records", b'{"status": "7"}'),
    ("POST", "/v1/records", b'{"status": 7}'),
    ("POST", "/v1/records", b'{"status": "ARCHIVED", "history": ["ACTIVE", 2]}'),
    ("POST", "/v1/records", b'{"sourceUrl": "a", "sourceAuthor": {}}'),
    ("POST", "/v1/records", b'{"label": "x"}'),
    ("POST", "/v1/records", b'{"display_name": "x"}'),
    ("POST", "/v1/records", b'{"displayName": "x"}'),
    ("POST", "/v1/records", b'{"pageCount": 1, "page_count": 2}'),
    ("POST", "/v1/records", b'{"title": "t",}'),
    ("PUT", "/v1/shelves/3/record", b'{"name": "9", "title": "t"}'),
    ("PUT", "/v1/shelves/3/record", b"null"),
    ("PUT", "/v1/shelves/3/record", b"   "),
    ("PUT", "/v1/shelves/abc/record", b"{}"),
    ("PUT", "/v1/shelves/3/bio", b'{"yearBorn": "1830", "text": "t"}'),
    ("PUT", "/v1/shelves/3/tags", b'["a", "b"]'),
    ("PUT", "/v1/shelves/3/tags", b'"a"'),
    ("PUT", "/v1/shelves/3/tags", b"null"),
    ("PUT", "/v1/shelves/3/records", b'[{"title": "a"}, {"title": "b"}]'),
    ("PUT", "/v1/shelves/3/theme", b'"History"'),
    ("PUT", "/v1/shelves/3/theme", b"null"),
    ("POST", "/v1/shelves/3/records:upload", b'[{"theme": "a"}, {"theme": "b", "shelf": "9"}]'),
    ("POST", "/v1/shelves/3/records:upload", b"[]"),
    ("POST", "/v1/shelves/3/records:upload", b"[{}, {\"theme\": \"Classic\"}, {}]"),
    ("POST", "/v1/shelves/3/records:upload", b"  "),
    ("POST", "/v1/shelves/3/records:upload", b""),
    ("POST", "/v1/shelves/3/records:upload", b'{"theme": "a"}'),
    ("POST", "/v1/shelves/3/records:upload", b'{"theme": "a"}\n{"theme": "b"}\n'),
    ("POST", "/v1/shelves/3/records:upload", b'[{"theme": "a"}, null]'),
    ("POST", "/v1/shelves/3/records:upload", b'[{"theme": "a"}, 5]'),
    ("POST", "/v1/shelves/3/records:upload", b'[{"status": "NOPE"}]'),
    ("POST", "/v1/shelves/3/records:uploadEach?status=ACTIVE", b'[{"title": "a"}, {"title": "b"}]'),
    ("POST", "/v1/shelves/3/tags:upload", b'[["a", "b"], ["c"]]'),
    ("POST", "/v1/shelves/3/tags:upload", b'["a", "b"]'),
    ("POST", "/v1/shelves/3/themes:upload", b'["a", "b"]'),
    ("POST", "/v1/shelves/3:chat", b'[{"theme": "a"}, {"theme": "b"}]'),
]

# (method, path, body) -> (Envoy accepts it, why edge's `envoy` profile answers otherwise)
DIVERGES = {
    ("POST", "/v1/records", b'{"pageCount": 1, "page_count": 2}'):
        (True, "one field under both spellings: Envoy keeps the last, edge refuses it in every profile"),
    ("POST", "/v1/records", b'{"title": "t",}'):
        (True, "a trailing comma: Envoy's parser allows it; edge and grpc-gateway's encoding/json refuse it"),
    ("POST", "/v1/records", b'{"status": "7"}'):
        (False, "an unknown enum number as a string: Envoy refuses it, json_format (edge) reads the number"),
    ("PUT", "/v1/shelves/3/record", b"null"):
        (True, "null for a message body field: Envoy leaves it unset, edge and grpc-gateway refuse it"),
    ("PUT", "/v1/shelves/3/tags", b'"a"'):
        (True, "one value for a repeated body field: Envoy takes it as a list, edge and grpc-gateway refuse it"),
    ("POST", "/v1/shelves/3/records:upload", b""):
        (False, "an empty client stream: Envoy refuses it, edge reads no message (as grpc-gateway does)"),
    ("POST", "/v1/shelves/3/records:upload", b'{"theme": "a"}'):
        (False, "a stream that is not a JSON array: Envoy refuses it, edge reads it as JSON values"),
    ("POST", "/v1/shelves/3/records:upload", b'{"theme": "a"}\n{"theme": "b"}\n'):
        (False, "NDJSON: Envoy takes only JSON arrays, edge both"),
}


def _received(echo, before: int) -> list[str]:
    out = []
    for call in echo.calls[before:]:
        message_type = body_pb2.Record if call.method.endswith(("/Create", "/Get")) else body_pb2.RecordRequest
        out.extend(text_format.MessageToString(message_type.FromString(raw), as_one_line=True) for raw in call.requests)
    return out


@pytest.fixture(scope="module")
def answers():
    """(method, path, body) -> {"envoy": (accepted, messages), "edge": (accepted, messages)}."""
    binary = envoy_binary()
    if binary is None:
        pytest.skip("no envoy binary (set EDGE_TEST_ENVOY, or run scripts/bench once to install one)")
    out: dict = {}
    with echo_backend_running(BODY_SET) as echo:
        config = gateway_config([{"name": "echo", "target": echo.target}], transcoding={"profile": "envoy"},
                                access_log={"enabled": False})
        with envoy_transcoder_running(binary, BODY_SET, [SERVICE], echo.port) as envoy_url, \
                running_gateway(config) as gw:
            for who, url in (("envoy", envoy_url), ("edge", gw.url)):
                with httpx.Client(base_url=url, timeout=10) as client:
                    for method, path, body in CASES:
                        before = len(echo.calls)
                        reply = client.request(method, path, content=body, headers={"content-type": "application/json"})
                        # Envoy answers 502 when it cannot print the echo of a field sent twice (the
                        # request was translated); a refused client stream may have reached the backend
                        # in part, since Envoy translates while it streams (edge decodes it all first):
                        # compare what the backend got only for accepted requests.
                        assert reply.status_code in (200, 400, 502), (who, method, path, body, reply.status_code)
                        accepted = reply.status_code != 400
                        received = _received(echo, before) if accepted else []
                        out.setdefault((method, path, body), {})[who] = (accepted, received)
    return out


@pytest.mark.parametrize("case", CASES, ids=[f"{m} {p} {b[:40]!r}" for m, p, b in CASES])
def test_edge_under_the_envoy_profile_answers_as_envoy(answers, case) -> None:
    envoy, edge = answers[case]["envoy"], answers[case]["edge"]
    if case in DIVERGES:
        envoy_accepts, why = DIVERGES[case]
        assert envoy[0] is envoy_accepts and edge[0] is not envoy_accepts, why
    else:
        assert edge == envoy
