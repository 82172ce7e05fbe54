"""Rate limits and idempotency keys through the real gateway: in one process
with the in-memory store, and across two gateway processes sharing Redis."""
from __future__ import annotations

import concurrent.futures
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import gateway_config, running_gateway

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def limited_gateway(demo_backend):
    config = gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        rate_limits={"policies": [{"name": "per-ip", "limit": 3, "window": "1m", "key": "ip", "match": ["GET /v1/*"]}]},
        idempotency={},
        transcoding={"forward_headers": ["x-request-id", "x-demo-delay-ms"]},
    )
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        yield client


def test_limit_exact_at_boundary_with_headers(limited_gateway, demo_backend):
    for remaining in (2, 1, 0):
        r = limited_gateway.get("/v1/shelves/scifi")
        assert r.status_code == 200
        assert r.headers["ratelimit-policy"] == '"per-ip";q=3;w=60'
        assert r.headers["ratelimit"].startswith(f'"per-ip";r={remaining};t=')
    refused = limited_gateway.get("/v1/shelves/scifi")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    body = refused.json()
    assert body["code"] == 8
    assert any(d["@type"].endswith("google.rpc.RetryInfo") for d in body["details"])
    assert demo_backend.recorder.calls["GetShelf"] == 3  # the refused one never reached the backend
    # Routes outside the policy and the health endpoints are not counted.
    assert limited_gateway.get("/healthz").status_code == 200
    assert limited_gateway.post("/v1/shelves", json={"theme": "t"}).status_code == 200


def test_idempotent_replay_mismatch_and_scope(limited_gateway, demo_backend):
    key = {"idempotency-key": "order-" + uuid.uuid4().hex}
    first = limited_gateway.post("/v1/shelves/scifi/books", json={"title": "Once"}, headers=key)
    assert first.status_code == 200
    again = limited_gateway.post("/v1/shelves/scifi/books", json={"title": "Once"}, headers=key)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    # The stored headers come back once each, as the first answer had them.
    assert again.headers.get_list("content-type") == first.headers.get_list("content-type") == ["application/json"]
    assert demo_backend.recorder.calls["CreateBook"] == 1
    other = limited_gateway.post("/v1/shelves/scifi/books", json={"title": "Different"}, headers=key)
    assert other.status_code == 422
    assert other.json()["code"] == 3  # INVALID_ARGUMENT
    assert [d["reason"] for d in other.json()["details"]] == ["IDEMPOTENCY_KEY_REUSED"]
    bad = limited_gateway.post("/v1/shelves/scifi/books", json={"title": "x"}, headers={"idempotency-key": "x" * 300})
    assert bad.status_code == 400
    assert demo_backend.recorder.calls["CreateBook"] == 1
    # The backend saw the derived key, not the client's raw one.
    sent = demo_backend.recorder.last("CreateBook").header("idempotency-key")
    assert sent and sent != key["idempotency-key"]


def test_in_flight_conflict(limited_gateway, demo_backend):
    key = {"idempotency-key": uuid.uuid4().hex, "x-demo-delay-ms": "800"}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        slow = pool.submit(limited_gateway.post, "/v1/shelves/scifi/books", json={"title": "Slow"}, headers=key)
        assert demo_backend.recorder.wait_for("CreateBook")
        conflict = limited_gateway.post("/v1/shelves/scifi/books", json={"title": "Slow"}, headers=key)
        assert conflict.status_code == 409 and int(conflict.headers["retry-after"]) >= 1
        assert slow.result().status_code == 200


# ---- two gateway processes, one Redis ---------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn_gateway(tmp_path: Path, name: str, target: str, redis_url: str, prefix: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    config = tmp_path / f"{name}.yaml"
    config.write_text(
        f"""
listen: {{host: 127.0.0.1, port: {port}, plaintext: true}}
admin: {{enabled: false}}
lifecycle: {{pre_drain_delay: 0s}}
transcoding: {{forward_headers: [x-request-id, x-demo-delay-ms]}}
backends: [{{name: demo, target: '{target}'}}]
store: {{backend: redis, redis: {{url: '{redis_url}', key_prefix: '{prefix}', timeout: 2s}}}}
rate_limits:
  policies: [{{name: fleet, limit: 20, window: 1h, key: global, on_store_failure: closed,
              match: ['edgedemo.library.v1.LibraryService/GetShelf']}}]
idempotency: {{}}
"""
    )
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "serve", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(proc.communicate()[1])


