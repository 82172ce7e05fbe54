"""JWT bearer validation against a real local JWKS server, with real RSA/EC/HMAC keys."""
from __future__ import annotations

import time
from typing import Any

import pytest

from edge.auth import AuthConfig, Authenticator, AuthError, EffectivePolicy
from tests.support.auth import (
    AUDIENCE,
    ISSUER,
    AuthKeys,
    IdpServer,
    b64json,
    b64url,
    bearer,
    claims_for,
    forge,
    hmac_forge,
    issuer_config,
    mint,
    run,
)

REQUIRED = EffectivePolicy()


def check(config: dict[str, Any], headers: dict[str, str], policy: EffectivePolicy = REQUIRED, **kw: Any):
    """Authenticate once with a fresh Authenticator; returns the outcome or the AuthError."""

    async def go():
        async with Authenticator(AuthConfig.model_validate(config), **kw) as auth:
            try:
                return await auth.authenticate(headers, policy)
            except AuthError as exc:
                return exc

    return run(go())


def refused(result: Any, reason: str, status: int = 401) -> AuthError:
    assert isinstance(result, AuthError), f"expected refusal {reason}, got {result!r}"
    assert (result.status, result.reason) == (status, reason), repr(result)
    return result


@pytest.fixture
def cfg(idp: IdpServer) -> dict[str, Any]:
    return {"issuers": [issuer_config(idp)]}


def test_valid_rs256_and_es256(cfg, auth_keys: AuthKeys):
    for token in (mint(auth_keys.rsa, "RS256"), mint(auth_keys.ec, "ES256")):
        outcome = check(cfg, bearer(token))
        assert outcome.decision == "allowed"
        assert outcome.principal.subject == "alice"
        assert outcome.principal.issuer == ISSUER
        assert outcome.principal.scopes == frozenset({"library.read"})
        assert outcome.principal.via == "jwt"


def test_missing_token_is_401_without_error_code(cfg):
    err = refused(check(cfg, {}), "missing")
    assert err.error is None
    assert err.www_authenticate("edge") == 'Bearer realm="edge"'


def test_optional_and_none_policies_let_anonymous_through(cfg):
    assert check(cfg, {}, EffectivePolicy(auth="optional")).decision == "anonymous"
    assert check(cfg, {}, EffectivePolicy(auth="none")).decision == "anonymous"


def test_optional_policy_still_refuses_a_bad_token(cfg):
    refused(check(cfg, bearer("a.b.c"), EffectivePolicy(auth="optional")), "malformed")


def test_none_policy_never_looks_at_the_token(cfg):
    assert check(cfg, bearer("garbage.token.here"), EffectivePolicy(auth="none")).principal is None


def test_other_scheme_and_empty_bearer_are_malformed(cfg):
    refused(check(cfg, {"authorization": "Basic dXNlcjpwdw=="}), "malformed")
    refused(check(cfg, {"authorization": "Bearer "}), "malformed")
    refused(check(cfg, {"authorization": "Bearer a b"}), "malformed")


def test_unknown_crit_header_refused(cfg, auth_keys):
    token = mint(auth_keys.rsa, header={"crit": ["exp-ext"], "exp-ext": 1})
    err = refused(check(cfg, bearer(token)), "malformed")
    assert "crit" in err.description


@pytest.mark.parametrize("name,value", [("x5u", "https://evil.example/cert"), ("jwk", {"kty": "oct", "k": "AAAA"}), ("x5c", ["MIIB"]), ("b64", False)])
def test_headers_naming_keys_are_refused(cfg, auth_keys, name, value):
    token = forge({"alg": "RS256", "kid": "rsa-1", name: value}, claims_for(), b64url(b"x" * 256))
    err = refused(check(cfg, bearer(token)), "malformed")
    assert repr(name) in err.description


def test_jku_is_never_fetched(cfg, idp, auth_keys, other_server):
    """A jku header is never honoured: the token is refused and the URL it names never sees a request,
    even though the attacker's server publishes a key that signed the token."""
    other_server.publish(auth_keys.public_jwks(auth_keys.rsa_next))
    token = mint(auth_keys.rsa_next, header={"jku": other_server.jwks_url})
    err = refused(check(cfg, bearer(token)), "malformed")
    assert "jku" in err.description
    # Also with a jku pointing at the issuer's own (correct) key: the header alone is refused.
    refused(check(cfg, bearer(mint(auth_keys.rsa, header={"jku": idp.jwks_url}))), "malformed")
    assert other_server.hits["/jwks"] == 0


def test_two_megabyte_token_is_431_not_a_crash(cfg, auth_keys):
    big = mint(auth_keys.rsa, padding="x" * (2 * 1024 * 1024))
    err = refused(check(cfg, bearer(big)), "too_large", status=431)
    assert err.error == "invalid_request"
    assert "8192" in err.description


