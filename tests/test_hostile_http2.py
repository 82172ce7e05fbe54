"""HTTP/2 attacks an edge must survive, each against `edge serve` as a real subprocess (so
its RSS is the gateway's own) in front of the real demo backend, with a frame-level client.

Each attack is bounded in count and time, and ends with the gateway answering a fresh
request and its RSS within `RSS_BUDGET_MIB` of what it was before the attack. Without the
bounds of edge/http2/ an h2 listener grew ~800 MiB and stopped answering under the HPACK
bomb and the never-finished streams (issue 17).
"""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hyperframe.frame import DataFrame

from tests.support.h2raw import ENHANCE_YOUR_CALM, RawH2
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
RSS_BUDGET_MIB = 64
MAX_RESETS = 100
MAX_CONTROL = 500
MAX_STREAMS = 100
STALL = 1.0


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """`edge serve` (h2c on a plaintext listener) with small abuse bounds, and the demo backend."""
    from tests.support.backends import demo_backend_running

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    work = tmp_path_factory.mktemp("h2attack")
    with demo_backend_running() as backend:
        config = work / "edge.yaml"
        config.write_text(
            f"listen: {{host: 127.0.0.1, port: {port}, plaintext: true, header_timeout: 2s, body_timeout: 30s,\n"
            f"  keep_alive_timeout: 30s, http2: {{max_resets: {MAX_RESETS}, max_control_frames: {MAX_CONTROL},\n"
            f"  max_concurrent_streams: {MAX_STREAMS}, stalled_stream_timeout: {STALL}s}}}}\n"
            "admin: {enabled: false}\naccess_log: {enabled: false}\n"
            f"backends: [{{name: demo, target: '{backend.target}'}}]\n")
        proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "serve", "--config", str(config),
                                 "--log-level", "warning"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=open(work / "gateway.log", "wb"))
        url = f"http://127.0.0.1:{port}"
        try:
            def ready() -> bool:
                try:
                    return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            assert wait_for(ready, timeout=30), (work / "gateway.log").read_text()
            # Warm up (allocator, channels, route plans) so the baseline is the steady state.
            with httpx.Client(base_url=url, http1=False, http2=True, timeout=10) as c:
                for _ in range(300):
                    assert c.get("/v1/shelves/scifi").status_code == 200
            yield proc, port, url, backend
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def attack(gateway):
    """Yields (port, recorder); afterwards checks a fresh request and the RSS budget."""
    proc, port, url, backend = gateway
    backend.recorder.reset()
    before = _rss_mib(proc.pid)
    yield port, backend.recorder
    assert proc.poll() is None, "the gateway died"
    with httpx.Client(base_url=url, http1=False, http2=True, timeout=10) as c:
        r = c.get("/v1/shelves/scifi")
        assert r.status_code == 200 and r.http_version == "HTTP/2"
    grown = _rss_mib(proc.pid) - before
    print(f"RSS growth {grown:.1f} MiB")
    assert grown < RSS_BUDGET_MIB, f"RSS grew {grown:.1f} MiB"


def _settled(port: int, **options) -> RawH2:
    conn = RawH2(port, **options)
    conn.read_until(lambda: bool(conn.settings), 5)
    return conn


def test_rapid_reset_is_cut_off_before_reaching_the_app(attack):
    """CVE-2023-44487: HEADERS then RST_STREAM, over and over. Pairs that arrive together never
    start an app call; past max_resets per 10 s the connection gets GOAWAY ENHANCE_YOUR_CALM."""
    port, recorder = attack
    for _ in range(20):
        conn = _settled(port)
        try:
            block = conn.block("/v1/shelves/scifi")
            for _ in range(50):  # up to 5,000 streams per connection, 100 pairs per write
                data = b""
                for _ in range(100):
                    stream_id = conn.new_stream()
                    data += conn.headers_frame(stream_id, block) + conn.rst(stream_id)
                if not conn.send(data):
                    break
            assert conn.wait_closed(10)
            assert conn.goaway is not None and conn.goaway.error_code == ENHANCE_YOUR_CALM
        finally:
            conn.close()
    assert recorder.calls["GetShelf"] <= 20 * MAX_STREAMS


def test_resetting_streams_whose_calls_run_cannot_multiply_work(attack):
    """Reset streams keep their slot until their call ends: the next streams are refused (and
    counted), so in-flight calls per connection never pass max_concurrent_streams."""
    port, recorder = attack
    conn = _settled(port)
    try:
        for _ in range(10):
            ids = []
            data = b""
            for _ in range(MAX_STREAMS):
                ids.append(conn.new_stream())
                data += conn.headers_frame(ids[-1], conn.block("/v1/shelves/scifi", extra=[("x-demo-delay-ms", "2000")]))
            if not conn.send(data):
                break
            conn.read(0.2)
            if not conn.send(b"".join(conn.rst(i) for i in ids)):
                break
        assert conn.wait_closed(10)
        assert conn.goaway is not None and conn.goaway.error_code == ENHANCE_YOUR_CALM
    finally:
        conn.close()
    assert recorder.calls["GetShelf"] <= 2 * MAX_STREAMS


