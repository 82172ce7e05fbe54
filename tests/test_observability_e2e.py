"""Access log, metrics, trace headers and compression through the real gateway."""
from __future__ import annotations

import gzip
import json
import re
import time
import zlib

import httpx
import pytest

from edge.compression import zstd_available
from tests.support.gateway import gateway_config, running_gateway


@pytest.fixture
def observed(demo_backend, tmp_path):
    log_file = tmp_path / "access.log"
    config = gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        access_log={"destination": str(log_file)},
        compression={"min_size": 200},
        transcoding={"max_body_bytes": 64 * 1024},
    )
    with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        yield gw, client, log_file


def _lines(path, count: int, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = [json.loads(line) for line in path.read_text().splitlines() if line]
            if len(lines) >= count:
                return lines
        time.sleep(0.05)
    raise AssertionError(f"expected {count} access-log lines in {path}")


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_access_log_and_metrics_after_known_sequence(observed):
    gw, client, log_file = observed
    # Metrics are per process and other tests in this run count too: compare deltas.
    before = httpx.get(f"{gw.admin_url}/metrics").text
    assert client.get("/v1/shelves/scifi", params={"secret": "x"}).status_code == 400  # unknown query param
    assert client.get("/v1/shelves/scifi", headers={"x-request-id": "seq-2"}).status_code == 200
    assert client.get("/v1/nowhere").status_code == 404
    assert client.put("/v1/shelves").status_code == 405
    assert client.get("/v1/shelves/404").status_code == 404  # backend NOT_FOUND

    lines = _lines(log_file, 5)
    assert [l["http_status"] for l in lines] == [400, 200, 404, 405, 404]
    ok = lines[1]
    assert ok["request_id"] == "seq-2"
    assert ok["route"] == "/v1/{name=shelves/*}"
    assert ok["grpc_method"] == "edgedemo.library.v1.LibraryService/GetShelf"
    assert ok["grpc_status"] == "OK" and ok["path"] == "/v1/shelves/scifi"
    assert ok["backend_ms"] > 0 and ok["duration_ms"] >= ok["backend_ms"]
    assert ok["bytes_out"] > 0 and ok["client_ip"] == "127.0.0.1"
    assert lines[4]["grpc_status"] == "NOT_FOUND"
    assert lines[2]["route"] is None
    assert all("secret" not in json.dumps(l) for l in lines)  # query strings are not logged by default
    assert [l["protocol"] for l in lines] == ["rest"] * 5

    text = httpx.get(f"{gw.admin_url}/metrics").text
    route = "/v1/{name=shelves/*}"

    def delta(name: str, **labels: str) -> float:
        return _metric(text, name, **labels) - _metric(before, name, **labels)

    assert delta("edge_requests_total", route=route, http_status="200") == 1
    assert delta("edge_requests_total", route=route, http_status="404", grpc_status="NOT_FOUND") == 1
    assert delta("edge_requests_total", route=route, http_status="400") == 1
    assert delta("edge_requests_total", route="unmatched", http_status="404") == 1
    assert delta("edge_protocol_requests_total", protocol="rest") == 5
    assert delta("edge_backend_duration_seconds_count", backend="demo") == 2
    assert _metric(text, "edge_descriptor_reloads_total", backend="demo", result="success") >= 1
    assert "edge_inflight_requests" in text


def test_request_id_and_traceparent_reach_backend(observed, demo_backend):
    _, client, _ = observed
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    r = client.get("/v1/shelves/scifi", headers={"x-request-id": "abc-1", "traceparent": tp, "tracestate": "k=v"})
    assert r.headers["x-request-id"] == "abc-1"
    record = demo_backend.recorder.last("GetShelf")
    assert record.header("x-request-id") == "abc-1"
    assert record.header("traceparent") == tp and record.header("tracestate") == "k=v"
    client.get("/v1/shelves/scifi", headers={"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01"})
    assert demo_backend.recorder.last("GetShelf").header("traceparent") is None  # invalid: not passed on


def test_gzip_on_and_off(observed):
    _, client, _ = observed
    zipped = client.get("/v1/shelves/scifi/books", headers={"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and "accept-encoding" in zipped.headers["vary"].lower()
    assert len(zipped.json()["books"]) == 4  # httpx decoded it
    plain = client.get("/v1/shelves/scifi/books", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.json() == zipped.json()
    with client.stream("GET", "/v1/shelves/scifi/books:stream", headers={"accept-encoding": "gzip"}) as r:
        assert r.headers["content-encoding"] == "gzip"
        assert len([line for line in r.iter_lines() if line]) == 4


def test_gzip_request_body_and_bomb(observed, demo_backend):
    _, client, _ = observed
    body = gzip.compress(b'{"title": "Zipped"}')
    r = client.post("/v1/shelves/scifi/books", content=body,
                    headers={"content-encoding": "gzip", "content-type": "application/json"})
    assert r.status_code == 200 and r.json()["title"] == "Zipped"
    # ~10 KB of gzip that inflates to 10 MB, far over the 64 KiB body limit.
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = packer.compress(b'{"title": "' + b"a" * (10 * 1024 * 1024)) + packer.flush()
    calls = demo_backend.recorder.calls["CreateBook"]
    r = client.post("/v1/shelves/scifi/books", content=bomb,
                    headers={"content-encoding": "gzip", "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == 8
    assert demo_backend.recorder.calls["CreateBook"] == calls
    r = client.post("/v1/shelves/scifi/books", content=b"x", headers={"content-encoding": "zstd-unknown"})
    assert r.status_code == 415


@pytest.mark.skipif(not zstd_available(), reason="neither compression.zstd nor backports.zstd installed")
def test_zstd_both_ways(observed, demo_backend):
    from edge.compression import zstd

    _, client, _ = observed
    with client.stream("GET", "/v1/shelves/scifi/books", headers={"accept-encoding": "gzip, zstd;q=1"}) as r:
        assert r.headers["content-encoding"] == "zstd" and "accept-encoding" in r.headers["vary"].lower()
        raw = b"".join(r.iter_raw())  # as sent: httpx decodes zstd only with another package
    plain = client.get("/v1/shelves/scifi/books", headers={"accept-encoding": "identity"})
    assert zstd.decompress(raw) == plain.content
    with client.stream("GET", "/v1/shelves/scifi/books:stream", headers={"accept-encoding": "zstd"}) as s:
        assert s.headers["content-encoding"] == "zstd"
        inflate = zstd.ZstdDecompressor().decompress
        lines = b"".join(inflate(chunk) for chunk in s.iter_raw())
        assert len([line for line in lines.split(b"\n") if line]) == 4
    body = zstd.compress(b'{"title": "Squeezed"}')
    r = client.post("/v1/shelves/scifi/books", content=body,
                    headers={"content-encoding": "zstd", "content-type": "application/json"})
    assert r.status_code == 200 and r.json()["title"] == "Squeezed"
    calls = demo_backend.recorder.calls["CreateBook"]
    packer = zstd.ZstdCompressor(level=1)
    bomb = packer.compress(b'{"title": "' + b"a" * (10 * 1024 * 1024)) + packer.flush()
    assert len(bomb) < 4096
    r = client.post("/v1/shelves/scifi/books", content=bomb,
                    headers={"content-encoding": "zstd", "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == 8
    assert demo_backend.recorder.calls["CreateBook"] == calls


def test_openapi_served_and_refreshed_on_reload(observed):
    gw, client, _ = observed
    doc = client.get("/openapi.json")
    assert doc.status_code == 200 and doc.json()["openapi"].startswith("3.1")
    paths = doc.json()["paths"]
    assert sorted(paths) == [  # every route of the demo protos, in OpenAPI path form
        "/edgedemo.library.v1.LibraryService/ArchiveShelf", "/v1/books/{bookId}", "/v1/books:search",
        "/v1/shelves", "/v1/shelves/{shelf}", "/v1/shelves/{shelf}/books", "/v1/shelves/{shelf}/books/{book}",
        "/v1/shelves/{shelf}/books/{book}/cover", "/v1/shelves/{shelf}/books/{book}:move",
        "/v1/shelves/{shelf}/books:import", "/v1/shelves/{shelf}/books:stream", "/v1/shelves:list",
        "/v1/users", "/v1/users/me", "/v1/users/{userId}"]
    assert client.get("/docs").headers["content-type"].startswith("text/html")
    generation = gw.registry.generation
    assert client.get("/openapi.json").content == doc.content  # cached per generation
    assert gw.registry.generation == generation


def test_batch_logs_one_line_for_the_batch_and_one_per_item(observed):
    _, client, log_file = observed
    r = client.post("/v1/batch", headers={"x-request-id": "batch-7"}, json={"requests": [
        {"id": "a", "method": "GET", "url": "/v1/shelves/scifi"},
        {"id": "b", "method": "GET", "url": "/v1/nowhere"},
    ]})
    assert r.status_code == 200
    lines = _lines(log_file, 3)
    items = [l for l in lines if l["batch_id"] == "batch-7"]
    assert sorted((l["request_id"], l["http_status"]) for l in items) == [("batch-7/a", 200), ("batch-7/b", 404)]
    batch = [l for l in lines if l["request_id"] == "batch-7"]
    assert len(batch) == 1 and batch[0]["http_status"] == 200 and batch[0]["path"] == "/v1/batch"
