#!/usr/bin/env python3
"""The demo: demo gRPC backends with reflection, the gateway in front, example requests.

Ports: gateway 8443 (HTTPS with a generated development certificate), admin 9901, backends 50051, and the
browser page 8080 (override with EDGE_DEMO_PORT, EDGE_DEMO_ADMIN_PORT, EDGE_DEMO_BACKEND_PORT, EDGE_DEMO_PAGE_PORT).
Everything runs on 127.0.0.1. The browser page (scripts/demo_page.html) is served from its own port, another
origin than the gateway's, and the config's `cors` section allows exactly that origin. Files (certificate,
issuer key, config, access log) go to .demo/ (EDGE_DEMO_DIR to put them elsewhere).
"""
from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
from demo_page import PageServer

from edge.devtoken import DEV_AUDIENCE, DEV_ISSUER, ensure_dev_issuer, mint_dev_token

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("EDGE_DEMO_DIR") or ROOT / ".demo").resolve()
PORT = int(os.environ.get("EDGE_DEMO_PORT", "8443"))
ADMIN_PORT = int(os.environ.get("EDGE_DEMO_ADMIN_PORT", "9901"))
BACKEND_PORT = int(os.environ.get("EDGE_DEMO_BACKEND_PORT", "50051"))
PAGE_PORT = int(os.environ.get("EDGE_DEMO_PAGE_PORT", "8080"))


def wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not open port {port} within {timeout}s")


def write_config(cert: Path, key: Path, jwks: Path) -> Path:
    config = WORK / "edge.yaml"
    config.write_text(
        f"""# Written by scripts/demo.py: the embedded defaults, one demo backend.
listen:
  host: 127.0.0.1
  port: {PORT}
  tls:
    cert_file: {cert}
    key_file: {key}
admin:
  port: {ADMIN_PORT}
backends:
  - name: demo
    target: 127.0.0.1:{BACKEND_PORT}
    descriptors: reflection
    timeout: 5s
auth:
  issuers:
    - issuer: {DEV_ISSUER}
      audiences: [{DEV_AUDIENCE}]
      jwks_file: {jwks}
      algorithms: [RS256]
      expected_typ: at+jwt
  identity_metadata: {{x-user-id: sub, x-auth-scopes: scope}}
  default_policy: {{auth: required}}
  policies:
    - {{match: "edgedemo.library.v1.LibraryService/*", scopes_all_of: [library.read]}}
    - {{match: "edgedemo.library.v1.LibraryService/CreateShelf", scopes_all_of: [library.write]}}
    - {{match: "edgedemo.library.v1.LibraryService/DeleteShelf", scopes_all_of: [library.write]}}
    - {{match: "edgedemo.library.v1.LibraryService/ArchiveShelf", scopes_all_of: [library.write]}}
    - {{match: "edgedemo.library.v1.LibraryService/CreateBook", scopes_all_of: [library.write]}}
    - {{match: "edgedemo.library.v1.LibraryService/UpdateBook", scopes_all_of: [library.write]}}
    - {{match: "edgedemo.library.v1.LibraryService/MoveBook", scopes_all_of: [library.write]}}
    - {{match: "edgedemo.library.v1.LibraryService/ImportBooks", scopes_all_of: [library.write]}}
    - {{match: "edgedemo.users.v1.UserService/GetUser", auth: optional}}
    # Public in the demo so the page can read it with EventSource, which cannot send Authorization
    # (README "WebSocket": why no token in the query string).
    - {{match: "edgedemo.library.v1.LibraryService/StreamBooks", auth: none}}
rate_limits:
  policies:
    - name: per-user
      vary_by_claim: {{claim: plan, tiers: {{free: 100/1m, premium: 1000/1m}}, default: 100/1m}}
    - {{name: per-ip, limit: 20, window: 1s, key: ip}}
idempotency: {{}}
store: {{backend: memory}}
access_log: {{destination: {WORK / "access.log"}}}
cors:                      # the demo's browser page, served from its own port: another origin
  allow_origins: [http://localhost:{PAGE_PORT}, http://127.0.0.1:{PAGE_PORT}]
  max_age: 10m
websocket: {{}}              # streaming methods over WebSocket (the page's origin: allowed by cors above)
"""
    )
    return config


