"""Calls of one script made in one event-loop turn go to Redis as one pipeline (edge/state/batching.py):
rate-limit charges, admissions (charge + reservation) and completions. One round trip for the lot,
each caller its own answer in the order the calls were made, failures as each would have failed alone."""
from __future__ import annotations

import asyncio

import pytest

from edge.state.config import BreakerConfig, RedisConfig
from edge.state.errors import StoreUnavailable
from edge.state.redis_store import RedisStore
from edge.state.store import LimitCheck, ReservationState, ReserveRequest


def _store(url: str, **kw) -> RedisStore:
    return RedisStore(RedisConfig(url=url, timeout=1.0, **kw))


async def _reserve(store: RedisStore, keys: list[str]) -> list[str]:
    return [(await store.reserve(k, "fp", 30)).token for k in keys]


def test_completions_of_one_turn_are_one_round_trip_with_their_own_answers(private_redis):
    async def body():
        store = _store(private_redis.url)
        try:
            await store.start()
            keys = [f"batch-{i}" for i in range(8)]
            tokens = await _reserve(store, keys)
            assert await store.complete("batch-0", "fp", b"first", 600, tokens[0])  # completed before the turn
            await store.client.config_resetstat()
            before = store.stats.round_trips
            answers = await asyncio.gather(
                store.complete("batch-0", "fp", b"again", 600, tokens[0]),  # already completed: not stored
                store.complete("batch-1", "other-fp", b"x", 600, tokens[1]),  # another request's key: not stored
                *(store.complete(k, "fp", b"rec-" + k.encode(), 600, t) for k, t in zip(keys[2:], tokens[2:])))
            assert answers == [False, False] + [True] * 6
            assert store.stats.round_trips - before == 1
            evalsha = (await store.client.info("commandstats"))["cmdstat_evalsha"]["calls"]
            assert evalsha == 8  # every script ran, in one pipeline
            for k in keys[2:]:
                done = await store.reserve(k, "fp", 30)
                assert (done.state, done.record) == (ReservationState.COMPLETED, b"rec-" + k.encode())
            assert (await store.reserve("batch-0", "fp", 30)).record == b"first"
        finally:
            await store.close()
    asyncio.run(body())


def test_a_completion_alone_is_sent_at_once(private_redis):
    async def body():
        store = _store(private_redis.url)
        try:
            [token] = await _reserve(store, ["alone"])
            before = store.stats.round_trips
            assert await store.complete("alone", "fp", b"r", 600, token)
            assert store.stats.round_trips - before == 1
        finally:
            await store.close()
    asyncio.run(body())


def test_an_emptied_redis_gets_the_script_again(private_redis):
    """Restarted without persistence: the script cache is empty too; the pipeline's NOSCRIPT
    answers are sent again after a SCRIPT LOAD, and each completion is stored once."""
    async def body():
        store = _store(private_redis.url, breaker=BreakerConfig(failure_threshold=100, open_for=0.1))
        try:
            await store.start()
            keys = [f"restart-{i}" for i in range(5)]
            tokens = await _reserve(store, keys)
            private_redis.kill()
            private_redis.start()
            for _ in range(50):  # the first command after the restart may meet the dead connection
                try:
                    await store.ping()
                    if await store.client.ping():
                        break
                except Exception:
                    await asyncio.sleep(0.05)
            answers = await asyncio.gather(*(store.complete(k, "fp", b"r", 600, t) for k, t in zip(keys, tokens)))
            assert answers == [True] * 5
            for k in keys:
                assert (await store.reserve(k, "fp", 30)).state is ReservationState.COMPLETED
        finally:
            await store.close()
    asyncio.run(body())


def test_a_failed_pipeline_fails_each_completion(unused_port):
    async def body():
        store = _store(f"redis://127.0.0.1:{unused_port}/0")
        try:
            answers = await asyncio.gather(*(store.complete(f"k{i}", "fp", b"r", 600, "t") for i in range(4)),
                                           return_exceptions=True)
            assert all(isinstance(a, StoreUnavailable) for a in answers)
            assert store.stats.round_trips == 1 and store.stats.errors == 1
        finally:
            await store.close()
    asyncio.run(body())


def test_a_cancelled_caller_does_not_unstore_the_others(private_redis):
    async def body():
        store = _store(private_redis.url)
        try:
            keys = ["c-0", "c-1", "c-2"]
            tokens = await _reserve(store, keys)
            tasks = [asyncio.ensure_future(store.complete(k, "fp", b"r", 600, t)) for k, t in zip(keys, tokens)]
            await asyncio.sleep(0)  # all three are waiting for the turn's pipeline
            tasks[0].cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert isinstance(results[0], asyncio.CancelledError) and results[1:] == [True, True]
            for k in keys:  # the pipeline was already on its way: the cancelled one is stored too
                assert (await store.reserve(k, "fp", 30)).state is ReservationState.COMPLETED
        finally:
            await store.close()
    asyncio.run(body())