def test_size_limit_is_configurable(idp, auth_keys):
    token = mint(auth_keys.rsa, padding="x" * 600)
    refused(check({"issuers": [issuer_config(idp)], "max_token_bytes": 600}, bearer(token)), "too_large", 431)
    assert check({"issuers": [issuer_config(idp)], "max_token_bytes": 4096}, bearer(token)).decision == "allowed"


def test_padded_signature_refused(cfg, auth_keys):
    token = mint(auth_keys.rsa)
    assert check(cfg, bearer(token)).decision == "allowed"
    h, p, s = token.split(".")
    padded = f"{h}.{p}.{s}{'=' * (-len(s) % 4 or 2)}"
    refused(check(cfg, bearer(padded)), "malformed")


def test_non_canonical_base64_refused(cfg, auth_keys):
    """Same bytes, other spelling: flipping unused trailing bits of the last character."""
    token = mint(auth_keys.ec, "ES256")  # 64-byte signature: 86 chars, last char carries 4 unused bits
    h, p, s = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(s[-1]) ^ 1]
    refused(check(cfg, bearer(f"{h}.{p}.{s[:-1]}{twin}")), "malformed")
    refused(check(cfg, bearer(f"{h}.{p}.{s[:10]}+{s[11:]}")), "malformed")
    refused(check(cfg, bearer(f"{h}.{p}")), "malformed")
    refused(check(cfg, bearer(f"{h}.{p}.{s}.{s}")), "malformed")


def test_expired_and_not_yet_valid(cfg, auth_keys):
    now = int(time.time())
    refused(check(cfg, bearer(mint(auth_keys.rsa, iat=now - 600, exp=now - 300))), "expired")
    refused(check(cfg, bearer(mint(auth_keys.rsa, nbf=now + 300))), "not_yet_valid")
    refused(check(cfg, bearer(mint(auth_keys.rsa, iat=now + 300))), "not_yet_valid")


def test_leeway_edges(cfg, auth_keys):
    """Leeway 5s on a frozen clock: exp may be up to 5s past (exclusive), nbf up to 5s ahead."""
    now = 1_900_000_000
    clock = lambda: float(now)
    inside_exp = mint(auth_keys.rsa, iat=now - 100, exp=now - 4)
    outside_exp = mint(auth_keys.rsa, iat=now - 100, exp=now - 5)
    inside_nbf = mint(auth_keys.rsa, iat=now, nbf=now + 5, exp=now + 100)
    outside_nbf = mint(auth_keys.rsa, iat=now, nbf=now + 6, exp=now + 100)
    assert check(cfg, bearer(inside_exp), clock=clock).decision == "allowed"
    refused(check(cfg, bearer(outside_exp), clock=clock), "expired")
    assert check(cfg, bearer(inside_nbf), clock=clock).decision == "allowed"
    refused(check(cfg, bearer(outside_nbf), clock=clock), "not_yet_valid")


def test_exp_is_required(cfg, auth_keys):
    err = refused(check(cfg, bearer(mint(auth_keys.rsa, exp=None))), "malformed")
    assert "exp" in err.description


def test_wrong_issuer_and_wrong_audience(cfg, auth_keys):
    refused(check(cfg, bearer(mint(auth_keys.rsa, iss="https://evil.example"))), "wrong_issuer")
    refused(check(cfg, bearer(mint(auth_keys.rsa, aud="other-api"))), "wrong_audience")
    refused(check(cfg, bearer(mint(auth_keys.rsa, aud=None))), "malformed")
    assert check(cfg, bearer(mint(auth_keys.rsa, aud=["other-api", AUDIENCE]))).decision == "allowed"


def test_tampered_payload(cfg, auth_keys):
    h, _, s = mint(auth_keys.rsa).split(".")
    evil = b64json(claims_for(sub="admin", scope="library.admin"))
    refused(check(cfg, bearer(f"{h}.{evil}.{s}")), "bad_signature")


def test_alg_none_refused(cfg):
    for alg in ("none", "None", "NONE"):
        token = forge({"alg": alg, "typ": "JWT"}, claims_for(), "")
        refused(check(cfg, bearer(token)), "bad_algorithm")
        refused(check(cfg, bearer(forge({"alg": alg}, claims_for(), "c2ln"))), "bad_algorithm")


def test_hs256_signed_with_the_rsa_public_key_refused(cfg, auth_keys):
    from cryptography.hazmat.primitives import serialization

    pem = auth_keys.rsa.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for header in ({"alg": "HS256"}, {"alg": "HS256", "kid": "rsa-1"}):
        refused(check(cfg, bearer(hmac_forge(header, claims_for(), pem))), "bad_algorithm")


