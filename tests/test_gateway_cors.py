"""CORS through the real gateway: a real demo backend, real tokens from a local IdP,
real rate limits, idempotency and access log, plain HTTP requests as a browser sends
them (Origin, preflight OPTIONS). What the backend counted and what the limiter
answered show that a preflight costs neither."""
from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.support.auth import bearer, issuer_config, mint
from tests.support.gateway import gateway_config, running_gateway
from tests.support.waiting import wait_for

APP = "https://app.example.com"
DEV = "http://localhost:3000"
LIBRARY = "edgedemo.library.v1.LibraryService"
EXPOSED_ALWAYS = {"x-request-id", "ratelimit", "ratelimit-policy", "retry-after", "www-authenticate",
                  "idempotent-replayed", "idempotent-replay-body-omitted"}


def _cors_config(demo_backend, idp, tmp_path, **extra):
    sections = dict(
        transcoding={"forward_headers": ["x-demo-delay-ms"], "response_metadata": True},
        auth={
            "issuers": [issuer_config(idp)],
            "policies": [
                {"match": f"{LIBRARY}/*", "scopes_all_of": ["library.read"]},
                {"match": f"{LIBRARY}/CreateBook", "scopes_all_of": ["library.write"]},
                {"match": "edgedemo.users.v1.UserService/GetUser", "auth": "none"},
            ],
        },
        rate_limits={"policies": [{"name": "shelf", "limit": 3, "window": "1m", "key": "ip",
                                   "match": [f"{LIBRARY}/GetShelf"]}]},
        idempotency={},
        access_log={"destination": str(tmp_path / "access.log")},
        cors={
            "allow_origins": [APP, "https://*.example.com", DEV],
            "allow_credentials": True,
            "max_age": "5m",
            "routes": [
                # A public route: any origin, answered "*", so no credentials.
                {"match": "edgedemo.users.v1.UserService/GetUser", "allow_origins": ["*"], "allow_credentials": False},
                # No browser may delete a shelf.
                {"match": "DELETE /v1/{name=shelves/*}", "allow_origins": []},
                # Books are edited from one origin only, and only with the headers named here.
                {"match": f"{LIBRARY}/UpdateBook", "allow_origins": [DEV], "allow_methods": ["PATCH"],
                 "allow_headers": ["authorization", "x-client-version"]},
            ],
        },
    )
    sections.update(extra)
    return gateway_config([{"name": "demo", "target": demo_backend.target}], **sections)


@pytest.fixture
def gateway(demo_backend, idp, tmp_path):
    with running_gateway(_cors_config(demo_backend, idp, tmp_path)) as gw, \
            httpx.Client(base_url=gw.url, timeout=10) as client:
        yield client


@pytest.fixture
def token(auth_keys) -> dict[str, str]:
    return bearer(mint(auth_keys.rsa, scope="library.read library.write"))


def preflight(client: httpx.Client, path: str, method: str, origin: str = APP, headers: str | None = None,
              ) -> httpx.Response:
    asked = {"origin": origin, "access-control-request-method": method}
    if headers is not None:
        asked["access-control-request-headers"] = headers
    return client.options(path, headers=asked)


def cors_headers(r: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in r.headers.items() if k.startswith("access-control-")}


def vary(r: httpx.Response) -> set[str]:
    return {v.strip().lower() for v in r.headers.get("vary", "").split(",") if v.strip()}


def exposed(r: httpx.Response) -> set[str]:
    return {v.strip() for v in r.headers.get("access-control-expose-headers", "").split(",") if v.strip()}


def log_lines(tmp_path) -> list[dict]:
    target = tmp_path / "access.log"
    return [json.loads(line) for line in target.read_text().splitlines()] if target.exists() else []


# ---- actual requests ---------------------------------------------------------------


def test_allowed_origin_gets_its_origin_credentials_and_exposed_headers(gateway, token, demo_backend):
    r = gateway.get("/v1/shelves", headers={**token, "origin": APP})
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == APP  # the origin itself, never "*" with credentials
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "origin" in vary(r)
    names = exposed(r)
    assert EXPOSED_ALWAYS <= names
    # Backend metadata names are known only per response: the ones this response has are listed.
    assert {"grpc-metadata-x-demo-server", "grpc-metadata-x-demo-call"} <= names
    assert r.headers["grpc-metadata-x-demo-server"] == "edgedemo"
    # Preflight-only headers never appear on an actual response.
    assert "access-control-allow-methods" not in r.headers and "access-control-max-age" not in r.headers
    assert demo_backend.recorder.calls["ListShelves"] == 1