@pytest.mark.parametrize("batch", [True, False])
def test_batching_can_be_turned_off_for_comparison(private_redis, batch):
    async def body():
        store = RedisStore(RedisConfig(url=private_redis.url, timeout=1.0), batch=batch)
        try:
            keys = [f"cmp-{i}" for i in range(4)]
            tokens = await _reserve(store, keys)
            before = store.stats.round_trips
            assert await asyncio.gather(*(store.complete(k, "fp", b"r", 600, t) for k, t in zip(keys, tokens))) == [True] * 4
            return store.stats.round_trips - before
        finally:
            await store.close()
    assert asyncio.run(body()) == (1 if batch else 4)


def _check(key: str, limit: int = 3) -> LimitCheck:
    return LimitCheck(key=key, algorithm="gcra", limit=limit, window=60.0)


def test_charges_of_one_turn_are_one_round_trip_and_count_like_one_by_one(private_redis):
    """Five charges of a limit of three, made in one turn: the first three admitted, the last
    two refused, as if sent one after another; every script ran, in one round trip."""
    async def body():
        store = _store(private_redis.url)
        try:
            await store.start()
            await store.client.config_resetstat()
            before = store.stats.round_trips
            answers = await asyncio.gather(*(store.rate_limit([_check("turn")]) for _ in range(5)))
            assert [a[0].allowed for a in answers] == [True, True, True, False, False]
            assert [a[0].remaining for a in answers[:3]] == [2, 1, 0]
            assert store.stats.round_trips - before == 1
            assert (await store.client.info("commandstats"))["cmdstat_evalsha"]["calls"] == 5
        finally:
            await store.close()
    asyncio.run(body())


def test_admissions_of_one_turn_are_one_round_trip_in_order(private_redis):
    """Two admissions with the same key in one turn: the first takes the reservation, the second
    meets it in flight (a 409), exactly as two calls one after the other; a third, refused by
    its limit, reserves nothing."""
    async def body():
        store = _store(private_redis.url)
        try:
            await store.start()
            request = lambda key: ReserveRequest(key=key, fingerprint="fp", lock_ttl=30, keep_resumed=60)
            await store.rate_limit([_check("full", limit=1)])  # spends the only unit of "full"
            before = store.stats.round_trips
            first, second, refused = await asyncio.gather(
                store.admit([_check("a")], request("same")),
                store.admit([_check("b")], request("same")),
                store.admit([_check("full", limit=1)], request("never")))
            assert store.stats.round_trips - before == 1
            assert first.limits[0].allowed and first.reservation.state is ReservationState.NEW
            assert second.limits[0].allowed and second.reservation.state is ReservationState.IN_FLIGHT
            assert not refused.limits[0].allowed and refused.reservation is None
            assert (await store.reserve("never", "fp", 30)).state is ReservationState.NEW  # nothing was held
        finally:
            await store.close()
    asyncio.run(body())


def test_a_charge_whose_caller_left_before_its_turn_is_not_sent(private_redis):
    """A client that hung up while its charge waited for the turn's pipeline is not charged."""
    async def body():
        store = _store(private_redis.url)
        try:
            await store.start()
            await store.client.config_resetstat()
            left = asyncio.ensure_future(store.rate_limit([_check("left", limit=1)]))
            stays = asyncio.ensure_future(store.rate_limit([_check("stays")]))
            await asyncio.sleep(0)  # both wait for the turn's pipeline
            left.cancel()
            results = await asyncio.gather(left, stays, return_exceptions=True)
            assert isinstance(results[0], asyncio.CancelledError) and results[1][0].allowed
            assert (await store.client.info("commandstats"))["cmdstat_evalsha"]["calls"] == 1
            assert (await store.rate_limit([_check("left", limit=1)]))[0].allowed  # its one unit is still there
        finally:
            await store.close()
    asyncio.run(body())


def test_a_failed_pipeline_fails_each_admission_as_one_failure(unused_port):
    async def body():
        store = _store(f"redis://127.0.0.1:{unused_port}/0")
        try:
            answers = await asyncio.gather(*(store.admit([_check(f"k{i}")], ReserveRequest(f"k{i}", "fp", 30, 60))
                                             for i in range(3)))
            for a in answers:
                assert isinstance(a.limits, StoreUnavailable) and a.reservation is a.limits
            assert store.stats.round_trips == 1 and store.stats.errors == 1
        finally:
            await store.close()
    asyncio.run(body())
