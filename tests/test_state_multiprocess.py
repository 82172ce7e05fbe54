"""Two OS processes (spawned, as two gateways would be) sharing one Redis:
a limit of N admits N in total, and one Idempotency-Key runs once.

Engine level: both processes run the real engines against the real Redis;
the HTTP-level two-gateway test lives with the app's tests.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import os
from typing import Any

import orjson
import pytest

from tests.support.redis import RedisTarget, delete_prefix

LIMIT = 100
REQUESTS_PER_PROCESS = 150
CONCURRENCY = 8  # in-flight requests per process
IDEM_CLIENTS_PER_PROCESS = 25
HYBRID_BATCH = 5
HYBRID_REQUESTS_PER_PROCESS = 150
PROCESSES = 2


async def _rate_phase(url: str, prefix: str, algorithm: str, hybrid: bool, requests: int) -> dict[str, int]:
    from edge.ratelimit import RateLimitConfig, RateLimitContext, RateLimiter, RateLimitPolicy
    from edge.state.config import RedisConfig
    from edge.state.redis_store import RedisStore

    store = RedisStore(RedisConfig(url=url, key_prefix=prefix, timeout=2.0))
    config = RateLimitConfig(
        policies=[RateLimitPolicy(name="global", limit=LIMIT, window="1h", key="global", algorithm=algorithm)],
        hybrid={"enabled": hybrid, "batch": HYBRID_BATCH, "lease_ttl": "10s"}, instances=PROCESSES)
    limiter = RateLimiter(config, store)  # no clock: Redis server time, as in production
    await store.start()
    try:
        ctx = RateLimitContext(f"user-{os.getpid()}", None, "192.0.2.1", "/v1/things", http_method="GET")
        queue = list(range(requests))
        allowed = 0

        async def client() -> None:
            nonlocal allowed
            while queue:
                queue.pop()
                decision = await limiter.check(ctx)
                allowed += decision.allowed

        await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
        charges = store._limits.calls  # scripts sent; round trips count the pipelines
        return {"allowed": allowed, "round_trips": store.stats.round_trips, "charges": charges, "requests": requests}
    finally:
        await store.close()


async def _idem_phase(url: str, prefix: str) -> dict[str, Any]:
    from edge.idempotency import BeginState, IdempotencyConfig, IdempotencyEngine, StoredResponse
    from edge.state.config import RedisConfig
    from edge.state.redis_store import RedisStore

    store = RedisStore(RedisConfig(url=url, key_prefix=prefix, timeout=2.0))
    engine = IdempotencyEngine(IdempotencyConfig(), store)
    await store.start()
    body = b'{"item": "book", "qty": 1}'

    async def client() -> tuple[str, str, bytes]:
        first = None
        while True:
            b = await engine.begin("alice", "/v1/orders", "order-7", "POST", "/v1/orders", "", body, {}, deadline=5)
            first = first or b.state.value
            if b.state is BeginState.PROCEED:
                # the backend: count executions where every process can see them
                n = await store.client.incr(f"{prefix}:backend-calls")
                await asyncio.sleep(0.3)
                response = StoredResponse(201, [("content-type", "application/json")],
                                          orjson.dumps({"order": f"o-{n}", "pid": os.getpid()}))
                await b.finish(response)
                return first, "executed", response.body
            if b.state is BeginState.REPLAY:
                return first, "replayed", b.stored_response.body
            if b.state is BeginState.CONFLICT_IN_FLIGHT:
                await asyncio.sleep(0.05)  # a client would wait Retry-After; shortened for the test
                continue
            return first, "mismatch", b""

    try:
        results = await asyncio.gather(*(client() for _ in range(IDEM_CLIENTS_PER_PROCESS)))
        return {"results": results}
    finally:
        await store.close()


def _worker(url: str, prefix: str, barrier: Any, queue: Any) -> None:
    out: dict[str, Any] = {}
    try:
        for name, phase in [
            ("gcra", lambda: _rate_phase(url, f"{prefix}-gcra", "gcra", False, REQUESTS_PER_PROCESS)),
            ("sliding", lambda: _rate_phase(url, f"{prefix}-sliding", "sliding_window", False, REQUESTS_PER_PROCESS)),
            ("hybrid", lambda: _rate_phase(url, f"{prefix}-hybrid", "gcra", True, HYBRID_REQUESTS_PER_PROCESS)),
            ("idempotency", lambda: _idem_phase(url, f"{prefix}-idem")),
        ]:
            barrier.wait(30)  # both processes start each phase together
            out[name] = asyncio.run(phase())
    except BaseException as e:  # report, never hang the parent
        out["error"] = repr(e)
    queue.put(out)


@pytest.fixture(scope="module")
def two_processes(redis_target: RedisTarget) -> list[dict[str, Any]]:
    import uuid
    prefix = "edgetest-mp-" + uuid.uuid4().hex[:8]
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(redis_target.url, prefix, barrier, queue)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    try:
        results = [queue.get(timeout=60) for _ in procs]
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
        client = redis_target.client()
        for suffix in ("gcra", "sliding", "hybrid", "idem"):
            delete_prefix(client, f"{prefix}-{suffix}")
        client.close()
    errors = [r["error"] for r in results if "error" in r]
    assert not errors, errors
    return results


@pytest.mark.parametrize("phase", ["gcra", "sliding"])
def test_global_limit_admits_exactly_n_across_processes(two_processes, phase):
    per_process = [r[phase]["allowed"] for r in two_processes]
    assert sum(per_process) == LIMIT, per_process
    # one charge per request, whatever the process; charges made in one loop turn share a round trip
    assert all(r[phase]["charges"] == REQUESTS_PER_PROCESS for r in two_processes)
    assert all(r[phase]["round_trips"] <= REQUESTS_PER_PROCESS for r in two_processes)


def test_one_key_executes_exactly_once_across_processes(two_processes):
    results = [res for r in two_processes for res in r["idempotency"]["results"]]
    assert len(results) == PROCESSES * IDEM_CLIENTS_PER_PROCESS == 50
    first_states = [first for first, _, _ in results]
    assert first_states.count("proceed") == 1
    assert first_states.count("conflict_in_flight") + first_states.count("replay") == 49
    outcomes = [outcome for _, outcome, _ in results]
    assert outcomes.count("executed") == 1 and outcomes.count("replayed") == 49
    bodies = {body for _, _, body in results}
    assert len(bodies) == 1  # every client got the same response
    assert orjson.loads(bodies.pop())["order"] == "o-1"  # and the backend ran once


def test_hybrid_mode_stays_within_its_bound_with_fewer_round_trips(two_processes):
    allowed = sum(r["hybrid"]["allowed"] for r in two_processes)
    # leases are charged in Redis before they are spent: never more than the limit in one window;
    # leased units a process could not spend are lost: at most (batch - 1) per process
    assert LIMIT - PROCESSES * (HYBRID_BATCH - 1) <= allowed <= LIMIT
    round_trips = sum(r["hybrid"]["round_trips"] for r in two_processes)
    assert round_trips < PROCESSES * HYBRID_REQUESTS_PER_PROCESS / 2
