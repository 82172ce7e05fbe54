"""Unit tables (milliseconds) for issue 12 items 14 and 15: the choice of a stream format
by Accept, each format's exact bytes, the trusted x-forwarded-for chain, and the header
rules (request headers -> metadata, backend metadata -> response headers) per rule set.
The same behaviours run end to end in tests/test_streams.py."""
from __future__ import annotations

import base64
from ipaddress import ip_network

import orjson
import pytest

from edge.header_rules import RequestHeaderRules, response_headers
from edge.ratelimit.client_ip import client_ip, forwarded_chain
from edge.streaming import FRAMINGS, choose_format
from transcoding import errors
from transcoding.options import PROFILES, HeaderRules, StreamFormat

ND, ARR, GG, SSE = StreamFormat.NDJSON, StreamFormat.JSON_ARRAY, StreamFormat.GRPC_GATEWAY, StreamFormat.SSE

# ---- Accept -> format ------------------------------------------------------------------------
# (Accept header, route default, chosen format)
ACCEPT_TABLE = [
    # no preference: the route's default
    (None, ND, ND), (None, ARR, ARR), (None, GG, GG), (None, SSE, SSE),
    ("", ND, ND), ("*/*", ND, ND), ("*/*", ARR, ARR), ("*/*", GG, GG), ("*/*", SSE, SSE),
    ("*/*;q=0.8", ARR, ARR),
    # exact types
    ("application/x-ndjson", ARR, ND), ("application/x-ndjson", GG, ND), ("application/x-ndjson", SSE, ND),
    ("text/event-stream", ND, SSE), ("text/event-stream", ARR, SSE), ("text/event-stream", GG, SSE),
    # application/json: the array, or grpc-gateway's lines where those are the default (gg serves them as JSON)
    ("application/json", ND, ARR), ("application/json", ARR, ARR), ("application/json", SSE, ARR),
    ("application/json", GG, GG),
    # case, spaces and parameters
    ("Application/JSON", ND, ARR), ("  text/event-stream  ", ND, SSE), ("application/json; charset=utf-8", ND, ARR),
    ("TEXT/EVENT-STREAM;Q=1", ND, SSE),
    # q-values
    ("application/json;q=0.5, text/event-stream", ND, SSE),
    ("application/json, text/event-stream;q=0.5", ND, ARR),
    ("application/x-ndjson;q=0.1, application/json;q=0.2", SSE, ARR),
    ("application/x-ndjson;q=0.3, application/json;q=0.2", SSE, ND),
    ("text/event-stream;q=0, */*", ND, ND),
    ("text/event-stream;q=0, */*", SSE, ND),  # the default refused: the rest tie, NDJSON first
    ("application/json;q=0, application/x-ndjson;q=0, */*", ARR, SSE),
    ("application/json;q=0.001", ND, ARR),
    ("application/json;q=1.0", ND, ARR),
    # ties: the default wins, then the range written first
    ("application/json, text/event-stream", SSE, SSE),
    ("application/json, text/event-stream", ND, ARR),
    ("text/event-stream, application/json", ND, SSE),
    ("application/x-ndjson, application/json", ARR, ARR),
    ("application/x-ndjson, application/json", SSE, ND),
    # wildcards: the most specific range decides a type's q
    ("text/*", ND, SSE), ("application/*", SSE, ND), ("application/*", ARR, ARR), ("application/*", GG, GG),
    ("application/*;q=0.9, application/json", SSE, ARR),
    ("*/*;q=0.1, text/event-stream;q=0.5", ND, SSE),
    ("*/*, application/json;q=0", ARR, ND),
    ("*/*, text/*;q=0", SSE, ND),
    # a browser's EventSource, a browser's navigation, curl, grpc-gateway's fetch clients
    ("text/event-stream", ND, SSE),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8", ND, ND),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", ARR, ARR),
    ("application/json, text/plain, */*", GG, GG), ("application/json, text/plain, */*", ND, ARR),  # axios
    ("application/json, */*;q=0.9", SSE, ARR), ("*/*, text/event-stream", ND, SSE),  # named beats wildcard
    # nothing we write was asked for: the default, as both anchors answer whatever the Accept
    ("image/png", ND, ND), ("text/html", ARR, ARR), ("application/xml", GG, GG), ("application/grpc", SSE, SSE),
    ("text/event-stream;q=0", ND, ND), ("application/json;q=0", ARR, ARR),
    # malformed ranges and weights are ignored, the rest still counts
    ("garbage", SSE, SSE), ("application", ND, ND), ("/json", ND, ND), (",,,", ARR, ARR),
    ("application/json;q=abc", ND, ND), ("application/json;q=2", ND, ND), ("application/json;q=-1", SSE, SSE),
    ("application/json;q=abc, text/event-stream", ND, SSE),
]


