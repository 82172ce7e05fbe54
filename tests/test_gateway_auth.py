"""Auth offloaded at the edge, through the real gateway: real JWKS server, real
tokens, real backend that records what identity it received."""
from __future__ import annotations

import httpx
import pytest

from tests.support.auth import bearer, issuer_config, mint
from tests.support.gateway import gateway_config, running_gateway


@pytest.fixture
def auth_gateway(demo_backend, idp):
    config = gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        transcoding={"forward_headers": ["x-user-id", "x-demo-delay-ms"]},  # an identity name: never passed from clients
        auth={
            "issuers": [issuer_config(idp)],
            "identity_metadata": {"x-user-id": "sub", "x-auth-scopes": "scope"},
            "policies": [
                {"match": "edgedemo.library.v1.LibraryService/*", "auth": "required", "scopes_all_of": ["library.read"]},
                {"match": "edgedemo.library.v1.LibraryService/CreateBook", "scopes_all_of": ["library.write"]},
                {"match": "edgedemo.users.v1.UserService/ListUsers", "auth": "optional"},
                {"match": "edgedemo.users.v1.UserService/GetUser", "auth": "none"},
            ],
        },
    )
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        yield client


def test_valid_token_reaches_backend_with_identity(auth_gateway, auth_keys, demo_backend):
    r = auth_gateway.get("/v1/shelves/scifi", headers=bearer(mint(auth_keys.rsa)))
    assert r.status_code == 200, r.text
    record = demo_backend.recorder.last("GetShelf")
    assert record.header("x-user-id") == "alice"
    assert record.header("x-auth-scopes") == "library.read"
    assert record.header("authorization") is None  # the raw token is not forwarded by default


def test_missing_and_bad_tokens_are_401_without_backend_call(auth_gateway, auth_keys, demo_backend):
    r = auth_gateway.get("/v1/shelves/scifi")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer realm=")
    assert r.json()["code"] == 16
    expired = auth_gateway.get("/v1/shelves/scifi", headers=bearer(mint(auth_keys.rsa, exp=1000, iat=900)))
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    assert "expired" in expired.headers["www-authenticate"]
    assert demo_backend.recorder.calls["GetShelf"] == 0


def test_spoofed_identity_header_is_removed(auth_gateway, auth_keys, demo_backend):
    r = auth_gateway.get("/v1/shelves/scifi", headers={**bearer(mint(auth_keys.ec, alg="ES256")), "x-user-id": "mallory"})
    assert r.status_code == 200
    assert demo_backend.recorder.last("GetShelf").headers("x-user-id") == ["alice"]
    # On a route without auth the spoofed header is dropped too.
    r = auth_gateway.get("/v1/users/ada", headers={"x-user-id": "mallory"})
    assert r.status_code == 200
    assert demo_backend.recorder.last("GetUser").header("x-user-id") is None


def test_missing_scope_is_403_naming_it(auth_gateway, auth_keys, demo_backend):
    r = auth_gateway.post("/v1/shelves/scifi/books", json={"title": "x"}, headers=bearer(mint(auth_keys.rsa)))
    assert r.status_code == 403
    challenge = r.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and "library.write" in challenge
    assert demo_backend.recorder.calls["CreateBook"] == 0
    ok = auth_gateway.post("/v1/shelves/scifi/books", json={"title": "x"},
                           headers=bearer(mint(auth_keys.rsa, scope="library.read library.write")))
    assert ok.status_code == 200


def test_optional_route_forwards_identity_when_present(auth_gateway, auth_keys, demo_backend):
    assert auth_gateway.get("/v1/users").status_code == 200
    assert demo_backend.recorder.last("ListUsers").header("x-user-id") is None
    assert auth_gateway.get("/v1/users", headers=bearer(mint(auth_keys.rsa, sub="bob"))).status_code == 200
    assert demo_backend.recorder.last("ListUsers").header("x-user-id") == "bob"
    # A bad token on an optional route is still refused, not silently ignored.
    assert auth_gateway.get("/v1/users", headers=bearer("not.a.token")).status_code == 401


def test_oversized_token_is_refused_cleanly(auth_gateway):
    r = auth_gateway.get("/v1/shelves/scifi", headers=bearer("a" * 20000))
    assert r.status_code == 431, r.text  # over auth.max_token_bytes (8 KiB), well under the listener's 64 KiB
    assert r.json() == {"code": 3, "message": "credential is larger than 8192 bytes", "details": []}


def test_key_rotated_right_after_start_is_accepted_end_to_end(demo_backend, idp, auth_keys):
    """Issue 13: a token signed with a key published inside jwks_min_fetch_interval after the
    gateway's start-up fetch used to be refused 401 for jwks_negative_cache_ttl without a fetch."""
    interval = 1.0
    config = gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        auth={"issuers": [issuer_config(idp, jwks_min_fetch_interval=interval, jwks_negative_cache_ttl=60)]},
        access_log={"enabled": False},
    )
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=interval + 15) as client:
        assert idp.hits["/jwks"] == 1
        idp.publish(auth_keys.public_jwks(auth_keys.rsa_next))  # the IdP rotates: rsa-1 is gone
        r = client.get("/v1/shelves/scifi", headers=bearer(mint(auth_keys.rsa_next)))
        assert r.status_code == 200, r.text
        assert idp.hits["/jwks"] == 2  # exactly one fetch after start-up
        assert demo_backend.recorder.last("GetShelf").header("x-user-id") == "alice"
        # A forged kid is refused, and once proven unknown it costs no further fetch.
        forged = bearer(mint(auth_keys.rsa_next, header={"kid": "forged"}))
        assert client.get("/v1/shelves/scifi", headers=forged).status_code == 401
        hits = idp.hits["/jwks"]
        assert client.get("/v1/shelves/scifi", headers=forged).status_code == 401
        assert idp.hits["/jwks"] == hits <= 3


def test_issuer_forward_token_passes_the_validated_header_on(demo_backend, idp, auth_keys):
    """Issue 12 item 16: per issuer (like Envoy jwt_authn `forward`), overridable per route."""
    config = gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        transcoding={"forward_headers": ["x-user-id"]},
        auth={
            "issuers": [issuer_config(idp, forward_token=True)],
            "policies": [{"match": "edgedemo.users.v1.UserService/*", "forward_token": False}],
        },
        access_log={"enabled": False},
    )
    token = mint(auth_keys.rsa, sub="alice")
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        spoofed = {**bearer(token), "x-user-id": "mallory"}
        assert client.get("/v1/shelves/scifi", headers=spoofed).status_code == 200
        record = demo_backend.recorder.last("GetShelf")
        assert record.headers("authorization") == [f"Bearer {token}"]
        assert record.headers("x-user-id") == ["alice"]  # never the client's own claim of it
        assert client.get("/v1/users/ada", headers=spoofed).status_code == 200
        record = demo_backend.recorder.last("GetUser")
        assert record.header("authorization") is None  # the route policy says no
        assert record.headers("x-user-id") == ["alice"]
