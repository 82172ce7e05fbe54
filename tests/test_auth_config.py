"""The auth config refuses, at start-up, anything that would leave a route open or a token unverifiable."""
from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from edge.auth import AuthConfig
from edge.auth.config import DEFAULT_IDENTITY_METADATA
from tests.support.auth import AUDIENCE, ISSUER

JWKS = "https://idp.example/jwks"


def issuer(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["RS256"], "jwks_url": JWKS}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def refused(config: dict[str, Any], *needles: str) -> str:
    with pytest.raises(ValidationError) as caught:
        AuthConfig.model_validate(config)
    text = str(caught.value)
    for needle in needles:
        assert needle in text, text
    return text


def test_defaults():
    config = AuthConfig.model_validate({"issuers": [issuer()]})
    assert config.max_token_bytes == 8192
    assert config.identity_metadata == DEFAULT_IDENTITY_METADATA
    assert config.default_policy.auth == "required"
    assert config.api_key_header == "x-api-key"
    assert config.issuers[0].required_claims == ["sub"]


def test_issuer_without_audience_or_issuer_is_refused():
    refused({"issuers": [issuer(audiences=None)]}, "audiences", "Field required")
    refused({"issuers": [issuer(audiences=[])]}, "audiences")
    refused({"issuers": [issuer(audiences=[""])]}, "audiences")
    refused({"issuers": [issuer(issuer=None)]}, "issuer", "Field required")
    refused({"issuers": [issuer(issuer="")]}, "issuer")


def test_hmac_issuer_with_empty_secret_is_refused():
    refused({"issuers": [issuer(algorithms=["HS256"], jwks_url=None, shared_secret="")]}, "non-empty shared_secret")
    refused({"issuers": [issuer(algorithms=["HS256"], jwks_url=None)]}, "non-empty shared_secret")
    refused({"issuers": [issuer(algorithms=["HS512"], jwks_url=None, shared_secret="x" * 32)]}, "at least 64 bytes")
    ok = AuthConfig.model_validate({"issuers": [issuer(algorithms=["HS256"], jwks_url=None, shared_secret="s" * 32)]})
    assert ok.issuers[0].is_hmac


@pytest.mark.parametrize(
    "algorithms,needle",
    [(["none"], "'none' is never accepted"), (["RS256", "HS256"], "must not mix"), (["RS257"], "unknown algorithm"), ([], "algorithms is empty")],
)
def test_algorithm_lists(algorithms, needle):
    refused({"issuers": [issuer(algorithms=algorithms, shared_secret="s" * 32 if "HS256" in algorithms else None)]}, needle)


def test_key_sources():
    refused({"issuers": [issuer(jwks_url=None)]}, "exactly one of jwks_url or jwks_file")
    refused({"issuers": [issuer(jwks_file="/tmp/jwks.json")]}, "exactly one of jwks_url or jwks_file")
    refused({"issuers": [issuer(shared_secret="s" * 32)]}, "only for HMAC")
    refused({"issuers": [issuer(jwks_url="http://idp.example/jwks")]}, "must use https")
    refused({"issuers": [issuer(jwks_url="ftp://idp.example/jwks")]}, "http(s) URL")
    AuthConfig.model_validate({"issuers": [issuer(jwks_url="http://127.0.0.1:8080/jwks")]})


def test_introspection_only_issuer():
    intro = {"url": "https://idp.example/introspect", "client_id": "gw", "client_secret": "s"}
    config = AuthConfig.model_validate({"issuers": [issuer(algorithms=[], jwks_url=None, introspection=intro)]})
    assert config.issuers[0].introspection.cache_ttl == 60
    refused({"issuers": [issuer(algorithms=[], jwks_url=None, introspection=intro | {"client_secret": ""})]}, "client_secret")
    two = [issuer(introspection=intro), issuer(issuer="https://other", introspection=intro)]
    refused({"issuers": two}, "only one issuer may use introspection")


def test_unknown_keys_are_errors():
    refused({"issuers": [issuer(audience="x")]}, "audience", "Extra inputs are not permitted")
    refused({"issuers": [issuer()], "polices": []}, "polices")


def test_policies():
    AuthConfig.model_validate(
        {
            "issuers": [issuer()],
            "policies": [
                {"match": "*", "auth": "required"},
                {"match": "edgedemo.*"},
                {"match": "edgedemo.library.v1.LibraryService/*", "scopes_all_of": ["library.read"]},
                {"match": "/edgedemo.library.v1.LibraryService/GetBook", "auth": "optional"},
                {"match": "GET /v1/shelves/{shelf}/books/{book}", "auth": "none"},
                {"match": "* /healthz", "auth": "none"},
                {"match": "grpc.health.v1.Health/Check", "auth": "none", "issuers": [ISSUER, "edge:api-key"]},
            ],
        }
    )
    refused({"policies": [{"match": "not a match"}]}, "match pattern")
    refused({"policies": [{"match": "a.B/*"}, {"match": "a.B/*", "auth": "none"}]}, "more than once")
    refused({"policies": [{"match": "*", "auth": "sometimes"}]}, "auth")
    refused({"policies": [{"match": "*", "issuers": ["https://unknown"]}]}, "not configured")


def test_identity_metadata_names():
    AuthConfig.model_validate({"identity_metadata": {"x-user-id": "sub", "x-tenant-id": "org.tenant"}})
    for bad in ("X-User", "grpc-user", "x-user-bin", "authorization", "x user"):
        refused({"identity_metadata": {bad: "sub"}}, "identity_metadata")
    refused({"identity_metadata": {"x-api-key": "sub"}}, "also an identity_metadata name")


def test_api_keys_are_hashes():
    digest = "ab" * 32
    config = AuthConfig.model_validate({"api_keys": [{"sha256": digest.upper(), "principal": "billing", "scopes": ["a"]}]})
    assert config.api_keys[0].sha256 == digest
    refused({"api_keys": [{"sha256": "plain-text-key", "principal": "x"}]}, "sha256")
    refused({"api_keys": [{"sha256": digest, "principal": "a"}, {"sha256": digest, "principal": "b"}]}, "twice")


def test_durations_and_bounds():
    config = AuthConfig.model_validate({"issuers": [issuer(jwks_refresh_interval="5m", jwks_grace_period="1h")], "cache_ttl": "30s"})
    assert config.issuers[0].jwks_refresh_interval == 300
    assert config.cache_ttl == 30
    refused({"issuers": [issuer(leeway=3600)]}, "leeway")
    refused({"max_token_bytes": 10}, "max_token_bytes")
