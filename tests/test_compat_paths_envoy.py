"""The `envoy` profile's path rules against a real Envoy, request by request.

Every row of tests/test_compat_paths.py goes, as raw HTTP/1.1, to Envoy's gRPC-JSON
transcoder and to a gateway under the `envoy` profile, both in front of the same echo
backend serving protos/compatpaths: both must accept or refuse it alike and, when they
accept it, hand the backend the same method and message. Then the same with Envoy's
`url_unescape_spec` and `match_unregistered_custom_verb` set, against the matching edge
options. Where edge deliberately answers otherwise the row is in DIVERGES with the
reason, and the test checks it still differs exactly so (a new Envoy that changes is
noticed). Envoy passes a request it cannot route on untranscoded, which the gRPC backend
refuses: any answer but 200 counts as a refusal. Skipped where no Envoy binary is found
(tests/support/envoy_transcoder.py).
"""
from __future__ import annotations

import socket

import pytest
from google.protobuf import text_format

from compatpaths import paths_pb2
from tests.support.echo import echo_backend_running
from tests.support.envoy_transcoder import envoy_binary, envoy_transcoder_running
from tests.support.gateway import gateway_config, running_gateway
from tests.test_compat_paths import PATHS_SET, ROWS, _request

# AfterService is left out: Envoy refuses its template, and with it the whole configuration.
ENVOY_SERVICES = ["compatpaths.v1.FileService", "compatpaths.v1.ShapeService", "compatpaths.v1.VerbService"]
CASES = [(method, target) for method, target, _ in ROWS]

_DOTS = ("a '.' or '..' segment: Envoy (normalize_path off, its default) hands it to the backend as "
         "data; edge refuses it under every profile (README: a proxy that normalises would see another "
         "path, a backend building a file or URL from it would be handed a traversal)")
# (method, target) -> (Envoy accepts it; None: depends on its options, why edge's `envoy` profile answers otherwise)
DIVERGES: dict[tuple[str, str], tuple[bool | None, str]] = {
    ("GET", "/n/a/b/c"): (False, "a variable after '**': Envoy refuses the template (edge check warns); edge serves it"),
    ("GET", "/files/a/b:%7Aip"): (None, "Envoy compares verbs as sent, so ':%7Aip' is data to it (or, with "
                                        "match_unregistered_custom_verb, a verb nothing declares); edge compares "
                                        "them RFC 3986-normalised (as grpc-gateway, decoding first, does)"),
    ("GET", "/v1/%66iles/a/contents"): (False, "Envoy compares literals as sent; edge RFC 3986-normalised"),
    ("GET", "/things/.."): (True, _DOTS),
    ("GET", "/things/%2e%2E"): (True, _DOTS),
    ("GET", "/files/a/./b"): (True, _DOTS),
    ("GET", "/v1/files/../x/contents"): (True, _DOTS),
    ("GET", "/files/..:zip"): (True, _DOTS),
}

# Envoy's own options against the edge options that claim to be them.
TUNED = {
    "all-except-slash": ({"url_unescape_spec": "ALL_CHARACTERS_EXCEPT_SLASH"}, {"path_unescape": "all-except-slash"}),
    "all-characters": ({"url_unescape_spec": "ALL_CHARACTERS"}, {"path_unescape": "all-characters"}),
    "any-verb": ({"match_unregistered_custom_verb": True}, {"custom_verbs": "any"}),
}


def _status(port: int, data: bytes) -> int | None:
    """The status of the one response to `data` (sent with Connection: close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.settimeout(10)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else None


def _received(echo, before: int) -> list[tuple[str, str]]:
    return [
        (call.method, text_format.MessageToString(paths_pb2.Bound.FromString(raw), as_one_line=True))
        for call in echo.calls[before:] for raw in call.requests
    ]


def _ask(envoy_options: dict, edge_options: dict) -> dict:
    """(method, target) -> {"envoy": (accepted, received, status), "edge": (...)}."""
    binary = envoy_binary()
    if binary is None:
        pytest.skip("no envoy binary (set EDGE_TEST_ENVOY, or run scripts/bench once to install one)")
    out: dict = {}
    with echo_backend_running(PATHS_SET) as echo:
        config = gateway_config([{"name": "paths", "target": echo.target}],
                                transcoding={"profile": "envoy", **edge_options}, access_log={"enabled": False})
        with envoy_transcoder_running(binary, PATHS_SET, ENVOY_SERVICES, echo.port, envoy_options) as envoy_url, \
                running_gateway(config) as gw:
            ports = {"envoy": int(envoy_url.rsplit(":", 1)[1]), "edge": gw.server.public.port}
            for method, target in CASES:
                for who, port in ports.items():
                    before = len(echo.calls)
                    status = _status(port, _request(method, target))
                    accepted = status == 200
                    out.setdefault((method, target), {})[who] = (accepted, _received(echo, before) if accepted else [], status)
    return out


@pytest.fixture(scope="module", params=["default", *TUNED])
def answers(request):
    envoy_options, edge_options = TUNED.get(request.param, ({}, {}))
    return _ask(envoy_options, edge_options)


@pytest.mark.parametrize("case", CASES, ids=[f"{m} {t}" for m, t in CASES])
def test_edge_under_the_envoy_profile_routes_paths_as_envoy(answers, case) -> None:
    envoy, edge = answers[case]["envoy"], answers[case]["edge"]
    if case in DIVERGES:
        envoy_accepts, why = DIVERGES[case]
        assert envoy_accepts is None or envoy[0] is envoy_accepts, why
        assert edge[:2] != envoy[:2], why
    else:
        assert edge[:2] == envoy[:2], (envoy, edge)
