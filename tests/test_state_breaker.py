"""The circuit breaker, alone and around a real Redis that dies, hangs and returns."""
from __future__ import annotations

import asyncio
import time

import pytest

from edge.state.breaker import CircuitBreaker
from edge.state.config import BreakerConfig, RedisConfig
from edge.state.errors import StoreUnavailable
from edge.state.redis_store import RedisStore
from edge.state.store import LimitCheck

TIMEOUT = 0.2


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_breaker_state_machine(caplog):
    clock = Clock()
    b = CircuitBreaker("test", failure_threshold=3, open_seconds=5, clock=clock)
    caplog.set_level("INFO", logger="edge.state.breaker")
    assert b.allow()
    b.record_failure(OSError("1"))
    b.record_failure(OSError("2"))
    b.record_success()  # failures must be consecutive
    for i in range(3):
        assert b.allow()
        b.record_failure(OSError(str(i)))
    assert b.state == "open"
    assert not b.allow() and not b.allow()
    assert b.short_circuits == 2
    clock.t += 5
    assert b.allow() and b.state == "half_open"
    assert not b.allow()  # one probe at a time
    b.record_failure(OSError("probe"))
    assert b.state == "open" and not b.allow()
    clock.t += 5
    assert b.allow()
    b.record_success()
    assert b.state == "closed" and b.allow()
    snap = b.snapshot()
    assert snap["transitions"] == {"closed->open": 1, "open->half_open": 2, "half_open->open": 1,
                                   "half_open->closed": 1}
    assert snap["failures"] == 6
    messages = [r.getMessage() for r in caplog.records]
    assert sum("-> open" in m for m in messages) == 2 and any("half_open -> closed" in m for m in messages)


def test_lost_probe_does_not_wedge_the_breaker():
    clock = Clock()
    b = CircuitBreaker("test", failure_threshold=1, open_seconds=1, clock=clock)
    b.record_failure()
    clock.t += 1
    assert b.allow()       # the probe goes out and is cancelled, never reporting
    b.record_abandoned()
    assert b.allow()       # the next call probes instead
    clock.t += 1
    assert b.allow()       # and even a probe that never reported expires after a window


def store_for(server, **breaker) -> RedisStore:
    return RedisStore(RedisConfig(url=server.url, timeout=TIMEOUT,
                                  breaker=BreakerConfig(**({"failure_threshold": 2, "open_for": 0.5} | breaker))))


async def timed(coro):
    start = time.monotonic()
    try:
        await coro
        return time.monotonic() - start, None
    except StoreUnavailable as e:
        return time.monotonic() - start, e


def test_dead_redis_fails_fast_and_recovers_by_itself(private_redis):
    store = store_for(private_redis)
    check = [LimitCheck("k", "gcra", 100, 60)]

    async def body():
        try:
            await store.rate_limit(check)
            private_redis.kill()
            for _ in range(2):  # connection refused: quick failures that open the breaker
                elapsed, err = await timed(store.rate_limit(check))
                # refused at once, or (a half-read reply on the killed connection) the store's deadline of
                # 2 * TIMEOUT + 0.05 s; the second of slack is a loaded machine's scheduling, not a hang
                assert err is not None and elapsed < 2 * TIMEOUT + 1.0
            assert store.breaker.state == "open"
            before = store.stats.round_trips
            for _ in range(50):
                elapsed, err = await timed(store.rate_limit(check))
                assert err is not None and "circuit open" in str(err)
                assert elapsed < TIMEOUT  # fails without waiting for anything
            assert store.stats.round_trips == before  # nothing even tried the network
            private_redis.start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                elapsed, err = await timed(store.rate_limit(check))
                if err is None:
                    break
                await asyncio.sleep(0.05)
            assert err is None and store.breaker.state == "closed"
            snap = store.breaker.snapshot()
            assert snap["transitions"]["closed->open"] == 1 and snap["transitions"]["half_open->closed"] == 1
        finally:
            await store.close()
    asyncio.run(body())


def test_hung_redis_costs_one_timeout_per_window_not_per_request(private_redis):
    store = store_for(private_redis, failure_threshold=2, open_for=30)
    check = [LimitCheck("k", "gcra", 100, 60)]

    async def body():
        try:
            await store.rate_limit(check)
            private_redis.pause()
            start = time.monotonic()
            results = [await timed(store.rate_limit(check)) for _ in range(20)]
            total = time.monotonic() - start
            assert all(err is not None for _, err in results)
            slow = [e for e, _ in results if e >= TIMEOUT]
            assert len(slow) == 2  # the two calls that opened the breaker waited for the timeout...
            assert max(e for e, _ in results) < 4 * TIMEOUT  # ...and no longer
            assert total < 10 * TIMEOUT  # not 20 timeouts: the other 18 failed fast
        finally:
            private_redis.resume()
            await store.close()
    asyncio.run(body())


def test_concurrent_requests_during_a_hang_each_wait_at_most_the_timeout(private_redis):
    store = store_for(private_redis, failure_threshold=1, open_for=30)
    check = [LimitCheck("k", "gcra", 100, 60)]

    async def body():
        try:
            await asyncio.gather(*(store.rate_limit(check) for _ in range(5)))  # a few pooled connections
            private_redis.pause()
            # A hang fails here instead of stalling the run (nothing answers until the finally below).
            results = await asyncio.wait_for(asyncio.gather(*(timed(store.rate_limit(check)) for _ in range(30))), 30)
            assert all(err is not None for _, err in results)
            # Each call is bounded by the store's deadline (2 * TIMEOUT + 0.05 s); a loaded 2-core VM
            # can add as much again (0.90 s was seen). The bound is half of what the 30 calls would
            # take one timeout after another (6 s): it fails if they queue behind each other, not
            # because the machine is busy.
            assert max(e for e, _ in results) < 30 * TIMEOUT / 2
            later = [await timed(store.rate_limit(check)) for _ in range(10)]
            assert all("circuit open" in str(err) for _, err in later)
        finally:
            private_redis.resume()
            await store.close()
    asyncio.run(body())


def test_ping_reports_readiness(private_redis):
    store = store_for(private_redis, failure_threshold=1, open_for=0.2)

    async def body():
        try:
            assert await store.ping()
            private_redis.kill()
            assert not await store.ping()
            private_redis.start()
            await asyncio.sleep(0.25)
            assert await store.ping()
        finally:
            await store.close()
    asyncio.run(body())


@pytest.mark.parametrize("url", ["http://localhost", "localhost:6379"])
def test_bad_redis_url_is_refused(url):
    from pydantic import ValidationError
    with pytest.raises(ValidationError, match="redis://"):
        RedisConfig(url=url)
