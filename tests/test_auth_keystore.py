"""API keys kept in the state store: hashed, added and revoked at run time, with a stated
revocation bound, against the memory store and a real Redis."""
from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

import pytest

from edge.auth import API_KEY_ISSUER, AuthConfig, Authenticator, AuthError, EffectivePolicy, hash_api_key
from edge.auth.keystore import NewApiKey, key_id
from edge.state.config import RedisConfig
from edge.state.redis_store import RedisStore
from tests.support.redis import run_closing

REQUIRED = EffectivePolicy()
CONFIG_KEY = "ek_config_only_" + "c" * 30


def auth_config(cache_ttl: float = 5.0, **extra: Any) -> AuthConfig:
    return AuthConfig.model_validate({
        "api_key_store": {"cache_ttl": cache_ttl},
        "api_keys": [{"sha256": hash_api_key(CONFIG_KEY), "principal": "from-config", "tier": "gold"}],
        **extra,
    })


async def check(auth: Authenticator, key: str, policy: EffectivePolicy = REQUIRED) -> Any:
    try:
        return await auth.authenticate({"x-api-key": key}, policy)
    except AuthError as exc:
        return exc


def test_add_use_list_revoke(state_store):
    async def body():
        async with Authenticator(auth_config(), state_store=state_store) as auth:
            keys = auth.stored_keys
            assert keys is not None and keys.shared == (state_store.name == "redis")
            key, entry = await keys.add(NewApiKey(principal="billing-svc", scopes=["invoices.write"], tier="premium"))
            assert key.startswith("ek_") and len(key) == 46
            assert entry.sha256 == hash_api_key(key) and entry.id == key_id(entry.sha256)

            ok = await check(auth, key, EffectivePolicy(scopes_all_of=frozenset({"invoices.write"})))
            p = ok.principal
            assert (p.via, p.subject, p.issuer, p.scopes) == ("api_key", "billing-svc", API_KEY_ISSUER, {"invoices.write"})
            assert p.claims["tier"] == "premium" and p.claims["key_id"] == entry.id
            assert (await check(auth, CONFIG_KEY)).principal.claims["tier"] == "gold"  # config keys still count

            listed = await keys.list()
            assert [e.public() for e in listed] == [entry.public()]
            assert key not in json.dumps([e.public() for e in listed])
            assert entry.sha256 not in json.dumps([e.public() for e in listed])

            assert await keys.revoke(entry.id) is True
            refused = await check(auth, key)  # this process forgets it at once
            assert (refused.status, refused.reason) == (401, "bad_api_key")
            assert await keys.revoke(entry.id) is False
            assert await keys.list() == []

    run_closing(state_store, body)


def test_only_the_hash_is_stored(redis_target, redis_prefix):
    store = RedisStore(RedisConfig(url=redis_target.url, key_prefix=redis_prefix, timeout=2.0))

    async def body():
        async with Authenticator(auth_config(), state_store=store) as auth:
            return await auth.stored_keys.add(NewApiKey(principal="svc", scopes=["a", "b"], tier="t1"))

    key, entry = run_closing(store, body)
    client = redis_target.client()
    try:
        raw = client.hgetall(f"{redis_prefix}:apikeys")
    finally:
        client.close()
    assert list(raw) == [entry.id.encode()]
    record = json.loads(raw[entry.id.encode()])
    assert record == {"id": entry.id, "sha256": hash_api_key(key), "principal": "svc", "scopes": ["a", "b"],
                      "tier": "t1", "created": entry.created, "expires": None}
    assert key.encode() not in b"".join(raw.values())


def test_revocation_reaches_another_instance_within_the_cache_ttl(redis_target, redis_prefix):
    """Two authenticators (as in two gateways) on one Redis: B refuses a key A revoked, at the
    latest when its cached lookup expires. Polled, not timed: the bound is what is configured."""
    ttl = 1.0

    async def main():
        stores = [RedisStore(RedisConfig(url=redis_target.url, key_prefix=redis_prefix, timeout=2.0)) for _ in range(2)]
        try:
            async with Authenticator(auth_config(ttl), state_store=stores[0]) as a, \
                    Authenticator(auth_config(ttl), state_store=stores[1]) as b:
                key, entry = await a.stored_keys.add(NewApiKey(principal="svc"))
                assert (await check(b, key)).decision == "allowed"  # B caches it now
                lookups = b.stored_keys.lookups
                assert (await check(b, key)).decision == "allowed"
                assert b.stored_keys.lookups == lookups  # served from B's cache
                revoked_at = time.monotonic()
                assert await a.stored_keys.revoke(entry.id)
                assert (await check(a, key)).reason == "bad_api_key"
                while not isinstance(refused := await check(b, key), AuthError):
                    assert time.monotonic() - revoked_at < ttl + 10, "B never noticed the revocation"
                    await asyncio.sleep(0.05)
                assert (refused.status, refused.reason) == (401, "bad_api_key")
                # The cache is the only delay: B asked the store again exactly once after the revocation.
                assert b.stored_keys.lookups == lookups + 1
        finally:
            for store in stores:
                await store.close()

    asyncio.run(main())


