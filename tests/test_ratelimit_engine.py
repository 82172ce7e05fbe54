"""The rate-limit engine against the memory store and a real Redis."""
from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from edge.ratelimit import (RateLimitConfig, RateLimitContext, RateLimited, RateLimiter, RateLimitPolicy,
                            rate_limit_headers, refusal)
from edge.state.config import RedisConfig
from edge.state.redis_store import RedisStore
from tests.support.redis import run_closing as run

NOW = 1_800_000_000.0

ALICE = RateLimitContext("alice", {"plan": "free"}, "203.0.113.7", "/v1/shelves/{shelf}", "library.v1.Library",
                         "GetShelf", "GET")
BOB = RateLimitContext("bob", {"plan": "premium"}, "203.0.113.8", "/v1/shelves/{shelf}", "library.v1.Library",
                       "GetShelf", "GET")


def limiter(store, *policies, **config) -> RateLimiter:
    return RateLimiter(RateLimitConfig(policies=list(policies), **config), store, clock=lambda: NOW)


@pytest.mark.parametrize("algorithm", ["gcra", "sliding_window"])
def test_boundary_and_headers(state_store, algorithm):
    rl = limiter(state_store, RateLimitPolicy(name="per-user", limit=3, window="1m", algorithm=algorithm))

    async def body():
        decisions = [await rl.check(ALICE) for _ in range(4)]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        first = dict(rate_limit_headers(decisions[0]))
        assert first["RateLimit-Policy"] == '"per-user";q=3;w=60'
        assert first["RateLimit"].startswith('"per-user";r=2;t=')
        assert [d.policies_applied[0].remaining for d in decisions] == [2, 1, 0, 0]
        refused = decisions[-1]
        headers = dict(rate_limit_headers(refused))
        assert headers["RateLimit"].startswith('"per-user";r=0;t=')
        assert int(headers["Retry-After"]) == refused.retry_after >= 1
        if algorithm == "gcra":
            assert refused.retry_after == 20 and headers["RateLimit"] == '"per-user";r=0;t=60'
        # someone else is not affected
        assert (await rl.check(BOB)).allowed
    run(state_store, body)


def test_refusal_is_a_429_in_the_common_error_shape(state_store):
    rl = limiter(state_store, RateLimitPolicy(name="tiny", limit=1, window="10s"))

    async def body():
        assert refusal(await rl.check(ALICE)) is None
        refused = await rl.check(ALICE)
        err = refusal(refused)
        assert isinstance(err, RateLimited)
        assert err.http_status == 429
        body = err.body()
        assert body["code"] == 8  # RESOURCE_EXHAUSTED
        assert "'tiny'" in body["message"] and "retry in 10s" in body["message"]
        retry = next(d for d in body["details"] if d["@type"].endswith("google.rpc.RetryInfo"))
        assert retry["retryDelay"] == "10s"
        assert err.headers["Retry-After"] == "10"
        assert err.headers["RateLimit"] == '"tiny";r=0;t=10'
    run(state_store, body)


def test_several_policies_one_round_trip_and_all_reported(state_store):
    rl = limiter(state_store,
                 RateLimitPolicy(name="per-second", limit=2, window="1s"),
                 RateLimitPolicy(name="per-hour", limit=100, window="1h", algorithm="sliding_window"),
                 RateLimitPolicy(name="global", limit=1000, window="1m", key="global"))

    async def body():
        before = state_store.stats.round_trips
        d = await rl.check(ALICE)
        assert state_store.stats.round_trips - before == 1
        headers = dict(rate_limit_headers(d))
        assert headers["RateLimit-Policy"] == '"per-second";q=2;w=1, "per-hour";q=100;w=3600, "global";q=1000;w=60'
        assert headers["RateLimit"].split(", ")[0] == '"per-second";r=1;t=1'
        assert headers["RateLimit"].split(", ")[2].startswith('"global";r=999;')
        await rl.check(ALICE)
        refused = await rl.check(ALICE)
        assert not refused.allowed and refused.refused_by == "per-second"
        # the refused request charged nothing anywhere
        assert [p.remaining for p in refused.policies_applied] == [0, 98, 998]
    run(state_store, body)


def test_claim_tiers(state_store):
    tiers = {"claim": "plan", "tiers": {"free": "2/1m", "premium": {"limit": 5, "window": "1m"}}, "default": "1/1m"}
    rl = limiter(state_store, RateLimitPolicy(name="per-plan", vary_by_claim=tiers))
    nobody = RateLimitContext("carol", {}, "203.0.113.9", "/v1/x", "library.v1.Library", "GetShelf")

    async def body():
        async def admitted(ctx):
            n = 0
            while (await rl.check(ctx)).allowed:
                n += 1
            return n
        assert await admitted(ALICE) == 2
        assert await admitted(BOB) == 5
        assert await admitted(nobody) == 1
        d = await rl.check(BOB)
        assert dict(rate_limit_headers(d))["RateLimit-Policy"] == '"per-plan";q=5;w=60'
    run(state_store, body)