def test_continuation_flood_is_cut_at_the_header_limit(attack):
    """HEADERS without END_HEADERS, then CONTINUATION frames for ever: the connection is closed once
    the block passes the hard header bound, long before the client is done."""
    port, recorder = attack
    for _ in range(5):
        conn = _settled(port)
        try:
            stream_id = conn.new_stream()
            conn.send(conn.headers_frame(stream_id, conn.block("/v1/shelves/scifi"), end_headers=False))
            filler = b"\x00\x05x-pad\x7f\x81\x7f" + b"p" * 16000  # a literal header, split across frames
            sent = 0
            while sent < 50 << 20 and conn.send(conn.continuation(stream_id, filler[:16384])):
                sent += 16384
            assert sent < 50 << 20
            assert conn.wait_closed(10)
        finally:
            conn.close()
    assert recorder.calls["GetShelf"] == 0


def test_hpack_bomb_is_refused_without_expanding_it(attack):
    """A 4 KB header put in the HPACK table once, then referenced a thousand times per stream
    (about 1 KB on the wire for 4 MB of headers): decoding stops at the bound, GOAWAY follows."""
    port, recorder = attack
    primed = 0
    for _ in range(30):
        conn = _settled(port)
        try:
            # ~4 KB, sized so the request's own indexed headers still fit the 4 KiB table with it: entry 62.
            first = conn.request("/v1/shelves/scifi", extra=[("x-bomb", "b" * 3900)])
            assert conn.response(first).status == 200
            primed += 1
            for _ in range(20):
                stream_id = conn.new_stream()
                block = conn.block("/v1/shelves/scifi") + bytes([0x80 | 62]) * 1000
                if not conn.send(conn.headers_frame(stream_id, block)):
                    break
            assert conn.wait_closed(10)
            assert conn.goaway is not None and conn.goaway.error_code == ENHANCE_YOUR_CALM
        finally:
            conn.close()
    assert recorder.calls["GetShelf"] == primed


def test_never_finished_streams_are_bounded_per_connection(attack):
    """Thousands of streams that never send their body: each connection holds at most
    max_concurrent_streams (one more is a protocol error), and fresh clients are served meanwhile."""
    port, recorder = attack
    conns = [_settled(port) for _ in range(8)]
    try:
        head = [("content-type", "application/json"), ("content-length", "20")]
        for conn in conns:
            data = b""
            for _ in range(MAX_STREAMS):
                data += conn.headers_frame(conn.new_stream(), conn.block("/v1/shelves", "POST", head), end_stream=False)
            assert conn.send(data)
        for conn in conns:
            conn.read(0.2)
        # Held open: a well-behaved client is still served at once.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", http1=False, http2=True, timeout=10) as c:
            assert c.get("/v1/shelves/scifi").status_code == 200
        # One stream past the advertised limit ends that connection.
        for conn in conns:
            conn.send(conn.headers_frame(conn.new_stream(), conn.block("/v1/shelves", "POST", head), end_stream=False))
            assert conn.wait_closed(10)
    finally:
        for conn in conns:
            conn.close()
    assert recorder.calls["CreateShelf"] == 0


def test_a_client_that_keeps_its_window_shut_loses_its_streams(attack):
    """SETTINGS_INITIAL_WINDOW_SIZE 0 and no WINDOW_UPDATE: answers cannot move, so after
    stalled_stream_timeout each stream is reset (and its backend stream cancelled)."""
    port, recorder = attack
    conn = _settled(port, settings={0x4: 0}, auto_window=False)
    try:
        ids = [conn.request("/v1/shelves/scifi/books:stream") for _ in range(20)]
        ids += [conn.request("/v1/shelves/scifi/books") for _ in range(20)]
        assert conn.read_until(lambda: all(conn.reply(i).reset is not None for i in ids), STALL + 15)
        assert all(conn.reply(i).body == b"" for i in ids)
        # The connection itself is still usable once the client opens its window.
        conn.send(conn.settings_frame({0x4: 65535}))
        conn.auto_window = True
        assert conn.response(conn.request("/v1/shelves/scifi")).status == 200
    finally:
        conn.close()
    assert wait_for(lambda: recorder.cancelled["StreamBooks"] + recorder.calls["StreamBooks"] >= 20, timeout=10)


def test_settings_and_ping_storm_is_cut_off(attack):
    """PING and SETTINGS frames as fast as the socket takes them: past max_control_frames per
    10 s, GOAWAY ENHANCE_YOUR_CALM and the connection closes -- whether the client reads the
    answers or never does (then the gateway stops reading too, so the ACKs cannot pile up)."""
    port, _ = attack
    for reads in (True, False, True, False):
        conn = _settled(port, timeout=3)
        try:
            storm = (conn.ping() + conn.settings_frame({0x3: 100})) * 2000
            sent = 0
            while sent < 100 and conn.send(storm):
                sent += 1
                if reads:
                    conn.read(0.01)
            assert sent < 100  # the gateway stopped taking them
            assert conn.wait_closed(10)
            if reads:
                assert conn.goaway is not None and conn.goaway.error_code == ENHANCE_YOUR_CALM
        finally:
            conn.close()


def test_a_body_flood_beyond_the_window_closes_the_connection(attack):
    """DATA past the flow-control window the gateway granted: a connection error, never buffered."""
    port, recorder = attack
    conn = _settled(port)
    try:
        stream_id = conn.request("/v1/shelves", "POST", extra=[("content-type", "application/json")], end_stream=False)
        chunk = DataFrame(stream_id, data=b" " * 16384).serialize()
        sent = 0
        while sent < 20 << 20 and conn.send(chunk * 16):
            sent += 16 * 16384
        assert sent < 20 << 20
        assert conn.wait_closed(10)
    finally:
        conn.close()
    assert recorder.calls["CreateShelf"] == 0
