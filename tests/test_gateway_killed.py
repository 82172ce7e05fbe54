"""A gateway killed (SIGKILL) while it holds keyed requests in flight, with a second gateway on
the same Redis: two real `edge serve` processes, the real demo backend, the shared Redis.

The backend is slow for these requests, so they are in flight (at the backend, their locks in
Redis) when the first gateway dies. Several clients per key then retry through the second
gateway. They wait (409 with Retry-After) while the dead gateway's lock lives, then exactly
one retry runs and the others get its response replayed. The killed calls never acted: the
backend saw them cancelled when the gateway's connection went away. Keys the first gateway
had finished before it died are replayed by the second at once.

The lock-expiry window (from the kill to the first retry that ran) is printed, with what sets
it: the lock is taken for the request's deadline plus `lock_margin` (within `max_lock_ttl`).
Printed, not asserted: it depends on the machine. What is asserted is causal: no retry ran
before the lock's expiry as Redis reported it (PTTL) right after the kill.
"""
from __future__ import annotations

import collections
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from edgedemo.recording import CallRecorder
from tests.support.backends import demo_backend_running
from tests.support.redis import delete_prefix, free_port
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
DELAY = "x-demo-delay-ms"
KEYS = 5
RETRIERS = 3           # clients retrying each key through the surviving gateway
TIMEOUT = 3.0          # the backend timeout, so the deadline of each keyed call
LOCK_MARGIN = 1.0      # the lock lives TIMEOUT + LOCK_MARGIN from the reservation
SLOW_MS = 2500         # the backend holds the doomed calls this long before running them


def _config(path: Path, port: int, backend_target: str, redis_url: str, prefix: str) -> Path:
    path.write_text(f"""
listen: {{host: 127.0.0.1, port: {port}, plaintext: true}}
admin: {{enabled: false}}
lifecycle: {{pre_drain_delay: 0s}}
backends: [{{name: demo, target: '{backend_target}', timeout: {TIMEOUT}s, max_timeout: {TIMEOUT}s}}]
transcoding: {{forward_headers: [{DELAY}], reload_interval: 0}}
store: {{backend: redis, redis: {{url: '{redis_url}', key_prefix: {prefix}, timeout: 1s}}}}
idempotency: {{lock_margin: {LOCK_MARGIN}s}}
access_log: {{enabled: false}}
""")
    return path


def _start(config: Path, port: int, log: Path) -> subprocess.Popen:
    out = open(log, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "serve", "--config", str(config)], cwd=ROOT,
                            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    out.close()

    def ready() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    assert wait_for(ready, timeout=30, interval=0.1), log.read_text()
    return proc


@pytest.fixture
def two_gateways(tmp_path, redis_target):
    prefix = "edgetest-kill-" + uuid.uuid4().hex[:8]
    procs: list[subprocess.Popen] = []
    with demo_backend_running(recorder=CallRecorder(keep=10_000)) as backend:
        try:
            urls = []
            for name in ("a", "b"):
                port = free_port()
                config = _config(tmp_path / f"{name}.yaml", port, backend.target, redis_target.url, prefix)
                procs.append(_start(config, port, tmp_path / f"{name}.log"))
                urls.append(f"http://127.0.0.1:{port}")
            yield procs, urls, backend, prefix
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(20)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(5)
            client = redis_target.client()
            delete_prefix(client, prefix)
            client.close()


def _post(url: str, key: str, delay_ms: int = 0) -> httpx.Response:
    return httpx.post(f"{url}/v1/shelves/scifi/books", timeout=20,
                      content=json.dumps({"title": f"killed-{key}", "author": "Client"}).encode(),
                      headers={"idempotency-key": key, "content-type": "application/json", DELAY: str(delay_ms)})


