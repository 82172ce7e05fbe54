"""Redis stopped in the middle of a run: each policy's failure mode, bounded
latency, and recovery without anyone's help when Redis returns."""
from __future__ import annotations

import asyncio
import time

from edge.ratelimit import (RateLimitConfig, RateLimitContext, RateLimiter, RateLimitPolicy, rate_limit_headers,
                            refusal)
from edge.state.config import BreakerConfig, RedisConfig
from edge.state.redis_store import RedisStore

TIMEOUT = 0.2


def ctx(route: str, user: str = "u") -> RateLimitContext:
    return RateLimitContext(user, None, "192.0.2.1", route, http_method="GET")


def limiter(store: RedisStore, **config) -> RateLimiter:
    policies = [
        RateLimitPolicy(name="open", limit=1000, window="1h", match=["/open"], on_store_failure="open"),
        RateLimitPolicy(name="closed", limit=1000, window="1h", match=["/closed"], on_store_failure="closed"),
        RateLimitPolicy(name="degrade", limit=10, window="1h", match=["/degrade"]),  # the default mode
        RateLimitPolicy(name="degrade-share", limit=10, window="1h", match=["/share"], local_share=0.3),
    ]
    return RateLimiter(RateLimitConfig(policies=policies, **config), store)


async def timed(coro):
    start = time.monotonic()
    result = await coro
    return time.monotonic() - start, result


def test_failure_modes_latency_and_recovery(private_redis, caplog):
    caplog.set_level("INFO")
    store = RedisStore(RedisConfig(url=private_redis.url, timeout=TIMEOUT,
                                   breaker=BreakerConfig(failure_threshold=2, open_for=0.5)))
    rl = limiter(store, instances=2)

    async def body():
        try:
            for route in ("/open", "/closed", "/degrade", "/share"):
                d = await rl.check(ctx(route))
                assert d.allowed and d.store_status == "ok"

            private_redis.kill()
            latencies = []
            elapsed, d = await timed(rl.check(ctx("/open")))
            latencies.append(elapsed)
            assert d.allowed and d.store_status == "open" and rate_limit_headers(d) == []  # served uncounted

            elapsed, d = await timed(rl.check(ctx("/closed")))
            latencies.append(elapsed)
            assert not d.allowed and d.store_status == "unavailable"
            err = refusal(d)
            assert err.http_status == 503 and err.body()["code"] == 14 and "fails closed" in err.message
            assert err.headers["Retry-After"] == "1"

            # degrade: this instance enforces its share, 10 / 2 instances = 5, on its own
            results = []
            for _ in range(7):
                elapsed, d = await timed(rl.check(ctx("/degrade")))
                latencies.append(elapsed)
                results.append((d.allowed, d.store_status))
            assert results == [(True, "degraded")] * 5 + [(False, "degraded")] * 2
            assert dict(rate_limit_headers(d))["RateLimit-Policy"] == '"degrade";q=5;w=3600'
            assert refusal(d).http_status == 429
            share = [(await rl.check(ctx("/share"))).allowed for _ in range(4)]
            assert share == [True, True, True, False]  # local_share 0.3 of 10

            assert store.breaker.state == "open"
            assert max(latencies) < 4 * TIMEOUT
            assert sorted(latencies)[len(latencies) // 2] < TIMEOUT  # most calls did not wait at all

            private_redis.start()  # an empty Redis on the same port: no scripts, no counters
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                d = await rl.check(ctx("/closed"))
                if d.allowed:
                    break
                await asyncio.sleep(0.05)
            assert d.allowed and d.store_status == "ok"
            d = await rl.check(ctx("/degrade"))
            assert d.allowed and d.store_status == "ok"
            assert dict(rate_limit_headers(d))["RateLimit-Policy"] == '"degrade";q=10;w=3600'
        finally:
            await store.close()
    asyncio.run(body())
    assert rl.counters.decisions["open"] == 1 and rl.counters.decisions["closed"] >= 1
    assert rl.counters.decisions["degraded"] == 5 + 3
    messages = [r.getMessage() for r in caplog.records]
    assert any("unavailable" in m and "on_store_failure" in m for m in messages)
    assert any("answers again" in m for m in messages)
    assert any("closed -> open" in m for m in messages) and any("half_open -> closed" in m for m in messages)


def test_hung_redis_adds_at_most_a_timeout_per_breaker_window(private_redis):
    store = RedisStore(RedisConfig(url=private_redis.url, timeout=TIMEOUT,
                                   breaker=BreakerConfig(failure_threshold=1, open_for=30)))
    rl = limiter(store)

    async def body():
        try:
            await rl.check(ctx("/open"))
            private_redis.pause()
            start = time.monotonic()
            decisions = [await rl.check(ctx("/open", f"user{i}")) for i in range(40)]
            total = time.monotonic() - start
            assert all(d.allowed and d.store_status == "open" for d in decisions)
            assert total < 5 * TIMEOUT  # one timeout, then 39 answers without waiting
        finally:
            private_redis.resume()
            await store.close()
    asyncio.run(body())
