#!/usr/bin/env python3
"""Soak: a fixed request rate for minutes through a gateway with auth, rate limits and
idempotency on, reporting errors, latency percentiles, the gateway's memory over time,
and whether any keyed write was lost or run twice. Loopback only, bounded.

The gateway runs as its own process (`edge serve`, one worker) so its memory is its
own; the demo backend runs in this process, so its state can be read at the end.
The mix, per second at `--rate`:

* 60% GET /v1/shelves/scifi, 10% GET /v1/shelves/scifi/books?pageSize=2 (JWT, HS256);
* 15% POST /v1/shelves/scifi/books with a fresh Idempotency-Key, 5% a retry of a
  recent key (answered from the store), 5% a client that hangs up mid-request and
  then retries until it holds the answer;
* 5% a batch of three reads.

At the end every key must have exactly one book at the backend (none lost, none run
twice; CreateBook's own request_id de-duplication is not used). Memory is sampled
every second: it must level off, not grow with the request count.

    .venv/bin/python scripts/soak.py [--rate 200] [--duration 300] [--store redis|memory] [--json]
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import random
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "protos"), str(ROOT / "scripts")]

import httpx  # noqa: E402
import redis  # noqa: E402
from joserfc import jwt  # noqa: E402
from joserfc.jwk import OctKey  # noqa: E402

from loadkit import LOOPBACK, GatewayProcess, free_port, open_loop, percentile  # noqa: E402
from tests.support.backends import demo_backend_running  # noqa: E402

ISSUER, AUDIENCE = "https://soak.edge.test", "edge-soak"
SECRET = hashlib.sha256(b"edge soak shared secret").hexdigest()
LIB = "edgedemo.library.v1.LibraryService"
DELAY = "x-demo-delay-ms"


def gateway_yaml(port: int, target: str, rate: float, store: str, redis_url: str, prefix: str) -> str:
    store_yaml = (f"store: {{backend: redis, redis: {{url: '{redis_url}', key_prefix: '{prefix}', timeout: 500ms}}}}"
                  if store == "redis" else "store: {backend: memory}")
    return f"""
listen: {{host: {LOOPBACK}, port: {port}, plaintext: true}}
admin: {{enabled: false}}
lifecycle: {{pre_drain_delay: 0s, drain_timeout: 5s}}
access_log: {{enabled: false}}
transcoding: {{forward_headers: [{DELAY}], reload_interval: 0}}
backends: [{{name: demo, target: '{target}', timeout: 5s}}]
auth:
  issuers: [{{issuer: '{ISSUER}', audiences: [{AUDIENCE}], algorithms: [HS256], shared_secret: '{SECRET}'}}]
  policies:
    - {{match: '{LIB}/*', scopes_all_of: [library.read]}}
    - {{match: '{LIB}/CreateBook', scopes_all_of: [library.write]}}
rate_limits:
  policies: [{{name: per-principal, limit: {max(10, int(rate))}, window: 1s, key: principal}}]
