"""The benchmark's "Envoy as an edge" anchor does what the gateway's "all on" rows do.

scripts/bench compares the gateway with every offload on against Envoy configured by
`scripts.bench_envoy.envoy_edge_config`. The comparison is only fair if that Envoy really
terminates TLS with the given certificate, refuses requests without a valid token from the
given JWKS, passes the caller on as the gateway's identity metadata does, keeps a bucket per
user and one per client address, and writes an access log. This checks each against a real
Envoy and the demo backend; skipped where no Envoy binary is found.
"""
from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from edge.devcert import ensure_dev_certificate
from edge.devtoken import DEV_AUDIENCE, DEV_ISSUER, ensure_dev_issuer, mint_dev_token
from scripts.bench_envoy import envoy_edge_config
from tests.support.backends import DEMO_DESCRIPTOR_SET, demo_backend_running
from tests.support.envoy_transcoder import envoy_binary

ENVOY = envoy_binary()
pytestmark = pytest.mark.skipif(ENVOY is None, reason="no envoy binary (scripts/bench installs one)")
PATH = "/v1/shelves/scifi/books?pageSize=1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _envoy(config: dict, work: Path) -> Iterator[None]:
    path = work / "envoy.json"
    path.write_text(json.dumps(config))
    log = (work / "envoy.log").open("wb")
    proc = subprocess.Popen([str(ENVOY), "-c", str(path), "--concurrency", "1", "--log-level", "warn",
                             "--use-dynamic-base-id"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    port = config["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"]
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"envoy exited: {(work / 'envoy.log').read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            if time.monotonic() > deadline:
                raise RuntimeError("envoy did not listen within 30s")
            time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_envoy_edge_authenticates_limits_per_user_and_logs(tmp_path):
    cert, key = ensure_dev_certificate(tmp_path / "tls")
    issuer_key, jwks = ensure_dev_issuer(tmp_path / "issuer")
    other_key, _ = ensure_dev_issuer(tmp_path / "other-issuer")  # same issuer name, a key not in the JWKS
    access_log = tmp_path / "access.log"
    port = _free_port()
    with demo_backend_running() as backend:
        # Three requests per user per hour, many per address: the fourth of one user is refused, another user is not.
        config = envoy_edge_config(port, backend.port, DEMO_DESCRIPTOR_SET, cert=cert, key=key, jwks=jwks,
                                   issuer=DEV_ISSUER, audience=DEV_AUDIENCE, access_log=access_log,
                                   user_bucket=(3, 3600), ip_bucket=(1000, 3600))
        with _envoy(config, tmp_path):
            verify = ssl.create_default_context(cafile=str(cert))
            with httpx.Client(base_url=f"https://localhost:{port}", verify=verify, timeout=10) as client:
                alice = {"authorization": "Bearer " + mint_dev_token(issuer_key, "alice", "library.read")}
                bob = {"authorization": "Bearer " + mint_dev_token(issuer_key, "bob", "library.read")}
                forged = {"authorization": "Bearer " + mint_dev_token(other_key, "alice", "library.read")}
                assert client.get(PATH).status_code == 401
                assert client.get(PATH, headers=forged).status_code == 401
                statuses = [client.get(PATH, headers=alice).status_code for _ in range(4)]
                assert statuses == [200, 200, 200, 429]
                answer = client.get(PATH, headers=bob)
                assert answer.status_code == 200
                assert answer.json()["books"][0]["name"].startswith("shelves/scifi/books/")
                assert answer.headers["x-ratelimit-limit"] == "3"
                assert answer.headers["x-ratelimit-remaining"] == "2"
            metadata = backend.recorder.last("ListBooks").metadata
            assert dict(metadata)["x-user-id"] == "bob"
            assert dict(metadata)["x-auth-scopes"] == "library.read"
        # Envoy flushes its file log on exit at the latest: one line per request, refusals included.
        lines = access_log.read_text().splitlines()
        assert len(lines) == 7
        assert sum(" 401 " in line for line in lines) == 2 and sum(" 429 " in line for line in lines) == 1
