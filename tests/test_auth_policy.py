"""Per-route policy: config precedence, scopes, and proto options that may tighten but never weaken."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from edge.auth import (
    API_KEY_ISSUER,
    AuthConfig,
    Authenticator,
    AuthError,
    EffectivePolicy,
    PolicyResolver,
    ProtoPolicy,
    pool_proto_lookup,
    proto_policy,
)
from tests.support.auth import ISSUER, bearer, issuer_config, mint, run

DESCRIPTORS = Path(__file__).resolve().parent.parent / "protos" / "edgeauthtest" / "descriptors.binpb"
VAULT = "edgeauthtest.v1.Vault"


@pytest.fixture(scope="module")
def pool() -> descriptor_pool.DescriptorPool:
    """A fresh pool built from a descriptor set, as the gateway builds one from reflection."""
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTORS.read_bytes())
    fresh = descriptor_pool.DescriptorPool()
    for file in files.file:
        fresh.Add(file)
    return fresh


def method(pool: descriptor_pool.DescriptorPool, name: str, service: str = VAULT):
    return pool.FindServiceByName(service).methods_by_name[name]


def resolver(*policies: dict[str, Any], **kw: Any) -> PolicyResolver:
    return PolicyResolver(AuthConfig.model_validate({"policies": list(policies), **kw}))


def test_most_specific_config_match_wins():
    r = resolver(
        {"match": "*", "auth": "optional"},
        {"match": "edgedemo.*", "scopes_all_of": ["pkg"]},
        {"match": "edgedemo.library.*", "scopes_all_of": ["subpkg"]},
        {"match": "edgedemo.library.v1.Library/*", "scopes_all_of": ["svc"]},
        {"match": "edgedemo.library.v1.Library/GetBook", "scopes_all_of": ["method"]},
        {"match": "GET /v1/books/{id}", "scopes_all_of": ["route"]},
        {"match": "* /v1/books/{id}:archive", "scopes_all_of": ["any-verb-route"]},
    )
    svc = "edgedemo.library.v1.Library"
    assert r.resolve(f"{svc}/GetBook", "GET", "/v1/books/{id}").scopes_all_of == {"route"}
    assert r.resolve(f"{svc}/ArchiveBook", "POST", "/v1/books/{id}:archive").scopes_all_of == {"any-verb-route"}
    assert r.resolve(f"/{svc}/GetBook", "DELETE", "/v1/books/{id}").scopes_all_of == {"method"}
    assert r.resolve(f"{svc}/ListBooks").scopes_all_of == {"svc"}
    assert r.resolve("edgedemo.library.v2.Library/ListBooks").scopes_all_of == {"subpkg"}
    assert r.resolve("edgedemo.ping.v1.PingService/Ping").scopes_all_of == {"pkg"}
    other = r.resolve("other.Service/Call")
    assert (other.auth, other.scopes_all_of, other.source) == ("optional", frozenset(), "config:*")


def test_default_policy_is_auth_required():
    policy = resolver().resolve("any.Service/Method")
    assert (policy.auth, policy.source) == ("required", "config:default_policy")
    assert resolver(default_policy={"auth": "none"}).resolve("any.Service/Method").auth == "none"


def test_config_scope_refusal_names_the_scope(idp, auth_keys):
    config = AuthConfig.model_validate(
        {"issuers": [issuer_config(idp)], "policies": [{"match": "lib.Books/*", "scopes_all_of": ["library.read", "library.write"]}]}
    )
    policy = PolicyResolver(config).resolve("lib.Books/Create")

    async def go():
        async with Authenticator(config) as auth:
            with pytest.raises(AuthError) as caught:
                await auth.authenticate(bearer(mint(auth_keys.rsa, scope="library.read")), policy)
            ok = await auth.authenticate(bearer(mint(auth_keys.rsa, scope="library.write library.read extra")), policy)
            return caught.value, ok

    err, ok = run(go())
    assert (err.status, err.error, err.reason) == (403, "insufficient_scope", "insufficient_scope")
    assert "library.write" in err.description
    assert err.www_authenticate("edge") == (
        'Bearer realm="edge", error="insufficient_scope", error_description="missing scope(s): library.write", '
        'scope="library.read library.write"'
    )
    assert ok.principal.scopes == {"library.read", "library.write", "extra"}


def test_any_of_scopes_and_scp_lists(idp, auth_keys):
    config = AuthConfig.model_validate({"issuers": [issuer_config(idp)]})
    policy = EffectivePolicy(scopes_any_of=(frozenset({"a", "b"}),))

    async def go():
        async with Authenticator(config) as auth:
            assert (await auth.authenticate(bearer(mint(auth_keys.rsa, scope=None, scp=["b"])), policy)).decision == "allowed"
            with pytest.raises(AuthError) as caught:
                await auth.authenticate(bearer(mint(auth_keys.rsa, scope="c")), policy)
            return caught.value

    err = run(go())
    assert (err.status, err.scope) == (403, "a b")


def test_route_issuer_restriction(idp, auth_keys):
    config = AuthConfig.model_validate({"issuers": [issuer_config(idp)]})

    async def go():
        async with Authenticator(config) as auth:
            with pytest.raises(AuthError) as caught:
                await auth.authenticate(bearer(mint(auth_keys.rsa)), EffectivePolicy(issuers=frozenset({API_KEY_ISSUER})))
            ok = await auth.authenticate(bearer(mint(auth_keys.rsa)), EffectivePolicy(issuers=frozenset({ISSUER})))
            return caught.value, ok

    err, ok = run(go())
    assert (err.status, err.reason) == (401, "wrong_issuer")
    assert ok.decision == "allowed"


def test_proto_policy_read_from_a_reflection_built_pool(pool):
    assert proto_policy(method(pool, "GetSecret")) == ProtoPolicy(scopes_all_of=frozenset({"vault.read"}))
    put = proto_policy(method(pool, "PutSecret"))
    assert put == ProtoPolicy(
        mode=None, scopes_all_of=frozenset({"vault.read", "vault.write"}), scopes_any_of=(frozenset({"team.ops", "team.sec"}),)
    )
    assert proto_policy(method(pool, "Status")).mode == "none"
    assert proto_policy(method(pool, "Echo", "edgeauthtest.v1.Plain")) is None


def test_scope_required_by_a_proto_option(idp, auth_keys, pool):
    config = AuthConfig.model_validate({"issuers": [issuer_config(idp)], "policies": [{"match": "edgeauthtest.*"}]})
    r = PolicyResolver(config)
    put = r.resolve(f"{VAULT}/PutSecret", "POST", "/v1/secrets", method(pool, "PutSecret"))
    assert put.scopes_all_of == {"vault.read", "vault.write"}
    assert put.source == "config:edgeauthtest.*+proto"

    async def go():
        async with Authenticator(config) as auth:
            refusals = []
            for scope in ("vault.read", "vault.read vault.write"):
                with pytest.raises(AuthError) as caught:
                    await auth.authenticate(bearer(mint(auth_keys.rsa, scope=scope)), put)
                refusals.append(caught.value)
            ok = await auth.authenticate(bearer(mint(auth_keys.rsa, scope="vault.read vault.write team.sec")), put)
            return refusals, ok

    (missing_write, missing_team), ok = run(go())
    assert (missing_write.status, missing_write.scope) == (403, "vault.read vault.write")
    assert "vault.write" in missing_write.description
    assert (missing_team.status, missing_team.scope) == (403, "team.ops team.sec")
    assert ok.decision == "allowed"


def test_proto_cannot_weaken_auth_unless_allow_listed(pool, caplog):
    strict = resolver({"match": f"{VAULT}/*", "scopes_all_of": ["ops"]})
    with caplog.at_level(logging.WARNING, logger="edge.auth.policy"):
        status = strict.resolve(f"{VAULT}/Status", method_descriptor=method(pool, "Status"))
        peek = strict.resolve(f"{VAULT}/Peek", method_descriptor=method(pool, "Peek"))
    assert (status.auth, peek.auth) == ("required", "required")
    assert status.scopes_all_of == {"ops", "vault.read"}
    assert "ignored" in caplog.text and f"{VAULT}/Status" in caplog.text

    allowed = resolver({"match": f"{VAULT}/Status", "allow_proto_none": True}, {"match": f"{VAULT}/Peek", "allow_proto_none": True})
    assert allowed.resolve(f"{VAULT}/Status", method_descriptor=method(pool, "Status")).auth == "none"
    assert allowed.resolve(f"{VAULT}/Peek", method_descriptor=method(pool, "Peek")).auth == "optional"
    # The allow-list is per matched policy: a sibling method is not relaxed by it.
    only_status = resolver({"match": f"{VAULT}/Status", "allow_proto_none": True})
    assert only_status.resolve(f"{VAULT}/Peek", method_descriptor=method(pool, "Peek")).auth == "required"


def test_proto_scopes_tighten_a_relaxed_config_route(pool):
    relaxed = resolver({"match": "edgeauthtest.*", "auth": "none"})
    assert relaxed.resolve(f"{VAULT}/GetSecret", method_descriptor=method(pool, "GetSecret")).auth == "required"
    assert relaxed.resolve("edgeauthtest.v1.Plain/Echo", method_descriptor=method(pool, "Echo", "edgeauthtest.v1.Plain")).auth == "none"


def test_lookup_function_over_a_pool(pool):
    r = PolicyResolver(AuthConfig.model_validate({}).policies, pool_proto_lookup(pool))
    assert r.resolve(f"{VAULT}/PutSecret").scopes_all_of == {"vault.read", "vault.write"}
    assert r.resolve("missing.Service/Call") == EffectivePolicy(source="config:default_policy")
