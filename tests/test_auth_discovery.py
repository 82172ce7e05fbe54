"""Issuers configured by their `issuer` URL alone: OIDC Discovery / RFC 8414 metadata read from a
real local IdP (http.server), with the issuer checked exactly, max-age honoured, outages survived."""
from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from edge.auth import AuthConfig, Authenticator, AuthError, EffectivePolicy
from edge.auth.discovery import discovery_urls
from tests.support.auth import AUDIENCE, CLIENT_ID, CLIENT_SECRET, IdpServer, bearer, mint, run
from tests.support.gateway import gateway_config, running_gateway

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = EffectivePolicy()
OIDC = "/.well-known/openid-configuration"
RFC8414 = "/.well-known/oauth-authorization-server"

# ---- where the metadata is looked for: (issuer, OIDC Discovery URL, RFC 8414 URL) -----------------

URL_TABLE = [
    ("https://idp.example", "https://idp.example/.well-known/openid-configuration",
     "https://idp.example/.well-known/oauth-authorization-server"),
    ("https://idp.example/", "https://idp.example/.well-known/openid-configuration",
     "https://idp.example/.well-known/oauth-authorization-server"),
    ("https://idp.example/tenant-a", "https://idp.example/tenant-a/.well-known/openid-configuration",
     "https://idp.example/.well-known/oauth-authorization-server/tenant-a"),
    ("https://idp.example/tenant-a/", "https://idp.example/tenant-a/.well-known/openid-configuration",
     "https://idp.example/.well-known/oauth-authorization-server/tenant-a"),
    ("https://idp.example/realms/shop/v2", "https://idp.example/realms/shop/v2/.well-known/openid-configuration",
     "https://idp.example/.well-known/oauth-authorization-server/realms/shop/v2"),
    ("https://idp.example:8443/t", "https://idp.example:8443/t/.well-known/openid-configuration",
     "https://idp.example:8443/.well-known/oauth-authorization-server/t"),
    ("http://127.0.0.1:9000/iss", "http://127.0.0.1:9000/iss/.well-known/openid-configuration",
     "http://127.0.0.1:9000/.well-known/oauth-authorization-server/iss"),
    ("https://login.example.com/0f1e2d3c-aaaa-bbbb-cccc-123456789abc/v2.0",
     "https://login.example.com/0f1e2d3c-aaaa-bbbb-cccc-123456789abc/v2.0/.well-known/openid-configuration",
     "https://login.example.com/.well-known/oauth-authorization-server/0f1e2d3c-aaaa-bbbb-cccc-123456789abc/v2.0"),
]


@pytest.mark.parametrize(("issuer", "oidc", "rfc8414"), URL_TABLE)
def test_discovery_urls(issuer, oidc, rfc8414):
    assert discovery_urls(issuer) == [oidc, rfc8414]


# ---- what the config accepts -----------------------------------------------------------------------

INTRO = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


def issuer(**overrides: Any) -> dict[str, Any]:
    return {"issuer": "https://idp.example/t", "audiences": [AUDIENCE], "algorithms": ["RS256"], **overrides}


CONFIG_TABLE = [
    # (issuer overrides, None when valid else a fragment of the error)
    ({"discovery": True}, None),
    ({}, "or discovery: true"),
    ({"discovery": True, "jwks_url": "https://idp.example/jwks"}, "nothing to discover"),
    ({"discovery": True, "algorithms": ["HS256"], "shared_secret": "s" * 32}, "nothing to discover"),
    ({"discovery": True, "issuer": "http://idp.example/t"}, "must use https"),
    ({"discovery": True, "issuer": "idp.example"}, "http(s) URL"),
    ({"discovery": True, "issuer": "https://idp.example/t?x=1"}, "no query or fragment"),
    ({"discovery": True, "issuer": "https://idp.example/t#f"}, "no query or fragment"),
    ({"discovery": True, "issuer": "http://127.0.0.1:8080/t"}, None),
    ({"jwks_url": "https://idp.example/jwks", "issuer": "not a url"}, None),  # no discovery: any issuer string
    ({"algorithms": [], "introspection": INTRO}, "introspection needs a url"),
    ({"algorithms": [], "discovery": True, "introspection": INTRO}, None),
    ({"discovery": True, "introspection": INTRO}, None),  # both from the document
    ({"jwks_url": "https://idp.example/jwks", "discovery": True, "introspection": INTRO}, None),
    ({"discovery": True, "discovery_max_age_bounds": ["1h", "1m"]}, "discovery_max_age_bounds"),
]


@pytest.mark.parametrize(("overrides", "error"), CONFIG_TABLE)
def test_discovery_config(overrides, error):
    raw = {"issuers": [issuer(**overrides)]}
    if error is None:
        AuthConfig.model_validate(raw)
    else:
        with pytest.raises(ValidationError) as info:
            AuthConfig.model_validate(raw)
        assert error in str(info.value)


# ---- against a real IdP --------------------------------------------------------------------------


