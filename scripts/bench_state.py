#!/usr/bin/env python3
"""What rate limiting and idempotency cost per request, engine level, loopback only.

Prints, for the memory store, Redis and Redis in hybrid mode: Redis round
trips per request (counted by the client, and by the server's own
commandstats when the script runs its own Redis) and per-request latency
p50/p99 of `RateLimiter.check` (two policies per request), of an
idempotent call (`begin` + `finish`) and of a keyed call as the gateway makes
it (the charge carrying the reservation, then `finish`); and the client CPU
per stored record when 32 requests complete at once, each record sent alone
or the 32 in one pipeline (edge/state/batching.py). Bounded: a few thousand
calls each.

    .venv/bin/python scripts/bench_state.py [--requests 3000] [--json]

A private redis-server on a spare port is used when the binary is on PATH
(clean counters, nothing shared); otherwise 127.0.0.1:6379 database 13 under
a unique key prefix, whose keys are deleted afterwards.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from edge.idempotency import IdempotencyConfig, IdempotencyEngine, StoredResponse  # noqa: E402
from edge.ratelimit import RateLimitConfig, RateLimitContext, RateLimiter, RateLimitPolicy  # noqa: E402
from edge.state.config import RedisConfig  # noqa: E402
from edge.state.memory import MemoryStore  # noqa: E402
from edge.state.redis_store import RedisStore  # noqa: E402

POLICIES = [
    RateLimitPolicy(name="per-user", limit=1_000_000, window="1m"),
    RateLimitPolicy(name="global", limit=100_000_000, window="1h", key="global", algorithm="sliding_window"),
]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_private_redis(workdir: Path) -> tuple[subprocess.Popen[bytes] | None, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        return None, "redis://127.0.0.1:6379/13"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            if redis.Redis(port=port, socket_timeout=0.2).ping():
                return proc, f"redis://127.0.0.1:{port}/0"
        except redis.RedisError:
            time.sleep(0.02)
    proc.kill()
    raise SystemExit("private redis-server did not start")


async def bench_limits(store: Any, requests: int, hybrid: bool) -> dict[str, Any]:
    config = RateLimitConfig(policies=POLICIES, hybrid={"enabled": hybrid, "batch": 20, "lease_ttl": "1s"})
    limiter = RateLimiter(config, store)
    ctxs = [RateLimitContext(f"user-{i % 10}", None, "192.0.2.1", "/v1/shelves/{shelf}", "library.v1.Library",
                             "GetShelf", "GET") for i in range(requests)]
    for ctx in ctxs[:50]:  # warm-up
        await limiter.check(ctx)
    before = store.stats.round_trips
    samples = []
    for ctx in ctxs:
        start = time.perf_counter()
        await limiter.check(ctx)
        samples.append(time.perf_counter() - start)
    return {"round_trips_per_request": (store.stats.round_trips - before) / requests, "samples": samples}


async def bench_idempotency(store: Any, requests: int) -> dict[str, Any]:
    engine = IdempotencyEngine(IdempotencyConfig(), store)
    body = b'{"shelf": {"theme": "Science fiction"}}'
    response = StoredResponse(200, [("content-type", "application/json")], b'{"name": "shelves/1"}')
    before = store.stats.round_trips
    samples = []
    run = uuid.uuid4().hex[:8]
    for i in range(requests):
        start = time.perf_counter()
        b = await engine.begin("alice", "/v1/shelves", f"{run}-{i}", "POST", "/v1/shelves", "", body, {})
        await b.finish(response)
        samples.append(time.perf_counter() - start)
    return {"round_trips_per_request": (store.stats.round_trips - before) / requests, "samples": samples}


async def bench_keyed(store: Any, requests: int) -> dict[str, Any]:
    """The gateway's keyed call: prepare, the charge with the reservation riding along, begin, finish."""
    limiter = RateLimiter(RateLimitConfig(policies=POLICIES), store)
    engine = IdempotencyEngine(IdempotencyConfig(), store)
    body = b'{"shelf": {"theme": "Science fiction"}}'
    response = StoredResponse(200, [("content-type", "application/json")], b'{"name": "shelves/1"}')
    ctx = RateLimitContext("alice", None, "192.0.2.1", "/v1/shelves", "library.v1.Library", "CreateShelf", "POST")
    before = store.stats.round_trips
    samples = []
    run = uuid.uuid4().hex[:8]
    for i in range(requests):
        start = time.perf_counter()
        ahead = engine.prepare("alice", "/v1/shelves", f"{run}-{i}", "POST", "/v1/shelves", [], body, {})
        await limiter.check(ctx, reserve=ahead.request if ahead else None)
        b = await engine.begin("alice", "/v1/shelves", f"{run}-{i}", "POST", "/v1/shelves", [], body, {},
                               reserving=ahead)
        await b.finish(response)
        samples.append(time.perf_counter() - start)
    return {"round_trips_per_request": (store.stats.round_trips - before) / requests, "samples": samples}