def main() -> int:
    bin_dir = Path(sys.executable).parent
    from edge.devcert import ensure_dev_certificate

    WORK.mkdir(exist_ok=True)
    cert, key = ensure_dev_certificate(WORK / "tls")
    issuer_key, jwks = ensure_dev_issuer(WORK / "issuer")
    config = write_config(cert, key, jwks)
    token = mint_dev_token(issuer_key, "ada", "library.read library.write")
    # The demo backends live in protos/ beside their .proto files; they are not installed.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "protos"), os.environ.get("PYTHONPATH")])))
    backend = subprocess.Popen([sys.executable, "-m", "edgedemo.serve", "--port", str(BACKEND_PORT)], env=env)
    procs = [backend]
    try:
        wait_for_port(BACKEND_PORT, backend, "demo backend")
        gateway = subprocess.Popen([str(bin_dir / "edge"), "serve", "--config", str(config)])
        procs.append(gateway)
        wait_for_port(PORT, gateway, "gateway")
        base = f"https://localhost:{PORT}"
        client = httpx.Client(base_url=base, verify=ssl.create_default_context(cafile=str(cert)))
        for _ in range(100):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.1)
        curl = f'curl -s --cacert {cert} -H "authorization: Bearer $TOKEN"'
        example = f"{curl} '{base}/v1/shelves/scifi/books?pageSize=2'"
        reply = client.get("/v1/shelves/scifi/books", params={"pageSize": 2}, headers={"authorization": f"Bearer {token}"})
        page = PageServer(base, lambda: mint_dev_token(issuer_key, "ada", "library.read library.write"),
                          port=PAGE_PORT).start()
        print(
            f"""
edge demo is running (config: {config}).

Get a development token (scopes library.read and library.write; see scripts/dev_token --help):
  export TOKEN=$(scripts/dev_token)

Try:
  {example}
  {curl} {base}/v1/shelves
  {curl} -X POST {base}/v1/shelves/scifi/books -H 'content-type: application/json' -d '{{"title": "Dune", "author": "Frank Herbert"}}'
  {curl} -N {base}/v1/shelves/scifi/books:stream
  {curl} --http2 -w ' <- HTTP/%{{http_version}}\\n' {base}/v1/shelves/scifi    # HTTP/2, negotiated by ALPN
  {curl} --http2 -N '{base}/v1/shelves/scifi/books:stream?delayMs=500'   # a stream over HTTP/2, a line per book
  (echo '{{}}'; sleep 2) | SSL_CERT_FILE={cert} {sys.executable} -m websockets wss://localhost:{PORT}/v1/shelves/scifi/books:stream
                                          # the stream over a WebSocket: a frame per book, then close 1000
  {curl} {base}/v1/shelves/404            # a NOT_FOUND with google.rpc error details
  {curl} {base}/v1/users/me               # the backend sees who you are (x-user-id from the token)
  {curl} -X POST {base}/v1/batch -H 'content-type: application/json' -d '{{"requests": [{{"id": "a", "method": "GET", "url": "/v1/shelves/scifi"}}, {{"id": "b", "method": "GET", "url": "/v1/users/me"}}]}}'
  curl -s --cacert {cert} {base}/v1/shelves   # no token: 401 with WWW-Authenticate
  API docs: {base}/docs   (OpenAPI document: {base}/openapi.json)
  Access log: tail -f {WORK / "access.log"}    Metrics: curl -s http://127.0.0.1:{ADMIN_PORT}/metrics

From a browser on another origin (CORS): open http://localhost:{PAGE_PORT}/
  The page calls the gateway with fetch and a development token, reads a stream as it arrives (fetch,
  EventSource and a WebSocket), imports books over a WebSocket, and shows what it saw. Your browser must trust the development certificate first: open {base}/healthz
  once and accept it (or trust {cert}).

First request, answered by the gRPC backend through the gateway ({reply.status_code}):
  {reply.text}

Ctrl+C stops the demo.""",
            flush=True,
        )
        try:
            while all(p.poll() is None for p in procs):
                time.sleep(0.5)
            print("a demo process exited; stopping", file=sys.stderr)
        finally:
            page.stop()
    except KeyboardInterrupt:
        pass
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