def issuer_url(idp: IdpServer, path: str = "/tenant-a") -> str:
    return idp.url + path


def publish_metadata(idp: IdpServer, iss: str, *, at: str = OIDC, cache_control: str | None = None, **extra: Any) -> None:
    """Serve the metadata of `iss` where the well-known rules put it (`at`: OIDC or RFC 8414)."""
    path = iss.removeprefix(idp.url).rstrip("/")
    where = path + OIDC if at == OIDC else RFC8414 + path
    idp.serve(where, {"issuer": iss, "jwks_uri": idp.jwks_url, "token_endpoint": idp.url + "/token", **extra}, cache_control)


def discovering(iss: str, **overrides: Any) -> AuthConfig:
    cfg = {
        "issuer": iss, "audiences": [AUDIENCE], "algorithms": ["RS256", "ES256"], "discovery": True,
        "jwks_min_fetch_interval": 0, "leeway": 5, **overrides,
    }
    return AuthConfig.model_validate({"issuers": [cfg]})


async def outcome(auth: Authenticator, token: str) -> Any:
    try:
        return await auth.authenticate(bearer(token), REQUIRED)
    except AuthError as exc:
        return exc


def test_oidc_discovery_finds_the_key_set(idp, auth_keys):
    iss = issuer_url(idp)
    publish_metadata(idp, iss)

    async def go():
        async with Authenticator(discovering(iss)) as auth:
            for n in range(3):
                assert (await outcome(auth, mint(auth_keys.rsa, iss=iss, jti=str(n)))).decision == "allowed"
            # A token from another issuer is still refused: discovery adds no trust.
            assert (await outcome(auth, mint(auth_keys.rsa))).reason == "wrong_issuer"

    run(go())
    assert idp.hits["/tenant-a" + OIDC] == 1
    assert idp.hits["/jwks"] == 1
    assert idp.hits[RFC8414 + "/tenant-a"] == 0


def test_rfc8414_metadata_when_there_is_no_oidc_document(idp, auth_keys):
    iss = issuer_url(idp, "/realms/shop")
    publish_metadata(idp, iss, at=RFC8414)

    async def go():
        async with Authenticator(discovering(iss)) as auth:
            assert (await outcome(auth, mint(auth_keys.ec, "ES256", iss=iss))).decision == "allowed"

    run(go())
    assert idp.hits["/realms/shop" + OIDC] == 1  # asked first, 404
    assert idp.hits[RFC8414 + "/realms/shop"] == 1  # the path goes after the well-known part


@pytest.mark.parametrize("named", ["{iss}/", "{iss}/other", "https://idp.evil.example/tenant-a", None])
def test_a_document_naming_another_issuer_is_refused(idp, auth_keys, caplog, named):
    iss = issuer_url(idp)
    publish_metadata(idp, iss)
    idp.serve("/tenant-a" + OIDC, {"issuer": named and named.format(iss=iss), "jwks_uri": idp.jwks_url})

    async def go():
        async with Authenticator(discovering(iss)) as auth:
            refused = await outcome(auth, mint(auth_keys.rsa, iss=iss))
            assert (refused.status, refused.reason) == (401, "unavailable")

    with caplog.at_level(logging.WARNING, logger="edge.auth"):
        run(go())
    assert idp.hits["/jwks"] == 0  # nothing the refused document points to is ever fetched
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "edge.auth.discovery"]
    assert errors, caplog.text
    assert f"not the configured {iss!r}" in errors[0].getMessage()
    assert "character for character" in errors[0].getMessage()


def test_metadata_without_a_usable_jwks_uri_is_refused(idp, auth_keys, caplog):
    iss = issuer_url(idp)
    idp.serve("/tenant-a" + OIDC, {"issuer": iss, "jwks_uri": "http://idp.example.com/jwks"})

    async def go():
        async with Authenticator(discovering(iss)) as auth:
            assert (await outcome(auth, mint(auth_keys.rsa, iss=iss))).reason == "unavailable"

    with caplog.at_level(logging.WARNING, logger="edge.auth"):
        run(go())
    assert "must use https" in caplog.text


def test_discovery_server_down_at_start_then_up(idp, auth_keys):
    """Like a JWKS endpoint down at start-up: tokens refused as unavailable, then accepted once it answers."""
    iss = issuer_url(idp)
    publish_metadata(idp, iss)
    idp.up = False

    async def go():
        async with Authenticator(discovering(iss, jwks_min_fetch_interval=0.2)) as auth:
            down = await outcome(auth, mint(auth_keys.rsa, iss=iss))
            assert (down.status, down.reason) == (401, "unavailable")
            idp.up = True
            deadline = time.monotonic() + 15
            while isinstance(result := await outcome(auth, mint(auth_keys.rsa, iss=iss, jti=str(time.monotonic()))), AuthError):
                assert result.reason == "unavailable" and time.monotonic() < deadline, result
                await asyncio.sleep(0.05)
            assert result.decision == "allowed"

    run(go())
    assert idp.hits["/jwks"] >= 1


