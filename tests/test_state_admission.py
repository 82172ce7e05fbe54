"""A request's rate limits and its Idempotency-Key reservation in one store call (`admit`):
the store itself (memory, Redis, Redis Cluster), then the limiter and the engine using it.

The rules under test (docs/state.md, "Admission"): the reservation is taken only when the limits
admit the request, so a 429 leaves none behind; a request refused after its key was taken (a
store failure's mode refuses it, a body that does not decode) gives the key back; a replay, a
conflict or a mismatch is charged one unit, as when the two ran one after the other.
"""
from __future__ import annotations

import asyncio

import pytest
from redis.crc import key_slot

from edge.idempotency import (BeginState, IdempotencyConfig, IdempotencyEngine, IdempotencyUnavailable,
                              StoredResponse)
from edge.ratelimit import RateLimitConfig, RateLimitContext, RateLimiter, RateLimitPolicy
from edge.state.config import BreakerConfig, RedisConfig
from edge.state.errors import StoreUnavailable
from edge.state.memory import MemoryStore
from edge.state.redis_store import RedisStore
from edge.state.store import LimitCheck, ReservationState, ReserveRequest, give_back
from tests.support.redis import run_closing

NOW = 1_800_000_000.0


def request(key: str, fp: str = "fp") -> ReserveRequest:
    return ReserveRequest(key, fp, 30, 600)


def limit(n: int) -> list[LimitCheck]:
    return [LimitCheck("per-user", "gcra", n, 60), LimitCheck("per-ip", "sliding_window", 100, 60)]


# ---- the store --------------------------------------------------------------------------


def test_the_reservation_is_taken_only_when_the_limits_admit(state_store):
    async def body():
        first = await state_store.admit(limit(2), request("a"), NOW)
        assert first.limits[0].allowed and first.limits[0].remaining == 1
        assert first.reservation.state is ReservationState.NEW and first.reservation.token
        assert not first.reservation.resumed
        assert (await state_store.admit(limit(2), request("b"), NOW)).reservation.state is ReservationState.NEW
        refused = await state_store.admit(limit(2), request("c"), NOW)
        assert not refused.limits[0].allowed and refused.limits[0].retry_after > 0
        assert refused.reservation is None
        # nothing was left behind: the key is free, not in flight
        assert (await state_store.reserve("c", "fp", 30)).state is ReservationState.NEW
        # and the refusal charged nothing (all or nothing, as rate_limit alone)
        assert refused.limits[1].remaining == 98
    run_closing(state_store, body)


def test_replays_conflicts_and_mismatches_are_charged_once(state_store):
    async def body():
        new = await state_store.admit(limit(10), request("k"), NOW)
        assert new.limits[0].remaining == 9
        conflict = await state_store.admit(limit(10), request("k"), NOW)
        assert conflict.reservation.state is ReservationState.IN_FLIGHT and 0 < conflict.reservation.retry_after <= 30
        assert conflict.limits[0].remaining == 8
        assert await state_store.complete("k", "fp", b"stored", 600, new.reservation.token)
        replay = await state_store.admit(limit(10), request("k"), NOW)
        assert (replay.reservation.state, replay.reservation.record) == (ReservationState.COMPLETED, b"stored")
        assert replay.limits[0].remaining == 7
        mismatch = await state_store.admit(limit(10), request("k", "other"), NOW)
        assert mismatch.reservation.state is ReservationState.MISMATCH and mismatch.limits[0].remaining == 6
    run_closing(state_store, body)


def test_a_resumed_key_given_back_stays_bound_to_its_fingerprint(state_store):
    async def body():
        first = await state_store.reserve("u", "fp", 30)
        assert await state_store.release("u", "fp", first.token, keep_fingerprint=600)  # outcome unknown
        again = await state_store.admit(limit(5), request("u"), NOW)
        assert again.reservation.state is ReservationState.NEW and again.reservation.resumed
        assert await give_back(state_store, request("u"), again.reservation)
        assert (await state_store.reserve("u", "other", 30)).state is ReservationState.MISMATCH
        fresh = await state_store.admit(limit(5), request("fresh"), NOW)
        assert await give_back(state_store, request("fresh"), fresh.reservation)
        assert (await state_store.reserve("fresh", "other", 30)).state is ReservationState.NEW  # deleted
        assert not await give_back(state_store, request("fresh"), None)
    run_closing(state_store, body)


