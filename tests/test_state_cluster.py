"""The Redis store on a real three-node Redis Cluster: one request's keys share a
slot (so one script can touch them all) and idempotency records spread out."""
from __future__ import annotations

import asyncio
import time

import pytest

from edge.state.config import BreakerConfig, RedisConfig
from edge.state.errors import StoreUnavailable
from edge.state.redis_store import RedisStore
from edge.state.store import LimitCheck, ReservationState


def test_store_on_a_redis_cluster(redis_cluster):
    store = RedisStore(RedisConfig(url=redis_cluster[0].url, cluster=True, timeout=1.0))

    async def body():
        try:
            await store.start()
            checks = [LimitCheck(f"g:p{i}:5/60000:u=alice", "gcra" if i % 2 else "sliding_window", 5, 60)
                      for i in range(4)]
            results = [await store.rate_limit(checks) for _ in range(6)]
            assert [r[0].allowed for r in results] == [True] * 5 + [False]
            for i in range(40):
                key = f"{i:064x}"
                r = await store.reserve(key, "fp", 30)
                assert r.state is ReservationState.NEW
                assert await store.complete(key, "fp", b"resp", 600, r.token)
                done = await store.reserve(key, "fp", 30)
                assert (done.state, done.record) == (ReservationState.COMPLETED, b"resp")
        finally:
            await store.close()
    asyncio.run(body())

    per_node = []
    for node in redis_cluster:
        with node.client() as c:
            keys = list(c.scan_iter(match="edge:*"))
            assert all(c.pttl(k) > 0 for k in keys)
            per_node.append(keys)
    rate_keys = [k for keys in per_node for k in keys if b"{rl}" in k]
    assert len(rate_keys) == 4 and sum(1 for keys in per_node if any(b"{rl}" in k for k in keys)) == 1
    assert all(sum(1 for k in keys if k.endswith(b":idem")) > 0 for keys in per_node)  # spread over all three


def test_cluster_outage_fails_fast(redis_cluster):
    store = RedisStore(RedisConfig(url=redis_cluster[0].url, cluster=True, timeout=0.2,
                                   breaker=BreakerConfig(failure_threshold=1, open_for=30)))

    async def body():
        try:
            # The cluster's discovery and a connection to every primary (SCRIPT LOAD goes to all),
            # under start()'s longer bound: on a loaded machine they can take longer than the 0.2 s
            # this store gives a call, and one failure would open the breaker before the outage.
            await store.start()
            await store.rate_limit([LimitCheck("k", "gcra", 5, 60)])
            for node in redis_cluster:
                node.kill()
            start = time.monotonic()
            for _ in range(10):
                with pytest.raises(StoreUnavailable):
                    await store.reserve("k", "fp", 30)
            assert time.monotonic() - start < 2.0  # one bounded wait, then the breaker answers
            assert store.breaker.state == "open"
        finally:
            await store.close()
    asyncio.run(body())


def test_a_restarted_cluster_node_is_noticed(redis_cluster):
    """Every node's run_id is read when a connection to it opens; a node that comes back (empty:
    no AOF) under a new run_id is reported to the restart listeners, before anything runs on it."""
    store = RedisStore(RedisConfig(url=redis_cluster[0].url, cluster=True, timeout=1.0,
                                   breaker=BreakerConfig(failure_threshold=1, open_for=0.1)))
    heard: list[tuple[str, bool]] = []
    store.restart_listeners.append(lambda node, persistent: heard.append((node, persistent)))
    victim = redis_cluster[1]

    async def touch_every_node() -> None:
        for i in range(40):  # idempotency records spread over every shard
            await store.reserve(f"restart-{i:060x}", "fp", 30)

    async def body():
        try:
            await touch_every_node()
            assert heard == []
            victim.kill()
            victim.start()  # same port, directory and nodes.conf: it rejoins with its slots
            deadline = time.monotonic() + 30
            while True:
                try:
                    await touch_every_node()
                    break
                except StoreUnavailable:
                    assert time.monotonic() < deadline, "the cluster did not serve again"
                    await asyncio.sleep(0.1)
        finally:
            await store.close()
    asyncio.run(body())
    assert heard == [(f"127.0.0.1:{victim.port}", False)]
    assert store.restarts == 1
