"""Issue 12 items 14 and 15 end to end: a real gateway per profile in front of the echo
backend (tests/support/echo.py), over real HTTP. Server streams in each format (chosen by
profile and by Accept), failures before and after the first message, a client that goes
away mid-stream, compression flushed per message, a browser-like EventSource reading SSE;
and the header rules: request headers -> metadata per profile, identity never forged,
backend metadata -> response headers."""
from __future__ import annotations

import base64
import contextlib
import gzip
import json
import uuid
import zlib
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from httpx_sse import connect_sse

from tests.support.auth import IdpServer, bearer, issuer_config, mint
from tests.support.echo import ECHO_CONTROLS, echo_backend_running
from tests.support.gateway import gateway_config, running_gateway
from tests.support.waiting import wait_for

STREAM_SET = Path(__file__).parent.parent / "protos" / "compatstream" / "descriptors.binpb"
PROFILES = ("edge", "envoy", "grpc-gateway")
ECHO_FORWARD = [*ECHO_CONTROLS, "x-echo-header-x-mark", "x-echo-trailer-x-end", "x-echo-header-x-blob-bin"]
TEXT = "two\nlines, caf\u00e9 \u2603 \"quoted\""  # sent percent-encoded: `+` is a space only in some profiles


@pytest.fixture(scope="module")
def echo():
    with echo_backend_running(STREAM_SET) as backend:
        yield backend


@pytest.fixture(scope="module")
def gateways(echo):
    """One gateway per profile, each in front of the same echo backend."""
    clients = {}
    with contextlib.ExitStack() as stack:
        for name in PROFILES:
            config = gateway_config(
                [{"name": "echo", "target": echo.target}],
                transcoding={"profile": name, "forward_headers": ECHO_FORWARD},
                compression={"min_size": 0},
            )
            gw = stack.enter_context(running_gateway(config))
            clients[name] = stack.enter_context(httpx.Client(base_url=gw.url, timeout=15))
        yield clients


def note(topic: str = "t1", profile: str = "edge", **fields) -> dict:
    """The reply JSON the echo sends back for GET /v1/notes/{topic}:watch?seq=..&text=..
    (grpc-gateway's profile prints unpopulated fields, an unset message as null)."""
    if profile == "grpc-gateway":
        out = {"topic": topic, "seq": "0", "labels": [], "text": "", "inner": None}
    else:
        out = {"topic": topic}
    out.update(fields)
    return out