async def bench_completions(url: str, prefix: str, batch: bool, together: int = 32, rounds: int = 40) -> dict[str, Any]:
    """Client CPU per stored record when `together` requests complete in one loop turn."""
    store = RedisStore(RedisConfig(url=url, key_prefix=prefix, timeout=1.0), batch=batch)
    await store.start()
    record = b'{"v":1,"s":200,"h":[["content-type","application/json"]],"o":false}\n' + b'{"name": "shelves/1"}' * 8
    cpu, wall, trips = [], [], 0
    try:
        for r in range(rounds + 3):
            keys = [f"done-{batch}-{r}-{i}" for i in range(together)]
            tokens = [x.token for x in await asyncio.gather(*(store.reserve(k, "fp", 30) for k in keys))]
            before, c0, w0 = store.stats.round_trips, time.process_time(), time.perf_counter()
            await asyncio.gather(*(store.complete(k, "fp", record, 600, t) for k, t in zip(keys, tokens)))
            if r >= 3:  # warm-up rounds left out
                cpu.append((time.process_time() - c0) / together)
                wall.append((time.perf_counter() - w0) / together)
                trips += store.stats.round_trips - before
    finally:
        await store.close()
    return {"round_trips_per_request": trips / (rounds * together), "cpu_us": percentile(cpu, 0.5) * 1e6,
            "samples": wall}


async def main(requests: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_private_redis(Path(tmp))
        prefix = "edge-bench-" + uuid.uuid4().hex[:8]
        server = redis.Redis.from_url(url)
        try:
            for name, make, hybrid in [
                ("memory", lambda: MemoryStore(), False),
                ("redis", lambda: RedisStore(RedisConfig(url=url, key_prefix=prefix, timeout=1.0)), False),
                ("redis hybrid", lambda: RedisStore(RedisConfig(url=url, key_prefix=prefix, timeout=1.0)), True),
            ]:
                store = make()
                if isinstance(store, RedisStore):
                    await store.start()
                    if proc is not None:
                        server.config_resetstat()
                limits = await bench_limits(store, requests, hybrid)
                evalsha = None
                if isinstance(store, RedisStore) and proc is not None:
                    stats = server.info("commandstats").get("cmdstat_evalsha", {"calls": 0})
                    evalsha = stats["calls"] / (requests + 50)
                rows.append({"store": name, "operation": "rate limit (2 policies)",
                             "round_trips_per_request": limits["round_trips_per_request"],
                             "server_evalsha_per_request": evalsha,
                             "p50_us": percentile(limits["samples"], 0.5) * 1e6,
                             "p99_us": percentile(limits["samples"], 0.99) * 1e6})
                if not hybrid:
                    for operation, measured in (("idempotent call (begin+finish)", bench_idempotency),
                                                ("keyed call (charge+key, finish)", bench_keyed)):
                        result = await measured(store, requests)
                        rows.append({"store": name, "operation": operation,
                                     "round_trips_per_request": result["round_trips_per_request"],
                                     "server_evalsha_per_request": None,
                                     "p50_us": percentile(result["samples"], 0.5) * 1e6,
                                     "p99_us": percentile(result["samples"], 0.99) * 1e6})
                await store.close()
            for batch in (False, True):
                done = await bench_completions(url, prefix, batch)
                rows.append({"store": "redis", "operation": f"32 completions, {'one pipeline' if batch else 'each alone'}",
                             "round_trips_per_request": done["round_trips_per_request"],
                             "server_evalsha_per_request": None, "cpu_us": done["cpu_us"],
                             "p50_us": percentile(done["samples"], 0.5) * 1e6,
                             "p99_us": percentile(done["samples"], 0.99) * 1e6})
        finally:
            if proc is None:
                keys = list(server.scan_iter(match=f"{prefix}:*", count=1000))
                if keys:
                    server.delete(*keys)
            server.close()
            if proc is not None:
                proc.terminate()
                proc.wait(5)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="calls per scenario (default 3000)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args()
    rows = asyncio.run(main(max(100, min(args.requests, 100_000))))
    print(f"{'store':<14} {'operation':<34} {'round trips/req':>15} {'p50 µs':>8} {'p99 µs':>8} {'CPU µs':>8}")
    for r in rows:
        cpu = f"{r['cpu_us']:>8.1f}" if "cpu_us" in r else ""
        print(f"{r['store']:<14} {r['operation']:<34} {r['round_trips_per_request']:>15.3f} "
              f"{r['p50_us']:>8.1f} {r['p99_us']:>8.1f} {cpu}")
    print("(the completion rows: p50/p99 of the wall time per record, CPU µs per record in this process)")
    if any(r["server_evalsha_per_request"] is not None for r in rows):
        print("server-side EVALSHA per rate-limit check: " + ", ".join(
            f"{r['store']}={r['server_evalsha_per_request']:.3f}" for r in rows
            if r["server_evalsha_per_request"] is not None))
    if args.json:
        print(json.dumps(rows, indent=2))
