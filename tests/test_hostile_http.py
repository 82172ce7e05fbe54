"""Hostile HTTP at the byte level, over raw sockets to a real gateway in front of the
real demo backend: request smuggling, oversized and slow request heads and bodies,
control bytes. httpx would normalise or refuse to send most of these, so the bytes are
written by hand; the backend's recorder shows what (if anything) got through.
"""
from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from tests.support.backends import demo_backend_running
from tests.support.gateway import gateway_config, running_gateway
from tests.support.rawhttp import connect, exchange, read_all, responses, status_json

HEAD_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def stack():
    """One backend and one gateway for the module (each test resets the recorder)."""
    with demo_backend_running() as backend:
        config = gateway_config(
            [{"name": "demo", "target": backend.target}],
            listen={"header_timeout": HEAD_TIMEOUT, "body_timeout": BODY_TIMEOUT, "max_header_bytes": "32KiB",
                    "max_url_bytes": "4KiB"},
            transcoding={"max_body_bytes": "1MiB"},
            access_log={"enabled": False},
        )
        with running_gateway(config) as gateway:
            yield gateway, backend


@pytest.fixture
def gw(stack):
    return stack[0]


@pytest.fixture
def demo_backend(stack):
    stack[1].recorder.reset()
    return stack[1]


# ---- request smuggling ---------------------------------------------------------------------

SMUGGLED = b"DELETE /v1/shelves/scifi HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("framing", [
    b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",        # CL.TE
    b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",        # TE.CL
    b"Content-Length: 4\r\nContent-Length: 60\r\n",                # two lengths
    b"Content-Length: 4, 60\r\n",
    b"Content-Length: +4\r\n",
    b"Content-Length: 0x4\r\n",
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
    b"Transfer-Encoding: chunked, identity\r\nContent-Length: 4\r\n",
    b"Transfer-Encoding: xchunked\r\nContent-Length: 4\r\n",
    b"Transfer-Encoding : chunked\r\n",                            # space before the colon
    b"Transfer-Encoding:\x0bchunked\r\n",
    b"Transfer-Encoding: chunked\r\n \r\n",                       # obsolete line folding
], ids=lambda f: f.decode("latin-1").replace("\r\n", "|"))
def test_smuggling_attempts_never_reach_a_backend_twice(gw, demo_backend, framing):
    """Conflicting or obfuscated framing is refused before the app (400 naming the problem,
    connection closed), so the request hidden in the body is never read as a request."""
    body = b"0\r\n\r\n" + SMUGGLED
    request = b"POST /v1/shelves HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + framing + b"\r\n" + body
    answers = exchange(gw, request)
    assert [a[0] for a in answers] == [400], answers  # one refusal, never an answer for the smuggled request
    assert status_json(answers[0])["message"].startswith("malformed HTTP request: "), answers
    assert sum(demo_backend.recorder.calls.values()) == 0, demo_backend.recorder.calls