def test_a_callers_new_claims_pick_their_tier_at_once(state_store):
    """The limiter keeps each caller's prepared keys per route, but not where a claim picks the tier:
    the same user with an upgraded plan (a new token) is counted against the new tier at once."""
    tiers = {"claim": "plan", "tiers": {"free": "1/1m", "premium": "3/1m"}, "default": "1/1m"}
    rl = limiter(state_store, RateLimitPolicy(name="per-plan", vary_by_claim=tiers),
                 RateLimitPolicy(name="per-user", limit=100, window="1m"))
    upgraded = RateLimitContext("alice", {"plan": "premium"}, ALICE.client_ip, ALICE.route, ALICE.service,
                                ALICE.method, ALICE.http_method)

    async def body():
        assert (await rl.check(ALICE)).allowed
        assert (await rl.check(ALICE)).refused_by == "per-plan"
        assert [(await rl.check(upgraded)).allowed for _ in range(4)] == [True, True, True, False]
        assert (await rl.check(ALICE)).refused_by == "per-plan"
        applied = {p.name: p.remaining for p in (await rl.check(BOB)).policies_applied}
        assert applied == {"per-plan": 2, "per-user": 99}  # Bob's own counters, on the same route
    run(state_store, body)


def test_nested_and_list_claims(state_store):
    tiers = {"claim": "org.tier", "tiers": {"gold": "3/1m"}, "default": "1/1m"}
    rl = limiter(state_store, RateLimitPolicy(name="org", vary_by_claim=tiers))
    gold = RateLimitContext("dave", {"org": {"tier": ["x", "gold"]}}, None, "/v1/x")

    async def body():
        assert [(await rl.check(gold)).allowed for _ in range(4)] == [True, True, True, False]
    run(state_store, body)


def test_cost_above_one(state_store):
    rl = limiter(state_store, RateLimitPolicy(name="batch", limit=10, window="1m"))

    async def body():
        d = await rl.check(ALICE, cost=7)
        assert d.allowed and d.policies_applied[0].remaining == 3
        big = await rl.check(ALICE, cost=4)  # more than is left: refused whole, nothing charged
        assert not big.allowed and big.policies_applied[0].remaining == 3
        assert (await rl.check(ALICE, cost=3)).allowed
        never = await rl.check(BOB, cost=11)
        assert not never.allowed and "can never be admitted" in never.message
        assert (await rl.check(BOB, cost=10)).allowed
    run(state_store, body)


def test_keys_partition_the_counters(state_store):
    rl = limiter(state_store,
                 RateLimitPolicy(name="ip", limit=1, window="1m", key="ip"),
                 RateLimitPolicy(name="route", limit=3, window="1m", key="route"))
    same_ip = RateLimitContext("x", None, "198.51.100.1", "/v1/a", http_method="GET")
    other_ip = RateLimitContext("x", None, "198.51.100.2", "/v1/a", http_method="GET")
    third_ip = RateLimitContext("x", None, "198.51.100.3", "/v1/a", http_method="GET")
    fourth_ip = RateLimitContext("x", None, "198.51.100.4", "/v1/a", http_method="GET")
    other_route = RateLimitContext("x", None, "198.51.100.4", "/v1/b", http_method="GET")

    async def body():
        assert (await rl.check(same_ip)).allowed
        assert (await rl.check(same_ip)).refused_by == "ip"
        assert (await rl.check(other_ip)).allowed
        assert (await rl.check(third_ip)).allowed
        assert (await rl.check(fourth_ip)).refused_by == "route"  # 3 per route, whoever calls
        assert (await rl.check(other_route)).allowed
    run(state_store, body)


def test_anonymous_principal_limits_fall_back_to_the_ip(state_store):
    rl = limiter(state_store, RateLimitPolicy(name="user", limit=1, window="1m"))
    anon1 = RateLimitContext(None, None, "192.0.2.1", "/v1/a")
    anon2 = RateLimitContext(None, None, "192.0.2.2", "/v1/a")
    named = RateLimitContext("192.0.2.1", None, "192.0.2.1", "/v1/a")  # a principal named like an IP

    async def body():
        assert (await rl.check(anon1)).allowed
        assert not (await rl.check(anon1)).allowed
        assert (await rl.check(anon2)).allowed
        assert (await rl.check(named)).allowed
    run(state_store, body)


