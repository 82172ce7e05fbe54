"""Completions made in one event-loop turn go to Redis as one pipeline (edge/state/batching.py):
one round trip for the lot, each caller its own answer, failures as each would have failed alone."""
from __future__ import annotations

import asyncio

import pytest

from edge.state.config import BreakerConfig, RedisConfig
from edge.state.errors import StoreUnavailable
from edge.state.redis_store import RedisStore
from edge.state.store import ReservationState


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
        store = RedisStore(RedisConfig(url=private_redis.url, timeout=1.0), batch_completions=batch)
        try:
            keys = [f"cmp-{i}" for i in range(4)]
            tokens = await _reserve(store, keys)
            before = store.stats.round_trips
            assert await asyncio.gather(*(store.complete(k, "fp", b"r", 600, t) for k, t in zip(keys, tokens))) == [True] * 4
            return store.stats.round_trips - before
        finally:
            await store.close()
    assert asyncio.run(body()) == (1 if batch else 4)