@pytest.mark.parametrize(("origin", "allowed"), [
    (APP, True),
    (DEV, True),
    ("https://x.example.com", True),
    ("https://a.b.example.com", True),
    ("https://example.com", False),
    ("https://evil.com/.example.com", False),
    ("https://x.example.com.evil.com", False),
    ("https://app.example.com.evil.com", False),
    ("http://app.example.com", False),
    ("https://app.example.com:8443", False),
    ("http://localhost:3001", False),
    ("https://localhost:3000", False),
    ("null", False),
    ("https://evil.com", False),
    (f"{APP}, https://evil.com", False),
])
def test_origin_matrix_through_the_gateway(gateway, token, origin, allowed):
    r = gateway.get("/v1/shelves", headers={**token, "origin": origin})
    assert r.status_code == 200  # CORS decides what a browser may read, not what the server answers
    assert "origin" in vary(r)  # the answer depends on Origin either way: caches must key on it
    if allowed:
        assert r.headers["access-control-allow-origin"] == origin
        assert r.headers["access-control-allow-credentials"] == "true"
    else:
        assert cors_headers(r) == {}  # nothing, not even a reflected or a "*" origin
    p = preflight(gateway, "/v1/shelves", "GET", origin=origin, headers="authorization")
    assert p.status_code == (204 if allowed else 403)
    if allowed:
        assert p.headers["access-control-allow-origin"] == origin
    else:
        assert cors_headers(p) == {}


def test_no_origin_still_varies_on_origin(gateway, token):
    r = gateway.get("/v1/shelves", headers=token)
    assert r.status_code == 200
    assert cors_headers(r) == {}
    assert "origin" in vary(r)