def test_metadata_refreshed_per_its_max_age_and_a_new_jwks_uri_followed(idp, auth_keys):
    iss = issuer_url(idp)
    publish_metadata(idp, iss, cache_control="public, max-age=0")
    config = discovering(iss, jwks_min_fetch_interval=0.1, discovery_max_age_bounds=(0.3, 60))

    async def go():
        async with Authenticator(config) as auth:
            assert (await outcome(auth, mint(auth_keys.rsa, iss=iss))).decision == "allowed"
            # The IdP moves its keys: a new document points at a new key set.
            idp.serve("/keys-v2", auth_keys.public_jwks(auth_keys.rsa_next))
            publish_metadata(idp, iss, cache_control="max-age=3600", jwks_uri=idp.url + "/keys-v2")
            await asyncio.sleep(0.35)  # past the first document's (clamped) max-age
            assert (await outcome(auth, mint(auth_keys.rsa_next, iss=iss))).decision == "allowed"
            # The second document is fresh for an hour: key re-fetches no longer re-read it.
            idp.serve("/keys-v2", auth_keys.public_jwks(auth_keys.rsa_next, auth_keys.ec))
            await asyncio.sleep(0.15)
            assert (await outcome(auth, mint(auth_keys.ec, "ES256", iss=iss))).decision == "allowed"

    run(go())
    assert idp.hits["/tenant-a" + OIDC] == 2
    assert idp.hits["/keys-v2"] == 2


def test_introspection_endpoint_from_discovery(idp):
    iss = issuer_url(idp)
    publish_metadata(idp, iss, introspection_endpoint=idp.url + "/introspect")
    idp.introspection["opaque-7"] = {"active": True, "sub": "svc", "iss": iss, "exp": int(time.time()) + 600}
    config = AuthConfig.model_validate(
        {"issuers": [{"issuer": iss, "audiences": [AUDIENCE], "discovery": True, "introspection": INTRO}]}
    )

    async def go():
        async with Authenticator(config) as auth:
            result = await outcome(auth, "opaque-7")
            assert result.decision == "allowed" and result.principal.subject == "svc"

    run(go())
    assert idp.hits["/tenant-a" + OIDC] == 1  # read at start-up
    assert idp.hits["/introspect"] == 1
    assert idp.bad_client_auth == 0


def test_gateway_with_a_discovered_issuer(demo_backend, idp, auth_keys):
    iss = issuer_url(idp)
    publish_metadata(idp, iss)
    config = gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        auth={"issuers": [{"issuer": iss, "audiences": [AUDIENCE], "algorithms": ["RS256"], "discovery": True}]},
        access_log={"enabled": False},
    )
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        r = client.get("/v1/shelves/scifi", headers=bearer(mint(auth_keys.rsa, iss=iss, sub="dora")))
        assert r.status_code == 200, r.text
        assert demo_backend.recorder.last("GetShelf").header("x-user-id") == "dora"
        assert client.get("/v1/shelves/scifi", headers=bearer(mint(auth_keys.rsa))).status_code == 401


def _check(tmp_path: Path, descriptors: Path, issuers: str) -> subprocess.CompletedProcess:
    config = tmp_path / "edge.yaml"
    config.write_text(
        f"listen: {{plaintext: true}}\n"
        f"backends: [{{name: demo, target: '127.0.0.1:1', descriptors: {descriptors}}}]\n"
        f"auth:\n  issuers: {issuers}\n"
    )
    return subprocess.run([sys.executable, "-m", "edge.cli", "check", "--config", str(config)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_edge_check_reports_discovery_problems(tmp_path, idp, demo_descriptor_set):
    iss = issuer_url(idp)
    # Offline: neither keys nor discovery.
    result = _check(tmp_path, demo_descriptor_set, f"[{{issuer: '{iss}', audiences: [a], algorithms: [RS256]}}]")
    assert result.returncode == 2
    assert "or discovery: true" in result.stderr
    # Online: the document names another issuer.
    idp.serve("/tenant-a" + OIDC, {"issuer": iss + "/", "jwks_uri": idp.jwks_url})
    discovered = f"[{{issuer: '{iss}', audiences: [a], algorithms: [RS256], discovery: true}}]"
    result = _check(tmp_path, demo_descriptor_set, discovered)
    assert result.returncode == 1
    assert f"auth.issuers.0: no usable metadata document for issuer {iss!r}" in result.stderr
    assert f"names issuer {iss + '/'!r}, not the configured {iss!r}" in result.stderr
    # Fixed on the IdP side: the check passes.
    publish_metadata(idp, iss)
    result = _check(tmp_path, demo_descriptor_set, discovered)
    assert result.returncode == 0, result.stderr
    # Not reachable (the check may run without network): a warning, not a problem.
    idp.up = False
    result = _check(tmp_path, demo_descriptor_set, discovered)
    assert result.returncode == 0, result.stderr
    assert f"warning: auth.issuers.0: no usable metadata document for issuer {iss!r}: HTTP 503" in result.stderr
