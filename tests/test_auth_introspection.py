"""RFC 7662 introspection for opaque tokens, against a real local introspection endpoint."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from edge.auth import AuthConfig, Authenticator, AuthError, EffectivePolicy
from tests.support.auth import (
    AUDIENCE,
    CLIENT_ID,
    CLIENT_SECRET,
    ISSUER,
    IdpServer,
    bearer,
    issuer_config,
    mint,
    run,
)

REQUIRED = EffectivePolicy()


def config(idp: IdpServer, secret: str = CLIENT_SECRET, **intro: Any) -> AuthConfig:
    introspection = {"url": idp.url + "/introspect", "client_id": CLIENT_ID, "client_secret": secret, **intro}
    return AuthConfig.model_validate({"issuers": [issuer_config(idp, introspection=introspection)]})


async def attempt(auth: Authenticator, token: str) -> Any:
    try:
        return await auth.authenticate(bearer(token), REQUIRED)
    except AuthError as exc:
        return exc


def active(**extra: Any) -> dict[str, Any]:
    return {"active": True, "sub": "svc-reports", "scope": "reports.read reports.write", "exp": int(time.time()) + 600, **extra}


def test_active_token(idp):
    idp.introspection["opaque-1"] = active(iss=ISSUER, aud=AUDIENCE, tenant="acme")

    async def go():
        async with Authenticator(config(idp)) as auth:
            return await attempt(auth, "opaque-1")

    outcome = run(go())
    principal = outcome.principal
    assert (principal.via, principal.subject, principal.issuer) == ("introspection", "svc-reports", ISSUER)
    assert principal.scopes == {"reports.read", "reports.write"}
    assert principal.claims["tenant"] == "acme"
    assert idp.bad_client_auth == 0  # the gateway authenticated itself with its client credentials


def test_answers_are_cached(idp):
    idp.introspection["opaque-1"] = active()

    async def go():
        async with Authenticator(config(idp)) as auth:
            for _ in range(3):
                assert (await attempt(auth, "opaque-1")).decision == "allowed"
            for _ in range(3):
                assert (await attempt(auth, "revoked-1")).reason == "inactive"

    run(go())
    assert idp.hits["/introspect"] == 2


def test_inactive_token_is_401(idp):
    idp.introspection["opaque-2"] = {"active": False}

    async def go():
        async with Authenticator(config(idp)) as auth:
            return await attempt(auth, "opaque-2")

    err = run(go())
    assert (err.status, err.error, err.reason) == (401, "invalid_token", "inactive")


def test_cache_never_outlives_exp(idp):
    start = 1_900_000_000.0
    now = [start]
    idp.introspection["short"] = active(exp=int(start) + 10)

    async def go():
        async with Authenticator(config(idp, cache_ttl=3600), clock=lambda: now[0]) as auth:
            assert (await attempt(auth, "short")).decision == "allowed"
            now[0] = start + 9
            assert (await attempt(auth, "short")).decision == "allowed"
            calls_before_exp = idp.hits["/introspect"]
            now[0] = start + 11  # past exp (within the 5s leeway): the cached answer is gone, ask again
            assert (await attempt(auth, "short")).decision == "allowed"
            now[0] = start + 16  # past exp and leeway: refused
            late = await attempt(auth, "short")
            return calls_before_exp, late

    calls_before_exp, late = run(go())
    assert calls_before_exp == 1
    assert idp.hits["/introspect"] == 3
    assert late.reason == "expired"


def test_concurrent_requests_share_one_call(idp):
    idp.introspection["busy"] = active()

    async def go():
        async with Authenticator(config(idp)) as auth:
            results = await asyncio.gather(*(attempt(auth, "busy") for _ in range(20)))
            assert {r.decision for r in results} == {"allowed"}

    run(go())
    assert idp.hits["/introspect"] == 1


@pytest.mark.parametrize(
    "answer,reason",
    [({"iss": "https://other"}, "wrong_issuer"), ({"aud": ["someone-else"]}, "wrong_audience"), ({"exp": "soon"}, "malformed")],
)
def test_active_answer_for_someone_else_is_refused(idp, answer, reason):
    idp.introspection["tok"] = active(**answer)

    async def go():
        async with Authenticator(config(idp)) as auth:
            return await attempt(auth, "tok")

    assert run(go()).reason == reason


def test_endpoint_failures_refuse_without_leaking(idp, caplog):
    token = "opaque-SECRET-4f1d2c"
    idp.introspection[token] = active()

    async def go():
        async with Authenticator(config(idp, secret="wrong-secret")) as auth:
            bad_client = await attempt(auth, token)
        idp.up = False
        async with Authenticator(config(idp)) as auth:
            down = await attempt(auth, token)
        return bad_client, down

    with caplog.at_level(logging.DEBUG, logger="edge.auth"):
        bad_client, down = run(go())
    assert (bad_client.status, bad_client.reason) == (401, "unavailable")
    assert (down.status, down.reason) == (401, "unavailable")
    assert idp.bad_client_auth == 1
    assert "unavailable" in caplog.text
    assert token not in caplog.text and "wrong-secret" not in caplog.text


def test_jwt_shaped_tokens_still_use_jwks(idp, auth_keys):
    async def go():
        async with Authenticator(config(idp)) as auth:
            return await attempt(auth, mint(auth_keys.rsa))

    assert run(go()).principal.via == "jwt"
    assert idp.hits["/introspect"] == 0
