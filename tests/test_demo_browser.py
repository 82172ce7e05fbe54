"""The demo's browser page in headless Chromium: `scripts/demo.py` as a user runs it
(demo backend, HTTPS gateway with its development certificate, the page on a port of
its own), and a real browser loading the page. Every call the page makes crosses
origins, so what it could read shows the gateway's CORS answers at work: preflights,
exposed headers, errors, a stream read as it arrives (with fetch, EventSource and a
WebSocket) and a client stream over a WebSocket. A page served from an origin the demo
config does not list then shows the browser refusing it everything, and the gateway
refusing its WebSockets at the handshake.

Needs Debian's chromium (`apt-get install -y chromium`); skipped, saying so, where it
is absent, under CI too (scripts/bootstrap installs no system packages)."""
from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from edge.devtoken import mint_dev_token
from tests.support.browser import Chromium, require_chromium
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spki_pin(cert_file: Path) -> str:
    """The certificate's SPKI hash, for Chromium to trust this one certificate (and no other)."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def _page_module():
    spec = importlib.util.spec_from_file_location("demo_page", ROOT / "scripts" / "demo_page.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def demo(tmp_path):
    """scripts/demo.py on free ports, its files in tmp_path; stopped the way Ctrl+C stops it."""
    require_chromium()
    ports = {name: _free_port() for name in ("PORT", "ADMIN_PORT", "BACKEND_PORT", "PAGE_PORT")}
    work = tmp_path / "demo"
    env = dict(os.environ, EDGE_DEMO_DIR=str(work), **{f"EDGE_DEMO_{k}": str(v) for k, v in ports.items()})
    out = open(tmp_path / "demo.out", "wb")
    proc = subprocess.Popen([sys.executable, "scripts/demo.py"], cwd=ROOT, env=env, stdout=out, stderr=out)
    out.close()
    try:
        api = f"https://localhost:{ports['PORT']}"
        page = f"http://localhost:{ports['PAGE_PORT']}/"
        deadline = time.monotonic() + 90
        while True:  # the page server starts once the gateway has answered the demo's first request
            assert proc.poll() is None, (tmp_path / "demo.out").read_text()
            try:
                if httpx.get(page, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "demo.out").read_text()
            time.sleep(0.2)
        yield {"api": api, "page": page, "work": work, "log": tmp_path / "demo.out"}
    finally:
        proc.send_signal(signal.SIGTERM)  # as Ctrl+C (demo.py maps it); SIGINT may be ignored in a background job
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_demo_page_calls_the_gateway_across_origins(demo, tmp_path):
    pin = _spki_pin(demo["work"] / "tls" / "dev-cert.pem")
    with Chromium(tmp_path / "profile", f"--ignore-certificate-errors-spki-list={pin}") as browser:
        browser.open(demo["page"])
        seen = browser.evaluate("window.edgeDemo")
        assert seen is not None, browser.log
        assert all(check["ok"] for check in seen.values()), (seen, browser.log)

        listed = seen["list"]
        assert listed["status"] == 200 and "shelves/scifi" in listed["shelves"]
        # Headers only an exposed list lets a page read:
        assert listed["headers"]["x-request-id"]
        assert '"per-ip";q=20;w=1' in listed["headers"]["ratelimit-policy"]
        assert '"per-ip";r=' in listed["headers"]["ratelimit"]

        created = seen["create-and-replay"]
        assert created["first"]["status"] == created["again"]["status"] == 200
        assert "idempotent-replayed" not in created["first"]["headers"]
        assert created["again"]["headers"]["idempotent-replayed"] == "true"
        assert created["sameBook"] and created["book"].startswith("shelves/scifi/books/")

        assert seen["not-found"]["status"] == 404 and seen["not-found"]["code"] == 5
        assert seen["unauthenticated"]["status"] == 401 and seen["unauthenticated"]["code"] == 16
        assert seen["unauthenticated"]["headers"]["www-authenticate"].startswith("Bearer")
        assert seen["batch"]["status"] == 200 and seen["batch"]["items"] == [["shelf", 200], ["me", 200]]

        stream = seen["stream"]
        assert stream["status"] == 200 and stream["contentType"] == "application/x-ndjson"
        assert stream["chunks"] >= 2 and "Dune" in stream["titles"]  # read piece by piece as books arrived
        assert "The Left Hand of Darkness" in stream["titles"]  # the book the page created
        assert seen["openapi"]["status"] == 200 and seen["openapi"]["openapi"].startswith("3.")

        # The stream again, as EventSource (SSE) and over a WebSocket, and a client stream up.
        assert "Dune" in seen["eventsource"]["titles"] and "error" not in seen["eventsource"]
        socket = seen["websocket-stream"]
        assert socket["protocol"] == "edge.json"  # the bearer subprotocol is never echoed
        assert "Dune" in socket["titles"] and socket["titles"] == stream["titles"]
        assert (socket["closeCode"], socket["reason"]) == (1000, {"code": 0, "message": "OK"})
        imported = seen["websocket-import"]
        assert imported["closeCode"] == 1000 and len(imported["replies"]) == 1
        assert imported["replies"][0]["importedCount"] == 2 and len(imported["replies"][0]["names"]) == 2
        assert not [line for line in browser.log if "CORS" in line], browser.log

        # The same page from an origin the demo config does not list (another port): the
        # browser lets it read nothing, not even the public OpenAPI document.
        module = _page_module()
        issuer_key = demo["work"] / "issuer" / "dev-issuer-key.json"
        stranger = module.PageServer(demo["api"], lambda: mint_dev_token(issuer_key)).start()
        try:
            browser.open(f"http://localhost:{stranger.port}/")
            refused = browser.evaluate("window.edgeDemo")
        finally:
            stranger.stop()
        assert set(refused) == set(seen)
        for name, check in refused.items():
            # fetch fails with a bare TypeError; EventSource and WebSocket only with an error event
            expected = {"eventsource": "Error: EventSource", "websocket-stream": "Error: WebSocket",
                        "websocket-import": "Error: WebSocket"}.get(name, "TypeError")
            assert not check["ok"] and check["error"].startswith(expected), (name, check)
        blocked = [line for line in browser.log if "has been blocked by CORS policy" in line]
        assert any("preflight" in line for line in blocked), browser.log  # token-bearing calls: refused at the preflight
        assert any("openapi.json" in line and "No 'Access-Control-Allow-Origin'" in line for line in blocked), browser.log

    def preflights() -> list[dict]:
        lines = (demo["work"] / "access.log").read_text().splitlines()
        return [entry for entry in map(json.loads, lines) if entry["http_method"] == "OPTIONS"]

    # Each preflight was one access-log line: allowed ones 204, the stranger's 403. Chromium
    # negotiated HTTP/2 by ALPN with the demo's gateway: CORS held on h2.
    assert wait_for(lambda: {204, 403} <= {entry["http_status"] for entry in preflights()}), preflights()
    assert {entry["http_version"] for entry in preflights()} == {"2"}

    # The WebSockets: Chromium opened them over HTTP/1.1 (no RFC 8441 on h2); the page's were
    # accepted, the stranger's refused at the handshake (its origin is not in cors) with a 403.
    lines = [json.loads(line) for line in (demo["work"] / "access.log").read_text().splitlines()]
    sockets = [e for e in lines if e.get("protocol") == "websocket"]
    assert sorted((e["grpc_method"].rsplit("/", 1)[1], e["http_status"]) for e in sockets) == [
        ("ImportBooks", 101), ("ImportBooks", 403), ("StreamBooks", 101), ("StreamBooks", 403)], sockets
    assert {e["http_version"] for e in sockets} == {"1.1"}
