#!/usr/bin/env python3
"""What an idle client connection costs the gateway: RSS per connection, HTTP/1.1 vs HTTP/2.

Starts `edge serve` (plaintext, and with `--tls` also TLS) on loopback, opens `--connections`
connections of each kind, makes one request on each (so the connection is a used keep-alive
connection, as a phone's is between screens), leaves them idle, and reads the gateway's RSS
from /proc before and after. Bounded: every connection is closed and the gateway stopped at
the end; nothing leaves 127.0.0.1. The file-descriptor limit is raised inside this process
(and so for the gateway it starts) with resource.setrlimit.

    .venv/bin/python scripts/idle_connections.py --connections 5000 [--tls]

With `--load`: one gateway (one worker, plaintext) in front of the benchmark's Go backend
(scripts/bench_backend.go, the Python demo backend if Go is missing), and a fixed-rate load
(h2load, HTTP/1.1, the benchmark's GET) on connections of its own: its p50/p99 alone, then
with the idle crowd held open (HTTP/1.1, then h2c), and the RSS each crowd added. The
gateway's keep-alive timeout is raised to 10 minutes for the run, so the crowd stays.

    .venv/bin/python scripts/idle_connections.py --connections 10000 --load [--rate 1000]
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


def open_many(count: int, opener, port: int) -> list[socket.socket]:
    socks = []
    try:
        for _ in range(count):
            socks.append(opener(port, None))
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def loaded(count: int, rate: float | None, duration: float, log=print) -> dict:
    """p99 of a fixed-rate load with and without `count` idle connections (see the module doc).

    Returns the rows (label, RSS KiB per idle connection, p50/p99/p99.9, req/s) and, per crowd,
    its p99 over the p99 alone: what scripts/bench --full reports against issue 16 item 6."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import bench_suite as bench

    work = Path(tempfile.mkdtemp(prefix="edge-idle-load-"))
    fleet = bench.Fleet(work)
    env = dict(__import__("os").environ, PYTHONPATH=f"{ROOT / 'protos'}:{ROOT}")
    try:
        demo_port = free_port()
        fleet.start("demo", [sys.executable, "-m", "edgedemo.serve", "--port", str(demo_port)], "",
                    lambda: bench.tcp_open(demo_port), env=env)
        backend_port, backend = demo_port, "python (the demo backend)"
        try:
            binary = bench.build_go_backend()
            bench.record_replies(f"127.0.0.1:{demo_port}", work / "replies.json")
            backend_port = free_port()
            fleet.start("backend", [str(binary), "-port", str(backend_port), "-replies", str(work / "replies.json")],
                        "", lambda: bench.tcp_open(backend_port))
            backend = "go (scripts/bench_backend.go)"
        except RuntimeError as exc:
            print(f"warning: no Go backend ({exc}); the demo backend serves the load", file=sys.stderr)
        port = free_port()
        config = bench.gateway_config(work, "gw", port, backend_port)
        config.write_text(config.read_text().replace("  plaintext: true\n",
                                                     "  plaintext: true\n  keep_alive_timeout: 600\n"))
        url = f"http://127.0.0.1:{port}"
        gateway = fleet.start("gw", [sys.executable, "-m", "edge.cli", "serve", "--config", str(config),
                                     "--log-level", "warning"], url,
                              lambda: bench.http("GET", url + "/readyz")[0] == 200, env=env)
        request = bench.Request("GET", bench.GET_PATH)
        bench.run_wrk(work, url, request, 2, 32)  # warm-up
        if rate is None:
            top = bench.run_wrk(work, url, request, 3, 32)["rps"]
            rate = round(top * 0.5)
            log(f"closed-loop maximum {top:.0f} req/s; the load runs at half of it")
        load1 = loadavg()
        log(f"backend {backend}; load {rate:.0f} req/s (h2load, HTTP/1.1, 16 connections) for {duration:g}s; "
            f"load average {load1}")

        def measure_load() -> dict:
            return bench.latency_at_rate(work, url, request, rate, duration, h1=True)

        rows = []
        alone = measure_load()
        rows.append(("no idle connections", 0.0, alone))
        for label, opener in (("HTTP/1.1", open_h1), ("h2c", open_h2)):
            time.sleep(0.5)
            before = rss_mib(gateway.pid)
            socks = open_many(count, opener, port)
            try:
                time.sleep(1.0)
                after = rss_mib(gateway.pid)
                result = measure_load()
                rows.append((f"{count} idle {label}", (after - before) * 1024 / count, result))
            finally:
                for sock in socks:
                    sock.close()
            time.sleep(2.0)  # the gateway handles the crowd's closes first
            again = measure_load()  # the crowd gone: is the gateway back where it started?
            rows.append((f"after the {label} crowd closed", 0.0, again))
        log(f"{'':36} {'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8} {'req/s':>7}  RSS per idle conn")
        for label, per, r in rows:
            log(f"{label:36} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} {r['p999_ms']:8.2f} {r['rps']:7.0f}  "
                + (f"{per:5.1f} KiB" if per else ""))
        crowds = {}
        for label, per, r in rows:
            if per:
                crowds[label] = {"kib_per_connection": per, "p99_ms": r["p99_ms"],
                                 "p99_over_alone": r["p99_ms"] / alone["p99_ms"]}
                log(f"p99 with {label}: {r['p99_ms'] / alone['p99_ms']:.2f}x the p99 alone")
        load2 = loadavg()
        log(f"load average at the end {load2}")
        return {"connections": count, "rate": rate, "duration_s": duration, "backend": backend,
                "rows": [{"label": label, "kib_per_connection": per, **{k: r[k] for k in ("p50_ms", "p99_ms", "p999_ms", "rps")}}
                         for label, per, r in rows],
                "alone_p99_ms": alone["p99_ms"], "crowds": crowds, "load_average": [load1, load2]}
    finally:
        fleet.stop()


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--tls", action="store_true", help="also measure h2 and HTTP/1.1 over TLS")
    parser.add_argument("--load", action="store_true", help="p99 of a fixed-rate load with and without the crowd")
    parser.add_argument("--rate", type=float, help="--load: requests per second (default: half the measured maximum)")
    parser.add_argument("--duration", type=float, default=10.0, help="--load: seconds per load run (default 10)")
    args = parser.parse_args()
    count = max(1, min(args.connections, 20000))
    raise_file_limit(count)
    if args.load:
        loaded(count, args.rate, max(2.0, min(args.duration, 60.0)))
        return 0
    idle_rss(count, args.tls)
    return 0


