"""Auth through the whole gateway: real uvicorn, real demo gRPC backend, real local IdP."""
from __future__ import annotations

import time

import httpx
import pytest

from tests.support.auth import bearer, issuer_config, mint
from tests.support.gateway import gateway_config, running_gateway

LIB = "edgedemo.library.v1.LibraryService"


@pytest.fixture
def client(demo_backend, idp):
    auth = {
        "issuers": [issuer_config(idp)],
        "policies": [
            {"match": f"{LIB}/*", "scopes_all_of": ["library.read"]},
            {"match": f"{LIB}/CreateShelf", "scopes_all_of": ["library.write"]},
            {"match": f"{LIB}/ListShelves", "auth": "optional"},
        ],
    }
    config = gateway_config([{"name": "demo", "target": demo_backend.target, "timeout": "5s"}], auth=auth)
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        yield c


def test_missing_token_is_401_with_a_bearer_challenge(client):
    r = client.get("/v1/shelves/scifi")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="edge"'


def test_spoofed_identity_is_replaced_by_the_token_subject(client, demo_backend, auth_keys):
    headers = bearer(mint(auth_keys.rsa, sub="alice")) | {"x-user-id": "mallory", "x-auth-scopes": "library.admin"}
    r = client.get("/v1/shelves/scifi", headers=headers)
    assert r.status_code == 200, r.text
    seen = demo_backend.recorder.last("GetShelf")
    assert seen.headers("x-user-id") == ["alice"]
    assert seen.headers("x-auth-scopes") == ["library.read"]
    assert seen.headers("authorization") == []  # not forwarded unless the policy says so


def test_anonymous_caller_cannot_pose_as_a_user_on_an_optional_route(client, demo_backend):
    r = client.get("/v1/shelves", headers={"x-user-id": "mallory"})
    assert r.status_code == 200, r.text
    assert demo_backend.recorder.last("ListShelves").headers("x-user-id") == []


def test_expired_token_and_missing_scope(client, auth_keys):
    now = int(time.time())
    r = client.get("/v1/shelves/scifi", headers=bearer(mint(auth_keys.rsa, iat=now - 900, exp=now - 600)))
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert 'error_description="token has expired"' in r.headers["www-authenticate"]

    r = client.post("/v1/shelves", json={"theme": "poetry"}, headers=bearer(mint(auth_keys.rsa)))
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert 'scope="library.write"' in r.headers["www-authenticate"]


def test_oversized_token_is_refused_cleanly(client, auth_keys):
    r = client.get("/v1/shelves/scifi", headers=bearer(mint(auth_keys.rsa, padding="x" * 9000)))
    assert r.status_code == 431
