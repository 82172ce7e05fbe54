"""Redis stopped mid-run: keyed requests fail closed, never run twice, and
service comes back by itself."""
from __future__ import annotations

import asyncio
import time

import pytest

from edge.idempotency import BeginState, IdempotencyConfig, IdempotencyEngine, IdempotencyUnavailable, StoredResponse
from edge.state.config import BreakerConfig, RedisConfig
from edge.state.redis_store import RedisStore


def test_required_route_fails_closed_then_recovers(private_redis):
    store = RedisStore(RedisConfig(url=private_redis.url, timeout=0.2,
                                   breaker=BreakerConfig(failure_threshold=1, open_for=0.3)))
    eng = IdempotencyEngine(IdempotencyConfig(routes=[{"match": ["/v1/orders"], "require": True}]), store)

    def begin(key: str):
        return eng.begin("alice", "/v1/orders", key, "POST", "/v1/orders", "", b"{}", {})

    async def body():
        try:
            first = await begin("before")
            assert first.state is BeginState.PROCEED
            private_redis.kill()
            # the response of a call that was running cannot be stored: reported, not raised
            assert not await first.finish(StoredResponse(201, [], b"{}"))
            for _ in range(5):
                with pytest.raises(IdempotencyUnavailable) as info:
                    await begin("during")
                assert info.value.http_status == 503
            private_redis.start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    b = await begin("after")
                    break
                except IdempotencyUnavailable:
                    await asyncio.sleep(0.05)
            assert b.state is BeginState.PROCEED
            await b.finish(StoredResponse(201, [], b'{"ok": true}'))
            assert (await begin("after")).state is BeginState.REPLAY
        finally:
            await store.close()
    asyncio.run(body())
    assert eng.counters.outcomes["unavailable"] >= 5 and eng.counters.outcomes["store_failed"] == 1
