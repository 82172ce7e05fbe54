"""HTTP/2 through the real gateway and the real demo backend: h2c (prior knowledge) on a
plaintext listener, h2 by ALPN on TLS. Every route kind, the batch endpoint, streams,
compression, access log and metrics behave as over HTTP/1.1; the listener's limits
(431/414/400/408/413, head and idle timeouts) answer in the same shape.

Well-behaved clients are httpx (`http2=True`); what httpx would never send comes from the
frame-level client in tests/support/h2raw.py.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import socket
import ssl
import subprocess
import time

import httpx
import pytest

from edge.devcert import ensure_dev_certificate, generate_certificate, write_atomically
from tests.support.gateway import gateway_config, running_gateway
from tests.support.h2raw import ENHANCE_YOUR_CALM, NO_ERROR, REFUSED_STREAM, RawH2

HEAD_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
IDLE = 1.5


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.support.backends import demo_backend_running

    log_file = tmp_path_factory.mktemp("h2") / "access.log"
    with demo_backend_running() as backend:
        config = gateway_config(
            [{"name": "demo", "target": backend.target}],
            listen={"header_timeout": HEAD_TIMEOUT, "body_timeout": BODY_TIMEOUT, "keep_alive_timeout": IDLE,
                    "max_header_bytes": "32KiB", "max_url_bytes": "4KiB"},
            transcoding={"max_body_bytes": "1MiB"},
            access_log={"destination": str(log_file)},
            compression={"min_size": 200},
        )
        with running_gateway(config) as gateway:
            yield gateway, backend, log_file


@pytest.fixture
def gw(stack):
    stack[1].recorder.reset()
    return stack[0]


@pytest.fixture
def recorder(stack):
    return stack[1].recorder


def h2c(gw) -> httpx.Client:
    """httpx speaking HTTP/2 with prior knowledge (no HTTP/1.1 at all) to the plaintext listener."""
    return httpx.Client(base_url=gw.url, http1=False, http2=True, timeout=10)


def raw(gw, **options) -> RawH2:
    return RawH2(gw.server.public.port, **options)


def _metric(text: str, name: str, **labels: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()))


# ---- the same gateway over both protocols ---------------------------------------------------


def test_every_kind_of_route_answers_the_same_over_h2c_and_http11(gw):
    with h2c(gw) as two, httpx.Client(base_url=gw.url, timeout=10) as one:
        for method, path, body in [
            ("GET", "/v1/shelves/scifi", None),
            ("GET", "/v1/shelves/scifi/books", None),
            ("GET", "/v1/shelves/nowhere", None),                    # backend NOT_FOUND
            ("GET", "/v1/no/such/route", None),                      # no route: 404 of the gateway
            ("PUT", "/v1/shelves", None),                             # 405
            ("POST", "/v1/shelves", {"theme": ""}),                  # backend INVALID_ARGUMENT
            ("GET", "/v1/shelves/scifi?bogus=1", None),              # unknown query parameter
        ]:
            a = two.request(method, path, json=body)
            b = one.request(method, path, json=body)
            assert a.http_version == "HTTP/2" and b.http_version == "HTTP/1.1"
            assert (a.status_code, a.headers["content-type"]) == (b.status_code, b.headers["content-type"]), path
            assert a.json() == b.json(), path
            assert a.headers["x-request-id"] and "connection" not in a.headers


def test_post_body_batch_and_head_over_h2c(gw, recorder):
    with h2c(gw) as c:
        created = c.post("/v1/shelves", json={"theme": "h2 poetry"})
        assert created.status_code == 200 and created.json()["theme"] == "h2 poetry"
        batch = c.post("/v1/batch", json={"requests": [{"id": "a", "url": "/v1/shelves/scifi"},
                                                        {"id": "b", "url": "/v1/shelves/nowhere"}]})
        assert batch.status_code == 200
        assert {r["id"]: r["status"] for r in batch.json()["responses"]} == {"a": 200, "b": 404}
        head = c.head("/v1/shelves/scifi")
        assert head.status_code == 200 and head.content == b""
    assert recorder.calls["CreateShelf"] == 1 and recorder.calls["GetShelf"] >= 2


def test_many_concurrent_streams_on_one_connection(gw, recorder):
    """Multiplexing: 50 requests in flight at once on one connection, each answered once."""
    conn = raw(gw)
    try:
        ids = [conn.request(f"/v1/shelves/{'scifi' if i % 2 else 'history'}") for i in range(50)]
        for i, stream_id in enumerate(ids):
            reply = conn.response(stream_id)
            assert reply.status == 200, (stream_id, reply)
            assert json.loads(reply.body)["name"] == f"shelves/{'scifi' if i % 2 else 'history'}"
    finally:
        conn.close()
    assert recorder.calls["GetShelf"] == 50


def test_stream_lines_leave_one_by_one_over_h2(gw, recorder):
    """NDJSON over h2: the first message arrives while the backend is still streaming the rest."""
    with h2c(gw) as c, c.stream("GET", "/v1/shelves/scifi/books:stream", params={"delayMs": 300}) as r:
        assert r.status_code == 200 and r.http_version == "HTTP/2"
        lines = r.iter_lines()
        first = json.loads(next(line for line in lines if line))
        assert recorder.last("StreamBooks").code is None  # not finished: the line was flushed on its own
        rest = [json.loads(line) for line in lines if line]
    assert [b["name"] for b in [first, *rest]][0].startswith("shelves/scifi/books/") and len(rest) == 3


def test_compression_over_h2(gw):
    with h2c(gw) as c:
        r = c.get("/v1/shelves/scifi/books", headers={"accept-encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and "accept-encoding" in r.headers["vary"].lower()
    assert json.loads(r.content)["books"]  # httpx decoded it
    raw_reply = raw(gw)
    try:
        reply = raw_reply.response(raw_reply.request("/v1/shelves/scifi/books", extra=[("accept-encoding", "gzip")]))
    finally:
        raw_reply.close()
    assert reply.headers["content-encoding"] == "gzip" and json.loads(gzip.decompress(reply.body))["books"]


def test_access_log_and_metrics_record_the_protocol(stack):
    gw, _, log_file = stack
    before = httpx.get(f"{gw.admin_url}/metrics").text
    with h2c(gw) as two, httpx.Client(base_url=gw.url, timeout=10) as one:
        assert two.get("/v1/shelves/scifi", headers={"x-request-id": "via-h2"}).status_code == 200
        assert one.get("/v1/shelves/scifi", headers={"x-request-id": "via-h1"}).status_code == 200
    deadline = time.monotonic() + 5
    seen: dict[str, dict] = {}
    while time.monotonic() < deadline and len(seen) < 2:
        seen = {line["request_id"]: line for line in map(json.loads, log_file.read_text().splitlines())
                if line["request_id"] in ("via-h2", "via-h1")}
        time.sleep(0.05)
    assert seen["via-h2"]["http_version"] == "2" and seen["via-h1"]["http_version"] == "1.1"
    assert seen["via-h2"]["route"] == seen["via-h1"]["route"] == "/v1/{name=shelves/*}"
    after = httpx.get(f"{gw.admin_url}/metrics").text
    assert _metric(after, "edge_requests_total", route="/v1/{name=shelves/*}", http_status="200") \
        - _metric(before, "edge_requests_total", route="/v1/{name=shelves/*}", http_status="200") == 2


# ---- the listener's limits, in the same shape as over HTTP/1.1 -----------------------------


def _status_json(reply) -> dict:
    assert reply.headers["content-type"] == "application/json", reply
    body = json.loads(reply.body)
    assert set(body) == {"code", "message", "details"} and body["message"], body
    return body


def test_oversized_headers_url_and_bad_path_are_answered_like_http11(gw, recorder):
    conn = raw(gw)
    try:
        big = conn.response(conn.request("/v1/shelves/scifi", extra=[("x-big", "a" * 40_000)]))
        assert big.status == 431 and "32768 bytes" in _status_json(big)["message"]
        long_url = conn.response(conn.request("/v1/shelves/" + "x" * 5000))
        assert long_url.status == 414 and "4096 bytes" in _status_json(long_url)["message"]
        spaced = conn.response(conn.request("/v1/shelves/sci fi"))
        assert spaced.status == 400 and "malformed HTTP request" in _status_json(spaced)["message"]
        # The connection is still good for honest requests.
        assert conn.response(conn.request("/v1/shelves/scifi")).status == 200
    finally:
        conn.close()
    assert recorder.calls["GetShelf"] == 1


def test_header_list_past_twice_the_limit_closes_the_connection(gw, recorder):
    """Past the hard bound HPACK decoding stops mid-block: the connection (whose compression state
    is now out of step) ends with GOAWAY, and nothing reached the backend."""
    conn = raw(gw)
    try:
        conn.request("/v1/shelves/scifi", extra=[(f"x-h{i}", "v" * 1000) for i in range(80)])
        assert conn.wait_closed()
        assert conn.goaway is not None and conn.goaway.error_code == ENHANCE_YOUR_CALM
    finally:
        conn.close()
    assert sum(recorder.calls.values()) == 0


def test_slow_body_is_a_408_and_the_backend_is_never_called(gw, recorder):
    conn = raw(gw)
    try:
        stream_id = conn.request("/v1/shelves", "POST", extra=[("content-type", "application/json"),
                                                                ("content-length", "100")], end_stream=False)
        from hyperframe.frame import DataFrame

        conn.send(DataFrame(stream_id, data=b'{"theme": "s').serialize())
        reply = conn.response(stream_id, timeout=BODY_TIMEOUT + 5)
        assert reply.status == 408 and "request body" in _status_json(reply)["message"]
        assert conn.response(conn.request("/v1/shelves/scifi")).status == 200  # the connection lives on
    finally:
        conn.close()
    assert recorder.calls["CreateShelf"] == 0


def test_early_answer_stops_the_upload_without_closing_the_connection(gw, recorder):
    """A 100 MB body: 413 at once from Content-Length, then RST_STREAM(NO_ERROR) tells the client
    to stop sending; other streams on the connection go on."""
    conn = raw(gw)
    try:
        stream_id = conn.request("/v1/shelves/scifi/books", "POST", end_stream=False,
                                 extra=[("content-type", "application/json"), ("content-length", str(100 << 20))])
        reply = conn.response(stream_id)
        assert reply.status == 413 and "1048576 bytes" in _status_json(reply)["message"]
        conn.read_until(lambda: conn.reply(stream_id).reset is not None, 5)
        assert conn.reply(stream_id).reset == NO_ERROR
        assert conn.response(conn.request("/v1/shelves/scifi")).status == 200
    finally:
        conn.close()
    assert recorder.calls["CreateBook"] == 0


def test_a_header_block_that_never_ends_is_cut_at_the_head_timeout(gw, recorder):
    conn = raw(gw)
    try:
        conn.read_until(lambda: bool(conn.settings), 5)  # settle the handshake: no frame may follow the block
        started = time.monotonic()
        conn.send(conn.headers_frame(conn.new_stream(), conn.block("/v1/shelves/scifi"), end_headers=False))
        assert conn.wait_closed(HEAD_TIMEOUT + 8)
        assert time.monotonic() - started >= HEAD_TIMEOUT
    finally:
        conn.close()
    assert recorder.calls["GetShelf"] == 0


def test_idle_h2_connection_is_closed_with_goaway(gw):
    conn = raw(gw)
    try:
        assert conn.response(conn.request("/v1/shelves/scifi")).status == 200
        started = time.monotonic()
        assert conn.wait_closed(IDLE + 8)
        assert time.monotonic() - started >= IDLE - 0.1
        assert conn.goaway is not None and conn.goaway.error_code == NO_ERROR
    finally:
        conn.close()


@pytest.mark.parametrize("extra", [
    [("transfer-encoding", "chunked")],        # connection-specific headers are malformed in HTTP/2
    [("connection", "keep-alive")],
    [("Content-Type", "application/json")],    # upper-case names are malformed in HTTP/2
    [("x-a", "a\x00b")],
], ids=["te", "connection", "uppercase", "nul"])
def test_malformed_requests_never_reach_the_backend(gw, recorder, extra):
    conn = raw(gw)
    try:
        stream_id = conn.request("/v1/shelves", "POST", extra=extra, body=b'{"theme": "t"}')
        conn.read_until(lambda: conn.closed or conn.reply(stream_id).reset is not None
                        or conn.reply(stream_id).ended, 5)
        assert conn.reply(stream_id).status in (None, 400), conn.reply(stream_id)
    finally:
        conn.close()
    assert recorder.calls["CreateShelf"] == 0


def test_body_longer_than_its_content_length_is_refused(gw, recorder):
    conn = raw(gw)
    try:
        stream_id = conn.request("/v1/shelves", "POST", extra=[("content-type", "application/json"),
                                                                ("content-length", "4")], body=b'{"theme": "t"}')
        conn.read_until(lambda: conn.closed or conn.reply(stream_id).reset is not None, 5)
        assert conn.reply(stream_id).status != 200
    finally:
        conn.close()
    assert recorder.calls["CreateShelf"] == 0


def test_http2_can_be_turned_off(demo_backend):
    config = gateway_config([{"name": "demo", "target": demo_backend.target}], listen={"http2": {"enabled": False}})
    with running_gateway(config) as gw:
        with socket.create_connection(("127.0.0.1", gw.server.public.port), timeout=5) as sock:
            sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 400")
        with httpx.Client(base_url=gw.url, http2=True, timeout=5) as c:
            assert c.get("/healthz").http_version == "HTTP/1.1"


# ---- TLS: h2 by ALPN, http/1.1 still offered, certificates rotate --------------------------


@pytest.fixture
def tls_gateway(demo_backend, tmp_path):
    cert, key = ensure_dev_certificate(tmp_path / "tls")
    config = gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        listen={"plaintext": False, "tls": {"cert_file": str(cert), "key_file": str(key), "reload_interval": 0.1}},
    )
    with running_gateway(config) as gw:
        yield gw, cert, key


def _alpn(port: int, cafile, offer: list[str]) -> tuple[str | None, str]:
    context = ssl.create_default_context(cafile=str(cafile))
    context.set_alpn_protocols(offer)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw_sock, \
            context.wrap_socket(raw_sock, server_hostname="localhost") as tls:
        der = tls.getpeercert(binary_form=True)
        return tls.selected_alpn_protocol(), hashlib.sha256(der).hexdigest()


def test_alpn_offers_h2_and_http11(tls_gateway):
    gw, cert, _ = tls_gateway
    port = gw.server.public.port
    assert _alpn(port, cert, ["h2", "http/1.1"])[0] == "h2"
    assert _alpn(port, cert, ["http/1.1"])[0] == "http/1.1"
    context = ssl.create_default_context(cafile=str(cert))
    url = gw.url.replace("127.0.0.1", "localhost")
    with httpx.Client(base_url=url, verify=context, http2=True) as two, httpx.Client(base_url=url, verify=context) as one:
        a, b = two.get("/v1/shelves/scifi"), one.get("/v1/shelves/scifi")
        assert (a.http_version, b.http_version) == ("HTTP/2", "HTTP/1.1")
        assert a.status_code == b.status_code == 200 and a.json() == b.json()
        with two.stream("GET", "/v1/shelves/scifi/books:stream") as r:
            assert len([line for line in r.iter_lines() if line]) == 4


def test_rotated_certificate_reaches_new_h2_connections(tls_gateway):
    gw, cert, key = tls_gateway
    port = gw.server.public.port
    context = ssl.create_default_context(cafile=str(cert))
    url = gw.url.replace("127.0.0.1", "localhost")
    with httpx.Client(base_url=url, verify=context, http2=True) as before_rotation:
        assert before_rotation.get("/healthz").http_version == "HTTP/2"  # an open h2 connection
        new = generate_certificate("localhost", hosts=["localhost", "127.0.0.1"])
        write_atomically(key, new.key_pem(), mode=0o600)
        write_atomically(cert, new.cert_pem)

        async def sighup() -> None:
            gw.server.reload()

        gw.run(sighup())
        protocol, fingerprint = _alpn(port, cert, ["h2", "http/1.1"])
        assert (protocol, fingerprint) == ("h2", new.fingerprint)
        # The connection opened before the rotation keeps serving.
        assert before_rotation.get("/v1/shelves/scifi").status_code == 200
    with httpx.Client(base_url=url, verify=ssl.create_default_context(cafile=str(cert)), http2=True) as after:
        assert after.get("/v1/shelves/scifi").http_version == "HTTP/2"


def test_shutdown_sends_goaway_and_finishes_open_streams(demo_backend):
    """What SIGTERM does after the pre-drain delay, on one h2 connection: GOAWAY at once, the
    open stream completes, a stream opened after the GOAWAY is refused (safe to retry)."""
    config = gateway_config([{"name": "demo", "target": demo_backend.target}],
                            transcoding={"forward_headers": ["x-demo-delay-ms"]})
    with running_gateway(config) as gw:
        conn = raw(gw)
        try:
            slow = conn.request("/v1/shelves/scifi", extra=[("x-demo-delay-ms", "1500")])
            assert demo_backend.recorder.wait_for("GetShelf")

            async def stop() -> None:
                gw.server.begin_shutdown(pre_drain_delay=0)

            gw.run(stop())
            conn.read_until(lambda: conn.goaway is not None, 5)
            assert conn.goaway is not None and conn.goaway.last_stream_id == slow
            late = conn.request("/v1/shelves/history")
            assert conn.response(slow).status == 200
            assert conn.reply(late).status is None and conn.reply(late).reset == REFUSED_STREAM
            assert conn.wait_closed(10)
        finally:
            conn.close()
    assert demo_backend.recorder.calls["GetShelf"] == 1


# ---- h2load (nghttp2's load generator) as a real client, when installed -------------------

H2LOAD = shutil.which("h2load")


def _h2load(url: str, requests: int = 300) -> str:
    out = subprocess.run([H2LOAD, "-n", str(requests), "-c", "3", "-m", "10", url],
                         capture_output=True, text=True, timeout=60)
    assert re.search(rf"requests: {requests} total, {requests} started, {requests} done, {requests} succeeded",
                     out.stdout), out.stdout + out.stderr
    assert re.search(rf"status codes: {requests} 2xx", out.stdout), out.stdout
    return out.stdout


@pytest.mark.skipif(H2LOAD is None, reason="h2load (Debian's nghttp2-client) is not installed; scripts/bench installs it")
def test_h2load_over_h2c(gw, recorder):
    assert "Application protocol: h2c" in _h2load(gw.url + "/v1/shelves/scifi")
    assert recorder.calls["GetShelf"] == 300


@pytest.mark.skipif(H2LOAD is None, reason="h2load (Debian's nghttp2-client) is not installed; scripts/bench installs it")
def test_h2load_over_tls_h2(tls_gateway, demo_backend):
    gw, _, _ = tls_gateway
    assert "Application protocol: h2" in _h2load(gw.url + "/v1/shelves/scifi")
    assert demo_backend.recorder.calls["GetShelf"] == 300
