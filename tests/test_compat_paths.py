"""Paths end to end, once per profile: a real gateway in front of the echo backend
(tests/support/echo.py), raw HTTP/1.1 so nothing normalises the request target.

Each row is a request and what each profile answers: the status, the gRPC method the
backend saw, and the request message the gateway built from the path (the echo
backend's reply). The profiles differ where their anchors do (transcoding/options.py):
`path_unescape` (edge and envoy keep reserved escapes in multi-segment variables;
grpc-gateway decodes the whole path first), `custom_verbs` (envoy never falls back to
templates without the verb), `empty_double_wildcard` (grpc-gateway lets `**` match
nothing before more segments) and `path_control_chars` (edge refuses them). Dot
segments are refused under every profile.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.echo import echo_backend_running
from tests.support.gateway import gateway_config, running_gateway
from tests.support.rawhttp import exchange, status_json

PATHS_SET = Path(__file__).parent.parent / "protos" / "compatpaths" / "descriptors.binpb"
PROFILE_NAMES = ["edge", "envoy", "grpc-gateway"]
FILES, SHAPES, VERBS = "compatpaths.v1.FileService/", "compatpaths.v1.ShapeService/", "compatpaths.v1.VerbService/"
AFTER = "compatpaths.v1.AfterService/"


@pytest.fixture(scope="module")
def echo():
    with echo_backend_running(PATHS_SET) as backend:
        yield backend


@pytest.fixture(scope="module")
def gateways(echo):
    """One gateway per profile, all in front of the same echo backend."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield {
            name: stack.enter_context(running_gateway(gateway_config(
                [{"name": "paths", "target": echo.target}],
                transcoding={"profile": name}, access_log={"enabled": False},
            )))
            for name in PROFILE_NAMES
        }


def ok(method: str, **fields: str) -> tuple[int, str, dict]:
    return (200, method, fields)


def err(status: int) -> tuple[int, None, None]:
    return (status, None, None)


def each(answer: object) -> dict[str, object]:
    return {name: answer for name in PROFILE_NAMES}


def per(edge: object, envoy: object = "edge", grpc_gateway: object = "edge") -> dict[str, object]:
    envoy = edge if envoy == "edge" else envoy
    grpc_gateway = edge if grpc_gateway == "edge" else grpc_gateway
    return {"edge": edge, "envoy": envoy, "grpc-gateway": grpc_gateway}


RESERVED_ESCAPED = "%21%23%24%26%27%28%29%2A%2B%2C%3A%3B%3D%3F%40%5B%5D"  # all but %2F