@pytest.mark.parametrize("accept,default,expected", ACCEPT_TABLE)
def test_accept_chooses_the_format(accept, default, expected) -> None:
    assert choose_format(accept, default) is expected
    assert choose_format(accept, default) is expected  # the remembered answer is the same


def test_the_profiles_default_stream_formats() -> None:
    """Envoy's default is a JSON array; grpc-gateway's, its result lines; edge keeps NDJSON."""
    assert PROFILES["edge"].stream_format is ND
    assert PROFILES["envoy"].stream_format is ARR
    assert PROFILES["grpc-gateway"].stream_format is GG


# ---- each format's bytes -----------------------------------------------------------------------
STATUS = {"code": 13, "message": "boom", "details": []}
ITEMS = [b'{"a":1}', b'{"text":"x\\ny"}', b"{}"]


def _write(framing, items, failure=None):
    out = []
    for i, item in enumerate(items):
        out.append(framing.first(item) if i == 0 else framing.next(item))
    out.append(framing.failure(failure) if failure is not None else framing.end(bool(items)))
    return b"".join(out)


# (format, items, failure, exact body, content type)
FRAMES_TABLE = [
    (ND, ITEMS, None, b'{"a":1}\n{"text":"x\\ny"}\n{}\n', b"application/x-ndjson"),
    (ND, [], None, b"", b"application/x-ndjson"),
    (ND, ITEMS[:1], STATUS, b'{"a":1}\n{"error":{"code":13,"message":"boom","details":[]}}\n', b"application/x-ndjson"),
    (ARR, ITEMS, None, b'[{"a":1},{"text":"x\\ny"},{}]', b"application/json"),
    (ARR, ITEMS[:1], None, b'[{"a":1}]', b"application/json"),
    (ARR, [], None, b"[]", b"application/json"),
    (ARR, ITEMS[:2], STATUS, b'[{"a":1},{"text":"x\\ny"},{"error":{"code":13,"message":"boom","details":[]}}]',
     b"application/json"),
    (GG, ITEMS, None, b'{"result":{"a":1}}\n{"result":{"text":"x\\ny"}}\n{"result":{}}\n', b"application/json"),
    (GG, [], None, b"", b"application/json"),
    (GG, ITEMS[:1], STATUS, b'{"result":{"a":1}}\n{"error":{"code":13,"message":"boom","details":[]}}\n',
     b"application/json"),
    (SSE, ITEMS, None, b'data: {"a":1}\n\ndata: {"text":"x\\ny"}\n\ndata: {}\n\n', b"text/event-stream"),
    (SSE, [], None, b"", b"text/event-stream"),
    (SSE, ITEMS[:1], STATUS, b'data: {"a":1}\n\nevent: error\ndata: {"code":13,"message":"boom","details":[]}\n\n',
     b"text/event-stream"),
]


@pytest.mark.parametrize("fmt,items,failure,body,content_type", FRAMES_TABLE)
def test_each_format_writes_exactly(fmt, items, failure, body, content_type) -> None:
    framing = FRAMINGS[fmt]
    assert framing.content_type == content_type
    assert _write(framing, items, failure) == body


@pytest.mark.parametrize("fmt", [ARR])
@pytest.mark.parametrize("count", [0, 1, 2, 5])
@pytest.mark.parametrize("fails", [False, True])
def test_a_json_array_is_valid_json_however_it_ends(fmt, count, fails) -> None:
    items = [orjson.dumps({"n": i}) for i in range(count)]
    if fails and not count:
        return  # a failure before the first message is a plain HTTP error, never framed
    value = orjson.loads(_write(FRAMINGS[fmt], items, STATUS if fails else None))
    assert value[:count] == [{"n": i} for i in range(count)]
    assert value[count:] == ([{"error": STATUS}] if fails else [])


