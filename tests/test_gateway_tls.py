"""The gateway itself terminating TLS in front of a real backend."""
from __future__ import annotations

import ssl

import httpx
import pytest

from edge.devcert import ensure_dev_certificate, generate_certificate, write_atomically
from tests.support.gateway import gateway_config, running_gateway


@pytest.fixture
def tls_gateway(demo_backend, tmp_path):
    cert, key = ensure_dev_certificate(tmp_path / "tls")
    config = gateway_config(
        [{"name": "demo", "target": demo_backend.target}],
        listen={"plaintext": False, "tls": {"cert_file": str(cert), "key_file": str(key), "reload_interval": 0.1}},
    )
    with running_gateway(config) as gw:
        yield gw, cert, key


def test_https_request_reaches_backend(tls_gateway):
    gw, cert, _ = tls_gateway
    assert gw.url.startswith("https://")
    context = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(base_url=gw.url.replace("127.0.0.1", "localhost"), verify=context) as c:
        r = c.get("/v1/shelves/scifi")
        assert r.status_code == 200 and r.json()["name"] == "shelves/scifi"


def test_plain_http_is_not_served_on_tls_port(tls_gateway):
    gw, _, _ = tls_gateway
    with pytest.raises(httpx.HTTPError):
        httpx.get(gw.url.replace("https://", "http://") + "/healthz", timeout=3)


def test_rotated_certificate_used_by_new_connections(tls_gateway):
    gw, cert, key = tls_gateway
    old = gw.server.tls.current_fingerprint
    new = generate_certificate("localhost", hosts=["localhost", "127.0.0.1"])
    write_atomically(key, new.key_pem(), mode=0o600)
    write_atomically(cert, new.cert_pem)
    async def sighup() -> None:  # what the SIGHUP handler runs, on the gateway's loop
        gw.server.reload()

    gw.run(sighup())
    assert gw.server.tls.current_fingerprint == new.fingerprint != old
    context = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(base_url=gw.url.replace("127.0.0.1", "localhost"), verify=context) as c:
        assert c.get("/healthz").status_code == 200