def test_chunked_body_with_a_bad_chunk_size_is_a_400(gw, demo_backend):
    request = (b"POST /v1/shelves HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"zz\r\n{}\r\n0\r\n\r\n")
    [answer] = exchange(gw, request)
    assert answer[0] == 400
    assert "malformed HTTP request" in status_json(answer)["message"]
    assert demo_backend.recorder.calls["CreateShelf"] == 0


def test_pipelined_requests_are_answered_in_order(gw, demo_backend):
    """Two honest pipelined requests: both answered, once each, in order."""
    request = (b"GET /v1/shelves/scifi HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /v1/shelves/history HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answers = exchange(gw, request)
    assert [json.loads(a[2])["name"] for a in answers] == ["shelves/scifi", "shelves/history"]
    assert demo_backend.recorder.calls["GetShelf"] == 2


# ---- oversized request heads ---------------------------------------------------------------


def test_one_huge_header_is_a_431(gw, demo_backend):
    request = b"GET /v1/shelves/scifi HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    [answer] = exchange(gw, request)
    assert answer[0] == 431
    assert "32768 bytes" in status_json(answer)["message"]
    assert demo_backend.recorder.calls["GetShelf"] == 0


def test_many_headers_are_a_431(gw, demo_backend):
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(1000))
    [answer] = exchange(gw, b"GET /v1/shelves/scifi HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert answer[0] == 431
    assert demo_backend.recorder.calls["GetShelf"] == 0


def test_headers_just_under_the_limit_are_served(gw):
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(200))  # ~22 KiB
    [answer] = exchange(gw, b"GET /v1/shelves/scifi HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n")
    assert answer[0] == 200


def test_an_endless_header_is_cut_off_without_buffering_it(gw):
    """A head that never ends: the gateway answers 431 and closes after the limit, instead
    of buffering whatever comes (the client cannot push 20 MB into it)."""
    sent = 0
    with connect(gw) as sock:
        sock.sendall(b"GET /v1/shelves/scifi HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        try:
            while sent < 20_000_000:
                sock.sendall(b"a" * 65536)
                sent += 65536
        except OSError:
            pass
        answer = responses(read_all(sock))
    assert sent < 20_000_000
    assert answer and answer[0][0] == 431


def test_over_long_url_is_a_414(gw, demo_backend):
    [answer] = exchange(gw, b"GET /v1/shelves/" + b"x" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer[0] == 414
    assert "4096 bytes" in status_json(answer)["message"]
    [answer] = exchange(gw, b"GET /v1/shelves?" + b"q=1&" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer[0] == 414
    assert sum(demo_backend.recorder.calls.values()) == 0


# ---- slow clients --------------------------------------------------------------------------


def test_slowloris_head_times_out_without_holding_the_gateway(gw, demo_backend):
    """One byte at a time: a 408 after header_timeout, while other clients are served at once."""
    result: dict[str, object] = {}

    def slow() -> None:
        with connect(gw, timeout=10) as sock:
            started = time.monotonic()
            try:
                for byte in b"GET /v1/shelves/scifi HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 200:
                    sock.send(bytes([byte]))
                    time.sleep(0.1)
            except OSError:
                pass
            result["answer"] = responses(read_all(sock))
            result["after"] = time.monotonic() - started

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.3)
    with httpx.Client(base_url=gw.url, timeout=5) as c:
        for _ in range(5):
            assert c.get("/v1/shelves/scifi").status_code == 200
    worker.join(20)
    [answer] = result["answer"]
    assert answer[0] == 408
    assert "request head" in status_json(answer)["message"]
    assert HEAD_TIMEOUT <= result["after"] < 10  # cut at the timeout, not when the client gave up
    assert demo_backend.recorder.calls["GetShelf"] == 5


def test_idle_connection_is_closed(gw):
    with connect(gw, timeout=10) as sock:
        started = time.monotonic()
        assert read_all(sock, timeout=10) == b""  # closed without a word: nothing was asked
        assert time.monotonic() - started < 8


def test_slow_body_times_out_and_the_backend_is_never_called(gw, demo_backend):
    with connect(gw, timeout=10) as sock:
        sock.sendall(b"POST /v1/shelves HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
        try:
            for byte in b'{"theme": "' + b"s" * 80:
                sock.send(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            pass
        [answer] = responses(read_all(sock))
    assert answer[0] == 408
    assert "request body" in status_json(answer)["message"]
    assert demo_backend.recorder.calls["CreateShelf"] == 0


def test_keep_alive_connection_can_idle_between_requests(gw):
    """The head timeout starts with a request's first byte, not with the connection."""
    with connect(gw, timeout=10) as sock:
        sock.sendall(b"GET /v1/shelves/scifi HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(HEAD_TIMEOUT + 0.5)  # idle, but under keep_alive_timeout (5 s)
        sock.sendall(b"GET /v1/shelves/history HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answers = responses(read_all(sock))
    assert [a[0] for a in answers] == [200, 200]


# ---- bodies over the limit -----------------------------------------------------------------


def _push(gw, head: bytes, chunk: bytes, total: int) -> tuple[int, list]:
    """Send `head`, then `chunk` until `total` bytes or the gateway stops reading; the answer."""
    sent = 0
    with connect(gw, timeout=10) as sock:
        sock.sendall(head)
        try:
            while sent < total:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        return sent, responses(read_all(sock))


def test_hundred_megabyte_body_is_refused_without_reading_it(gw, demo_backend):
    total = 100 * 1024 * 1024
    head = (b"POST /v1/shelves/scifi/books HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % total)
    sent, answers = _push(gw, head, b"a" * 65536, total)
    assert answers and answers[0][0] == 413
    assert "1048576 bytes" in status_json(answers[0])["message"]
    assert answers[0][1]["connection"] == "close"  # the client knows not to reuse the connection
    assert sent < total // 4  # the gateway closed long before the body ended
    assert demo_backend.recorder.calls["CreateBook"] == 0


def test_hundred_megabyte_chunked_body_is_refused_at_the_limit(gw, demo_backend):
    total = 100 * 1024 * 1024
    head = b"POST /v1/shelves/scifi/books HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    sent, answers = _push(gw, head, b"10000\r\n" + b"a" * 65536 + b"\r\n", total)
    assert answers and answers[0][0] == 413
    assert sent < total // 4
    assert demo_backend.recorder.calls["CreateBook"] == 0


def test_the_batch_endpoint_refuses_a_huge_body_the_same_way(gw, demo_backend):
    total = 100 * 1024 * 1024
    head = b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % total
    sent, answers = _push(gw, head, b" " * 65536, total)
    assert answers and answers[0][0] == 413
    assert sent < total // 4
    assert sum(demo_backend.recorder.calls.values()) == 0


# ---- bytes no request may hold ------------------------------------------------------------


def test_nul_and_control_bytes_in_the_request_line_are_a_400(gw, demo_backend):
    for target in (b"/v1/shelves/sci\x00fi", b"/v1/shelves/sci\x7ffi", b"/v1/shelves/sci fi", b"/v1/shelves/sci\tfi"):
        answers = exchange(gw, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n", expect=1)
        assert [a[0] for a in answers] == [400], (target, answers)
    assert demo_backend.recorder.calls["GetShelf"] == 0


def test_control_bytes_in_a_header_are_a_400(gw, demo_backend):
    for header in (b"X-A: a\x00b", b"X-A: a\rb", b"X\x00A: 1", b"X A: 1"):
        answers = exchange(gw, b"GET /v1/shelves/scifi HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\n", expect=1)
        assert [a[0] for a in answers] == [400], (header, answers)
    assert demo_backend.recorder.calls["GetShelf"] == 0