def test_public_route_answers_star_without_credentials(gateway):
    r = gateway.get("/v1/users/ada", headers={"origin": "https://anyone.example.net"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers
    p = preflight(gateway, "/v1/users/ada", "GET", origin="https://anyone.example.net", headers="x-request-id")
    assert p.status_code == 204
    assert p.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in p.headers


def test_errors_carry_cors_headers(gateway, token, auth_keys, demo_backend):
    """401, 403, 404, 405, 400 and 429 are readable by the page: it can tell them apart."""
    def check(r: httpx.Response, status: int) -> None:
        assert r.status_code == status, r.text
        assert r.headers["access-control-allow-origin"] == APP
        assert r.headers["access-control-allow-credentials"] == "true"
        assert EXPOSED_ALWAYS <= exposed(r)
        assert "code" in r.json()

    unauthenticated = gateway.get("/v1/shelves/scifi", headers={"origin": APP})
    check(unauthenticated, 401)
    assert unauthenticated.headers["www-authenticate"].startswith("Bearer")
    reader = bearer(mint(auth_keys.rsa, scope="library.read"))
    check(gateway.post("/v1/shelves/scifi/books", json={"title": "x"}, headers={**reader, "origin": APP}), 403)
    check(gateway.get("/v1/nothing/here", headers={**token, "origin": APP}), 404)
    not_allowed = gateway.put("/v1/shelves", headers={**token, "origin": APP})
    check(not_allowed, 405)
    assert "allow" in not_allowed.headers
    check(gateway.get("/v1/shelves", params={"pageSize": "many"}, headers={**token, "origin": APP}), 400)
    # The rate-limit answer: 429 with Retry-After the page may read.
    statuses = [gateway.get("/v1/shelves/scifi", headers={**token, "origin": APP}).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = gateway.get("/v1/shelves/scifi", headers={**token, "origin": APP})
    check(limited, 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert demo_backend.recorder.calls["GetShelf"] == 3
    # A disallowed origin's error gets none.
    denied = gateway.get("/v1/shelves/scifi", headers={"origin": "https://evil.com"})
    assert denied.status_code == 401 and cors_headers(denied) == {}


def test_replayed_response_exposes_its_marker(gateway, token, demo_backend):
    key = {"idempotency-key": "k-" + uuid.uuid4().hex, "origin": APP, **token}
    first = gateway.post("/v1/shelves/scifi/books", json={"title": "Once"}, headers=key)
    again = gateway.post("/v1/shelves/scifi/books", json={"title": "Once"}, headers=key)
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" in exposed(again)
    assert again.headers["access-control-allow-origin"] == APP
    # The stored metadata headers come back with the replay, and are exposed by name.
    assert "grpc-metadata-x-demo-call" in exposed(again)
    assert demo_backend.recorder.calls["CreateBook"] == 1


def test_stream_carries_cors_headers(gateway, token):
    with gateway.stream("GET", "/v1/shelves/scifi/books:stream", headers={**token, "origin": DEV}) as r:
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == DEV
        assert "grpc-metadata-x-demo-server" in exposed(r)
        lines = [line for line in r.iter_lines() if line]
    assert lines and all("title" in json.loads(line) for line in lines)


def test_batch_and_openapi_work_from_a_browser(gateway, token, demo_backend):
    p = preflight(gateway, "/v1/batch", "POST", headers="authorization,content-type")
    assert p.status_code == 204
    assert p.headers["access-control-allow-origin"] == APP
    body = {"requests": [{"id": "a", "url": "/v1/shelves/scifi"}, {"id": "b", "url": "/v1/users/ada"}]}
    r = gateway.post("/v1/batch", json=body, headers={**token, "origin": APP})
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == APP
    assert [item["status"] for item in r.json()["responses"]] == [200, 200]
    doc = gateway.get("/openapi.json", headers={"origin": "https://docs.example.com"})
    assert doc.status_code == 200 and doc.json()["openapi"].startswith("3.")
    assert doc.headers["access-control-allow-origin"] == "https://docs.example.com"
    assert "origin" in vary(doc)


# ---- preflights ------------------------------------------------------------------


def test_preflight_is_answered_at_the_edge(gateway, token, demo_backend, tmp_path):
    """No token, no rate-limit charge, no backend call, one access-log line each."""
    for _ in range(5):  # more than the route's limit of 3
        p = preflight(gateway, "/v1/shelves/scifi", "GET", headers="authorization, x-request-id")
        assert p.status_code == 204, p.text
        assert p.content == b""
    assert p.headers["access-control-allow-origin"] == APP
    assert p.headers["access-control-allow-credentials"] == "true"
    assert set(p.headers["access-control-allow-methods"].split(", ")) == {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
    assert p.headers["access-control-allow-headers"] == "authorization, x-request-id"
    assert p.headers["access-control-max-age"] == "300"
    assert {"origin", "access-control-request-method", "access-control-request-headers"} <= vary(p)
    assert p.headers["x-request-id"]
    assert "www-authenticate" not in p.headers and "ratelimit" not in p.headers
    assert demo_backend.recorder.calls["GetShelf"] == 0
    # The limiter was not charged: the first real call still has its whole budget but one.
    r = gateway.get("/v1/shelves/scifi", headers={**token, "origin": APP})
    assert r.status_code == 200
    assert r.headers["ratelimit"].startswith('"shelf";r=2;')
    assert demo_backend.recorder.calls["GetShelf"] == 1

    def preflight_lines() -> list[dict]:
        return [line for line in log_lines(tmp_path) if line["http_method"] == "OPTIONS"]

    assert wait_for(lambda: len(preflight_lines()) == 5 and any(
        line["http_method"] == "GET" for line in log_lines(tmp_path)))
    lines = preflight_lines()
    assert len(lines) == 5
    for line in lines:
        assert line["http_status"] == 204 and line["path"] == "/v1/shelves/scifi"
        assert line["route"] == "/v1/{name=shelves/*}" and line["grpc_method"] is None
        assert line.get("auth") is None and line.get("ratelimit") is None and line["backend_ms"] is None


def test_preflight_refusals(gateway, demo_backend):
    def refused(r: httpx.Response, reason: str, *words: str) -> None:
        assert r.status_code == 403, r.text
        assert cors_headers(r) == {}
        assert "origin" in vary(r)
        body = r.json()
        assert body["code"] == 7
        assert body["details"][0]["reason"] == reason
        for word in words:
            assert word in body["message"]

    refused(preflight(gateway, "/v1/shelves", "GET", origin="https://evil.com"), "CORS_ORIGIN_NOT_ALLOWED", "evil.com")
    refused(preflight(gateway, "/v1/shelves", "GET", origin="null"), "CORS_ORIGIN_NOT_ALLOWED")
    refused(preflight(gateway, "/v1/shelves", "GET", headers="authorization, x-evil, x-worse"),
            "CORS_HEADERS_NOT_ALLOWED", "x-evil", "x-worse")
    refused(preflight(gateway, "/v1/shelves", "GET", headers="bad header"), "CORS_HEADERS_NOT_ALLOWED")
    # A route with CORS off: no origin may ask.
    refused(preflight(gateway, "/v1/shelves/scifi", "DELETE"), "CORS_ORIGIN_NOT_ALLOWED")
    # UpdateBook: one origin, one method, its own header list.
    path = "/v1/shelves/scifi/books/dune"
    refused(preflight(gateway, path, "PATCH", origin=APP), "CORS_ORIGIN_NOT_ALLOWED")
    refused(preflight(gateway, path, "PATCH", origin=DEV, headers="authorization, x-request-id"),
            "CORS_HEADERS_NOT_ALLOWED", "x-request-id")
    ok = preflight(gateway, path, "PATCH", origin=DEV, headers="authorization,x-client-version,content-type")
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-methods"] == "PATCH"
    assert ok.headers["access-control-allow-headers"] == "authorization, x-client-version, content-type"
    assert sum(demo_backend.recorder.calls.values()) == 0


def test_preflight_method_refused(demo_backend, idp, tmp_path):
    """A method the policy does not list is refused even where a route serves it."""
    config = _cors_config(demo_backend, idp, tmp_path, cors={"allow_origins": [APP], "allow_methods": ["GET", "POST"]})
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        r = preflight(client, "/v1/shelves/scifi", "DELETE")
        assert r.status_code == 403
        assert r.json()["details"][0]["reason"] == "CORS_METHOD_NOT_ALLOWED"
        assert cors_headers(r) == {}
        ok = preflight(client, "/v1/shelves", "POST", headers="content-type, authorization")
        assert ok.status_code == 204 and ok.headers["access-control-allow-methods"] == "GET, POST"
        bad = preflight(client, "/v1/shelves", "GE T")
        assert bad.status_code == 403 and bad.json()["details"][0]["reason"] == "CORS_METHOD_NOT_ALLOWED"
    assert sum(demo_backend.recorder.calls.values()) == 0


def test_preflight_for_a_path_without_route_uses_the_global_policy(gateway, token):
    """So the real request goes on to a 404 the page can read, not an opaque CORS failure."""
    p = preflight(gateway, "/v1/no/such/route", "POST", headers="authorization, content-type")
    assert p.status_code == 204
    assert p.headers["access-control-allow-origin"] == APP
    r = gateway.post("/v1/no/such/route", json={}, headers={**token, "origin": APP})
    assert r.status_code == 404
    assert r.headers["access-control-allow-origin"] == APP
    # A path that exists, asked for with a method it does not serve: the same.
    assert preflight(gateway, "/v1/shelves", "PUT").status_code == 204
    assert preflight(gateway, "/v1/no/such/route", "POST", origin="https://evil.com").status_code == 403


def test_a_route_without_cors_gets_only_vary(gateway, token, demo_backend):
    r = gateway.delete("/v1/shelves/scifi", params={"force": "true"}, headers={**token, "origin": APP})
    assert r.status_code == 200, r.text
    assert cors_headers(r) == {} and "origin" in vary(r)
    assert demo_backend.recorder.calls["DeleteShelf"] == 1


def test_options_without_preflight_headers_is_an_ordinary_request(gateway, token):
    """OPTIONS without Access-Control-Request-Method is not a preflight: it goes the normal way."""
    r = gateway.options("/v1/shelves", headers={**token, "origin": APP})
    assert r.status_code == 405
    assert r.headers["access-control-allow-origin"] == APP


def test_shed_answer_carries_cors_headers(demo_backend, idp, tmp_path, token):
    """Past max_inflight the gateway answers 503 before routing: a page can still read it."""
    import concurrent.futures

    config = _cors_config(demo_backend, idp, tmp_path, overload={"max_inflight": 1, "retry_after": 2})
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            slow = pool.submit(client.get, "/v1/shelves", headers={**token, "x-demo-delay-ms": "1500"})
            assert demo_backend.recorder.wait_for("ListShelves")
            shed = client.get("/v1/users/ada", headers={"origin": APP})
            assert slow.result().status_code == 200
    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "2"
    assert shed.headers["access-control-allow-origin"] == APP
    assert "retry-after" in exposed(shed)


def test_cors_off_adds_nothing(demo_backend, idp, tmp_path, token):
    config = _cors_config(demo_backend, idp, tmp_path, cors=None)
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        r = client.get("/v1/shelves", headers={**token, "origin": APP})
        assert r.status_code == 200 and cors_headers(r) == {} and "origin" not in vary(r)
        p = preflight(client, "/v1/shelves", "GET")
        assert p.status_code == 405 and cors_headers(p) == {}


def test_cors_over_h2c(demo_backend, idp, tmp_path, token):
    """The same answers over HTTP/2 (h2c by prior knowledge): preflight, actual, refusal."""
    with running_gateway(_cors_config(demo_backend, idp, tmp_path)) as gw, \
            httpx.Client(base_url=gw.url, http1=False, http2=True, timeout=10) as client:
        p = preflight(client, "/v1/shelves", "GET", headers="authorization")
        assert p.http_version == "HTTP/2" and p.status_code == 204
        assert p.headers["access-control-allow-origin"] == APP and p.headers["access-control-allow-headers"] == "authorization"
        r = client.get("/v1/shelves", headers={**token, "origin": APP})
        assert r.http_version == "HTTP/2" and r.status_code == 200
        assert r.headers["access-control-allow-origin"] == APP and "grpc-metadata-x-demo-call" in exposed(r)
        denied = preflight(client, "/v1/shelves", "GET", origin="https://evil.com")
        assert denied.status_code == 403 and cors_headers(denied) == {}
    assert demo_backend.recorder.calls["ListShelves"] == 1
