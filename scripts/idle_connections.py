#!/usr/bin/env python3
"""What an idle client connection costs the gateway: RSS per connection, HTTP/1.1 vs HTTP/2.

Starts `edge serve` (plaintext, and with `--tls` also TLS) on loopback, opens `--connections`
connections of each kind, makes one request on each (so the connection is a used keep-alive
connection, as a phone's is between screens), leaves them idle, and reads the gateway's RSS
from /proc before and after. Bounded: every connection is closed and the gateway stopped at
the end; nothing leaves 127.0.0.1. The file-descriptor limit is raised inside this process
(and so for the gateway it starts) with resource.setrlimit.

    .venv/bin/python scripts/idle_connections.py --connections 5000 [--tls]
"""
from __future__ import annotations

import argparse
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "protos")]

import hpack  # noqa: E402
from hyperframe.frame import HeadersFrame, SettingsFrame  # noqa: E402

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_h1(port: int, context: ssl.SSLContext | None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if context is not None:
        context.set_alpn_protocols(["http/1.1"])
        sock = context.wrap_socket(sock, server_hostname="localhost")
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = b""
    while b'"ok"' not in reply:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("HTTP/1.1 connection closed early")
        reply += chunk
    return sock


def open_h2(port: int, context: ssl.SSLContext | None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if context is not None:
        context.set_alpn_protocols(["h2"])
        sock = context.wrap_socket(sock, server_hostname="localhost")
        if sock.selected_alpn_protocol() != "h2":
            raise RuntimeError("the gateway did not negotiate h2")
    headers = HeadersFrame(1, data=hpack.Encoder().encode(
        [(":method", "GET"), (":scheme", "https" if context else "http"), (":authority", "localhost"),
         (":path", "/healthz")]), flags=["END_STREAM", "END_HEADERS"])
    sock.sendall(PREFACE + SettingsFrame(0).serialize() + SettingsFrame(0, flags=["ACK"]).serialize()
                 + headers.serialize())
    reply = b""
    while b'"ok"' not in reply:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("HTTP/2 connection closed early")
        reply += chunk
    return sock


def measure(pid: int, count: int, opener, port: int, context: ssl.SSLContext | None) -> tuple[float, float]:
    time.sleep(0.5)
    before = rss_mib(pid)
    socks = []
    try:
        for _ in range(count):
            socks.append(opener(port, context))
        time.sleep(1.0)  # let the gateway settle (timers armed, buffers returned)
        after = rss_mib(pid)
    finally:
        for sock in socks:
            sock.close()
    return before, after


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--tls", action="store_true", help="also measure h2 and HTTP/1.1 over TLS")
    args = parser.parse_args()
    count = max(1, min(args.connections, 20000))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 2 * count + 1024)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < count + 256:
        raise SystemExit(f"RLIMIT_NOFILE hard limit {hard} is too low for {count} connections")

    from edge.devcert import ensure_dev_certificate

    work = Path(tempfile.mkdtemp(prefix="edge-idle-"))
    kinds = [("plain", None)]
    if args.tls:
        kinds.append(("tls", ensure_dev_certificate(work / "tls")))
    rows = []
    for name, tls in kinds:
        for label, opener in (("HTTP/1.1", open_h1), ("HTTP/2" if tls else "h2c", open_h2)):
            # A fresh gateway per kind: memory freed by the previous kind would hide the next one's growth.
            port = free_port()
            listen = f"listen: {{host: 127.0.0.1, port: {port}, " + (
                f"tls: {{cert_file: {tls[0]}, key_file: {tls[1]}}}}}\n" if tls else "plaintext: true}\n")
            config = work / f"{name}.yaml"
            config.write_text(listen + "admin: {enabled: false}\naccess_log: {enabled: false}\n"
                              f"backends: [{{name: demo, target: '127.0.0.1:{free_port()}', required: false,\n"
                              f"  descriptors: {ROOT / 'protos/edgedemo/descriptors.binpb'}}}]\n")
            proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "serve", "--config", str(config),
                                     "--log-level", "error"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            try:
                def context() -> ssl.SSLContext | None:  # a fresh one per use: the ALPN offer differs
                    return ssl.create_default_context(cafile=str(tls[0])) if tls else None

                deadline = time.monotonic() + 30
                while True:
                    try:
                        opener(port, context()).close()
                        break
                    except (OSError, RuntimeError):
                        if time.monotonic() > deadline or proc.poll() is not None:
                            raise SystemExit("the gateway did not start")
                        time.sleep(0.2)
                for _ in range(50):  # warm up the code paths before the baseline
                    opener(port, context()).close()
                before, after = measure(proc.pid, count, opener, port, context())
            finally:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            per = (after - before) * 1024 / count
            rows.append((f"{label}{' over TLS' if tls else ''}", before, after, per))
            print(f"{rows[-1][0]:22} {count} idle connections: RSS {before:7.1f} -> {after:7.1f} MiB, "
                  f"{per:5.1f} KiB per connection", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