def compact(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def frames(fmt: str, items: list, error: dict | None = None) -> list[bytes]:
    """The bytes each format writes, one entry per flush (our own statement of the formats)."""
    js = [compact(i) for i in items]
    if fmt == "ndjson":
        out = [j + b"\n" for j in js]
        return out + ([compact({"error": error}) + b"\n"] if error else [])
    if fmt == "grpc-gateway":
        out = [b'{"result":' + j + b"}\n" for j in js]
        return out + ([compact({"error": error}) + b"\n"] if error else [])
    if fmt == "json-array":
        out = [(b"[" if i == 0 else b",") + j for i, j in enumerate(js)]
        if error:
            return out + [b"," + compact({"error": error}) + b"]"]
        return out + [b"]" if js else b"[]"]
    assert fmt == "sse"
    out = [b"data: " + j + b"\n\n" for j in js]
    return out + ([b"event: error\ndata: " + compact(error) + b"\n\n"] if error else [])


def parse(fmt: str, body: bytes) -> tuple[list, dict | None]:
    """The messages and the failure status a body holds (the JSON keeps the gateway's key order)."""
    if fmt == "json-array":
        values = json.loads(body)
    elif fmt == "sse":
        values = []
        for event in body.split(b"\n\n")[:-1]:
            if event.startswith(b"event: error\n"):
                values.append({"error": json.loads(event.removeprefix(b"event: error\ndata: "))})
            else:
                values.append(json.loads(event.removeprefix(b"data: ")))
    else:
        values = [json.loads(line) for line in body.split(b"\n")[:-1]]
    error = values.pop()["error"] if values and isinstance(values[-1], dict) and set(values[-1]) == {"error"} else None
    if fmt == "grpc-gateway":
        values = [v["result"] for v in values]
    return values, error


def check_stream(fmt: str, body: bytes, items: list, error: dict | None = None) -> None:
    """The body holds exactly `items` (and `error`), framed byte for byte as `fmt` frames them."""
    got_items, got_error = parse(fmt, body)
    assert (got_items, got_error) == (items, error)
    assert body == b"".join(frames(fmt, got_items, got_error))


CONTENT_TYPES = {"ndjson": "application/x-ndjson", "json-array": "application/json",
                 "grpc-gateway": "application/json", "sse": "text/event-stream"}

# (profile, Accept, format written)
FORMAT_TABLE = [
    ("edge", None, "ndjson"), ("edge", "*/*", "ndjson"), ("edge", "application/x-ndjson", "ndjson"),
    ("edge", "application/json", "json-array"), ("edge", "text/event-stream", "sse"),
    ("edge", "application/json;q=0.5, text/event-stream", "sse"),
    ("edge", "text/html,application/xhtml+xml,*/*;q=0.8", "ndjson"),
    ("envoy", None, "json-array"), ("envoy", "*/*", "json-array"), ("envoy", "application/json", "json-array"),
    ("envoy", "application/x-ndjson", "ndjson"), ("envoy", "text/event-stream", "sse"),
    ("envoy", "image/png", "json-array"),
    ("grpc-gateway", None, "grpc-gateway"), ("grpc-gateway", "*/*", "grpc-gateway"),
    ("grpc-gateway", "application/json", "grpc-gateway"), ("grpc-gateway", "application/x-ndjson", "ndjson"),
    ("grpc-gateway", "text/event-stream", "sse"),
    ("grpc-gateway", "application/json, text/plain, */*", "grpc-gateway"),
]


def _headers(accept: str | None, **more: str) -> dict[str, str]:
    headers = dict(more)
    if accept is not None:
        headers["accept"] = accept
    return headers


@pytest.mark.parametrize("repeat", [0, 1, 3])
@pytest.mark.parametrize("profile,accept,fmt", FORMAT_TABLE)
def test_stream_formats_by_profile_and_accept(gateways, profile, accept, fmt, repeat) -> None:
    r = gateways[profile].get(f"/v1/notes/t1:watch?seq=5&text={quote(TEXT, safe='')}",
                              headers=_headers(accept, **{"x-echo-repeat": str(repeat)}))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == CONTENT_TYPES[fmt]
    assert "accept" in r.headers["vary"].lower()
    check_stream(fmt, r.content, [note(seq="5", text=TEXT, profile=profile)] * repeat)


MID_ERROR = {"code": 13, "message": "echo failed after 2 replies as asked", "details": []}


@pytest.mark.parametrize("profile,accept,fmt", FORMAT_TABLE)
def test_a_failure_mid_stream_is_written_in_the_format(gateways, profile, accept, fmt) -> None:
    """The 200 is out: each format says the failure in its body (the JSON array stays valid JSON)."""
    r = gateways[profile].get("/v1/notes/t2:watch", headers=_headers(accept, **{"x-echo-repeat": "3",
                                                                               "x-echo-fail-after": "2"}))
    assert r.status_code == 200
    check_stream(fmt, r.content, [note("t2", profile=profile)] * 2, MID_ERROR)
    if fmt == "json-array":
        assert r.json()[-1] == {"error": MID_ERROR}


@pytest.mark.parametrize("code,status", [("NOT_FOUND", 404), ("PERMISSION_DENIED", 403), ("UNAVAILABLE", 503),
                                         ("INVALID_ARGUMENT", 400)])
@pytest.mark.parametrize("profile,accept,fmt", FORMAT_TABLE)
def test_a_failure_before_the_first_message_is_a_real_http_error(gateways, profile, accept, fmt, code, status) -> None:
    r = gateways[profile].get("/v1/notes/t3:watch", headers=_headers(
        accept, **{"x-echo-fail-after": "0", "x-echo-code": code}))
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    error = {"code": {"NOT_FOUND": 5, "PERMISSION_DENIED": 7, "UNAVAILABLE": 14, "INVALID_ARGUMENT": 3}[code],
             "message": "echo failed after 0 replies as asked", "details": []}
    if fmt == "grpc-gateway":  # grpc-gateway writes its error line at the mapped status
        assert r.content == compact({"error": error}) + b"\n"
    else:
        assert r.json() == error


@pytest.mark.parametrize("profile,accept,fmt", FORMAT_TABLE[:7] + FORMAT_TABLE[7:13:2] + FORMAT_TABLE[13::2])
def test_streams_are_compressed_and_flushed_per_message(gateways, profile, accept, fmt) -> None:
    headers = _headers(accept, **{"x-echo-repeat": "3", "accept-encoding": "gzip"})
    with gateways[profile].stream("GET", "/v1/notes/t4:watch", headers=headers) as r:
        raw = b"".join(r.iter_raw())
    assert r.headers["content-encoding"] == "gzip"
    whole = gzip.decompress(raw)
    check_stream(fmt, whole, [note("t4", profile=profile)] * 3)
    expected = frames(fmt, parse(fmt, whole)[0])
    # Each message was flushed on its own: a sync-flush mark ends each write, and what the
    # compressed prefix up to each mark inflates to ends exactly on a message.
    seen, inflater, start = [], zlib.decompressobj(31), 0
    out = b""
    while (mark := raw.find(b"\x00\x00\xff\xff", start)) != -1:
        out += inflater.decompress(raw[start:mark + 4])
        seen.append(out)
        start = mark + 4
    for k in range(1, len(expected) + 1):
        assert b"".join(expected[:k]) in seen, (k, seen)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("accept", [None, "text/event-stream", "application/x-ndjson"])
def test_brotli_streams_decode_whole(gateways, profile, accept) -> None:
    brotli = pytest.importorskip("brotli")
    headers = _headers(accept, **{"x-echo-repeat": "3", "accept-encoding": "br"})
    with gateways[profile].stream("GET", "/v1/notes/t5:watch", headers=headers) as r:
        raw = b"".join(r.iter_raw())
    fmt = dict(((p, a), f) for p, a, f in FORMAT_TABLE)[(profile, accept)]
    assert r.headers["content-encoding"] == "br"
    check_stream(fmt, brotli.decompress(raw), [note("t5", profile=profile)] * 3)


@pytest.mark.parametrize("profile", PROFILES)
def test_an_event_source_reads_the_sse_stream(gateways, profile) -> None:
    """What a browser's EventSource sees (httpx-sse parses as the HTML spec says):
    one `message` event a reply, then an `error` event carrying the status."""
    client = gateways[profile]
    headers = {"accept": "text/event-stream", "x-echo-repeat": "3", "x-echo-fail-after": "3",
               "x-echo-code": "RESOURCE_EXHAUSTED"}
    with connect_sse(client, "GET", f"/v1/notes/t6:watch?text={quote(TEXT, safe='')}", headers=headers) as source:
        assert source.response.headers["content-type"] == "text/event-stream"
        assert source.response.headers["cache-control"] == "no-cache"
        events = [(e.event, e.data, e.id) for e in source.iter_sse()]
    assert [(kind, json.loads(data)) for kind, data, _ in events] == [
        *[("message", note("t6", text=TEXT, profile=profile))] * 3,
        ("error", {"code": 8, "message": "echo failed after 3 replies as asked", "details": []}),
    ]
    assert all(event_id == "" for _, _, event_id in events)  # no ids: a reconnection starts anew
    with connect_sse(client, "GET", "/v1/notes/t7:watch", headers={"x-echo-repeat": "2"}) as source:
        # a clean end: no error event
        assert [json.loads(e.data) for e in source.iter_sse()] == [note("t7", profile=profile)] * 2


@pytest.mark.parametrize("profile,accept", [("edge", None), ("envoy", None), ("grpc-gateway", None),
                                            ("edge", "text/event-stream"), ("envoy", "application/x-ndjson")])
def test_a_client_that_leaves_mid_stream_cancels_the_backend_call(gateways, echo, profile, accept) -> None:
    request_id = uuid.uuid4().hex
    headers = _headers(accept, **{"x-echo-repeat": "1000", "x-echo-delay-ms": "50", "x-request-id": request_id})
    with httpx.Client(base_url=str(gateways[profile].base_url), timeout=15) as own:
        with own.stream("GET", "/v1/notes/t8:watch", headers=headers) as r:
            assert r.status_code == 200
            first = next(r.iter_bytes())
            assert b"t8" in first
        # leaving the block closed the connection mid-stream

    def the_call():
        calls = [c for c in echo.calls_to("/WatchNotes") if c.header("x-request-id") == request_id]
        return calls[0] if calls else None

    assert wait_for(lambda: the_call() is not None and the_call().cancelled), "the backend never saw the cancellation"


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("accept", [None, "text/event-stream", "application/json"])
def test_http_body_streams_stay_raw(gateways, profile, accept) -> None:
    r = gateways[profile].post("/v1/blobs:download", content=b"\x00\x01raw\xff",
                               headers=_headers(accept, **{"content-type": "application/x-blob", "x-echo-repeat": "3"}))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-blob"
    assert r.content == b"\x00\x01raw\xff" * 3


@pytest.mark.parametrize("profile,accept,fmt", FORMAT_TABLE)
def test_a_response_body_field_streams_in_the_format(gateways, profile, accept, fmt) -> None:
    r = gateways[profile].get("/v1/notes/t9/labels:watch", params={"labels": ["a", "b"]},
                              headers=_headers(accept, **{"x-echo-repeat": "2"}))
    check_stream(fmt, r.content, [["a", "b"]] * 2)


@pytest.mark.parametrize("profile", PROFILES)
def test_bidi_replies_use_the_format_too(gateways, profile) -> None:
    body = b'{"topic": "a"}\n{"topic": "b", "seq": "2"}\n'
    r = gateways[profile].post("/v1/notes:chat", content=body, headers={"accept": "text/event-stream"})
    check_stream("sse", r.content, [note("a", profile=profile), note("b", seq="2", profile=profile)])


@pytest.mark.parametrize("profile", PROFILES)
def test_batch_items_keep_their_json_array(gateways, profile) -> None:
    items = [
        {"id": "s", "url": "/v1/notes/b1:watch", "headers": {"x-echo-repeat": "2", "accept": "text/event-stream"}},
        {"id": "e", "url": "/v1/notes/b2:watch", "headers": {"x-echo-repeat": "0"}},
    ]
    r = gateways[profile].post("/v1/batch", json={"requests": items}, headers={"accept": "text/event-stream"})
    assert r.status_code == 200, r.text
    out = {i["id"]: i for i in r.json()["responses"]}
    assert out["s"]["status"] == 200 and out["s"]["body"] == [note("b1", profile=profile)] * 2
    assert out["e"]["status"] == 200 and out["e"]["body"] == []


# ---- headers and metadata ----------------------------------------------------------------------

def _sent(echo, request_id: str):
    calls = [c for c in echo.calls if c.header("x-request-id") == request_id]
    assert len(calls) == 1
    return calls[0]


def _call(client, echo, headers: dict[str, str], path: str = "/v1/notes/h1"):
    request_id = uuid.uuid4().hex
    r = client.get(path, headers={**headers, "x-request-id": request_id})
    return r, (_sent(echo, request_id) if r.status_code == 200 else None)


B64 = base64.b64encode(b"\x00\x01\xfebin").decode()
# (profile, request headers, metadata the backend must see, names it must not see)
METADATA_TABLE = [
    ("edge", {"grpc-metadata-x-tenant": "acme", "x-tenant": "t", "user-agent": "ua/1"}, {},
     ["x-tenant", "grpcgateway-user-agent", "x-forwarded-for", "x-forwarded-host"]),
    ("grpc-gateway", {"grpc-metadata-x-tenant": "acme"}, {"x-tenant": "acme"}, []),
    ("grpc-gateway", {"Grpc-Metadata-X-Tenant": "acme"}, {"x-tenant": "acme"}, []),
    ("grpc-gateway", {"grpc-metadata-x-trace-bin": B64}, {"x-trace-bin": b"\x00\x01\xfebin"}, []),
    ("grpc-gateway", {"grpc-metadata-x-trace-bin": B64.rstrip("=")}, {"x-trace-bin": b"\x00\x01\xfebin"}, []),
    ("grpc-gateway", {"user-agent": "ua/1", "accept-language": "de-CH", "accept": "application/json"},
     {"grpcgateway-user-agent": "ua/1", "grpcgateway-accept-language": "de-CH", "grpcgateway-accept": "application/json"},
     ["user-agent-x", "accept-language"]),
    ("grpc-gateway", {"x-tenant": "t"}, {}, ["x-tenant"]),  # only Grpc-Metadata-* and the permanent list
    ("grpc-gateway", {"authorization": "Bearer abc", "cookie": "session=s"}, {},
     ["authorization", "grpcgateway-authorization", "cookie", "grpcgateway-cookie"]),
    ("grpc-gateway", {"grpc-metadata-x-user-id": "admin", "grpc-metadata-x-auth-scopes": "all"}, {},
     ["x-user-id", "x-auth-scopes"]),
    ("grpc-gateway", {"grpc-metadata-traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, {},
     ["traceparent"]),
    ("grpc-gateway", {"x-forwarded-for": "6.6.6.6", "x-forwarded-host": "evil.example", "host": "api.example"},
     {"x-forwarded-for": "127.0.0.1", "x-forwarded-host": "api.example"}, []),
    ("envoy", {"x-tenant": "t", "accept-language": "de-CH", "x-custom-thing": "v"},
     {"x-tenant": "t", "accept-language": "de-CH", "x-custom-thing": "v"}, []),
    ("envoy", {"x-trace-bin": B64}, {"x-trace-bin": b"\x00\x01\xfebin"}, []),
    ("envoy", {"authorization": "Bearer abc", "cookie": "session=s", "x-api-key": "k", "connection": "keep-alive",
               "keep-alive": "timeout=5", "x-user-id": "admin"}, {},
     ["authorization", "cookie", "x-api-key", "connection", "keep-alive", "x-user-id"]),
    ("envoy", {"x-forwarded-for": "6.6.6.6", "x-forwarded-proto": "http", "x-real-ip": "6.6.6.6"},
     {"x-forwarded-for": "127.0.0.1"}, ["x-forwarded-proto", "x-real-ip", "x-forwarded-host"]),
]


@pytest.mark.parametrize("profile,headers,seen,unseen", METADATA_TABLE)
def test_request_headers_become_metadata_per_profile(gateways, echo, profile, headers, seen, unseen) -> None:
    r, call = _call(gateways[profile], echo, headers)
    assert r.status_code == 200, r.text
    for name, value in seen.items():
        assert [v for k, v in call.metadata if k == name] == [value], (name, call.metadata)
    for name in unseen:
        assert call.header(name) is None, (name, call.metadata)
    assert [v for k, v in call.metadata if k == "x-request-id"] == [call.header("x-request-id")]


@pytest.mark.parametrize("profile,header,value", [
    ("grpc-gateway", "grpc-metadata-x-trace-bin", "not base64!"), ("envoy", "x-trace-bin", "%%%"),
    ("grpc-gateway", "grpc-metadata-x-a", "caf\u00e9"), ("grpc-gateway", "user-agent", "caf\u00e9"),
    ("envoy", "x-tenant", "caf\u00e9"), ("edge", "x-echo-repeat", "caf\u00e9"),
])
def test_values_grpc_cannot_carry_are_a_400(gateways, profile, header, value) -> None:
    r = gateways[profile].get("/v1/notes/h2", headers=[(header.encode(), value.encode("latin-1"))])
    assert r.status_code == 400
    assert r.json()["code"] == 3 and header in r.json()["message"]


# (profile, echo controls, response headers expected, response headers that must be absent)
REPLY_TABLE = [
    ("edge", {"x-echo-header-x-mark": "m", "x-echo-trailer-x-end": "e"}, {},
     ["grpc-metadata-x-mark", "grpc-trailer-x-end", "x-mark"]),
    ("grpc-gateway", {"x-echo-header-x-mark": "m", "x-echo-trailer-x-end": "e"},
     {"grpc-metadata-x-mark": "m", "grpc-trailer-x-end": "e"}, ["x-mark", "grpc-metadata-x-end"]),
    ("grpc-gateway", {"x-echo-header-x-blob-bin": B64}, {"grpc-metadata-x-blob-bin": B64}, []),
    ("envoy", {"x-echo-header-x-mark": "m", "x-echo-trailer-x-end": "e"}, {"x-mark": "m", "x-end": "e"},
     ["grpc-metadata-x-mark", "grpc-trailer-x-end"]),
    ("envoy", {"x-echo-header-x-blob-bin": B64}, {"x-blob-bin": B64}, []),
]


@pytest.mark.parametrize("profile,controls,present,absent", REPLY_TABLE)
def test_backend_metadata_come_back_as_headers(gateways, profile, controls, present, absent) -> None:
    client = gateways[profile]
    unary = client.get("/v1/notes/h3", headers=controls)
    failed = client.get("/v1/notes/h3", headers={**controls, "x-echo-fail-after": "0", "x-echo-code": "NOT_FOUND"})
    stream = client.get("/v1/notes/h3:watch", headers={**controls, "x-echo-repeat": "2"})
    assert (unary.status_code, failed.status_code, stream.status_code) == (200, 404, 200)
    for r in (unary, failed):
        for name, value in present.items():
            assert r.headers.get(name) == value, (name, dict(r.headers))
        for name in absent:
            assert name not in r.headers
    for name, value in present.items():  # a stream: its head carries the initial metadata, its trailers are dropped
        trailer = name.startswith("grpc-trailer-") or name == "x-end"
        assert stream.headers.get(name) == (None if trailer else value), (name, dict(stream.headers))


@pytest.fixture(scope="module")
def auth_gateway(echo, auth_keys):
    idp = IdpServer().start()
    idp.publish(auth_keys.public_jwks(auth_keys.rsa, auth_keys.ec))
    config = gateway_config(
        [{"name": "echo", "target": echo.target}],
        transcoding={"profile": "grpc-gateway"},
        auth={"issuers": [issuer_config(idp)], "identity_metadata": {"x-user-id": "sub", "x-tenant-id": "tenant"},
              "default_policy": {"auth": "optional"}},
        rate_limits={"trusted_proxies": ["127.0.0.0/8"], "policies": []},
    )
    try:
        with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
            yield client
    finally:
        idp.stop()


FORGERIES = [
    {"grpc-metadata-x-user-id": "admin"}, {"Grpc-Metadata-X-User-Id": "admin"}, {"x-user-id": "admin"},
    {"grpc-metadata-x-tenant-id": "other"}, {"grpc-metadata-authorization": "Bearer forged"},
    {"grpc-metadata-x-request-id": "mine"}, {"grpc-metadata-x-user-id": "admin", "x-user-id": "root"},
]


@pytest.mark.parametrize("forged", FORGERIES)
@pytest.mark.parametrize("with_token", [False, True])
def test_a_client_cannot_forge_identity_through_header_rules(auth_gateway, echo, auth_keys, forged, with_token) -> None:
    """The identity the authenticator derives from a token is the only identity a backend sees."""
    headers = dict(forged)
    if with_token:
        headers.update(bearer(mint(auth_keys.rsa, tenant="acme")))
    r, call = _call(auth_gateway, echo, headers)
    assert r.status_code == 200, r.text
    values = dict((k, [v for kk, v in call.metadata if kk == k]) for k in ("x-user-id", "x-tenant-id", "authorization"))
    if with_token:
        assert values["x-user-id"] == ["alice"] and values["x-tenant-id"] == ["acme"]
    else:
        assert values["x-user-id"] == [] and values["x-tenant-id"] == []
    assert values["authorization"] == []
    assert [v for k, v in call.metadata if k == "x-request-id"] != ["mine"]


@pytest.mark.parametrize("xff,expected", [
    (None, "127.0.0.1"), ("6.6.6.6", "6.6.6.6, 127.0.0.1"), ("1.1.1.1, 6.6.6.6", "6.6.6.6, 127.0.0.1"),
    ("6.6.6.6, 127.0.0.9", "6.6.6.6, 127.0.0.9, 127.0.0.1"),
])
def test_x_forwarded_for_holds_only_what_the_config_trusts(auth_gateway, echo, xff, expected) -> None:
    headers = {"x-forwarded-host": "api.example", "host": "internal"}
    if xff is not None:
        headers["x-forwarded-for"] = xff
    r, call = _call(auth_gateway, echo, headers)
    assert call.header("x-forwarded-for") == expected
    assert call.header("x-forwarded-host") == "api.example"  # from a trusted proxy


def test_a_forwarded_token_is_the_only_authorization(echo, auth_keys) -> None:
    """An issuer that forwards its validated token (edge/auth) sends exactly that header;
    grpc-gateway's rules add no second one, forged through Grpc-Metadata-* or not."""
    idp = IdpServer().start()
    idp.publish(auth_keys.public_jwks(auth_keys.rsa, auth_keys.ec))
    config = gateway_config(
        [{"name": "echo", "target": echo.target}],
        transcoding={"profile": "grpc-gateway"},
        auth={"issuers": [issuer_config(idp, forward_token=True)], "default_policy": {"auth": "optional"}},
    )
    try:
        with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
            token = mint(auth_keys.rsa)
            r, call = _call(client, echo, {**bearer(token), "grpc-metadata-authorization": "Bearer forged"})
            assert r.status_code == 200, r.text
            assert [v for k, v in call.metadata if k == "authorization"] == [f"Bearer {token}"]
            assert call.header("grpcgateway-authorization") is None
    finally:
        idp.stop()


@pytest.mark.parametrize("profile", PROFILES)
def test_over_http2_streams_keep_their_format_and_a_reset_cancels_the_call(gateways, echo, profile) -> None:
    """The same formats over h2c (edge/http2/); a client that resets its stream mid-way
    cancels the backend call as a closed HTTP/1.1 connection does."""
    base = str(gateways[profile].base_url)
    with httpx.Client(base_url=base, http1=False, http2=True, timeout=15) as h2:
        r = h2.get("/v1/notes/t10:watch", headers={"accept": "text/event-stream", "x-echo-repeat": "2",
                                                   "x-echo-fail-after": "2"})
        assert r.http_version == "HTTP/2" and r.headers["content-type"] == "text/event-stream"
        check_stream("sse", r.content, [note("t10", profile=profile)] * 2,
                     {"code": 13, "message": "echo failed after 2 replies as asked", "details": []})
        request_id = uuid.uuid4().hex
        headers = {"x-echo-repeat": "1000", "x-echo-delay-ms": "50", "x-request-id": request_id}
        with h2.stream("GET", "/v1/notes/t11:watch", headers=headers) as s:
            assert b"t11" in next(s.iter_bytes())
        # closing the unread response resets the HTTP/2 stream; the connection stays

    def cancelled() -> bool:
        calls = [c for c in echo.calls_to("/WatchNotes") if c.header("x-request-id") == request_id]
        return bool(calls) and calls[0].cancelled

    assert wait_for(cancelled), "the backend never saw the cancellation"
