"""Redis stopped mid-run: keyed requests fail closed, never run twice, and
service comes back by itself."""
from __future__ import annotations

import asyncio
import time

import pytest

from edge.idempotency import BeginState, IdempotencyConfig, IdempotencyEngine, IdempotencyUnavailable, StoredResponse
from edge.state.config import BreakerConfig, RedisConfig
from edge.state.redis_store import RedisStore
from tests.support.redis import run_closing


def test_required_route_fails_closed_then_recovers(private_redis):
    store = RedisStore(RedisConfig(url=private_redis.url, timeout=0.2,
                                   breaker=BreakerConfig(failure_threshold=1, open_for=0.3)))
    # the restart below is noticed (a new run_id) and holds keyed requests for the longest lock: short here
    eng = IdempotencyEngine(IdempotencyConfig(routes=[{"match": ["/v1/orders"], "require": True}]), store,
                            longest_lock=0.5)

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
    assert eng.counters.store_restarts == 1 and eng.counters.outcomes["restart_hold"] == 1
    assert eng.counters.outcomes["stored_late"] == 1  # the response of the call that was running, once Redis was back


@pytest.mark.parametrize(("aof", "mode", "holds"), [
    (False, "auto", True),     # the restart emptied Redis: the locks of running requests are gone
    (True, "auto", False),     # the AOF brought them back
    (True, "always", True),
    (False, "never", False),
])
def test_restart_hold_modes(start_private_redis, aof, mode, holds):
    server = start_private_redis(*(["--appendonly", "yes", "--appendfsync", "always"] if aof else []))
    store = RedisStore(RedisConfig(url=server.url, timeout=0.2, breaker=BreakerConfig(failure_threshold=1,
                                                                                       open_for=0.05)))
    eng = IdempotencyEngine(IdempotencyConfig(restart_hold=mode), store, longest_lock=30)

    def begin(key: str):
        return eng.begin("alice", "POST /v1/orders", key, "POST", "/v1/orders", "", b"{}", {}, deadline=5)

    async def body():
        assert (await begin("before")).state is BeginState.PROCEED
        server.kill()
        server.start()
        deadline = time.monotonic() + 10
        while True:  # the first calls may meet the connections the restart broke
            try:
                return await begin("after")
            except IdempotencyUnavailable as e:
                if "restarted" in e.message or time.monotonic() > deadline:
                    return e
                await asyncio.sleep(0.06)

    outcome = run_closing(store, body)
    assert store.restarts == 1 and eng.counters.store_restarts == 1
    if holds:
        assert isinstance(outcome, IdempotencyUnavailable), outcome
        assert outcome.http_status == 503 and 25 <= outcome.retry_after <= 30  # the rest of the 30 s hold
        assert eng.counters.outcomes["restart_hold"] == 1
    else:
        assert outcome.state is BeginState.PROCEED and eng.counters.outcomes["restart_hold"] == 0


def test_a_hold_runs_unprotected_where_on_store_failure_is_proceed(private_redis):
    store = RedisStore(RedisConfig(url=private_redis.url, timeout=0.2))
    eng = IdempotencyEngine(IdempotencyConfig(on_store_failure="proceed", routes=[{"match": "/v1/pay", "require": True}]),
                            store, longest_lock=30)

    async def body():
        await begin(eng, "/v1/orders", "k0")  # a first connection: the run_id to compare with
        private_redis.kill()
        private_redis.start()
        deadline = time.monotonic() + 10
        while not eng.counters.store_restarts:
            assert time.monotonic() < deadline
            try:
                await begin(eng, "/v1/orders", "k1")
            except IdempotencyUnavailable:
                await asyncio.sleep(0.05)
        optional = await begin(eng, "/v1/orders", "k2")
        with pytest.raises(IdempotencyUnavailable) as required:
            await begin(eng, "/v1/pay", "k3")
        return optional, required.value

    optional, required = run_closing(store, body)
    assert optional.state is BeginState.PROCEED and not optional.active  # run, without deduplication
    assert "restarted" in required.message  # a route that requires keys never runs unprotected


def begin(eng, route: str, key: str):
    return eng.begin("alice", f"POST {route}", key, "POST", route, "", b"{}", {}, deadline=5)


def test_responses_kept_while_the_store_is_down_are_bounded_and_flushed_on_close(private_redis):
    store = RedisStore(RedisConfig(url=private_redis.url, timeout=0.2, breaker=BreakerConfig(failure_threshold=100)))
    eng = IdempotencyEngine(IdempotencyConfig(max_pending_bytes=300, restart_hold="never"), store)

    async def body():
        begun = [await begin(eng, "/v1/orders", f"k{i}") for i in range(3)]
        private_redis.kill()
        for b in begun:  # ~110 bytes each once encoded: two fit in 300, the third is dropped
            assert not await b.finish(StoredResponse(201, [], b"x" * 80))
        assert eng.pending == 2 and eng.counters.outcomes["store_dropped"] == 1
        private_redis.start()
        await eng.close()  # one last attempt each, now that Redis is back
        assert eng.pending == 0
        return [(await begin(eng, "/v1/orders", f"k{i}")).state for i in range(3)]

    states = run_closing(store, body)
    # the two kept responses were stored; the dropped one's key was never completed (the restart
    # emptied Redis, so its retry runs again: what max_pending_bytes costs)
    assert states == [BeginState.REPLAY, BeginState.REPLAY, BeginState.PROCEED]
    assert eng.counters.outcomes["stored_late"] == 2


def test_longest_lock_follows_the_longest_deadline():
    from edge.config import GatewayConfig
    from edge.runtime import longest_lock

    def config(**sections) -> GatewayConfig:
        return GatewayConfig.model_validate({"listen": {"plaintext": True}, "idempotency": {}, **sections,
                                             "backends": [{"name": "a", "target": "a:1", "max_timeout": "20s"},
                                                          {"name": "b", "target": "b:1", "max_timeout": "45s"}]})

    assert longest_lock(config()) == 46.0                                   # backend b, + lock_margin
    assert longest_lock(config(batch={"max_timeout": "90s"})) == 91.0       # the batch's own deadline
    assert longest_lock(config(batch=None, idempotency={"lock_margin": "2s"})) == 47.0
    assert longest_lock(config(idempotency={"max_lock_ttl": "30s"})) == 30.0