@pytest.fixture
def two_gateways(tmp_path, demo_backend, redis_target, redis_prefix):
    procs = [_spawn_gateway(tmp_path, f"gw{i}", demo_backend.target, redis_target.url, redis_prefix) for i in range(2)]
    try:
        yield [url for _, url in procs]
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            proc.wait(20)


def test_global_limit_holds_across_two_processes(two_gateways, demo_backend):
    def hit(i: int) -> int:
        return httpx.get(f"{two_gateways[i % 2]}/v1/shelves/scifi", timeout=10).status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(hit, range(60)))
    assert statuses.count(200) == 20, statuses
    assert statuses.count(429) == 40
    assert demo_backend.recorder.calls["GetShelf"] == 20


def test_fifty_concurrent_posts_one_key_execute_once(two_gateways, demo_backend):
    key = "pay-" + uuid.uuid4().hex
    headers = {"idempotency-key": key, "x-demo-delay-ms": "300"}

    def post(i: int) -> tuple[int, bytes]:
        url = two_gateways[i % 2]
        deadline = time.monotonic() + 20
        while True:  # a client retries while the first request is in flight
            r = httpx.post(f"{url}/v1/shelves/scifi/books", json={"title": "Exactly once"}, headers=headers, timeout=10)
            if r.status_code != 409 or time.monotonic() > deadline:
                return r.status_code, r.content
            time.sleep(0.05)

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        results = list(pool.map(post, range(50)))
    assert demo_backend.recorder.calls["CreateBook"] == 1
    assert {status for status, _ in results} == {200}
    assert len({body for _, body in results}) == 1


def test_limit_declared_in_proto_applies_and_config_overrides_it(demo_backend):
    # library.proto declares `search-per-user`: 30 per 60 s on SearchBooks.
    config = gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        rate_limits={"policies": [{"name": "unrelated", "limit": 1000, "window": "1m", "match": ["GET /nowhere"]}]},
    )
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        statuses = [c.get("/v1/books:search", params={"q": "dune"}).status_code for _ in range(31)]
        assert statuses == [200] * 30 + [429]
        assert c.get("/v1/shelves/scifi").status_code == 200  # other methods are not limited by it
    override = gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        rate_limits={"policies": [{"name": "search-per-user", "limit": 2, "window": "1m",
                                   "match": ["edgedemo.library.v1.LibraryService/SearchBooks"]}]},
    )
    with running_gateway(override) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        first = c.get("/v1/books:search", params={"q": "dune"})
        assert first.headers["ratelimit-policy"] == '"search-per-user";q=2;w=60'
        assert [c.get("/v1/books:search", params={"q": "x"}).status_code for _ in range(2)] == [200, 429]


def test_batch_items_charge_their_own_routes_policies(demo_backend):
    config = gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        rate_limits={"policies": [{"name": "shelf-reads", "limit": 2, "window": "1m", "key": "ip",
                                   "match": ["edgedemo.library.v1.LibraryService/GetShelf"]}]},
    )
    item = {"method": "GET", "url": "/v1/shelves/scifi"}
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        too_many = c.post("/v1/batch", json={"requests": [dict(item, id=str(i)) for i in range(3)]})
        assert too_many.status_code == 429  # three items on a policy of two: nothing runs
        assert demo_backend.recorder.calls["GetShelf"] == 0
        ok = c.post("/v1/batch", json={"requests": [dict(item, id="a"), dict(item, id="b"),
                                                    {"id": "c", "method": "GET", "url": "/v1/users/ada"}]})
        assert ok.status_code == 200 and [r["status"] for r in ok.json()["responses"]] == [200, 200, 200]
        assert c.get("/v1/shelves/scifi").status_code == 429  # the batch spent the budget
        assert c.get("/v1/users/ada").status_code == 200      # other routes are not under the policy