def test_retries_through_the_survivor_wait_for_the_lock_then_run_once(two_gateways, redis_target):
    (proc_a, _), (url_a, url_b), backend, prefix = two_gateways
    keys = [f"k-{uuid.uuid4().hex[:12]}" for _ in range(KEYS)]
    done = {f"d-{uuid.uuid4().hex[:12]}": None for _ in range(2)}
    for key in done:  # finished by the gateway about to die: their records are in Redis
        done[key] = _post(url_a, key)
        assert done[key].status_code == 200
    before = len(backend.recorder.records_for("CreateBook"))

    sent: dict[str, float] = {}
    with concurrent.futures.ThreadPoolExecutor(KEYS * RETRIERS) as pool:
        def doomed(key: str) -> None:
            sent[key] = time.monotonic()
            try:
                _post(url_a, key, SLOW_MS)
            except httpx.HTTPError:
                pass  # the gateway died under it: a client that lost its connection

        for key in keys:
            pool.submit(doomed, key)
        # every call is at the backend (so its lock is in Redis) before the gateway is killed
        assert backend.recorder.wait_for("CreateBook", before + KEYS, timeout=10)
        proc_a.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc_a.wait(10)
        redis = redis_target.client()
        locks = {}
        for key in redis.scan_iter(match=f"{prefix}:*"):
            locks[key] = (time.monotonic(), redis.pttl(key) / 1000, redis.hget(key, "st"))
        redis.close()
        locks = {k: v for k, v in locks.items() if v[2] != b"c"}  # the finished keys' records
        assert len(locks) == KEYS and {st for _, _, st in locks.values()} == {b"f"}, locks
        expiry = min(at + pttl for at, pttl, _ in locks.values())  # the first lock to go

        def retry(key: str) -> tuple[str, float, httpx.Response, list[int]]:
            waits = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                r = _post(url_b, key)
                if r.status_code == 200:
                    return key, time.monotonic(), r, waits
                assert r.status_code == 409, (key, r.status_code, r.text)
                waits.append(int(r.headers["retry-after"]))
                time.sleep(0.05)  # a client would wait Retry-After; shortened to see the expiry closely
            raise AssertionError(f"{key}: still refused after 30 s")

        for key, original in done.items():  # replayed at once by the survivor
            _, _, r, waits = retry(key)
            assert waits == [] and r.headers.get("idempotent-replayed") == "true", r.headers
            assert r.json()["name"] == original.json()["name"]
        outcomes = list(pool.map(retry, [key for key in keys for _ in range(RETRIERS)]))

    by_key: dict[str, list] = collections.defaultdict(list)
    for key, at, response, waits in outcomes:
        by_key[key].append((at, response, waits))
    for key, answers in by_key.items():
        executed = [r for _, r, _ in answers if r.headers.get("idempotent-replayed") != "true"]
        assert len(executed) == 1, (key, [r.headers for _, r, _ in answers])  # one retry ran, the others replayed it
        assert len({r.json()["name"] for _, r, _ in answers}) == 1  # and every client got that one book
    first_run = min(at for answers in by_key.values() for at, r, _ in answers
                    if r.headers.get("idempotent-replayed") != "true")
    assert first_run >= expiry  # causal: nothing ran before Redis dropped the dead gateway's lock
    # the clients did meet the lock (they retried within ms of the kill; it had ~4 s left): 409, Retry-After
    assert sum(len(waits) for answers in by_key.values() for _, _, waits in answers) > 0

    # The backend: per key, the killed call (cancelled before it acted) and the one retry that ran.
    async def titles() -> list[str]:
        return [book.title for book in backend.server.library.books.values()]

    counted = collections.Counter(backend.run(titles()))
    assert {key: counted[f"killed-{key}"] for key in [*keys, *done]} == {key: 1 for key in [*keys, *done]}
    assert backend.recorder.wait_for("CreateBook", before + 2 * KEYS, timeout=10, finished=True)
    calls = collections.defaultdict(list)
    for record in backend.recorder.records_for("CreateBook")[before:]:
        calls[record.header("idempotency-key")].append(record.code.name if record.code else None)
    assert sorted(sorted(codes) for codes in calls.values()) == [["CANCELLED", "OK"]] * KEYS, calls

    # The window, for the README: printed, not asserted.
    lock_ttl = TIMEOUT + LOCK_MARGIN
    print(f"\nlock-expiry window after SIGKILL (deadline {TIMEOUT:g}s + lock_margin {LOCK_MARGIN:g}s = "
          f"lock {lock_ttl:g}s from the reservation):")
    for key in keys:
        runs = [at for at, r, _ in by_key[key] if r.headers.get("idempotent-replayed") != "true"]
        first_wait = max((w for _, _, waits in by_key[key] for w in waits[:1]), default=0)
        print(f"  {key}: sent {sent[key] - killed_at:+.2f}s, first Retry-After {first_wait}s, "
              f"ran {runs[0] - killed_at:.2f}s after the kill ({runs[0] - sent[key]:.2f}s after it was first sent)")
    print(f"  PTTL right after the kill: {min(p for _, p, _ in locks.values()):.2f}-"
          f"{max(p for _, p, _ in locks.values()):.2f}s; first retry ran {first_run - killed_at:.2f}s after the kill")
