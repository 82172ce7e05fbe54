"""Hostile headers about who the caller is: spoofed identity and forwarding headers,
duplicated credentials, and the JWT attack list rerun through the batch endpoint.

Real gateway, real demo backend (its recorder shows what identity metadata arrived),
real local IdP serving a JWKS, real tokens and forged ones.
"""
from __future__ import annotations

import hashlib
import re
import time

import httpx
import pytest

from tests.support.auth import b64json, b64url, bearer, claims_for, forge, hmac_forge, issuer_config, mint
from tests.support.gateway import gateway_config, running_gateway

LIB = "edgedemo.library.v1.LibraryService"
BATCH = "/v1/batch"


# ---- forwarding headers -------------------------------------------------------------------


def _per_ip_gateway(demo_backend, **rate_limits):
    return gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        rate_limits={"policies": [{"name": "per-ip", "limit": 3, "window": "1m", "key": "ip", "match": ["GET /v1/*"]}],
                     **rate_limits},
        access_log={"enabled": False},
    )


def test_spoofed_x_forwarded_for_does_not_buy_a_fresh_budget(demo_backend):
    """With no trusted proxies configured the peer address is the client, whatever
    X-Forwarded-For (or Forwarded, X-Real-IP) claims: a client rotating fake addresses
    shares one budget."""
    with running_gateway(_per_ip_gateway(demo_backend)) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        statuses = []
        for i in range(6):
            spoof = {"x-forwarded-for": f"198.51.100.{i}", "x-real-ip": f"203.0.113.{i}",
                     "forwarded": f"for=192.0.2.{i}", "x-forwarded-proto": "https"}
            statuses.append(c.get("/v1/shelves/scifi", headers=spoof).status_code)
    assert statuses == [200, 200, 200, 429, 429, 429]
    assert demo_backend.recorder.calls["GetShelf"] == 3


def test_x_forwarded_for_believed_only_from_a_trusted_proxy(demo_backend):
    """Loopback as the trusted proxy: the rightmost untrusted hop is the client, so
    entries a client prepends itself change nothing."""
    config = _per_ip_gateway(demo_backend, trusted_proxies=["127.0.0.1/32"])
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        def get(xff: str) -> int:
            return c.get("/v1/shelves/scifi", headers={"x-forwarded-for": xff}).status_code

        # Client 198.51.100.7 behind our proxy, prepending random addresses each time.
        assert [get(f"10.9.9.{i}, 198.51.100.7") for i in range(4)] == [200, 200, 200, 429]
        # Another client has its own budget.
        assert get("198.51.100.8") == 200


# ---- the JWT attack list, through the batch endpoint ----------------------------------------

API_KEY = "batch-test-api-key-0123456789"


@pytest.fixture
def auth_stack(demo_backend, idp, other_server):
    config = gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        transcoding={"forward_headers": ["x-client-tag"]},
        auth={
            "issuers": [issuer_config(idp)],
            "identity_metadata": {"x-user-id": "sub", "x-auth-scopes": "scope"},
            "api_keys": [{"sha256": hashlib.sha256(API_KEY.encode()).hexdigest(), "principal": "svc-key",
                          "scopes": ["library.read"]}],
            "policies": [
                {"match": f"{LIB}/*", "auth": "required", "scopes_all_of": ["library.read"]},
                {"match": f"{LIB}/CreateShelf", "scopes_all_of": ["library.write"]},
                {"match": "edgedemo.users.v1.UserService/*", "auth": "none"},
            ],
        },
        access_log={"enabled": False},
    )
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        yield client, demo_backend, idp, other_server


ITEMS = {"requests": [{"id": "shelf", "url": "/v1/shelves/scifi"}, {"id": "user", "url": "/v1/users/ada"}]}


