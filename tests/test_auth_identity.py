"""API keys, and the identity the backend is told about (never the client's own claims of it)."""
from __future__ import annotations

import logging
from typing import Any

import pytest

from edge.auth import (
    API_KEY_ISSUER,
    AuthConfig,
    Authenticator,
    AuthError,
    EffectivePolicy,
    hash_api_key,
)
from tests.support.auth import bearer, issuer_config, mint, run

REQUIRED = EffectivePolicy()
BILLING_KEY = "ek_live_3f9a1c7e2b8d4f60a5c1e9b7d3f2a8c4"


def authenticate(config: dict[str, Any], headers: dict[str, str], policy: EffectivePolicy = REQUIRED) -> Any:
    async def go():
        async with Authenticator(AuthConfig.model_validate(config)) as auth:
            try:
                outcome = await auth.authenticate(headers, policy)
            except AuthError as exc:
                return exc, auth
            return outcome, auth

    return run(go())


API_KEYS = {"api_keys": [{"sha256": hash_api_key(BILLING_KEY), "principal": "billing-service", "scopes": ["invoices.write"]}]}


def test_good_api_key():
    outcome, auth = authenticate(API_KEYS, {"x-api-key": BILLING_KEY})
    p = outcome.principal
    assert (p.via, p.subject, p.issuer, p.scopes) == ("api_key", "billing-service", API_KEY_ISSUER, {"invoices.write"})
    assert auth.identity_metadata(p) == [
        ("x-user-id", "billing-service"),
        ("x-auth-issuer", API_KEY_ISSUER),
        ("x-auth-scopes", "invoices.write"),
    ]


def test_bad_api_key():
    err, _ = authenticate(API_KEYS, {"x-api-key": BILLING_KEY[:-1] + "5"})
    assert (err.status, err.reason, err.error) == (401, "bad_api_key", "invalid_token")
    assert BILLING_KEY not in err.description


def test_api_keys_not_configured():
    err, _ = authenticate({}, {"x-api-key": BILLING_KEY})
    assert (err.status, err.reason) == (401, "bad_api_key")


def test_api_key_header_is_configurable_and_scopes_apply():
    config = API_KEYS | {"api_key_header": "X-Service-Key"}
    outcome, _ = authenticate(config, {"X-Service-Key": BILLING_KEY}, EffectivePolicy(scopes_all_of=frozenset({"invoices.write"})))
    assert outcome.decision == "allowed"
    err, _ = authenticate(config, {"x-service-key": BILLING_KEY}, EffectivePolicy(scopes_all_of=frozenset({"invoices.read"})))
    assert (err.status, err.reason, err.scope) == (403, "insufficient_scope", "invoices.read")
    missing, _ = authenticate(config, {"x-api-key": BILLING_KEY})
    assert missing.reason == "missing"


def test_spoofed_identity_headers_are_listed_for_stripping_and_replaced(idp, auth_keys):
    """The client says it is mallory; the backend must hear the token's subject only."""
    config = {"issuers": [issuer_config(idp)]}
    headers = bearer(mint(auth_keys.rsa, sub="alice")) | {"x-user-id": "mallory", "X-Auth-Scopes": "admin"}
    outcome, auth = authenticate(config, headers)
    assert {"x-user-id", "x-auth-issuer", "x-auth-scopes"} <= auth.stripped_header_names
    assert {"authorization", "x-api-key"} == auth.credential_header_names
    to_backend = [(k, v) for k, v in headers.items() if k.lower() not in auth.stripped_header_names | auth.credential_header_names]
    to_backend += auth.backend_metadata(outcome, headers, REQUIRED)
    assert ("x-user-id", "alice") in to_backend
    assert ("x-auth-scopes", "library.read") in to_backend
    assert not any(v in ("mallory", "admin") for _, v in to_backend)
    assert not any(k == "authorization" for k, _ in to_backend)


def test_configured_claims_become_metadata(idp, auth_keys):
    config = {
        "issuers": [issuer_config(idp)],
        "identity_metadata": {
            "x-user-id": "sub",
            "x-tenant-id": "org.tenant",
            "x-url-claim": "https://example.com/region",
            "x-groups": "groups",
            "x-admin": "is_admin",
            "x-name": "name",
            "x-absent": "nothing",
        },
    }
    token = mint(
        auth_keys.rsa,
        org={"tenant": "acme"},
        groups=["ops", "dev"],
        is_admin=False,
        name="José",  # not printable ASCII: not sent rather than mangled
        **{"https://example.com/region": "eu-west"},
    )
    outcome, auth = authenticate(config, bearer(token))
    assert auth.identity_metadata(outcome.principal) == [
        ("x-user-id", "alice"),
        ("x-tenant-id", "acme"),
        ("x-url-claim", "eu-west"),
        ("x-groups", "ops,dev"),
        ("x-admin", "false"),
    ]
    assert auth.stripped_header_names == frozenset(config["identity_metadata"])