# ---- the x-forwarded-for chain the gateway vouches for -----------------------------------------
TRUSTED = [ip_network("10.0.0.0/8"), ip_network("127.0.0.0/8"), ip_network("fd00::/8")]
# (peer, X-Forwarded-For, trusted proxies, chain, peer trusted)
CHAIN_TABLE = [
    ("127.0.0.1", None, [], ["127.0.0.1"], False),
    ("127.0.0.1", "6.6.6.6", [], ["127.0.0.1"], False),  # nothing trusted: a client's header says nothing
    ("203.0.113.9", "6.6.6.6", TRUSTED, ["203.0.113.9"], False),  # an untrusted peer's header is ignored
    ("127.0.0.1", None, TRUSTED, ["127.0.0.1"], True),
    ("127.0.0.1", "6.6.6.6", TRUSTED, ["6.6.6.6", "127.0.0.1"], True),
    ("127.0.0.1", "6.6.6.6, 10.1.2.3", TRUSTED, ["6.6.6.6", "10.1.2.3", "127.0.0.1"], True),
    ("127.0.0.1", "1.1.1.1, 6.6.6.6, 10.1.2.3", TRUSTED, ["6.6.6.6", "10.1.2.3", "127.0.0.1"], True),  # forged head cut
    ("127.0.0.1", "1.1.1.1,6.6.6.6", TRUSTED, ["6.6.6.6", "127.0.0.1"], True),
    ("127.0.0.1", "10.0.0.5, 10.0.0.6", TRUSTED, ["10.0.0.5", "10.0.0.6", "127.0.0.1"], True),  # all trusted
    ("127.0.0.1", "garbage, 6.6.6.6", TRUSTED, ["6.6.6.6", "127.0.0.1"], True),
    ("127.0.0.1", "6.6.6.6, garbage", TRUSTED, ["127.0.0.1"], True),  # garbage: stop at what we can vouch for
    ("127.0.0.1", "6.6.6.6:4711", TRUSTED, ["6.6.6.6", "127.0.0.1"], True),  # ports dropped
    ("127.0.0.1", "[2001:db8::1]:443", TRUSTED, ["2001:db8::1", "127.0.0.1"], True),
    ("fd00::1", "2001:db8::7", TRUSTED, ["2001:db8::7", "fd00::1"], True),
    ("::ffff:127.0.0.1", "6.6.6.6", TRUSTED, ["6.6.6.6", "127.0.0.1"], True),  # v4-mapped peer
    ("not-an-ip", "6.6.6.6", TRUSTED, [], False),
]


@pytest.mark.parametrize("peer,xff,trusted,chain,peer_trusted", CHAIN_TABLE)
def test_the_forwarded_chain_holds_only_what_is_trusted(peer, xff, trusted, chain, peer_trusted) -> None:
    headers = {"x-forwarded-for": xff} if xff is not None else {}
    assert forwarded_chain(peer, headers, trusted) == (chain, peer_trusted)
    if chain:  # its head is the client address per-IP limits use
        assert chain[0] == client_ip(peer, headers, trusted)


# ---- request headers -> metadata ---------------------------------------------------------------
GG_RULES = PROFILES["grpc-gateway"]
ENVOY_RULES = PROFILES["envoy"]
EDGE_RULES = PROFILES["edge"]
IDENTITY = {"x-user-id", "x-auth-issuer", "x-auth-scopes"}


def _rules(options, **kw):
    kw.setdefault("protected", IDENTITY)
    kw.setdefault("credentials", {"authorization", "x-api-key", "idempotency-key"})
    return RequestHeaderRules(options, **kw)


def _metadata(rules, headers, peer="127.0.0.1"):
    out: list = []
    rules.add_listed(headers, out)
    if rules.needs_more:
        rules.add_more(headers, peer, out)
    return out


