"""Tables for one CORS policy: the headers it adds to an answer, and its preflight
verdicts. Pure (no gateway), milliseconds; the gateway tests run the same through HTTP."""
from __future__ import annotations

import orjson
import pytest

from edge.cors import CorsConfig, CorsPolicy

APP = "https://app.example.com"


def policy(**cors) -> CorsPolicy:
    config = CorsConfig.model_validate({"allow_origins": [APP, "https://*.example.com"], **cors})
    return CorsPolicy(config.effective(), ["authorization", "content-type", "x-request-id", "idempotency-key"])


def decorated(p: CorsPolicy, headers: list[tuple[str, str]], origin: str | None) -> list[tuple[str, str]]:
    raw = [(k.encode(), v.encode()) for k, v in headers]
    p.decorate(raw, origin)
    return [(k.decode(), v.decode()) for k, v in raw]


CT = ("content-type", "application/json")
OWN_EXPOSED = ("x-request-id, ratelimit, ratelimit-policy, retry-after, www-authenticate, idempotent-replayed, "
               "idempotent-replay-body-omitted")

# (policy keys, response headers, Origin, headers after)
DECORATE = [
    ({}, [CT], None, [CT, ("vary", "Origin")]),
    ({}, [CT], "https://evil.com", [CT, ("vary", "Origin")]),
    ({}, [CT], APP, [CT, ("vary", "Origin"), ("access-control-allow-origin", APP),
                     ("access-control-expose-headers", OWN_EXPOSED)]),
    ({"allow_credentials": True}, [CT], "https://a.example.com",
     [CT, ("vary", "Origin"), ("access-control-allow-origin", "https://a.example.com"),
      ("access-control-allow-credentials", "true"), ("access-control-expose-headers", OWN_EXPOSED)]),
    # Vary from compression is merged, once; "*" and an existing Origin are left alone.
    ({"expose_headers": []}, [CT, ("vary", "Accept-Encoding")], APP,
     [CT, ("vary", "Accept-Encoding, Origin"), ("access-control-allow-origin", APP)]),
    ({"expose_headers": []}, [("vary", "*")], None, [("vary", "*")]),
    ({"expose_headers": []}, [("vary", "accept-encoding, origin")], None, [("vary", "accept-encoding, origin")]),
    ({"expose_headers": []}, [("vary", "X-Origin-Hint")], None, [("vary", "X-Origin-Hint, Origin")]),
    # Backend metadata names are exposed as this response has them, each once.
    ({"expose_headers": ["x-request-id", "grpc-metadata-*"]},
     [CT, ("grpc-metadata-trace", "1"), ("grpc-metadata-shard", "b"), ("grpc-metadata-trace", "2")], APP,
     [CT, ("grpc-metadata-trace", "1"), ("grpc-metadata-shard", "b"), ("grpc-metadata-trace", "2"), ("vary", "Origin"),
      ("access-control-allow-origin", APP),
      ("access-control-expose-headers", "x-request-id, grpc-metadata-trace, grpc-metadata-shard")]),
    ({"expose_headers": ["grpc-metadata-*"]}, [CT], APP, [CT, ("vary", "Origin"), ("access-control-allow-origin", APP)]),
    # Anyone else's CORS headers (backend metadata under their own names) are dropped, allowed origin or not.
    ({"expose_headers": []}, [("access-control-allow-origin", "*"), CT, ("Access-Control-Allow-Credentials", "true")],
     "https://evil.com", [CT, ("vary", "Origin")]),
    ({"expose_headers": []}, [("access-control-allow-origin", "*"), ("vary", "Accept-Encoding")], APP,
     [("vary", "Accept-Encoding, Origin"), ("access-control-allow-origin", APP)]),
    # '*' is answered as '*', never as the request's Origin.
    ({"allow_origins": ["*"], "expose_headers": []}, [CT], "https://evil.com",
     [CT, ("vary", "Origin"), ("access-control-allow-origin", "*")]),
    ({"allow_origins": [], "expose_headers": []}, [CT], APP, [CT, ("vary", "Origin")]),
]