# (HTTP method, raw request target, answer per profile)
ROWS = [
    # '**' followed by more segments (issue 12 item 1): all three accept these templates.
    ("GET", "/v1/files/a/b/contents", each(ok(FILES + "GetContents", name="files/a/b"))),
    ("GET", "/v1/files/a/contents", each(ok(FILES + "GetContents", name="files/a"))),
    ("GET", "/v1/files/contents/contents", each(ok(FILES + "GetContents", name="files/contents"))),
    ("GET", "/v1/files/a/contents/b", each(ok(FILES + "GetFile", name="files/a/contents/b"))),
    ("GET", "/v1/files/x:download", each(ok(FILES + "Download", name="files/x"))),
    ("GET", "/v1/files/x/contents:download", each(ok(FILES + "Download", name="files/x/contents"))),
    ("DELETE", "/v1/files/x/contents", each(ok(FILES + "DeleteContents", name="files/x"))),
    ("PUT", "/v1/files/x/contents", each(err(405))),
    ("GET", "/v1/other/x/contents", each(err(404))),
    ("GET", "/a/p/q/d/e", each(ok(SHAPES + "Suffix", b="p/q"))),
    ("GET", "/a/p/d/e", each(ok(SHAPES + "Suffix", b="p"))),
    ("GET", "/a/p/d/e/f", each(err(404))),
    ("GET", "/q/r/tail:verb", each(ok(SHAPES + "TailVerb", x="q/r"))),
    ("GET", "/tail/tail:verb", each(ok(SHAPES + "TailVerb", x="tail"))),
    ("GET", "/foo/a/b:verb", each(ok(SHAPES + "WildVerb"))),
    ("GET", "/foo/a/c/b:verb", each(ok(SHAPES + "WildVerb"))),
    ("GET", "/foo/a/b", each(ok(SHAPES + "Wild"))),
    ("GET", "/c/h/d/x/y/e", each(ok(SHAPES + "Nested", x="h", y="d/x/y"))),
    ("GET", "/n/a/b/c", each(ok(AFTER + "After", x="a/b", y="c"))),
    # A '**' that would have to match nothing before more segments (empty_double_wildcard).
    ("GET", "/v1/files/contents", per(ok(FILES + "GetFile", name="files/contents"), "edge",
                                      ok(FILES + "GetContents", name="files/"))),
    ("GET", "/v1/files", per(ok(FILES + "GetFile", name="files"), "edge", ok(FILES + "GetFile", name="files/"))),
    ("GET", "/a/d/e", per(err(404), "edge", ok(SHAPES + "Suffix"))),
    ("GET", "/tail:verb", per(err(404), "edge", ok(SHAPES + "TailVerb"))),
    ("GET", "/c/h/d/e", per(err(404), "edge", ok(SHAPES + "Nested", x="h", y="d/"))),
    ("GET", "/n/b", per(err(404), "edge", ok(AFTER + "After", y="b"))),
    # Verbs (item 3): envoy splits a declared verb and never falls back; the others retry
    # with ':xyz' as part of the last segment.
    ("GET", "/foo/a/c:verb", per(ok(SHAPES + "Wild"), err(404))),
    ("GET", "/foo/b:verb", per(ok(SHAPES + "Wild"), err(404), ok(SHAPES + "WildVerb"))),
    ("GET", "/things/t1", each(ok(VERBS + "GetThing", id="t1"))),
    ("POST", "/things/t1:act", each(ok(VERBS + "Act", id="t1"))),
    ("GET", "/things/t1:act", per(ok(VERBS + "GetThing", id="t1:act"), err(405))),
    ("GET", "/things/t1:other", each(ok(VERBS + "GetThing", id="t1:other"))),  # never declared: data
    ("POST", "/tags/:rename", each(err(404))),
    ("GET", "/tags/:rename", per(ok(VERBS + "GetTag", tag=":rename"), err(404))),
    ("GET", "/x/y:archive", each(ok(VERBS + "Archive", x="x/y"))),
    ("GET", "/x:archive", each(ok(VERBS + "Archive", x="x"))),
    ("GET", "/files/a/b:zip", each(ok(VERBS + "Zip", path="a/b"))),
    ("GET", "/files/a/b:unzip", each(ok(VERBS + "Files", path="a/b:unzip"))),
    ("GET", "/files/a/b:%7Aip", each(ok(VERBS + "Zip", path="a/b"))),  # verbs compare RFC 3986-normalised
    ("GET", "/v1/%66iles/a/contents", each(ok(FILES + "GetContents", name="files/a"))),  # literals too
    ("POST", "/things/a%3Aact", per(err(405), "edge", ok(VERBS + "Act", id="a"))),  # legacy decodes ':' first
    # Percent-decoding (item 2): one segment fully decoded; several keep the reserved
    # escapes (Envoy's default) or, under grpc-gateway's legacy mode, were decoded whole.
    ("GET", "/things/a%2Fb", per(ok(VERBS + "GetThing", id="a/b"), "edge", err(404))),
    ("GET", "/things/" + RESERVED_ESCAPED, each(ok(VERBS + "GetThing", id="!#$&'()*+,:;=?@[]"))),
    ("GET", "/files/" + RESERVED_ESCAPED, per(ok(VERBS + "Files", path=RESERVED_ESCAPED), "edge",
                                              ok(VERBS + "Files", path="!#$&'()*+,:;=?@[]"))),
    ("GET", "/files/a%2Fb/c", per(ok(VERBS + "Files", path="a%2Fb/c"), "edge", ok(VERBS + "Files", path="a/b/c"))),
    ("GET", "/v1/files/a%20b/c%2Fd/contents", per(ok(FILES + "GetContents", name="files/a b/c%2Fd"), "edge",
                                                  ok(FILES + "GetContents", name="files/a b/c/d"))),
    ("GET", "/v1/files%2Fa/contents", per(err(404), "edge", ok(FILES + "GetContents", name="files/a"))),
    ("GET", "/files/a%20b/c", each(ok(VERBS + "Files", path="a b/c"))),
    ("GET", "/files/caf%C3%A9/%E2%82%AC", each(ok(VERBS + "Files", path="caf\u00e9/\u20ac"))),
    ("GET", "/things/a+b", each(ok(VERBS + "GetThing", id="a+b"))),
    ("GET", "/things/%2525", each(ok(VERBS + "GetThing", id="%25"))),
    ("GET", "/things/%FF", each(err(400))),
    ("GET", "/files/a/%C3%28", each(err(400))),
    ("GET", "/things/%zz", per(ok(VERBS + "GetThing", id="%zz"), "edge", err(400))),
    ("GET", "/files/x/%4", per(ok(VERBS + "Files", path="x/%4"), "edge", err(400))),
    # Control characters (item 4): edge refuses them; both anchors pass them into the field.
    ("GET", "/things/a%00b", per(err(400), ok(VERBS + "GetThing", id="a\x00b"), ok(VERBS + "GetThing", id="a\x00b"))),
    ("GET", "/things/a%0D%0Ab", per(err(400), ok(VERBS + "GetThing", id="a\r\nb"), ok(VERBS + "GetThing", id="a\r\nb"))),
    ("GET", "/things/a%7fb", per(err(400), ok(VERBS + "GetThing", id="a\x7fb"), ok(VERBS + "GetThing", id="a\x7fb"))),
    ("GET", "/files/x%1Fy/z", per(err(400), ok(VERBS + "Files", path="x\x1fy/z"), ok(VERBS + "Files", path="x\x1fy/z"))),
    ("GET", "/files/%09", per(err(400), ok(VERBS + "Files", path="\t"), ok(VERBS + "Files", path="\t"))),
    # Dot segments: refused under every profile (a security refusal; both anchors route them).
    ("GET", "/things/..", each(err(400))),
    ("GET", "/things/%2e%2E", each(err(400))),
    ("GET", "/files/a/./b", each(err(400))),
    ("GET", "/v1/files/../x/contents", each(err(400))),
    ("GET", "/files/..:zip", each(err(400))),
    # Behind an escaped '/', a dot segment is data in one value -- unless the whole path is
    # decoded before routing (legacy), where it would be a real segment.
    ("GET", "/things/a%2F..%2Fb", per(ok(VERBS + "GetThing", id="a/../b"), "edge", err(400))),
    ("GET", "/files/a%2F..%2Fb", per(ok(VERBS + "Files", path="a%2F..%2Fb"), "edge", err(400))),
    ("GET", "/files/a%2F.%3Azip", per(ok(VERBS + "Files", path="a%2F.%3Azip"), "edge", err(400))),
]