idempotency: {{retention: 30m}}
{store_yaml}
"""


def tokens(count: int) -> list[str]:
    key = OctKey.import_key(SECRET.encode())
    now = int(time.time())
    return [jwt.encode({"alg": "HS256"}, {"iss": ISSUER, "aud": AUDIENCE, "sub": f"soak-{i}", "iat": now,
                                          "exp": now + 86400, "scope": "library.read library.write"}, key)
            for i in range(count)]


class Mix:
    """The request mix, with the keys it used and what each keyed write answered."""

    def __init__(self, port: int, seed: int) -> None:
        self.port = port
        self.rng = random.Random(seed)
        self.auth = [{"authorization": f"Bearer {t}"} for t in tokens(3)]
        self.keys: list[str] = []
        self.owner: dict[str, dict[str, str]] = {}  # key -> the caller's headers (keys are scoped per caller)
        self.answers: dict[str, set[str]] = collections.defaultdict(set)
        self.hangups = 0

    def new_key(self, headers: dict[str, str]) -> str:
        key = uuid.UUID(int=self.rng.getrandbits(128)).hex
        self.keys.append(key)
        self.owner[key] = headers
        return key

    def body(self, key: str) -> bytes:
        return json.dumps({"title": f"soak-{key}", "author": "Soak"}).encode()

    async def write(self, client: httpx.AsyncClient, key: str, headers: dict[str, str]) -> int:
        """POST the keyed write until it is answered (a 409 means the first is still running)."""
        for _ in range(200):
            r = await client.post("/v1/shelves/scifi/books", content=self.body(key),
                                  headers={**headers, "idempotency-key": key, "content-type": "application/json"})
            if r.status_code != 409:
                if r.status_code == 200:
                    self.answers[key].add(r.json()["name"])
                return r.status_code
            await asyncio.sleep(0.05)
        return 409

    async def hang_up(self, key: str, headers: dict[str, str]) -> None:
        body = self.body(key)
        head = "".join(f"{k}: {v}\r\n" for k, v in {**headers, "idempotency-key": key, DELAY: "20"}.items())
        request = (f"POST /v1/shelves/scifi/books HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n{head}\r\n").encode() + body
        reader, writer = await asyncio.open_connection(LOOPBACK, self.port)
        cut = len(request) if self.rng.random() < 0.7 else self.rng.randrange(len(request) - len(body), len(request))
        writer.write(request[:cut])
        await writer.drain()
        await asyncio.sleep(self.rng.uniform(0, 0.04))
        writer.close()
        self.hangups += 1

    async def __call__(self, client: httpx.AsyncClient, n: int) -> tuple[str, int]:
        headers = self.auth[n % len(self.auth)]
        roll = self.rng.random()
        if roll < 0.60:
            return "get", (await client.get("/v1/shelves/scifi", headers=headers)).status_code
        if roll < 0.70:
            return "list", (await client.get("/v1/shelves/scifi/books", params={"pageSize": 2}, headers=headers)).status_code
        if roll < 0.85 or not self.keys:
            key = self.new_key(headers)
            return "write", await self.write(client, key, headers)
        if roll < 0.90:
            key = self.rng.choice(self.keys[-200:])
            return "retry", await self.write(client, key, self.owner[key])
        if roll < 0.95:
            key = self.new_key(headers)
            await self.hang_up(key, headers)
            return "hangup+retry", await self.write(client, key, headers)
        items = [{"id": f"i{i}", "url": url} for i, url in enumerate(["/v1/shelves/scifi", "/v1/shelves/history",
                                                                       "/v1/shelves/scifi/books?pageSize=1"])]
        r = await client.post("/v1/batch", json={"requests": items}, headers=headers)
        ok = r.status_code == 200 and all(item["status"] == 200 for item in r.json()["responses"])
        return "batch", r.status_code if ok or r.status_code != 200 else 500


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200, help="requests per second (1-2000)")
    parser.add_argument("--duration", type=float, default=300, help="seconds of measured load (5-3600)")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of load before memory is first measured")
    parser.add_argument("--store", choices=["redis", "memory"], default=None,
                        help="idempotency and limit store (default: Redis at 127.0.0.1:6379/13 if it answers)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    args = parser.parse_args(argv)
    if not (1 <= args.rate <= 2000 and 5 <= args.duration <= 3600 and 0 <= args.warmup <= 60):
        parser.error("--rate, --duration or --warmup out of range")
    if not args.redis_url.startswith(("redis://127.0.0.1", "redis://localhost")):
        parser.error("--redis-url must be on loopback")
    store = args.store
    client = redis.Redis.from_url(args.redis_url, socket_timeout=1)
    if store is None:
        try:
            store = "redis" if client.ping() else "memory"
        except redis.RedisError:
            store = "memory"
    prefix = "soak-" + uuid.uuid4().hex[:10]

    with demo_backend_running() as backend:
        port = free_port()
        gateway = GatewayProcess(gateway_yaml(port, backend.target, args.rate, store, args.redis_url, prefix), port).start()
        memory: list[tuple[float, int]] = []
        try:
            mix = Mix(port, args.seed)
            asyncio.run(open_loop(gateway.url, args.rate, args.warmup, mix))  # warm-up, not measured
            rss_start = gateway.rss_bytes()
            memory.append((0.0, rss_start))
            started = time.monotonic()
            result = asyncio.run(open_loop(gateway.url, args.rate, args.duration, mix,
                                           on_tick=lambda t: memory.append((t, gateway.rss_bytes()))))
            elapsed = time.monotonic() - started
            rss_end = gateway.rss_bytes()
            memory.append((elapsed, rss_end))
        finally:
            gateway.stop()

        async def book_titles() -> list[str]:
            return [book.title for book in backend.server.library.books.values()]

        executed = collections.Counter(backend.run(book_titles()))
    if store == "redis":
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)

    per_key = {key: executed[f"soak-{key}"] for key in set(mix.keys)}
    lost = sorted(k for k, n in per_key.items() if n == 0)
    doubled = sorted(k for k, n in per_key.items() if n > 1)
    split = sorted(k for k, books in mix.answers.items() if len(books) > 1)
    expected = {200, 429}
    errors = [o for o in result.outcomes if o.status not in expected]
    third = max(1, len(memory) // 3)
    early = max(rss for _, rss in memory[:third])
    late = max(rss for _, rss in memory[-third:])
    report = {
        "rate": args.rate, "duration_s": round(elapsed, 1), "store": store, "requests": len(result.outcomes),
        "dropped_by_client_cap": result.dropped, "statuses": result.statuses(),
        "by_kind": dict(collections.Counter(o.kind for o in result.outcomes)),
        "errors": len(errors), "error_samples": [(o.kind, o.status, o.error) for o in errors[:10]],
        "latency_ms": {q: round(percentile(result.latencies(200), p) * 1000, 2)
                       for q, p in (("p50", 0.50), ("p99", 0.99), ("p999", 0.999))},
        "latency_ms_by_kind": {kind: {q: round(percentile([o.latency for o in result.outcomes if o.kind == kind], p) * 1000, 2)
                                      for q, p in (("p50", 0.50), ("p99", 0.99))}
                               for kind in sorted({o.kind for o in result.outcomes})},
        "rss_mb": {"start": round(rss_start / 2**20, 1), "end": round(rss_end / 2**20, 1),
                   "max_first_third": round(early / 2**20, 1), "max_last_third": round(late / 2**20, 1)},
        "keys": len(per_key), "hangups": mix.hangups, "lost_keys": len(lost), "doubled_keys": len(doubled),
        "keys_with_two_answers": len(split),
    }
    if args.json:
        print(json.dumps(report))
    else:
        for name, value in report.items():
            print(f"{name:>22}: {value}")
    leveled = late <= early * 1.15 + 8 * 2**20
    ok = not errors and not lost and not doubled and not split and leveled
    if not leveled:
        print("memory kept growing: last third's peak is over the first third's by more than 15% + 8 MB", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
