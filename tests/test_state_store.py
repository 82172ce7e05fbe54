"""The state stores themselves: the same answers from memory and from a real Redis."""
from __future__ import annotations

import asyncio
import random
import time

import pytest

from edge.state.config import RedisConfig
from edge.state.memory import MemoryStore
from edge.state.redis_store import RedisStore
from edge.state.store import LimitCheck, ReservationState, StateStore
from tests.support.redis import run_closing

NOW = 1_800_000_000.0  # a fixed instant: boundaries do not depend on how fast the test runs


def run(store: StateStore, body):
    return run_closing(store, lambda: body(store))


@pytest.mark.parametrize("algorithm", ["gcra", "sliding_window"])
def test_n_allowed_then_refused_with_remaining_and_retry(state_store, algorithm):
    async def body(store):
        out = []
        for _ in range(6):
            [r] = await store.rate_limit([LimitCheck("k", algorithm, 5, 60)], now=NOW)
            out.append((r.allowed, r.granted, r.remaining))
        assert out == [(True, 1, 4), (True, 1, 3), (True, 1, 2), (True, 1, 1), (True, 1, 0), (False, 0, 0)]
        assert r.retry_after > 0
        # exactly when the algorithm says, one unit is back
        [later] = await store.rate_limit([LimitCheck("k", algorithm, 5, 60)], now=NOW + r.retry_after)
        assert later.allowed
        [again] = await store.rate_limit([LimitCheck("k", algorithm, 5, 60)], now=NOW + r.retry_after)
        assert not again.allowed
    run(state_store, body)


def test_gcra_timing_is_exact(state_store):
    async def body(store):
        check = LimitCheck("g", "gcra", 5, 60)  # one unit every 12 s, burst 5
        for _ in range(5):
            assert (await store.rate_limit([check], now=NOW))[0].allowed
        [r] = await store.rate_limit([check], now=NOW)
        assert (r.allowed, r.retry_after, r.reset_after) == (False, 12.0, 60.0)
        assert not (await store.rate_limit([check], now=NOW + 11.999))[0].allowed
        [r] = await store.rate_limit([check], now=NOW + 12)
        assert (r.allowed, r.remaining, r.reset_after) == (True, 0, 60.0)
        [r] = await store.rate_limit([check], now=NOW + 12 + 60)
        assert (r.allowed, r.remaining) == (True, 4)
    run(state_store, body)


def test_gcra_survives_a_clock_that_steps_back(state_store):
    async def body(store):
        check = LimitCheck("back", "gcra", 2, 60)  # one unit per 30 s
        assert (await store.rate_limit([check], now=NOW))[0].allowed
        assert (await store.rate_limit([check], now=NOW - 5))[0].allowed  # clock stepped back 5 s
        assert not (await store.rate_limit([check], now=NOW))[0].allowed
        [r] = await store.rate_limit([check], now=NOW + 29)
        assert not r.allowed  # the debt written "in the past" was not forgiven later
        assert (await store.rate_limit([check], now=NOW + 30))[0].allowed
    run(state_store, body)


