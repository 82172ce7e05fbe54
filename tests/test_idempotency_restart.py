"""Idempotency keys across a Redis restart, through a real gateway and the real demo backend.

A private redis-server is killed (SIGKILL) and started again on the same port and
directory while keyed requests are finished and while others are still running at
the backend. The backend's own state counts executions (one book per execution; the
demo's request_id de-duplication is never used).

* With AOF on (`appendfsync always` or `everysec`), every finished key is replayed
  after the restart, and so is every key whose call was running: its response, which
  could not be stored while Redis was down, is kept by the gateway and stored when
  Redis is back.
* Without persistence, the gateway notices the restart (a new run_id) and holds keyed
  requests for the longest lock a request can hold, so a retry never runs beside an
  attempt whose lock the restart lost: the keys that were running run once. The keys
  that had finished run again: their records are gone and nothing in the gateway can
  know they existed. That is the window persistence closes, shown here as it is.
* With `restart_hold: never` the retry of a running key runs beside it: twice.
"""
from __future__ import annotations

import collections
import concurrent.futures
import json
import time
import uuid

import httpx
import pytest

from edgedemo.recording import CallRecorder
from tests.support.backends import demo_backend_running
from tests.support.gateway import gateway_config, running_gateway

DELAY = "x-demo-delay-ms"
TIMEOUT = 4.0       # the backend's timeout and max_timeout: the longest deadline a keyed call can have
LOCK_MARGIN = 0.5   # so the longest lock, and the restart hold, is 4.5 s
FINISHED = 6        # keys whose call finished before Redis went down
RUNNING = 3         # keys whose call is running at the backend when Redis goes down
RUNNING_DELAY_MS = 3000  # below the 4 s deadline; the window in which a retry could run beside them


def _stack(redis_url: str, **idempotency):
    backend_cm = demo_backend_running(recorder=CallRecorder(keep=10_000))
    backend = backend_cm.__enter__()
    config = gateway_config(
        [{"name": "demo", "target": backend.target, "timeout": f"{TIMEOUT}s", "max_timeout": f"{TIMEOUT}s"}],
        transcoding={"forward_headers": [DELAY]},
        store={"backend": "redis", "redis": {"url": redis_url, "timeout": "200ms",
                                             "breaker": {"failure_threshold": 1, "open_for": "200ms"}}},
        idempotency={"lock_margin": f"{LOCK_MARGIN}s", **idempotency},
        batch=None,
        access_log={"enabled": False},
    )
    gw_cm = running_gateway(config)
    try:
        gw = gw_cm.__enter__()
    except BaseException:
        backend_cm.__exit__(None, None, None)
        raise
    return gw, backend, (gw_cm, backend_cm)


@pytest.fixture
def stack_factory():
    opened = []

    def make(redis_url: str, **idempotency):
        gw, backend, cms = _stack(redis_url, **idempotency)
        opened.append(cms)
        return gw, backend

    yield make
    for gw_cm, backend_cm in reversed(opened):
        gw_cm.__exit__(None, None, None)
        backend_cm.__exit__(None, None, None)


def _body(key: str) -> bytes:
    return json.dumps({"title": f"restart-{key}", "author": "Client"}).encode()


def _post(client: httpx.Client, key: str, delay_ms: int = 0) -> httpx.Response:
    return client.post("/v1/shelves/scifi/books", content=_body(key),
                       headers={"idempotency-key": key, "content-type": "application/json", DELAY: str(delay_ms)})


def _executions(backend, keys: list[str]) -> dict[str, int]:
    async def titles() -> list[str]:
        return [book.title for book in backend.server.library.books.values()]

    counted = collections.Counter(backend.run(titles()))
    return {key: counted[f"restart-{key}"] for key in keys}


def _retry_until_answered(gw, key: str, seen: collections.Counter, budget: float = 30.0) -> httpx.Response:
    """What a client does: retry on 409 and 503, after Retry-After (shortened: the test has no time to lose)."""
    with httpx.Client(base_url=gw.url, timeout=20) as client:
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            r = _post(client, key)
            if r.status_code == 200:
                return r
            assert r.status_code in (409, 503), (key, r.status_code, r.text)
            reason = next((d.get("reason") for d in r.json().get("details", []) if "reason" in d), None)
            seen[f"{r.status_code} {reason}"] += 1
            assert r.headers.get("retry-after"), r.headers
            time.sleep(0.05)
    raise AssertionError(f"key {key}: no answer within {budget}s")