def test_new_keys_and_made_up_keys(state_store):
    async def body():
        async with Authenticator(auth_config(cache_ttl=60), state_store=state_store) as auth:
            keys = auth.stored_keys
            key, _ = await keys.add(NewApiKey(principal="svc"))
            # Concurrent first uses share one lookup.
            results = await asyncio.gather(*(check(auth, key) for _ in range(20)))
            assert {r.decision for r in results} == {"allowed"} and keys.lookups == 1
            # A flood of made-up keys: one lookup each, refused, and the real key stays cached.
            made_up = ["ek_" + secrets.token_urlsafe(32) for _ in range(200)]
            refused = await asyncio.gather(*(check(auth, k) for k in made_up))
            assert {(r.status, r.reason) for r in refused} == {(401, "bad_api_key")}
            assert keys.lookups == 201
            assert (await check(auth, key)).decision == "allowed" and keys.lookups == 201
            again = await check(auth, made_up[0])  # remembered as absent for the cache TTL
            assert again.reason == "bad_api_key" and keys.lookups == 201

    run_closing(state_store, body)


def test_expiring_key(state_store):
    async def body():
        async with Authenticator(auth_config(cache_ttl=60), state_store=state_store) as auth:
            key, entry = await auth.stored_keys.add(NewApiKey(principal="temp", expires_in="0.3s"))
            assert entry.expires is not None and entry.expires - entry.created == pytest.approx(0.3, abs=0.01)
            assert (await check(auth, key)).decision == "allowed"
            deadline = time.monotonic() + 15
            while not isinstance(result := await check(auth, key), AuthError):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            assert result.reason == "bad_api_key"  # expired: refused although cached for 60 s
            assert time.time() >= entry.expires

    run_closing(state_store, body)


def test_store_down_refuses_stored_keys_but_not_config_keys(private_redis):
    store = RedisStore(RedisConfig(url=private_redis.url, key_prefix="edgetest-down", timeout=0.2))

    async def body():
        async with Authenticator(auth_config(cache_ttl=0), state_store=store) as auth:
            key, _ = await auth.stored_keys.add(NewApiKey(principal="svc"))
            assert (await check(auth, key)).decision == "allowed"
            private_redis.kill()
            down = await check(auth, key)
            assert (down.status, down.reason) == (401, "unavailable")  # not served from a stale cache
            assert (await check(auth, CONFIG_KEY)).decision == "allowed"
            private_redis.start()
            deadline = time.monotonic() + 20  # the breaker lets a probe through after open_for
            while (result := await check(auth, key)).reason == "unavailable":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            # This Redis runs without persistence and came back empty: the key is gone with it.
            assert result.reason == "bad_api_key"
            fresh, _ = await auth.stored_keys.add(NewApiKey(principal="svc"))
            assert (await check(auth, fresh)).decision == "allowed"

    run_closing(store, body)


NEW_KEY_TABLE = [
    ({"principal": "svc"}, True),
    ({"principal": "svc account 7", "scopes": ["a.read", "b:write"], "tier": "free", "expires_in": "90d"}, True),
    ({"principal": ""}, False),
    ({"principal": " svc"}, False),
    ({"principal": "svc\n"}, False),
    ({"principal": "José"}, False),
    ({"principal": "x" * 257}, False),
    ({"principal": "svc", "scopes": ["has space"]}, False),
    ({"principal": "svc", "scopes": ['quo"te']}, False),
    ({"principal": "svc", "tier": "gold plan"}, False),
    ({"principal": "svc", "expires_in": "0s"}, False),
    ({"principal": "svc", "expires_in": "soon"}, False),
    ({"principal": "svc", "owner": "me"}, False),
]


@pytest.mark.parametrize(("fields", "valid"), NEW_KEY_TABLE)
def test_new_key_fields(fields, valid):
    if valid:
        NewApiKey(**fields)
    else:
        with pytest.raises(ValueError):
            NewApiKey(**fields)


def test_tier_claim_name_is_configurable_and_guarded():
    config = auth_config(api_key_tier_claim="plan")
    assert config.api_key_tier_claim == "plan"
    for bad in ("org.plan", "sub", "scope", ""):
        with pytest.raises(ValueError):
            auth_config(api_key_tier_claim=bad)