def test_match_and_exempt(state_store):
    rl = limiter(state_store,
                 RateLimitPolicy(name="writes", limit=1, window="1m", match=["POST /v1/*"]),
                 RateLimitPolicy(name="library", limit=2, window="1m", match=["library.v1.Library/*"]),
                 exempt=["/healthz", "library.v1.Library/Ping"])
    post = RateLimitContext("u", None, None, "/v1/books", "shop.v1.Shop", "CreateBook", "POST")
    get = RateLimitContext("u", None, None, "/v1/books", "shop.v1.Shop", "ListBooks", "GET")
    lib = RateLimitContext("u", None, None, "/v2/shelves", "library.v1.Library", "ListShelves", "GET")
    ping = RateLimitContext("u", None, None, "/v2/ping", "library.v1.Library", "Ping", "GET")
    health = RateLimitContext("u", None, None, "/healthz", http_method="GET")

    async def body():
        assert [p.name for p in (await rl.check(post)).policies_applied] == ["writes"]
        assert not (await rl.check(post)).allowed
        d = await rl.check(get)
        assert d.allowed and d.policies_applied == [] and rate_limit_headers(d) == []
        assert [(await rl.check(lib)).allowed for _ in range(3)] == [True, True, False]
        for _ in range(5):
            assert (await rl.check(ping)).store_status == "exempt"
            assert (await rl.check(health)).store_status == "exempt"
        assert rl.counters.decisions["exempt"] == 10
    run(state_store, body)


def test_default_exempts_health_even_from_global_limits(state_store):
    rl = limiter(state_store, RateLimitPolicy(name="all", limit=1, window="1m", key="global"))
    health = RateLimitContext(None, None, "192.0.2.1", "/healthz", http_method="GET")

    async def body():
        assert all([(await rl.check(health)).allowed for _ in range(5)])
    run(state_store, body)


def test_declared_policies_from_protos_and_config_override(state_store):
    rl = limiter(state_store, RateLimitPolicy(name="orders", limit=5, window="1m", match=["shop.v1.Shop/*"]))
    create = RateLimitContext("u", None, None, "/v1/orders", "shop.v1.Shop", "CreateOrder", "POST")
    rl.set_declared_policies({"shop.v1.Shop/CreateOrder": [
        RateLimitPolicy(name="orders", limit=1, window="1m"),          # overridden by the config's "orders"
        RateLimitPolicy(name="create-order", limit=2, window="1m")]})  # applies as declared

    async def body():
        d = await rl.check(create)
        assert [p.name for p in d.policies_applied] == ["orders", "create-order"]
        assert [(await rl.check(create)).allowed for _ in range(2)] == [True, False]
    run(state_store, body)


def test_disabled_limits_admit_everything(state_store):
    rl = limiter(state_store, RateLimitPolicy(name="x", limit=1, window="1m"), enabled=False)

    async def body():
        assert all([(await rl.check(ALICE)).allowed for _ in range(3)])
    run(state_store, body)


def test_redis_limits_are_shared_between_limiters(redis_target, redis_prefix):
    """Two limiters (as in two gateways) on one Redis see one counter, on server time."""
    async def body():
        # A generous timeout: 30 concurrent first calls open 30 connections, and on a loaded
        # machine one can pass the 100 ms default; the store would then degrade to local counters.
        stores = [RedisStore(RedisConfig(url=redis_target.url, key_prefix=redis_prefix, timeout=2.0))
                  for _ in range(2)]
        config = RateLimitConfig(policies=[RateLimitPolicy(name="shared", limit=10, window="1h")])
        limiters = [RateLimiter(config, s) for s in stores]  # no clock: Redis server time
        try:
            results = await asyncio.gather(*(limiters[i % 2].check(ALICE) for i in range(30)))
            assert sum(d.allowed for d in results) == 10
        finally:
            for s in stores:
                await s.close()
    asyncio.run(body())


@pytest.mark.parametrize("bad, message", [
    ({"name": "x"}, "set 'limit' and 'window'"),
    ({"name": "x", "limit": 5}, "set both"),
    ({"name": "x", "limit": 5, "window": "1 fortnight"}, "invalid duration"),
    ({"name": "x", "limit": 0, "window": "1m"}, "greater than or equal to 1"),
    ({"name": "bad name", "limit": 1, "window": "1m"}, "pattern"),
    ({"name": "x", "limit": 1, "window": "1m", "algorithm": "leaky"}, "gcra"),
    ({"name": "x", "limit": 1, "window": "1m", "colour": "red"}, "Extra inputs"),
    ({"name": "x", "vary_by_claim": {"claim": "plan", "tiers": {"free": "100 per minute"}}}, "invalid rate"),
    ({"name": "x", "vary_by_claim": {"claim": "plan", "tiers": {"free": "1/1m"}}}, "with a 'default'"),
])
def test_invalid_policies_are_refused_with_a_clear_message(bad, message):
    with pytest.raises(ValidationError, match=message):
        RateLimitPolicy(**bad)


def test_invalid_config_is_refused():
    with pytest.raises(ValidationError, match="used twice"):
        RateLimitConfig(policies=[{"name": "a", "limit": 1, "window": 1}, {"name": "a", "limit": 2, "window": 1}])
    with pytest.raises(ValidationError, match="not an IP address or CIDR"):
        RateLimitConfig(trusted_proxies=["10.0.0.0/8", "proxy.internal"])


def test_header_helper_without_policies():
    from edge.ratelimit import RateLimitDecision
    assert rate_limit_headers(RateLimitDecision(True, [])) == []
