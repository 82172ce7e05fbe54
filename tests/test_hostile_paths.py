"""Path tricks over raw sockets (httpx would normalise them) and as batch item URLs,
against a real gateway in front of the real demo backend.

Routing is literal: the gateway never rewrites a path, so what an intermediary or a
policy saw is what is routed. A path that could mean something else after someone's
normalisation -- a '.' or '..' segment, in any spelling -- or that hides control
characters is refused with a 400; a path that names no route is a 404; an over-long
one a 414. Whatever passes reaches only the method its literal path names.

These are the `edge` profile's refusals, so the gateway here names it explicitly. The
`envoy` and `grpc-gateway` profiles pass encoded control characters through as their
anchors do and keep the dot-segment refusal (tests/test_compat_paths.py).
"""
from __future__ import annotations

import httpx
import pytest

from tests.support.backends import demo_backend_running
from tests.support.gateway import gateway_config, running_gateway
from tests.support.rawhttp import exchange, status_json

LIB = "/edgedemo.library.v1.LibraryService/"
USERS = "/edgedemo.users.v1.UserService/"
GATEWAY_OWN = {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
               "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", "/grpc.health.v1.Health/Check"}


@pytest.fixture(scope="module")
def stack():
    with demo_backend_running() as backend:
        config = gateway_config([{"name": "demo", "target": backend.target}], listen={"max_url_bytes": "4KiB"},
                                access_log={"enabled": False}, transcoding={"profile": "edge"})
        with running_gateway(config) as gateway:
            yield gateway, backend


@pytest.fixture
def gw(stack):
    stack[1].recorder.reset()
    return stack[0]


@pytest.fixture
def recorder(stack):
    return stack[1].recorder


# (raw request target, expected status, the only backend method it may reach)
PATH_TRICKS = [
    ("//v1/shelves/scifi", 404, None),
    ("/v1//shelves/scifi", 404, None),
    ("/v1/./shelves/scifi", 400, None),
    ("/v1/shelves/./scifi", 400, None),
    ("/v1/shelves/../shelves/scifi", 400, None),
    ("/v1/shelves/scifi/..", 400, None),
    ("/v1/shelves/..", 400, None),
    ("/v1/shelves/%2e%2e", 400, None),
    ("/v1/shelves/%2E", 400, None),
    ("/v1/shelves/.%2e/users/ada", 400, None),
    ("/v1/%2e%2e/v1/shelves/scifi", 400, None),
    ("/v1/shelves/..:move", 400, None),
    (LIB + "../../grpc.health.v1.Health/Check", 400, None),
    ("/v1/shelves%2Fscifi", 404, None),
    ("/v1%2Fshelves%2Fscifi", 404, None),
    ("/v1/shelves/sci%00fi", 400, None),
    ("/v1/shelves/scifi%00/books", 400, None),
    ("/v1/shelves/%0d%0aX-Injected:%201", 400, None),
    ("/v1/shelves/sci%7ffi", 400, None),
    ("/grpc.health.v1.Health/Check", 404, None),
    ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", 404, None),
    ("/v1/shelves/" + "a/" * 3000, 414, None),
    # One segment is fully percent-decoded (http.proto's {var}): these reach the method their
    # literal path names, with the decoded value, and the backend answers for its own names.
    ("/v1/users/%2e%2e%2fme", 404, USERS + "GetUser"),
    ("/v1/shelves/scifi%2F..%2F..%2Fusers%2Fada", 404, LIB + "GetShelf"),
    ("/v1/shelves/...", 404, LIB + "GetShelf"),
    ("/v1/shelves/scifi..", 404, LIB + "GetShelf"),
]


# The 400s above refused for an encoded control character; the other 400s hold a dot segment.
CONTROL_CHARACTERS = {"/v1/shelves/sci%00fi", "/v1/shelves/scifi%00/books", "/v1/shelves/%0d%0aX-Injected:%201",
                      "/v1/shelves/sci%7ffi"}


@pytest.mark.parametrize("target, status, method", PATH_TRICKS, ids=[t[0][:60] for t in PATH_TRICKS])
def test_path_tricks(gw, recorder, target, status, method):
    request = b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answers = exchange(gw, request)
    assert [a[0] for a in answers] == [status], answers
    body = status_json(answers[0])
    if status == 400:
        reason = "holds an encoded control character" if target in CONTROL_CHARACTERS else "holds a '.' or '..' segment"
        assert body["message"].startswith(f"request path {target!r} {reason}"), body
    reached = set(recorder.paths) - GATEWAY_OWN
    assert reached == ({method} if method else set()), reached


def test_post_to_a_dot_segment_never_creates_anything(gw, recorder):
    for target in (b"/v1/shelves/../shelves", b"/v1/shelves/%2e%2e/books", b"/v1/shelves/./scifi/books"):
        answers = exchange(gw, b"POST " + target + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                                   b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
        assert [a[0] for a in answers] == [400], (target, answers)
    assert set(recorder.paths) - GATEWAY_OWN == set()


def test_batch_items_meet_the_same_path_rules(gw, recorder):
    items = [
        {"id": "dots", "url": "/v1/shelves/../users/ada"},
        {"id": "encoded", "url": "/v1/shelves/%2e%2e"},
        {"id": "nul", "url": "/v1/shelves/sci%00fi"},
        {"id": "crlf", "url": "/v1/shelves/a%0d%0ab"},
        {"id": "empty", "url": "/v1//shelves/scifi"},
        {"id": "fine", "url": "/v1/shelves/scifi"},
    ]
    r = httpx.post(gw.url + "/v1/batch", json={"requests": items}, timeout=10)
    assert r.status_code == 200, r.text
    statuses = {item["id"]: item["status"] for item in r.json()["responses"]}
    assert statuses == {"dots": 400, "encoded": 400, "nul": 400, "crlf": 400, "empty": 404, "fine": 200}
    assert set(recorder.paths) - GATEWAY_OWN == {LIB + "GetShelf"}
    assert recorder.calls["GetShelf"] == 1
