"""/readyz with real parts: a Redis that goes away, a backend that reports NOT_SERVING."""
from __future__ import annotations

import time

import httpx
from grpc_health.v1 import health_pb2

from tests.support.gateway import gateway_config, running_gateway


def _wait_status(client: httpx.Client, status: int, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get("/readyz")
        if r.status_code == status or time.monotonic() > deadline:
            assert r.status_code == status, r.text
            return r.json()
        time.sleep(0.1)


def test_ready_follows_the_shared_store(demo_backend, private_redis):
    config = gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        store={"backend": "redis", "redis": {"url": private_redis.url, "timeout": "200ms"}},
        rate_limits={"policies": [{"name": "p", "limit": 100, "window": "1m"}]},
    )
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        assert _wait_status(c, 200)["store"] == "reachable"
        private_redis.stop()
        assert _wait_status(c, 503)["store"] == "unreachable"
        assert c.get("/healthz").status_code == 200  # alive, just not ready
        private_redis.start()
        assert _wait_status(c, 200, timeout=20)["store"] == "reachable"


def test_ready_follows_backend_health(demo_backend):
    config = gateway_config([{"name": "demo", "target": demo_backend.target}],
                            transcoding={"health_interval": "100ms"})
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        assert _wait_status(c, 200)["backends"]["demo"]["health"] == "SERVING"
        health = demo_backend.server.health
        demo_backend.run(health.set("", health_pb2.HealthCheckResponse.NOT_SERVING))
        assert _wait_status(c, 503)["backends"]["demo"]["health"] == "NOT_SERVING"
        demo_backend.run(health.set("", health_pb2.HealthCheckResponse.SERVING))
        _wait_status(c, 200)