def _attacks(keys, idp_url: str, other_jwks: str) -> dict[str, dict[str, str]]:
    """Every refused-token case of the auth issue, as request headers."""
    from cryptography.hazmat.primitives import serialization

    now = int(time.time())
    good = mint(keys.rsa)
    h, p, s = good.split(".")
    pem = keys.rsa.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    es = mint(keys.ec, "ES256")
    eh, ep, esig = es.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    tokens = {
        "alg none": forge({"alg": "none", "typ": "JWT"}, claims_for(), ""),
        "alg None with signature": forge({"alg": "None"}, claims_for(), "c2ln"),
        "hs256 with the rsa public key": hmac_forge({"alg": "HS256", "kid": "rsa-1"}, claims_for(), pem),
        "tampered payload": f"{h}.{b64json(claims_for(sub='admin', scope='library.read library.write'))}.{s}",
        "expired": mint(keys.rsa, iat=now - 900, exp=now - 600),
        "not yet valid": mint(keys.rsa, nbf=now + 600),
        "issued in the future": mint(keys.rsa, iat=now + 600),
        "wrong issuer": mint(keys.rsa, iss="https://evil.example"),
        "wrong audience": mint(keys.rsa, aud="other-api"),
        "no audience": mint(keys.rsa, aud=None),
        "no exp": mint(keys.rsa, exp=None),
        "unknown crit header": mint(keys.rsa, header={"crit": ["exp-ext"], "exp-ext": 1}),
        "x5u header": forge({"alg": "RS256", "kid": "rsa-1", "x5u": "https://evil.example/c"}, claims_for(), s),
        "embedded jwk": forge({"alg": "RS256", "kid": "rsa-1", "jwk": {"kty": "oct", "k": "AAAA"}}, claims_for(), s),
        "x5c header": forge({"alg": "RS256", "kid": "rsa-1", "x5c": ["MIIB"]}, claims_for(), s),
        "jku to the attacker": mint(keys.rsa_next, header={"jku": other_jwks}),
        "unknown kid": mint(keys.rsa_next),
        "es256 naming the rsa key": mint(keys.ec, "ES256", header={"kid": "rsa-1"}),
        "padded signature": f"{h}.{p}.{s}==",
        "non-canonical base64": f"{eh}.{ep}.{esig[:-1]}{alphabet[alphabet.index(esig[-1]) ^ 1]}",
        "standard base64 alphabet": f"{h}.{p}.{s[:10]}+{s[11:]}",
        "two segments": f"{h}.{p}",
        "four segments": f"{h}.{p}.{s}.{s}",
        "duplicate alg member": b64url(b'{"alg":"RS256","alg":"none"}') + f".{b64json(claims_for())}.c2ln",
        "opaque token": "opaque-token-value",
        "bearer with two tokens": "a b",
    }
    attacks = {name: bearer(token) for name, token in tokens.items()}
    attacks["empty bearer"] = {"authorization": "Bearer"}
    attacks["basic scheme"] = {"authorization": "Basic dXNlcjpwdw=="}
    attacks["bearer and api key together"] = bearer(good) | {"x-api-key": API_KEY}
    attacks["wrong api key"] = {"x-api-key": "not-the-key"}
    attacks["oversized token"] = bearer(mint(keys.rsa, padding="x" * 20_000))
    return attacks


def test_jwt_attack_list_through_the_batch_endpoint(auth_stack, auth_keys):
    """Each attack on the batch's Authorization is refused for the whole batch (401; 400 for
    two credentials at once, 431 for an oversized one), no item runs, and no key URL a token
    names is fetched."""
    client, backend, idp, other = auth_stack
    attacks = _attacks(auth_keys, idp.url, other.jwks_url)
    outcomes = {}
    for name, headers in attacks.items():
        r = client.post(BATCH, json=ITEMS, headers=headers)
        outcomes[name] = r.status_code
        body = r.json()
        assert body["message"] and "responses" not in body, (name, body)
        if r.status_code == 401:
            assert r.headers["www-authenticate"].startswith("Bearer realm="), name
    assert sum(backend.recorder.calls.values()) == 0, backend.recorder.calls
    assert other.hits["/jwks"] == 0
    assert outcomes == {name: 401 for name in attacks} | {"bearer and api key together": 400, "oversized token": 431}
    # The same batch with an honest token runs both items.
    ok = client.post(BATCH, json=ITEMS, headers=bearer(mint(auth_keys.rsa)))
    assert [i["status"] for i in ok.json()["responses"]] == [200, 200]
    ok = client.post(BATCH, json=ITEMS, headers={"x-api-key": API_KEY})
    assert [i["status"] for i in ok.json()["responses"]] == [200, 200]