def test_sliding_window_weights_the_previous_window(state_store):
    async def body(store):
        check = LimitCheck("s", "sliding_window", 10, 10)
        start = (NOW // 10) * 10  # a window boundary
        for _ in range(10):
            assert (await store.rate_limit([check], now=start + 5))[0].allowed
        # 2.5 s into the next window 75% of the previous 10 still count: 2 more fit, not 3
        results = [(await store.rate_limit([check], now=start + 12.5))[0].allowed for _ in range(3)]
        assert results == [True, True, False]
    run(state_store, body)


def test_exact_for_rates_that_do_not_divide_the_window(state_store):
    async def body(store):
        for limit, window in [(7, 60), (3, 1), (1000, 3600), (997, 1)]:
            check = LimitCheck(f"odd:{limit}", "gcra", limit, window)
            granted = [(await store.rate_limit([check], now=NOW))[0].allowed for _ in range(limit + 1)]
            assert granted == [True] * limit + [False], (limit, window)
    run(state_store, body)


def test_cost_is_charged_whole_or_not_at_all(state_store):
    async def body(store):
        check = lambda cost: LimitCheck("c", "gcra", 10, 60, cost)
        assert (await store.rate_limit([check(6)], now=NOW))[0].remaining == 4
        [r] = await store.rate_limit([check(5)], now=NOW)
        assert (r.allowed, r.granted, r.remaining) == (False, 0, 4)
        [r] = await store.rate_limit([check(4)], now=NOW)
        assert (r.allowed, r.remaining) == (True, 0)
    run(state_store, body)


def test_several_limits_all_or_nothing(state_store):
    async def body(store):
        small = LimitCheck("small", "gcra", 2, 60)
        big = LimitCheck("big", "sliding_window", 100, 3600)
        for _ in range(2):
            assert all(r.allowed for r in await store.rate_limit([small, big], now=NOW))
        refused = await store.rate_limit([small, big], now=NOW)
        assert [r.allowed for r in refused] == [False, False]
        assert refused[0].retry_after > 0 and refused[1].retry_after == 0  # 'small' refused, 'big' was fine
        assert refused[1].remaining == 98  # ...and was not charged for the refused request
        [r] = await store.rate_limit([big], now=NOW)
        assert r.remaining == 97
    run(state_store, body)


def test_lease_mode_grants_up_to_max(state_store):
    async def body(store):
        lease = LimitCheck("lease", "gcra", 10, 60, cost=1, max_cost=4)
        grants = [(await store.rate_limit([lease], now=NOW))[0].granted for _ in range(4)]
        assert grants == [4, 4, 2, 0]
    run(state_store, body)


def test_memory_and_redis_agree_on_random_traffic(redis_target, redis_prefix):
    """The Lua script and the Python arithmetic are one algorithm: same answers, unit for unit."""
    async def body(_):
        redis_store = RedisStore(RedisConfig(url=redis_target.url, key_prefix=redis_prefix, timeout=1.0))
        memory = MemoryStore()
        rng = random.Random(4)
        try:
            for case in range(6):
                algorithm = "gcra" if case % 2 == 0 else "sliding_window"
                limit, window = rng.choice([(5, 10), (3, 1), (50, 60), (7, 3)])
                t = NOW + rng.random() * 100
                for step in range(60):
                    t += rng.choice([0, 0, 0.001, 0.05, 0.3, 1.7, window / 3])
                    cost = rng.choice([1, 1, 1, 2, limit])
                    checks = [LimitCheck(f"agree:{case}", algorithm, limit, window, cost),
                              LimitCheck(f"agree:{case}:other", "gcra", limit * 2, window)]
                    a = await memory.rate_limit(checks, now=t)
                    b = await redis_store.rate_limit(checks, now=t)
                    assert a == b, (case, step)
        finally:
            await redis_store.close()
    asyncio.run(body(None))


def test_server_time_is_used_when_no_time_is_given(redis_target, redis_prefix):
    async def body(_):
        store = RedisStore(RedisConfig(url=redis_target.url, key_prefix=redis_prefix, timeout=1.0))
        try:
            check = LimitCheck("servertime", "gcra", 3, 3600)
            results = [(await store.rate_limit([check]))[0] for _ in range(4)]
            assert [r.allowed for r in results] == [True, True, True, False]
            assert 1190 < results[-1].retry_after <= 1200
        finally:
            await store.close()
    asyncio.run(body(None))


def test_every_redis_key_has_a_ttl(redis_target, redis_prefix):
    async def body(_):
        store = RedisStore(RedisConfig(url=redis_target.url, key_prefix=redis_prefix, timeout=1.0))
        try:
            await store.rate_limit([LimitCheck("ttl:g", "gcra", 5, 60), LimitCheck("ttl:s", "sliding_window", 5, 60)])
            r = await store.reserve("ttl-done", "fp", 30)
            await store.complete("ttl-done", "fp", b"record", 86400, r.token)
            await store.reserve("ttl-flight", "fp", 30)
            r = await store.reserve("ttl-unknown", "fp", 30)
            await store.release("ttl-unknown", "fp", r.token, keep_fingerprint=600)
        finally:
            await store.close()
    asyncio.run(body(None))
    client = redis_target.client()
    try:
        keys = list(client.scan_iter(match=f"{redis_prefix}:*"))
        assert len(keys) == 5
        ttls = {k.decode(): client.pttl(k) for k in keys}
        assert all(ttl > 0 for ttl in ttls.values()), ttls
        assert 0 < ttls[f"{redis_prefix}:{{rl}}:ttl:g"] <= 12_000
        assert 60_000 < ttls[f"{redis_prefix}:{{rl}}:ttl:s"] <= 120_000
        assert 0 < ttls[f"{redis_prefix}:{{ttl-flight}}:idem"] <= 30_000
        assert 80_000_000 < ttls[f"{redis_prefix}:{{ttl-done}}:idem"] <= 86_400_000
        assert 0 < ttls[f"{redis_prefix}:{{ttl-unknown}}:idem"] <= 600_000
    finally:
        client.close()


def test_one_evalsha_per_rate_limit_call(private_redis):
    """Four limits, one request: one round trip (counted by the server itself)."""
    async def body(_):
        store = RedisStore(RedisConfig(url=private_redis.url, timeout=1.0))
        try:
            await store.start()  # scripts loaded up front: no NOSCRIPT round trip later
            await store.client.config_resetstat()
            for i in range(10):
                checks = [LimitCheck(f"rt:{n}", "gcra" if n % 2 else "sliding_window", 100, 60) for n in range(4)]
                await store.rate_limit(checks)
            stats = await store.client.info("commandstats")
        finally:
            await store.close()
        return stats
    stats = asyncio.run(body(None))
    calls = {name.removeprefix("cmdstat_"): v["calls"] for name, v in stats.items()}
    calls.pop("config|resetstat", None)
    calls.pop("info", None)
    # the script's own GET/SET/TIME are counted too; everything the client sent is the 10 EVALSHAs
    assert calls.pop("evalsha") == 10
    assert calls == {"time": 10, "get": 40, "set": 40}


def test_reservation_lifecycle(state_store):
    async def body(store):
        first = await store.reserve("idem-1", "fp-a", 30)
        assert first.state is ReservationState.NEW and first.token
        busy = await store.reserve("idem-1", "fp-a", 30)
        assert busy.state is ReservationState.IN_FLIGHT and 0 < busy.retry_after <= 30
        assert (await store.reserve("idem-1", "fp-b", 30)).state is ReservationState.MISMATCH
        assert await store.complete("idem-1", "fp-a", b"the response", 3600, first.token)
        done = await store.reserve("idem-1", "fp-a", 30)
        assert (done.state, done.record) == (ReservationState.COMPLETED, b"the response")
        assert (await store.reserve("idem-1", "fp-b", 30)).state is ReservationState.MISMATCH
        assert not await store.complete("idem-1", "fp-a", b"second", 3600, first.token)  # first answer stays
        assert (await store.reserve("idem-1", "fp-a", 30)).record == b"the response"
    run(state_store, body)


def test_release_only_by_the_owner(state_store):
    async def body(store):
        r = await store.reserve("idem-2", "fp", 30)
        assert not await store.release("idem-2", "fp", "not-the-token")
        assert (await store.reserve("idem-2", "fp", 30)).state is ReservationState.IN_FLIGHT
        assert await store.release("idem-2", "fp", r.token)
        assert (await store.reserve("idem-2", "other-fp", 30)).state is ReservationState.NEW  # key is free again
    run(state_store, body)


def test_release_keeping_the_fingerprint(state_store):
    async def body(store):
        r = await store.reserve("idem-3", "fp", 30)
        assert await store.release("idem-3", "fp", r.token, keep_fingerprint=600)
        assert (await store.reserve("idem-3", "other", 30)).state is ReservationState.MISMATCH
        again = await store.reserve("idem-3", "fp", 30)  # the same request may run again
        assert again.state is ReservationState.NEW
        assert (await store.reserve("idem-3", "fp", 30)).state is ReservationState.IN_FLIGHT
    run(state_store, body)


def test_in_flight_lock_expires(state_store):
    async def body(store):
        await store.reserve("idem-4", "fp", 0.05)
        await asyncio.sleep(0.12)
        assert (await store.reserve("idem-4", "fp", 30)).state is ReservationState.NEW
    run(state_store, body)


def test_memory_store_is_bounded():
    store = MemoryStore(max_rate_keys=1000, max_idempotency_keys=100)

    async def body():
        for i in range(5000):
            await store.rate_limit([LimitCheck(f"k{i}", "gcra", 10, 60)], now=NOW)
        assert len(store._rl) <= 1000
        assert store.evicted > 0
        # the most recently charged keys are the ones kept
        [r] = await store.rate_limit([LimitCheck("k4999", "gcra", 10, 60)], now=NOW)
        assert r.remaining == 8
        for i in range(100):
            await store.reserve(f"r{i}", "fp", 0.05)
        from edge.state.errors import StoreUnavailable
        with pytest.raises(StoreUnavailable, match="full"):
            await store.reserve("one-too-many", "fp", 30)  # never evicts a live reservation
        await asyncio.sleep(0.06)
        assert (await store.reserve("one-too-many", "fp", 30)).state is ReservationState.NEW  # expired ones swept
    asyncio.run(body())


def test_memory_store_expires_rate_state():
    store = MemoryStore()

    async def body():
        check = LimitCheck("exp", "gcra", 2, 1)
        t = time.time()
        await store.rate_limit([check, check.__class__("exp2", "sliding_window", 2, 1)], now=t)
        assert len(store._rl) == 2
        assert store._rl["exp"][0] <= t + 1 and store._rl["exp2"][0] <= t + 2
    asyncio.run(body())