def test_memory_and_redis_admit_alike(redis_target, redis_prefix):
    """The same sequence of admissions, completions and refusals, answered the same way."""
    stores = [MemoryStore(), RedisStore(RedisConfig(url=redis_target.url, key_prefix=redis_prefix, timeout=1.0))]

    async def answers(store):
        out = []
        try:
            for i in range(12):
                a = await store.admit(limit(8), request(f"k{i % 5}", f"fp{i % 7 == 6}"), NOW + i)
                r = a.reservation
                out.append((a.limits[0].allowed, a.limits[0].remaining, a.limits[1].remaining,
                            None if r is None else (r.state, r.record, r.resumed)))
                if r is not None and r.state is ReservationState.NEW and i % 3 == 0:
                    await store.complete(f"k{i % 5}", f"fp{i % 7 == 6}", b"r%d" % i, 600, r.token)
        finally:
            await store.close()
        return out

    memory, redis = (asyncio.run(answers(s)) for s in stores)
    assert memory == redis
    assert [a[0] for a in memory].count(False) > 0  # the run reached refusals
    assert {a[3][0] for a in memory if a[3]} >= {ReservationState.NEW, ReservationState.COMPLETED,
                                                  ReservationState.IN_FLIGHT}


def test_one_evalsha_per_admission(private_redis):
    """The limits and the reservation: one command, counted by the server itself."""
    async def body():
        store = RedisStore(RedisConfig(url=private_redis.url, timeout=1.0))
        try:
            await store.start()
            await store.client.config_resetstat()
            for i in range(10):
                a = await store.admit(limit(100), request(f"one-{i}"))
                assert a.reservation.state is ReservationState.NEW
            assert store.stats.by_operation == {"admit": 10}
            return await store.client.info("commandstats")
        finally:
            await store.close()
    calls = {name.removeprefix("cmdstat_"): v["calls"] for name, v in asyncio.run(body()).items()}
    calls.pop("config|resetstat", None)
    calls.pop("info", None)
    assert calls.pop("evalsha") == 10
    assert set(calls) <= {"time", "get", "set", "hmget", "hset", "pexpire"}  # run by the script, not sent


def test_a_store_that_cannot_answer_says_so_for_both_parts(unused_port):
    store = RedisStore(RedisConfig(url=f"redis://127.0.0.1:{unused_port}/0", timeout=0.2,
                                   breaker=BreakerConfig(failure_threshold=1, open_for=30)))

    async def body():
        a = await store.admit(limit(5), request("down"))
        assert isinstance(a.limits, StoreUnavailable) and a.reservation is a.limits
        assert store.stats.round_trips == 1
    run_closing(store, body)


def test_a_full_memory_table_refuses_the_reservation_not_the_charge():
    store = MemoryStore(max_idempotency_keys=1)

    async def body():
        assert (await store.admit(limit(5), request("one"), NOW)).reservation.state is ReservationState.NEW
        full = await store.admit(limit(5), request("two"), NOW)
        assert full.limits[0].allowed and full.limits[0].remaining == 3
        assert isinstance(full.reservation, StoreUnavailable)
        assert store.stats.round_trips == 2
    run_closing(store, body)


# ---- Redis Cluster: the two parts hash to different slots --------------------------------


def _key_on_another_node(cluster_store: RedisStore, avoid_slot_of: str) -> str:
    nodes = cluster_store.client.nodes_manager
    avoid = nodes.get_node_from_slot(key_slot(avoid_slot_of.encode())).name
    for i in range(1000):
        key = f"cluster-{i:04d}"
        if nodes.get_node_from_slot(key_slot(f"edge:{{{key}}}:idem".encode())).name != avoid:
            return key
    raise AssertionError("no key outside the rate-limit shard")