def _bound(body: bytes) -> dict:
    """The reply's non-empty fields: a proto3 string is never 'set to empty', and profiles
    differ on printing unpopulated fields (grpc-gateway's emits them)."""
    return {k: v for k, v in json.loads(body).items() if v != ""}


def _request(method: str, target: str) -> bytes:
    body = b"{}" if method in ("POST", "PUT", "PATCH") else b""
    head = f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode("latin-1") + b"\r\n" + body


@pytest.mark.parametrize("profile", PROFILE_NAMES)
@pytest.mark.parametrize(("method", "target", "answers"), ROWS, ids=[f"{m} {t}" for m, t, _ in ROWS])
def test_paths_per_profile(gateways, echo, profile: str, method: str, target: str, answers: dict) -> None:
    status, rpc, fields = answers[profile]
    before = len(echo.calls)
    responses = exchange(gateways[profile], _request(method, target))
    assert [r[0] for r in responses] == [status], responses
    reached = [c.method for c in echo.calls[before:]]
    if status != 200:
        status_json(responses[0])  # the error in google.rpc.Status shape
        assert reached == [], reached  # refused before any backend call
        return
    assert reached == ["/" + rpc]
    assert _bound(responses[0][2]) == fields


def test_every_row_differs_somewhere_or_holds_everywhere() -> None:
    """The table is the documentation of the profiles' differences: each row is answered
    by all three, and the differing rows cover every path option."""
    assert all(set(answers) == set(PROFILE_NAMES) for _, _, answers in ROWS)
    differing = [t for _, t, a in ROWS if len({repr(v) for v in a.values()}) > 1]
    assert len(differing) >= 20, differing


def test_path_options_are_gateway_wide() -> None:
    """A path is routed before its backend is known, so the path rows are set at the top
    level only; a backend's own profile does not change them."""
    from edge.config import GatewayConfig

    for key, value in [("path_unescape", "legacy"), ("custom_verbs", "any"),
                       ("empty_double_wildcard", "anywhere"), ("path_control_chars", "allow")]:
        with pytest.raises(Exception, match=f"backends.0.transcoding.{key}"):
            GatewayConfig.model_validate({"backends": [{"name": "a", "target": "a:1", "transcoding": {key: value}}]})
        top = GatewayConfig.model_validate({"backends": [{"name": "a", "target": "a:1"}], "transcoding": {key: value}})
        assert getattr(top.transcoding_options(), key).value == value
    mixed = GatewayConfig.model_validate(
        {"backends": [{"name": "a", "target": "a:1", "transcoding": {"profile": "grpc-gateway"}}]}
    )
    assert mixed.transcoding_options().path_unescape.value == "all-except-reserved"  # the table's (top level)


@pytest.mark.parametrize(
    ("overrides", "method", "target", "answer"),
    [
        ({"custom_verbs": "any"}, "GET", "/things/t1:other", err(404)),
        ({"custom_verbs": "any"}, "GET", "/x/y:archive", ok(VERBS + "Archive", x="x/y")),
        ({"path_unescape": "all-characters"}, "GET", "/files/a%2Fb%3Fc/d", ok(VERBS + "Files", path="a/b?c/d")),
        ({"path_unescape": "all-except-slash"}, "GET", "/files/a%2Fb%3Fc/d", ok(VERBS + "Files", path="a%2Fb?c/d")),
        ({"path_control_chars": "allow"}, "GET", "/things/a%00b", ok(VERBS + "GetThing", id="a\x00b")),
        ({"empty_double_wildcard": "anywhere"}, "GET", "/a/d/e", ok(SHAPES + "Suffix")),
    ],
)
def test_one_option_set_alone_over_the_edge_profile(echo, overrides, method, target, answer) -> None:
    config = gateway_config([{"name": "paths", "target": echo.target}], transcoding=overrides,
                            access_log={"enabled": False})
    status, rpc, fields = answer
    with running_gateway(config) as gw:
        responses = exchange(gw, _request(method, target))
    assert [r[0] for r in responses] == [status], responses
    if status == 200:
        assert echo.last().method == "/" + rpc
        assert _bound(responses[0][2]) == fields