def test_alg_outside_the_issuer_list_refused(idp, auth_keys):
    cfg = {"issuers": [issuer_config(idp, algorithms=["ES256"])]}
    refused(check(cfg, bearer(mint(auth_keys.rsa, "RS256"))), "bad_algorithm")
    assert check(cfg, bearer(mint(auth_keys.ec, "ES256"))).decision == "allowed"


def test_key_of_the_wrong_type_for_alg_refused(cfg, auth_keys):
    """An ES256 header naming the RSA key's kid finds no fitting key."""
    token = mint(auth_keys.ec, "ES256", header={"kid": "rsa-1"})
    refused(check(cfg, bearer(token)), "unknown_key")


def test_hmac_issuer(auth_keys):
    from joserfc.jwk import OctKey

    cfg = {"issuers": [{"issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["HS256"], "shared_secret": auth_keys.hmac_secret.decode()}]}
    good = mint(OctKey.import_key(auth_keys.hmac_secret), "HS256")
    assert check(cfg, bearer(good)).principal.subject == "alice"
    forged = mint(OctKey.import_key(b"another secret that is long enough!!"), "HS256")
    refused(check(cfg, bearer(forged)), "bad_signature")


def test_expected_typ(idp, auth_keys):
    cfg = {"issuers": [issuer_config(idp, expected_typ="at+jwt")]}
    assert check(cfg, bearer(mint(auth_keys.rsa, header={"typ": "at+jwt"}))).decision == "allowed"
    assert check(cfg, bearer(mint(auth_keys.rsa, header={"typ": "application/AT+JWT"}))).decision == "allowed"
    refused(check(cfg, bearer(mint(auth_keys.rsa, header={"typ": "JWT"}))), "wrong_type")


def test_required_claims(idp, auth_keys):
    cfg = {"issuers": [issuer_config(idp, required_claims=["sub", "tenant"])]}
    refused(check(cfg, bearer(mint(auth_keys.rsa))), "malformed")
    assert check(cfg, bearer(mint(auth_keys.rsa, tenant="acme"))).principal.claims["tenant"] == "acme"


def test_unknown_non_critical_header_is_ignored(cfg, auth_keys):
    assert check(cfg, bearer(mint(auth_keys.rsa, header={"x-vendor": "1"}))).decision == "allowed"


def test_duplicate_json_members_refused(cfg):
    header = b64url(b'{"alg":"RS256","alg":"none"}')
    refused(check(cfg, bearer(f"{header}.{b64json(claims_for())}.c2ln")), "malformed")


def test_www_authenticate_header(cfg, auth_keys):
    now = int(time.time())
    err = refused(check(cfg, bearer(mint(auth_keys.rsa, iat=now - 600, exp=now - 300))), "expired")
    assert err.www_authenticate('my "realm"') == (
        'Bearer realm="my ?realm?", error="invalid_token", error_description="token has expired"'
    )


def test_hot_token_is_validated_once(cfg, auth_keys):
    token = mint(auth_keys.rsa)

    async def go():
        async with Authenticator(AuthConfig.model_validate(cfg)) as auth:
            for _ in range(5):
                assert (await auth.authenticate(bearer(token), REQUIRED)).principal.subject == "alice"
            return auth.signature_checks

    assert run(go()) == 1


def test_cached_token_still_expires(cfg, auth_keys):
    """A cache entry lives no longer than the token's exp, whatever cache_ttl says."""
    start = 1_900_000_000.0
    now = [start]
    token = mint(auth_keys.rsa, iat=int(start), exp=int(start) + 60)

    async def go():
        async with Authenticator(AuthConfig.model_validate(cfg | {"cache_ttl": 3600}), clock=lambda: now[0]) as auth:
            await auth.authenticate(bearer(token), REQUIRED)
            now[0] = start + 66  # past exp and the 5s leeway
            with pytest.raises(AuthError) as caught:
                await auth.authenticate(bearer(token), REQUIRED)
            return caught.value.reason, auth.signature_checks

    assert run(go()) == ("expired", 2)


def test_result_cache_is_bounded(cfg, auth_keys):
    tokens = [mint(auth_keys.rsa, jti=str(i)) for i in range(3)]

    async def go():
        async with Authenticator(AuthConfig.model_validate(cfg | {"cache_max_entries": 2})) as auth:
            for token in tokens + tokens[-1:]:
                await auth.authenticate(bearer(token), REQUIRED)
            hot = auth.signature_checks
            await auth.authenticate(bearer(tokens[0]), REQUIRED)  # evicted: checked again
            return hot, auth.signature_checks

    assert run(go()) == (3, 4)


def test_opaque_token_without_introspection_is_malformed(cfg):
    refused(check(cfg, bearer("opaque-token-value")), "malformed")


def test_bearer_and_api_key_together_is_invalid_request(cfg, auth_keys):
    err = refused(check(cfg, bearer(mint(auth_keys.rsa)) | {"x-api-key": "k"}), "malformed", status=400)
    assert err.error == "invalid_request"