B64 = base64.b64encode(b"\x00\x01binary\xff").decode()
# (options, request headers, metadata expected (all of it, in order))
RULES_TABLE = [
    # edge: nothing but the allow-list
    (EDGE_RULES, {"x-tenant": "t", "grpc-metadata-x-a": "1", "user-agent": "ua"}, []),
    (EDGE_RULES.replace(forward_headers=["x-tenant"]), {"x-tenant": "t", "user-agent": "ua"}, [("x-tenant", "t")]),
    (EDGE_RULES.replace(forward_headers=["x-tenant", "x-user-id"]), {"x-user-id": "mallory", "x-tenant": "t"},
     [("x-tenant", "t")]),
    (EDGE_RULES.replace(forward_headers=["x-trace-bin"]), {"x-trace-bin": B64}, [("x-trace-bin", b"\x00\x01binary\xff")]),
    (EDGE_RULES.replace(forward_headers=["x-trace-bin"]), {"x-trace-bin": B64.rstrip("=")},
     [("x-trace-bin", b"\x00\x01binary\xff")]),  # unpadded, as grpc-gateway accepts
    (EDGE_RULES.replace(forward_headers=["x-forwarded-for"]), {"x-forwarded-for": "6.6.6.6"},
     [("x-forwarded-for", "127.0.0.1")]),  # built, never copied
    (EDGE_RULES.replace(forward_headers=["x-forwarded-host"]), {"host": "api.example", "x-forwarded-host": "evil"},
     [("x-forwarded-host", "api.example")]),
    (EDGE_RULES.replace(forward_headers=["x-forwarded-proto"]), {"x-forwarded-proto": "https"}, []),
    (EDGE_RULES.replace(forward_headers=["idempotency-key", "x-request-id"]), {"idempotency-key": "k", "x-request-id": "r"},
     []),
    # grpc-gateway: Grpc-Metadata-<name> -> <name>
    (GG_RULES, {"grpc-metadata-x-tenant": "acme"}, [("x-tenant", "acme")]),
    (GG_RULES, {"grpc-metadata-tenant": "acme", "grpc-metadata-Region": "eu"}, [("tenant", "acme"), ("region", "eu")]),
    (GG_RULES, {"grpc-metadata-": "empty name"}, []),
    (GG_RULES, {"grpc-metadata-x-trace-bin": B64}, [("x-trace-bin", b"\x00\x01binary\xff")]),
    (GG_RULES, {"grpc-metadata-x-a": "1", "x-a": "2"}, [("x-a", "1")]),
    (GG_RULES, {"grpc-metadata-x b": "1", "grpc-metadata-x!b": "1"}, []),  # no valid metadata key: skipped
    # ... permanent headers -> grpcgateway-<name>
    (GG_RULES, {"accept": "*/*", "user-agent": "curl/8", "accept-language": "de", "origin": "https://a",
                "referer": "https://a/b", "content-type": "application/json", "if-none-match": "\"e\""},
     [("grpcgateway-accept", "*/*"), ("grpcgateway-user-agent", "curl/8"), ("grpcgateway-accept-language", "de"),
      ("grpcgateway-origin", "https://a"), ("grpcgateway-referer", "https://a/b"),
      ("grpcgateway-content-type", "application/json"), ("grpcgateway-if-none-match", "\"e\"")]),
    (GG_RULES, {"cache-control": "no-cache", "pragma": "no-cache", "date": "x", "from": "a@b", "via": "1.1 p",
                "warning": "w", "max-forwards": "3", "expect": "100-continue", "accept-charset": "utf-8",
                "accept-ranges": "bytes", "if-match": "*", "if-modified-since": "d", "if-unmodified-since": "d",
                "if-schedule-tag-match": "t"},
     [("grpcgateway-" + k, v) for k, v in {"cache-control": "no-cache", "pragma": "no-cache", "date": "x",
      "from": "a@b", "via": "1.1 p", "warning": "w", "max-forwards": "3", "expect": "100-continue",
      "accept-charset": "utf-8", "accept-ranges": "bytes", "if-match": "*", "if-modified-since": "d",
      "if-unmodified-since": "d", "if-schedule-tag-match": "t"}.items()]),
    (GG_RULES, {"x-tenant": "t", "accept-encoding": "gzip", "connection": "close", "content-length": "0"}, []),
    # ... never credentials, identity, the gateway's own names, grpc-* or forwarding headers
    (GG_RULES, {"authorization": "Bearer t", "cookie": "s=1", "proxy-authorization": "Basic x"}, []),
    (GG_RULES, {"grpc-metadata-authorization": "Bearer forged", "grpc-metadata-cookie": "s=1",
                "grpc-metadata-x-api-key": "k", "grpc-metadata-idempotency-key": "k"}, []),
    (GG_RULES, {"grpc-metadata-x-user-id": "admin", "grpc-metadata-x-auth-scopes": "all",
                "grpc-metadata-x-auth-issuer": "me"}, []),
    (GG_RULES, {"grpc-metadata-x-request-id": "r", "grpc-metadata-traceparent": "t", "grpc-metadata-tracestate": "s"},
     []),
    (GG_RULES, {"grpc-metadata-grpc-timeout": "1S", "grpc-metadata-grpc-status": "0"}, []),
    (GG_RULES, {"grpc-metadata-x-forwarded-for": "1.2.3.4", "grpc-metadata-x-forwarded-host": "h"}, []),
    (GG_RULES, {"grpc-metadata-connection": "close", "grpc-metadata-te": "trailers", "grpc-metadata-host": "h",
                "grpc-metadata-content-type": "x"}, []),
    # ... x-forwarded-host: the Host, or a trusted proxy's X-Forwarded-Host; x-forwarded-for: built
    (GG_RULES, {"host": "api.example"}, [("x-forwarded-for", "127.0.0.1"), ("x-forwarded-host", "api.example")]),
    (GG_RULES, {"host": "api.example", "x-forwarded-host": "evil.example", "x-forwarded-for": "6.6.6.6"},
     [("x-forwarded-for", "127.0.0.1"), ("x-forwarded-host", "api.example")]),
    # envoy: every end-to-end header by its own name
    (ENVOY_RULES, {"x-tenant": "t", "accept-language": "de", "user-agent": "ua", "accept": "*/*"},
     [("x-tenant", "t"), ("accept-language", "de"), ("user-agent", "ua"), ("accept", "*/*")]),
    (ENVOY_RULES, {"x-trace-bin": B64}, [("x-trace-bin", b"\x00\x01binary\xff")]),
    (ENVOY_RULES, {"connection": "close", "keep-alive": "5", "te": "trailers", "transfer-encoding": "chunked",
                   "upgrade": "h2c", "trailer": "x", "proxy-connection": "x", "host": "h", "content-length": "1",
                   "content-type": "application/json", "content-encoding": "gzip", "accept-encoding": "gzip",
                   "expect": "100-continue", "http2-settings": "x"}, []),
    (ENVOY_RULES, {"authorization": "Bearer t", "cookie": "s=1", "proxy-authorization": "x", "x-api-key": "k",
                   "idempotency-key": "k"}, []),
    (ENVOY_RULES, {"x-user-id": "admin", "x-request-id": "r", "traceparent": "t", "tracestate": "s"}, []),
    (ENVOY_RULES, {"grpc-timeout": "1S", "grpc-metadata-x-a": "1", "x-request-timeout": "2s"}, []),
    (ENVOY_RULES, {"x-forwarded-for": "6.6.6.6", "x-forwarded-proto": "https", "x-forwarded-host": "h",
                   "forwarded": "for=1.2.3.4", "x-real-ip": "1.2.3.4"}, [("x-forwarded-for", "127.0.0.1")]),
    (ENVOY_RULES.replace(forward_headers=["x-tenant"]), {"x-tenant": "t"}, [("x-tenant", "t")]),  # once, not twice
]