def test_cluster_admission_runs_the_two_concurrently_and_releases_on_refusal(redis_cluster):
    store = RedisStore(RedisConfig(url=redis_cluster[0].url, cluster=True, timeout=1.0))

    async def body():
        await store.start()
        key = _key_on_another_node(store, "edge:{rl}:x")
        assert key_slot(f"edge:{{{key}}}:idem".encode()) != key_slot(b"edge:{rl}:x")
        a = await store.admit(limit(1), request(key))
        assert a.limits[0].allowed and a.reservation.state is ReservationState.NEW
        assert store.stats.by_operation == {"rate_limit": 1, "reserve": 1}
        assert await store.complete(key, "fp", b"done", 600, a.reservation.token)
        refused = await store.admit(limit(1), request(key + "-b"))
        assert not refused.limits[0].allowed and refused.reservation is None
        assert (await store.reserve(key + "-b", "fp", 30)).state is ReservationState.NEW  # released
        # a resumed key the limits refused stays bound to its fingerprint
        first = await store.reserve(key + "-u", "fp", 30)
        await store.release(key + "-u", "fp", first.token, keep_fingerprint=600)
        assert (await store.admit(limit(1), request(key + "-u"))).reservation is None
        assert (await store.reserve(key + "-u", "other", 30)).state is ReservationState.MISMATCH
    run_closing(store, body)


def test_cluster_rate_limit_shard_down_a_closed_policy_gives_the_key_back(redis_cluster):
    """The shard of every rate-limit key dies; the record's shard answers. A policy that fails
    closed refuses the request (503), and the reservation taken beside it is released."""
    store = RedisStore(RedisConfig(url=redis_cluster[0].url, cluster=True, timeout=0.3,
                                   breaker=BreakerConfig(failure_threshold=100, open_for=1)))
    config = RateLimitConfig(policies=[RateLimitPolicy(name="p", limit=10, window=60, key="global",
                                                       on_store_failure="closed")])
    limiter = RateLimiter(config, store)
    ctx = RateLimitContext("alice", None, "192.0.2.1", "/v1/orders", http_method="POST")

    async def body():
        await store.start()
        key = _key_on_another_node(store, "edge:{rl}:x")
        assert (await limiter.check(ctx)).allowed  # connections to every shard are open
        rl_node = store.client.nodes_manager.get_node_from_slot(key_slot(b"edge:{rl}:x"))
        next(n for n in redis_cluster if n.port == rl_node.port).kill()
        reserve = request(key)
        decision = await limiter.check(ctx, reserve=reserve)
        assert not decision.allowed and decision.store_status == "unavailable"
        assert reserve.answer is None
        assert (await store.reserve(key, "fp", 30)).state is ReservationState.NEW  # given back, not in flight
    run_closing(store, body)


# ---- the limiter and the engine together -------------------------------------------------


class Keyed:
    """One gateway's limiter and idempotency engine on one store, and a keyed POST through both,
    in the order the pipeline uses: prepare, charge with the reservation, (decode), begin."""

    def __init__(self, store, *, limit_per_minute: int = 100, hybrid: bool = False, **idempotency) -> None:
        self.store = store
        self.limiter = RateLimiter(RateLimitConfig(
            policies=[RateLimitPolicy(name="per-user", limit=limit_per_minute, window=60)],
            hybrid={"enabled": hybrid, "batch": 10}), store)
        self.engine = IdempotencyEngine(IdempotencyConfig(**idempotency), store)

    def prepare(self, key: str, body: bytes = b'{"n": 1}'):
        return self.engine.prepare("alice", "POST /v1/orders", key, "POST", "/v1/orders", [], body, {}, deadline=5)

    async def charge(self, reserving):
        ctx = RateLimitContext("alice", None, "192.0.2.1", "/v1/orders", http_method="POST")
        return await self.limiter.check(ctx, reserve=reserving.request if reserving else None)

    async def post(self, key: str, body: bytes = b'{"n": 1}'):
        reserving = self.prepare(key, body)
        decision = await self.charge(reserving)
        if not decision.allowed:
            return decision, None
        return decision, await self.engine.begin("alice", "POST /v1/orders", key, "POST", "/v1/orders", [], body, {},
                                                 deadline=5, reserving=reserving)