@pytest.mark.parametrize(("keys", "headers", "origin", "after"), DECORATE)
def test_decorate(keys, headers, origin, after):
    # ASGI header names are lower case; the table writes one in mixed case to show it is not special.
    headers = [(k.lower(), v) for k, v in headers]
    assert decorated(policy(**keys), headers, origin) == after


# (policy keys, Origin, method, requested headers, status, reason or answer headers)
PREFLIGHT = [
    ({}, APP, "GET", None, 204, {"access-control-allow-origin": APP,
                                 "access-control-allow-methods": "GET, HEAD, POST, PUT, PATCH, DELETE",
                                 "access-control-max-age": "600"}),
    ({}, APP, "POST", "Content-Type,Authorization, IDEMPOTENCY-KEY", 204,
     {"access-control-allow-headers": "content-type, authorization, idempotency-key"}),
    ({}, APP, "POST", " , accept ,,", 204, {"access-control-allow-headers": "accept"}),
    ({}, APP, "POST", "accept-language, content-language", 204, {}),
    ({"allow_credentials": True, "max_age": "2h"}, "https://x.example.com", "DELETE", None, 204,
     {"access-control-allow-origin": "https://x.example.com", "access-control-allow-credentials": "true",
      "access-control-max-age": "7200"}),
    ({"allow_origins": ["*"]}, "https://evil.com", "GET", None, 204, {"access-control-allow-origin": "*"}),
    ({"allow_origins": ["*"], "allow_methods": ["*"]}, "null", "PROPFIND", None, 204,
     {"access-control-allow-methods": "PROPFIND"}),
    ({"allow_headers": ["*"]}, APP, "GET", "x-anything, x-else", 204,
     {"access-control-allow-headers": "x-anything, x-else"}),
    # Fetch: '*' does not cover Authorization; it must be named.
    ({"allow_headers": ["*"]}, APP, "GET", "x-anything, authorization", 403, "CORS_HEADERS_NOT_ALLOWED"),
    ({"allow_headers": ["*", "authorization"]}, APP, "GET", "authorization", 204, {}),
    ({}, "https://evil.com", "GET", None, 403, "CORS_ORIGIN_NOT_ALLOWED"),
    ({}, "null", "GET", None, 403, "CORS_ORIGIN_NOT_ALLOWED"),
    ({"allow_origins": ["null"]}, "null", "GET", None, 204, {"access-control-allow-origin": "null"}),
    ({}, APP, "TRACE", None, 403, "CORS_METHOD_NOT_ALLOWED"),
    ({}, APP, "get", None, 403, "CORS_METHOD_NOT_ALLOWED"),  # methods are case-sensitive; browsers upper-case GET
    ({}, APP, "GET\r\nX: y", None, 403, "CORS_METHOD_NOT_ALLOWED"),
    ({}, APP, "GET", "x-unknown", 403, "CORS_HEADERS_NOT_ALLOWED"),
    ({}, APP, "GET", "content-type, x\r\ny", 403, "CORS_HEADERS_NOT_ALLOWED"),
    ({}, APP, "GET", ",".join(f"x-h{i}" for i in range(65)), 403, "CORS_HEADERS_NOT_ALLOWED"),
    ({"allow_origins": []}, APP, "GET", None, 403, "CORS_ORIGIN_NOT_ALLOWED"),
]


@pytest.mark.parametrize(("keys", "origin", "method", "requested", "status", "expect"), PREFLIGHT)
def test_preflight(keys, origin, method, requested, status, expect):
    got_status, headers, body = policy(**keys).preflight(origin, method, requested)
    assert got_status == status
    answer = {k.decode(): v.decode() for k, v in headers}
    assert answer["vary"] == "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    if status == 204:
        assert body == b""
        assert answer == answer | expect
        if not keys.get("allow_credentials"):
            assert "access-control-allow-credentials" not in answer
        if requested is None or not requested.strip(" ,"):
            assert "access-control-allow-headers" not in answer
    else:
        assert not any(k.startswith("access-control-") for k in answer)
        assert answer["content-type"] == "application/json"
        status_body = orjson.loads(body)
        assert status_body["code"] == 7
        assert status_body["details"] == [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                           "reason": expect, "domain": "edge.gateway"}]