@pytest.mark.parametrize("options,headers,expected", RULES_TABLE)
def test_header_rules_map_request_headers(options, headers, expected) -> None:
    headers = {k.lower(): v for k, v in headers.items()}
    got = [kv for kv in _metadata(_rules(options), headers) if kv[0] != "x-forwarded-for" or
           any(e[0] == "x-forwarded-for" for e in expected)]
    assert got == expected


@pytest.mark.parametrize("options", [GG_RULES, ENVOY_RULES])
def test_trusted_proxies_pass_what_they_say(options) -> None:
    rules = _rules(options, trusted_proxies=[ip_network("127.0.0.0/8")])
    headers = {"host": "internal:8080", "x-forwarded-for": "1.1.1.1, 6.6.6.6", "x-forwarded-host": "api.example",
               "x-forwarded-proto": "https"}
    got = dict(_metadata(rules, headers))
    assert got["x-forwarded-for"] == "6.6.6.6, 127.0.0.1"
    if options is GG_RULES:
        assert got["x-forwarded-host"] == "api.example" and "x-forwarded-proto" not in got
    else:  # Envoy passes every header: forwarding ones only from a trusted proxy
        assert got["x-forwarded-host"] == "api.example" and got["x-forwarded-proto"] == "https"


BAD_VALUES = ["caf\u00e9", "line\nbreak", "tab\there", "\x00", "\x7f"]