def test_a_keyed_request_costs_one_round_trip_and_a_replay_one_unit(state_store):
    gw = Keyed(state_store)

    async def body():
        before = state_store.stats.round_trips
        decision, begin = await gw.post("k-1")
        assert state_store.stats.round_trips - before == 1
        assert decision.allowed and decision.policies_applied[0].remaining == 99
        assert begin.state is BeginState.PROCEED and begin.active
        await begin.finish(StoredResponse(201, [], b"made"))
        before = state_store.stats.round_trips
        decision, replay = await gw.post("k-1")
        assert state_store.stats.round_trips - before == 1
        assert replay.state is BeginState.REPLAY and replay.stored_response.body == b"made"
        assert decision.policies_applied[0].remaining == 98  # charged once, like any request
        _, conflict_owner = await gw.post("k-2")
        _, conflict = await gw.post("k-2")
        assert conflict.state is BeginState.CONFLICT_IN_FLIGHT
        _, mismatch = await gw.post("k-1", b'{"n": 2}')
        assert mismatch.state is BeginState.MISMATCH
        assert gw.engine.counters.outcomes == {"new": 2, "stored": 1, "replayed": 1, "conflict": 1, "mismatch": 1}
    run_closing(state_store, body)


def test_a_429_leaves_no_reservation(state_store):
    gw = Keyed(state_store, limit_per_minute=1)

    async def body():
        assert (await gw.post("first"))[1].state is BeginState.PROCEED
        decision, begin = await gw.post("second")
        assert not decision.allowed and decision.retry_after >= 1 and begin is None
        # the key is free: its retry, once the limit allows, runs instead of getting a 409
        assert (await state_store.reserve(gw.prepare("second").request.key,
                                          gw.prepare("second").request.fingerprint, 30)).state is ReservationState.NEW
    run_closing(state_store, body)


def test_a_request_refused_after_admission_gives_the_key_back(state_store):
    """The body did not decode (400) after the charge reserved the key: released, and counted."""
    gw = Keyed(state_store)

    async def body():
        reserving = gw.prepare("bad-body")
        assert (await gw.charge(reserving)).allowed
        assert reserving.request.answer.state is ReservationState.NEW
        assert await gw.engine.give_back(reserving)
        assert gw.engine.counters.outcomes["released"] == 1
        assert not await gw.engine.give_back(reserving)  # once
        assert not await gw.engine.give_back(None)
        _, retry = await gw.post("bad-body")
        assert retry.state is BeginState.PROCEED and retry.active  # runs, not 409
    run_closing(state_store, body)


def test_nothing_to_reserve_ahead_leaves_begin_as_it_was(state_store):
    """No key, a malformed key, a method idempotency does not cover: prepare says None and begin
    answers in its own place (400 for the bad key after the charge, as before)."""
    gw = Keyed(state_store)
    assert gw.prepare(None) is None
    assert gw.prepare("x" * 300) is None
    assert gw.engine.prepare("alice", "GET /v1/orders", "k", "GET", "/v1/orders", [], b"", {}) is None
    assert gw.engine.counters.outcomes == {}
    run_closing(state_store, lambda: asyncio.sleep(0))


def test_hybrid_lease_hits_reserve_alone_in_one_trip(redis_target, redis_prefix):
    store = RedisStore(RedisConfig(url=redis_target.url, key_prefix=redis_prefix, timeout=1.0))
    gw = Keyed(store, hybrid=True)

    async def body():
        await store.start()
        await gw.post("lease-0")  # refills the lease: the reservation rides along
        assert store.stats.by_operation == {"admit": 1}
        for i in range(1, 4):
            before = store.stats.round_trips
            decision, begin = await gw.post(f"lease-{i}")
            assert decision.store_status == "lease" and begin.state is BeginState.PROCEED
            assert store.stats.round_trips - before == 1
        assert store.stats.by_operation == {"admit": 1, "reserve": 3}
    run_closing(store, body)


def test_store_down_one_failed_call_then_each_failure_mode(unused_port):
    """Redis unreachable: the one call fails once; the limit degrades to local counting and the
    key, which the store could not vouch for, is refused (503) without asking again."""
    store = RedisStore(RedisConfig(url=f"redis://127.0.0.1:{unused_port}/0", timeout=0.2,
                                   breaker=BreakerConfig(failure_threshold=5, open_for=30)))
    gw = Keyed(store)

    async def body():
        reserving = gw.prepare("k")
        decision = await gw.charge(reserving)
        assert decision.allowed and decision.store_status == "degraded"
        assert isinstance(reserving.request.answer, StoreUnavailable)
        with pytest.raises(IdempotencyUnavailable):
            await gw.engine.begin("alice", "POST /v1/orders", "k", "POST", "/v1/orders", [], b'{"n": 1}', {},
                                  deadline=5, reserving=reserving)
        assert store.stats.round_trips == 1 and store.stats.errors == 1
    run_closing(store, body)
