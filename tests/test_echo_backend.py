"""The echo backend the compatibility tables run against: reflection from its own
descriptor set, every call kind echoed, and the x-echo-* controls, through a real gateway."""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.echo import ECHO_CONTROLS, echo_backend_running
from tests.support.gateway import gateway_config, running_gateway

ECHO_SET = Path(__file__).parent.parent / "protos" / "edgecompat" / "descriptors.binpb"


@pytest.fixture(scope="module")
def echo():
    with echo_backend_running(ECHO_SET) as backend:
        yield backend


@pytest.fixture(scope="module")
def client(echo):
    forward = [*ECHO_CONTROLS, "x-echo-header-x-mark", "x-echo-trailer-x-end"]
    config = gateway_config(
        [{"name": "echo", "target": echo.target}], transcoding={"forward_headers": forward, "response_metadata": True}
    )
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as c:
        yield c


def test_unary_echoes_the_built_request(client, echo) -> None:
    r = client.get("/v1/items/a%20b", params={"id": "7", "tags": ["x", "y"], "child.name": "c"})
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "a b", "id": "7", "tags": ["x", "y"], "child": {"name": "c"}}
    assert echo.last().method == "/edgecompat.echo.v1.EchoService/Get"


def test_controls_status_and_metadata(client) -> None:
    r = client.post("/v1/items", json={"name": "n"}, headers={"x-echo-fail-after": "0", "x-echo-code": "NOT_FOUND"})
    assert r.status_code == 404 and r.json()["code"] == 5
    r = client.post("/v1/items", json={"name": "n"}, headers={"x-echo-header-x-mark": "m", "x-echo-trailer-x-end": "e"})
    assert r.status_code == 200 and r.headers["grpc-metadata-x-mark"] == "m" and r.headers["grpc-trailer-x-end"] == "e"


def test_server_stream_repeats_and_fails_mid_stream(client) -> None:
    r = client.get("/v1/items/s:watch", headers={"x-echo-repeat": "3", "x-echo-header-x-mark": "m"})
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert lines == [{"name": "s"}] * 3
    assert r.headers["grpc-metadata-x-mark"] == "m"
    r = client.get("/v1/items/s:watch", headers={"x-echo-repeat": "3", "x-echo-fail-after": "1"})
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert lines[0] == {"name": "s"} and lines[1]["error"]["code"] == 13 and len(lines) == 2


def test_client_stream_merges_and_bidi_echoes(client, echo) -> None:
    body = b'{"name": "a", "tags": ["1"]}\n{"tags": ["2"]}\n'
    r = client.post("/v1/items:collect", content=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "a", "tags": ["1", "2"]}
    assert len(echo.calls_to("/Collect")[-1].requests) == 2
    r = client.post("/v1/items:chat", content=body)
    assert [json.loads(line) for line in r.text.splitlines()] == [{"name": "a", "tags": ["1"]}, {"tags": ["2"]}]