def raise_file_limit(count: int) -> None:
    """Room for `count` client sockets here and as many in the gateway this process starts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 2 * count + 1024)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < count + 256:
        raise SystemExit(f"RLIMIT_NOFILE hard limit {hard} is too low for {count} connections")


def idle_rss(count: int, tls: bool, log=print) -> list[dict]:
    """RSS per idle connection of each kind, each against a fresh gateway (see the module doc)."""
    from edge.devcert import ensure_dev_certificate

    work = Path(tempfile.mkdtemp(prefix="edge-idle-"))
    kinds = [("plain", None)]
    if tls:
        kinds.append(("tls", ensure_dev_certificate(work / "tls")))
    rows = []
    for name, cert in kinds:
        for label, opener in (("HTTP/1.1", open_h1), ("HTTP/2" if cert else "h2c", open_h2)):
            # A fresh gateway per kind: memory freed by the previous kind would hide the next one's growth.
            port = free_port()
            listen = f"listen: {{host: 127.0.0.1, port: {port}, " + (
                f"tls: {{cert_file: {cert[0]}, key_file: {cert[1]}}}}}\n" if cert else "plaintext: true}\n")
            config = work / f"{name}.yaml"
            config.write_text(listen + "admin: {enabled: false}\naccess_log: {enabled: false}\n"
                              f"backends: [{{name: demo, target: '127.0.0.1:{free_port()}', required: false,\n"
                              f"  descriptors: {ROOT / 'protos/edgedemo/descriptors.binpb'}}}]\n")
            proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "serve", "--config", str(config),
                                     "--log-level", "error"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            try:
                def context() -> ssl.SSLContext | None:  # a fresh one per use: the ALPN offer differs
                    return ssl.create_default_context(cafile=str(cert[0])) if cert else None

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
            rows.append({"kind": f"{label}{' over TLS' if cert else ''}", "connections": count,
                         "rss_before_mib": before, "rss_after_mib": after, "kib_per_connection": per})
            log(f"{rows[-1]['kind']:22} {count} idle connections: RSS {before:7.1f} -> {after:7.1f} MiB, "
                f"{per:5.1f} KiB per connection")
    return rows



if __name__ == "__main__":
    sys.exit(main())