def test_token_forwarded_only_where_policy_asks(idp, auth_keys):
    config = {"issuers": [issuer_config(idp)]}
    headers = bearer(mint(auth_keys.rsa))
    outcome, auth = authenticate(config, headers)
    assert ("authorization", headers["authorization"]) in auth.backend_metadata(outcome, headers, EffectivePolicy(forward_token=True))
    assert all(k != "authorization" for k, _ in auth.backend_metadata(outcome, headers, EffectivePolicy()))


# (issuer forward_token, route policy forward_token, credential) -> is Authorization forwarded?
FORWARD_TABLE = [
    (False, None, "jwt", False),  # the default: never
    (True, None, "jwt", True),  # the issuer forwards, the route does not say
    (True, False, "jwt", False),  # the route says no: it wins
    (False, True, "jwt", True),  # the route says yes: it wins
    (True, True, "jwt", True),
    (True, None, "other_issuer", False),  # only tokens of the forwarding issuer
    (False, True, "api_key", False),  # an API key is never passed on, whatever the route says
    (True, None, "api_key", False),
]
OTHER_ISSUER = "https://other-idp.edge.test"


@pytest.mark.parametrize(("issuer_forwards", "route_forwards", "credential", "forwarded"), FORWARD_TABLE)
def test_authorization_forwarding_per_issuer_and_route(idp, auth_keys, issuer_forwards, route_forwards, credential, forwarded):
    config = {
        "issuers": [
            issuer_config(idp, forward_token=issuer_forwards),
            issuer_config(idp, issuer=OTHER_ISSUER),
        ],
        **API_KEYS,
    }
    headers = {
        "jwt": bearer(mint(auth_keys.rsa)),
        "other_issuer": bearer(mint(auth_keys.rsa, iss=OTHER_ISSUER)),
        "api_key": {"x-api-key": BILLING_KEY},
    }[credential] | {"x-user-id": "mallory"}
    outcome, auth = authenticate(config, headers)
    policy = EffectivePolicy(forward_token=route_forwards)
    metadata = auth.backend_metadata(outcome, headers, policy)
    sent = [v for k, v in metadata if k == "authorization"]
    assert sent == ([headers["authorization"]] if forwarded else [])
    # Identity comes from the credential only, never from the client's own header, forwarded or not.
    assert [v for k, v in metadata if k == "x-user-id"] == [outcome.principal.subject]
    assert "mallory" not in {v for _, v in metadata}


def test_policy_forward_token_defaults_to_the_issuer():
    from edge.auth import PolicyFields, PolicyResolver

    resolver = PolicyResolver(AuthConfig.model_validate({"policies": [
        {"match": "pkg.S/Forward", "forward_token": True},
        {"match": "pkg.S/Keep", "forward_token": False},
    ]}))
    assert resolver.resolve("pkg.S/Forward").forward_token is True
    assert resolver.resolve("pkg.S/Keep").forward_token is False
    assert resolver.resolve("pkg.S/Other").forward_token is None
    assert PolicyFields().forward_token is None


def test_authorize_a_principal_authenticated_earlier(idp, auth_keys):
    outcome, auth = authenticate({"issuers": [issuer_config(idp)]}, bearer(mint(auth_keys.rsa)))
    principal = outcome.principal
    assert auth.authorize(principal, EffectivePolicy()).decision == "allowed"
    assert auth.authorize(None, EffectivePolicy(auth="optional")).decision == "anonymous"
    with pytest.raises(AuthError) as missing:
        auth.authorize(None, EffectivePolicy())
    assert missing.value.reason == "missing"
    with pytest.raises(AuthError) as scope:
        auth.authorize(principal, EffectivePolicy(scopes_all_of=frozenset({"library.admin"})))
    assert scope.value.status == 403


def test_tokens_never_reach_the_log(idp, auth_keys, caplog):
    good = mint(auth_keys.rsa)
    bad = mint(auth_keys.rsa, iss="https://evil.example")
    config = {"issuers": [issuer_config(idp)]}
    with caplog.at_level(logging.DEBUG, logger="edge.auth"):
        authenticate(config, bearer(good))
        authenticate(config, bearer(bad))
        authenticate(API_KEYS, {"x-api-key": "wrong-" + BILLING_KEY})
    assert "wrong_issuer" in caplog.text and "bad_api_key" in caplog.text
    for secret in (good, bad, BILLING_KEY, good.split(".")[2], bad.split(".")[1]):
        assert secret not in caplog.text