def test_items_cannot_carry_credentials_or_identity(auth_stack, auth_keys):
    """An item's own Authorization (even a valid token with more scopes), API key and identity
    headers are dropped: each item runs as the batch's caller, and only the gateway's
    identity metadata reaches the backend."""
    client, backend, _, _ = auth_stack
    writer = mint(auth_keys.rsa, sub="mallory", scope="library.read library.write")
    items = {"requests": [
        {"id": "create", "method": "POST", "url": "/v1/shelves", "body": {"theme": "x"},
         "headers": {"authorization": f"Bearer {writer}", "x-api-key": API_KEY, "x-user-id": "mallory"}},
        {"id": "read", "url": "/v1/shelves/scifi",
         "headers": {"x-user-id": "mallory", "x-auth-scopes": "library.admin", "x-client-tag": "t"}},
    ]}
    r = client.post(BATCH, json=items, headers=bearer(mint(auth_keys.rsa, sub="alice")))
    statuses = {i["id"]: i["status"] for i in r.json()["responses"]}
    assert statuses == {"create": 403, "read": 200}, r.text
    assert backend.recorder.calls["CreateShelf"] == 0
    seen = backend.recorder.last("GetShelf")
    assert seen.headers("x-user-id") == ["alice"]
    assert seen.headers("x-auth-scopes") == ["library.read"]
    assert seen.headers("authorization") == [] and seen.headers("x-api-key") == []
    assert seen.header("x-client-tag") == "t"  # an ordinary forwarded header still passes


def test_anonymous_batch_items_cannot_smuggle_a_token(demo_backend, idp, auth_keys):
    """With batch.auth optional an anonymous batch is let in, but an item's token is still dropped."""
    config = gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        auth={"issuers": [issuer_config(idp)], "policies": [{"match": f"{LIB}/*", "scopes_all_of": ["library.read"]}]},
        batch={"auth": "optional"},
        access_log={"enabled": False},
    )
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        token = mint(auth_keys.rsa)
        r = client.post(BATCH, json={"requests": [{"id": "a", "url": "/v1/shelves/scifi", "headers": bearer(token)}]})
        assert [i["status"] for i in r.json()["responses"]] == [401]
        assert demo_backend.recorder.calls["GetShelf"] == 0


# ---- duplicated headers ---------------------------------------------------------------------


def test_duplicated_credentials_are_refused(auth_stack, auth_keys):
    """Two Authorization headers (RFC 9110 joins them with a comma) are not one credential:
    refused, whichever of them is valid, alone and on a batch."""
    client, backend, _, _ = auth_stack
    good, forged = mint(auth_keys.rsa), forge({"alg": "none"}, claims_for(sub="admin"), "")
    for pair in ([good, forged], [forged, good], [good, good]):
        headers = [("authorization", f"Bearer {t}") for t in pair]
        assert client.get("/v1/shelves/scifi", headers=headers).status_code == 401
        assert client.post(BATCH, json=ITEMS, headers=headers).status_code == 401
    two_keys = [("x-api-key", API_KEY), ("x-api-key", "other")]
    assert client.get("/v1/shelves/scifi", headers=two_keys).status_code == 401
    assert sum(backend.recorder.calls.values()) == 0


def test_duplicated_identity_headers_are_all_dropped(auth_stack, auth_keys):
    client, backend, _, _ = auth_stack
    headers = [("authorization", f"Bearer {mint(auth_keys.rsa, sub='alice')}"),
               ("x-user-id", "mallory"), ("X-User-Id", "eve"), ("x-auth-scopes", "library.admin")]
    assert client.get("/v1/shelves/scifi", headers=headers).status_code == 200
    assert backend.recorder.last("GetShelf").headers("x-user-id") == ["alice"]
    assert client.get("/v1/users/ada", headers=headers[1:]).status_code == 200  # auth: none route
    assert backend.recorder.last("GetUser").headers("x-user-id") == []


def test_duplicated_request_id_and_trace_headers_are_not_passed_on_raw(auth_stack, auth_keys):
    client, backend, _, _ = auth_stack
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = [("authorization", f"Bearer {mint(auth_keys.rsa)}"), ("x-request-id", "one"), ("x-request-id", "two"),
               ("traceparent", tp), ("traceparent", tp.replace("b7ad", "aaaa"))]
    r = client.get("/v1/shelves/scifi", headers=headers)
    assert r.status_code == 200
    seen = backend.recorder.last("GetShelf")
    # Two ids are no id: the gateway makes a fresh one, answers with it and passes only it on.
    fresh = r.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", fresh) and seen.headers("x-request-id") == [fresh]
    # Two traceparents are no trace context: none is passed on.
    assert seen.headers("traceparent") == []