@pytest.mark.parametrize("value", BAD_VALUES)
@pytest.mark.parametrize("options,header", [
    (GG_RULES, "grpc-metadata-x-a"), (GG_RULES, "user-agent"), (ENVOY_RULES, "x-tenant"),
    (EDGE_RULES.replace(forward_headers=["x-tenant"]), "x-tenant"),
])
def test_values_grpc_cannot_carry_are_a_400(options, header, value) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        _metadata(_rules(options), {header: value})
    assert caught.value.field == header


@pytest.mark.parametrize("value", ["not base64!", "YWJj$", "a", "====", "YW=Jj"])
@pytest.mark.parametrize("options,header", [
    (GG_RULES, "grpc-metadata-x-trace-bin"), (ENVOY_RULES, "x-trace-bin"),
    (EDGE_RULES.replace(forward_headers=["x-trace-bin"]), "x-trace-bin"),
])
def test_bad_base64_in_a_bin_header_is_a_400(options, header, value) -> None:
    with pytest.raises(errors.BadRequest, match="base64"):
        _metadata(_rules(options), {header: value})


def test_the_allow_list_path_does_nothing_more() -> None:
    """The default rules cost what they always did: a loop over the listed names."""
    rules = _rules(EDGE_RULES.replace(forward_headers=["x-a", "x-b"]))
    assert rules.names == ("x-a", "x-b") and not rules.needs_more
    assert _rules(EDGE_RULES).names == () and not _rules(EDGE_RULES).needs_more


# ---- backend metadata -> response headers ------------------------------------------------------
INITIAL = (("x-mark", "m"), ("x-blob-bin", b"\x00\xff"))
TRAILING = (("x-end", "e"), ("grpc-status-details-bin", b"\x01"))
# (rules, initial, trailing, headers)
REPLY_TABLE = [
    (HeaderRules.ALLOW_LIST, INITIAL, (), [(b"grpc-metadata-x-mark", b"m"), (b"grpc-metadata-x-blob-bin", b"AP8=")]),
    (HeaderRules.GRPC_GATEWAY, INITIAL, TRAILING[:1],
     [(b"grpc-metadata-x-mark", b"m"), (b"grpc-metadata-x-blob-bin", b"AP8="), (b"grpc-trailer-x-end", b"e")]),
    (HeaderRules.GRPC_GATEWAY, (), TRAILING[:1], [(b"grpc-trailer-x-end", b"e")]),
    (HeaderRules.ENVOY, INITIAL, TRAILING, [(b"x-mark", b"m"), (b"x-blob-bin", b"AP8="), (b"x-end", b"e")]),
    (HeaderRules.ENVOY, (("content-type", "x"), ("connection", "close"), ("transfer-encoding", "x"),
                         ("content-length", "9"), ("x-request-id", "backend's"), ("grpc-encoding", "gzip"),
                         ("set-cookie", "a=b")), (),
     [(b"set-cookie", b"a=b")]),
]


@pytest.mark.parametrize("mode,initial,trailing,expected", REPLY_TABLE)
def test_backend_metadata_as_response_headers(mode, initial, trailing, expected) -> None:
    assert response_headers(mode, initial, trailing) == expected
