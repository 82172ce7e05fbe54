"""Hybrid mode: per-instance leases from Redis, and the overshoot bound docs/state.md states.

Bound: Redis charges every unit before an instance spends it, so within one
instant the fleet admits exactly the limit. Units leased earlier may be spent
up to `lease_ttl` later, so over an interval the fleet can admit at most
N x (batch - 1) more than plain Redis mode would (N instances).
"""
from __future__ import annotations

import asyncio

import pytest

from edge.ratelimit import (RateLimitConfig, RateLimitContext, RateLimiter, RateLimitPolicy, rate_limit_headers,
                            refusal)
from edge.state.config import BreakerConfig, RedisConfig
from edge.state.memory import MemoryStore
from edge.state.redis_store import RedisStore

T0 = 1_800_000_000.0
N, BATCH, LIMIT = 3, 5, 20
CTX = RateLimitContext("u", None, "192.0.2.1", "/v1/hot", http_method="GET")


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def fleet(url: str, prefix: str, clock: Clock, *, hybrid: bool = True, n: int = N, **policy):
    store = RedisStore(RedisConfig(url=url, key_prefix=prefix, timeout=1.0))
    config = RateLimitConfig(
        policies=[RateLimitPolicy(**({"name": "hot", "limit": LIMIT, "window": "1s", "key": "global"} | policy))],
        hybrid={"enabled": hybrid, "batch": BATCH, "lease_ttl": "1s"}, instances=n)
    return store, [RateLimiter(config, store, clock=clock) for _ in range(n)]


async def hammer(limiters, rounds: int = 20) -> int:
    """Round-robin requests over the instances until every one of them refuses."""
    admitted = 0
    for _ in range(rounds):
        results = [(await rl.check(CTX)).allowed for rl in limiters]
        admitted += sum(results)
        if not any(results):
            break
    return admitted


@pytest.mark.parametrize("algorithm", ["gcra", "sliding_window"])
def test_at_one_instant_the_fleet_admits_exactly_the_limit(redis_target, redis_prefix, algorithm):
    clock = Clock()
    store, limiters = fleet(redis_target.url, redis_prefix, clock, algorithm=algorithm)

    async def body():
        try:
            assert await hammer(limiters) == LIMIT
            assert store.stats.round_trips <= LIMIT / BATCH + 2 * N  # refills, plus one refusal each
        finally:
            await store.close()
    asyncio.run(body())


def test_worst_case_overshoot_is_n_times_batch_minus_one(redis_target, redis_prefix):
    clock = Clock()
    store, limiters = fleet(redis_target.url, redis_prefix, clock)
    plain_store, plain = fleet(redis_target.url, redis_prefix, clock, hybrid=False, name="plain")

    async def body():
        try:
            for rl in limiters + plain:  # every instance leases a batch and spends one unit of it
                assert (await rl.check(CTX)).allowed
            clock.t = T0 + 0.999  # Redis has refilled completely; the leases are still valid
            hybrid_admitted = await hammer(limiters)
            plain_admitted = await hammer(plain)
            assert plain_admitted == LIMIT
            assert hybrid_admitted == LIMIT + N * (BATCH - 1)  # the bound, reached
        finally:
            await store.close()
            await plain_store.close()
    asyncio.run(body())


def test_expired_leases_are_not_spent(redis_target, redis_prefix):
    clock = Clock()
    store, limiters = fleet(redis_target.url, redis_prefix, clock)

    async def body():
        try:
            for rl in limiters:
                await rl.check(CTX)
            clock.t = T0 + 1.0  # lease_ttl has passed: leftovers are gone
            assert await hammer(limiters) == LIMIT
        finally:
            await store.close()
    asyncio.run(body())


def test_a_hot_key_costs_a_fraction_of_a_round_trip(redis_target, redis_prefix):
    clock = Clock()
    store, [rl] = fleet(redis_target.url, redis_prefix, clock, n=1, limit=1000, window="1h")

    async def body():
        try:
            decisions = [await rl.check(CTX) for _ in range(200)]
            assert all(d.allowed for d in decisions)
            assert store.stats.round_trips == 200 / BATCH
            assert rl.counters.lease_hits == 200 - 200 / BATCH
            assert rate_limit_headers(decisions[-1])[0] == ("RateLimit-Policy", '"hot";q=1000;w=3600')
            assert decisions[-1].policies_applied[0].remaining == 800
        finally:
            await store.close()
    asyncio.run(body())


def test_refusals_are_remembered_locally(redis_target, redis_prefix):
    clock = Clock()
    store, [rl] = fleet(redis_target.url, redis_prefix, clock, n=1, limit=5, window="1m")

    async def body():
        try:
            assert [(await rl.check(CTX)).allowed for _ in range(5)] == [True] * 5
            trips = store.stats.round_trips
            refused = [await rl.check(CTX) for _ in range(20)]
            assert not any(d.allowed for d in refused)
            assert store.stats.round_trips == trips + 1  # Redis said no once; the rest were answered here
            assert refused[-1].retry_after == 12 and refusal(refused[-1]).http_status == 429
            clock.t += 12
            assert (await rl.check(CTX)).allowed
        finally:
            await store.close()
    asyncio.run(body())


def test_concurrent_requests_share_one_refill(redis_target, redis_prefix):
    clock = Clock()
    store, [rl] = fleet(redis_target.url, redis_prefix, clock, n=1, limit=1000, window="1h")

    async def body():
        try:
            decisions = await asyncio.gather(*(rl.check(CTX) for _ in range(50)))
            assert all(d.allowed for d in decisions)
            assert store.stats.round_trips == 50 / BATCH
        finally:
            await store.close()
    asyncio.run(body())


def test_hybrid_degrades_like_plain_mode_when_redis_is_down(unused_port):
    clock = Clock()
    store, [rl] = fleet(f"redis://127.0.0.1:{unused_port}/0", "x", clock, n=1, limit=4, window="1m")
    store.breaker.failure_threshold = 1

    async def body():
        try:
            results = [await rl.check(CTX) for _ in range(6)]
            assert [d.allowed for d in results] == [True] * 4 + [False] * 2
            assert {d.store_status for d in results} == {"degraded"}
        finally:
            await store.close()
    asyncio.run(body())


def test_hybrid_is_off_for_the_memory_store():
    config = RateLimitConfig(policies=[RateLimitPolicy(name="x", limit=3, window="1m")], hybrid={"enabled": True})
    store = MemoryStore()
    rl = RateLimiter(config, store, clock=Clock())

    async def body():
        assert [(await rl.check(CTX)).allowed for _ in range(4)] == [True, True, True, False]
        assert store.stats.round_trips == 4
    asyncio.run(body())