def _run_scenario(gw, backend, redis):
    """FINISHED keys finish; RUNNING keys are at the backend when Redis is killed, and Redis comes
    back only after they have answered. Returns (finished, running, first answers)."""
    run = uuid.uuid4().hex[:8]
    finished = [f"fin-{run}-{i}" for i in range(FINISHED)]
    running = [f"run-{run}-{i}" for i in range(RUNNING)]
    first: dict[str, httpx.Response] = {}
    with httpx.Client(base_url=gw.url, timeout=20) as client:
        for key in finished:
            first[key] = _post(client, key)
            assert first[key].status_code == 200, first[key].text
    already = len(backend.recorder.records_for("CreateBook"))
    pool = concurrent.futures.ThreadPoolExecutor(RUNNING)

    def slow(key: str) -> httpx.Response:
        with httpx.Client(base_url=gw.url, timeout=20) as client:
            return _post(client, key, RUNNING_DELAY_MS)

    futures = {key: pool.submit(slow, key) for key in running}
    assert backend.recorder.wait_for("CreateBook", already + RUNNING, timeout=10)  # all at the backend
    redis.kill()
    for key, future in futures.items():
        first[key] = future.result(30)
        # the backend's answer reaches the client even when it could not be stored
        assert first[key].status_code == 200, first[key].text
    redis.start()
    pool.shutdown()
    return finished, running, first


@pytest.mark.parametrize("fsync", ["always", "everysec"])
def test_with_aof_every_key_is_replayed_after_a_restart(stack_factory, start_private_redis, fsync):
    redis = start_private_redis("--appendonly", "yes", "--appendfsync", fsync)
    gw, backend = stack_factory(redis.url)
    engine = gw.server.app.core.idempotency
    finished, running, first = _run_scenario(gw, backend, redis)

    seen: collections.Counter[str] = collections.Counter()
    for key in finished + running:
        r = _retry_until_answered(gw, key, seen)
        assert r.headers.get("idempotent-replayed") == "true", (key, r.headers, seen)
        assert r.json()["name"] == first[key].json()["name"]
    assert _executions(backend, finished + running) == {key: 1 for key in finished + running}
    # the responses of the running calls were kept while Redis was down and stored when it came back
    assert engine.counters.outcomes["store_failed"] == RUNNING
    assert engine.counters.outcomes["stored_late"] == RUNNING
    # the restart was noticed, and needed no hold: the AOF kept the locks
    assert engine.counters.store_restarts == 1 and engine.counters.outcomes["restart_hold"] == 0
    assert "503 IDEMPOTENCY_STORE_RECOVERING" not in seen


def test_without_persistence_running_keys_run_once_and_finished_keys_run_again(stack_factory, start_private_redis):
    redis = start_private_redis()  # no AOF, no RDB: a restart comes back empty
    gw, backend = stack_factory(redis.url)
    engine = gw.server.app.core.idempotency
    finished, running, first = _threaded_retries_during_restart(gw, backend, redis)
    seen, answers = first
    # the keys that were running when Redis restarted: the hold kept their retries back until
    # they had ended and stored their responses (storing needs no lock): replayed, one execution
    for key in running:
        assert answers[key].headers.get("idempotent-replayed") == "true", (key, answers[key].headers)
    assert seen["503 IDEMPOTENCY_STORE_RECOVERING"] > 0, seen
    assert engine.counters.outcomes["restart_hold"] == 1
    # the keys that had finished: their records went with the restart, and the retry ran again
    for key in finished:
        assert "idempotent-replayed" not in answers[key].headers
    executions = _executions(backend, finished + running)
    assert executions == {**{key: 2 for key in finished}, **{key: 1 for key in running}}, executions


def test_without_the_hold_a_retry_runs_beside_the_running_attempt(stack_factory, start_private_redis):
    redis = start_private_redis()
    gw, backend = stack_factory(redis.url, restart_hold="never")
    finished, running, (seen, answers) = _threaded_retries_during_restart(gw, backend, redis)
    assert "503 IDEMPOTENCY_STORE_RECOVERING" not in seen
    executions = _executions(backend, running)
    assert executions == {key: 2 for key in running}, executions


def _threaded_retries_during_restart(gw, backend, redis):
    """The no-persistence scenario: Redis restarts (empty) while RUNNING keys run at the backend,
    and every key is retried right away, as clients that lost their connection would."""
    run = uuid.uuid4().hex[:8]
    finished = [f"fin-{run}-{i}" for i in range(FINISHED)]
    running = [f"run-{run}-{i}" for i in range(RUNNING)]
    with httpx.Client(base_url=gw.url, timeout=20) as client:
        for key in finished:
            assert _post(client, key).status_code == 200
    already = len(backend.recorder.records_for("CreateBook"))
    seen: collections.Counter[str] = collections.Counter()
    with concurrent.futures.ThreadPoolExecutor(RUNNING + len(finished + running)) as pool:
        def slow(key: str) -> httpx.Response:
            with httpx.Client(base_url=gw.url, timeout=20) as client:
                return _post(client, key, RUNNING_DELAY_MS)

        first = [pool.submit(slow, key) for key in running]
        assert backend.recorder.wait_for("CreateBook", already + RUNNING, timeout=10)
        redis.kill()
        redis.start()
        # the calls are still running (they answer RUNNING_DELAY_MS after they arrived)
        assert all(r.code is None for r in backend.recorder.records_for("CreateBook")[-RUNNING:])
        retries = {key: pool.submit(_retry_until_answered, gw, key, seen) for key in running + finished}
        for future in first:
            assert future.result(30).status_code == 200
        answers = {key: future.result(60) for key, future in retries.items()}
    return finished, running, (seen, answers)
