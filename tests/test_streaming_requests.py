"""Calls whose requests stream, when the backend ends them before reading every request.

grpc.aio reports its own INTERNAL "Internal error from Core" for such a call about one
time in five (the write after the backend's end fails and the backend's status is lost),
which the gateway answered as a 500. The invoker sends these calls over a synchronous
channel, which keeps the backend's status: every answer below must be the backend's.
"""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.echo import ECHO_CONTROLS, echo_backend_running
from tests.support.gateway import gateway_config, running_gateway

ECHO_SET = Path(__file__).parent.parent / "protos" / "edgecompat" / "descriptors.binpb"
ATTEMPTS = 40


def test_a_client_stream_the_backend_refuses_early_keeps_its_status(demo_backend) -> None:
    config = gateway_config([{"name": "demo", "target": demo_backend.target}])
    body = "\n".join(json.dumps({"book": {"title": f"t{i}"}}) for i in range(50))
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        answers = [client.post("/v1/shelves/none/books:import", content=body) for _ in range(ATTEMPTS)]
    assert [(r.status_code, r.json()["code"]) for r in answers] == [(404, 5)] * ATTEMPTS
    assert {r.json()["message"] for r in answers} == {"Shelf 'shelves/none' not found"}


@pytest.fixture
def echo_client():
    with echo_backend_running(ECHO_SET) as echo:
        config = gateway_config([{"name": "echo", "target": echo.target}], transcoding={"forward_headers": ECHO_CONTROLS})
        with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
            yield client, echo


def test_a_bidi_stream_the_backend_ends_early_keeps_its_status(echo_client) -> None:
    client, echo = echo_client
    body = "\n".join(json.dumps({"name": f"n{i}"}) for i in range(200))
    refuse = {"x-echo-fail-after": "0", "x-echo-code": "FAILED_PRECONDITION"}
    answers = [client.post("/v1/items:chat", content=body, headers=refuse) for _ in range(ATTEMPTS)]
    assert [(r.status_code, r.json()["code"]) for r in answers] == [(400, 9)] * ATTEMPTS
    # ... and mid-stream: two replies, then the backend's own status as the last line
    r = client.post("/v1/items:chat", content=body, headers={"x-echo-fail-after": "2", "x-echo-code": "ABORTED"})
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert r.status_code == 200 and lines[:2] == [{"name": "n0"}, {"name": "n1"}]
    assert lines[2]["error"]["code"] == 10 and len(lines) == 3


def test_streamed_requests_all_arrive_with_the_gateway_metadata(echo_client) -> None:
    client, echo = echo_client
    body = "\n".join(json.dumps({"name": f"n{i}", "tags": [str(i)]}) for i in range(100))
    r = client.post("/v1/items:collect", content=body, headers={"x-request-id": "collect-1"})
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == [str(i) for i in range(100)]
    call = echo.calls_to("/Collect")[-1]
    assert len(call.requests) == 100 and call.header("x-request-id") == "collect-1"
    r = client.post("/v1/items:chat", content=body)
    assert [json.loads(line)["name"] for line in r.text.splitlines()] == [f"n{i}" for i in range(100)]
