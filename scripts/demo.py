#!/usr/bin/env python3
"""The demo: demo gRPC backends with reflection, the gateway in front, example requests.

Ports: gateway 8443 (HTTPS with a generated development certificate), admin 9901, backends 50051 (override with EDGE_DEMO_PORT,
EDGE_DEMO_ADMIN_PORT, EDGE_DEMO_BACKEND_PORT). Everything runs on 127.0.0.1.
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

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".demo"
PORT = int(os.environ.get("EDGE_DEMO_PORT", "8443"))
ADMIN_PORT = int(os.environ.get("EDGE_DEMO_ADMIN_PORT", "9901"))
BACKEND_PORT = int(os.environ.get("EDGE_DEMO_BACKEND_PORT", "50051"))


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


def write_config(cert: Path, key: Path) -> Path:
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
"""
    )
    return config


def main() -> int:
    bin_dir = Path(sys.executable).parent
    from edge.devcert import ensure_dev_certificate

    WORK.mkdir(exist_ok=True)
    cert, key = ensure_dev_certificate(WORK / "tls")
    config = write_config(cert, key)
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
        curl = f"curl -s --cacert {cert}"
        example = f"{curl} '{base}/v1/shelves/scifi/books?pageSize=2'"
        reply = client.get("/v1/shelves/scifi/books", params={"pageSize": 2})
        print(
            f"""
edge demo is running (config: {config}).

Try:
  {example}
  {curl} {base}/v1/shelves
  {curl} -X POST {base}/v1/shelves/scifi/books -H 'content-type: application/json' -d '{{"title": "Dune", "author": "Frank Herbert"}}'
  {curl} -N {base}/v1/shelves/scifi/books:stream
  {curl} {base}/v1/shelves/404            # a NOT_FOUND with google.rpc error details

First request, answered by the gRPC backend through the gateway ({reply.status_code}):
  {reply.text}

Ctrl+C stops the demo.""",
            flush=True,
        )
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("a demo process exited; stopping", file=sys.stderr)
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
