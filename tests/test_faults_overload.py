"""Overload: past `overload.max_inflight` requests in flight, the gateway answers 503
at once instead of queueing, keeps its health endpoints answering, and serves again
as soon as the load drops. Real gateway, real demo backend holding calls open."""
from __future__ import annotations

import re
import threading

import httpx
import pytest

from tests.support.gateway import gateway_config, running_gateway

DELAY = "x-demo-delay-ms"
CAP = 4


@pytest.fixture
def gw(demo_backend):
    config = gateway_config([{"name": "demo", "target": demo_backend.target}],
                            transcoding={"forward_headers": [DELAY]}, overload={"max_inflight": CAP, "retry_after": "2s"},
                            access_log={"enabled": False})
    with running_gateway(config) as gateway:
        yield gateway


def _shed_total(gw) -> float:
    text = httpx.get(f"{gw.admin_url}/metrics", timeout=10).text
    match = re.search(r"^edge_shed_requests_total (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _hold(gw, n: int, delay_ms: int, results: list) -> list[threading.Thread]:
    def slow() -> None:
        results.append(httpx.get(f"{gw.url}/v1/shelves/scifi", headers={DELAY: str(delay_ms)}, timeout=30).status_code)

    threads = [threading.Thread(target=slow) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def test_requests_past_the_cap_are_shed_at_once_and_service_recovers(gw, demo_backend):
    shed_before = _shed_total(gw)
    held: list[int] = []
    threads = _hold(gw, CAP, 1500, held)
    assert demo_backend.recorder.wait_for("GetShelf", CAP)
    with httpx.Client(base_url=gw.url, timeout=10) as c:
        refused = [c.get("/v1/shelves/history") for _ in range(10)]
        refused += [c.post("/v1/shelves", json={"theme": "t"}), c.post("/v1/batch", json={"requests": [{"id": "a", "url": "/v1/shelves/scifi"}]})]
        # Answered while the held calls are still running: nothing queued behind them.
        assert not held and all(t.is_alive() for t in threads)
        for r in refused:
            assert r.status_code == 503, r.text
            assert r.json()["code"] == 14 and "overloaded" in r.json()["message"]
            assert r.headers["retry-after"] == "2" and r.headers["x-request-id"]
        # The health endpoints still answer: the process is alive, just full.
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
        assert demo_backend.recorder.calls["GetShelf"] == CAP and demo_backend.recorder.calls["CreateShelf"] == 0
        for t in threads:
            t.join(30)
        assert held == [200] * CAP
        # The load is gone: served again at once.
        assert [c.get("/v1/shelves/history").status_code for _ in range(CAP + 2)] == [200] * (CAP + 2)
    assert _shed_total(gw) - shed_before == len(refused)


def test_an_open_stream_holds_a_slot_until_it_ends(gw, demo_backend):
    with httpx.Client(base_url=gw.url, timeout=30) as c:
        held: list[int] = []
        threads = _hold(gw, CAP - 1, 1500, held)
        assert demo_backend.recorder.wait_for("GetShelf", CAP - 1)
        with c.stream("GET", "/v1/shelves/scifi/books:stream", params={"delayMs": 200}) as stream:
            assert stream.status_code == 200
            assert c.get("/v1/shelves/history").status_code == 503  # the stream took the last slot
            lines = [line for line in stream.iter_lines() if line]
        assert len(lines) == 4
        for t in threads:
            t.join(30)
        assert c.get("/v1/shelves/history").status_code == 200


def test_shedding_can_be_turned_off(demo_backend):
    config = gateway_config([{"name": "demo", "target": demo_backend.target}], transcoding={"forward_headers": [DELAY]},
                            overload={"max_inflight": None}, access_log={"enabled": False})
    with running_gateway(config) as gw:
        held: list[int] = []
        threads = _hold(gw, 12, 500, held)
        for t in threads:
            t.join(30)
        assert held == [200] * 12
