#!/usr/bin/env python3
"""Gateway CPU per GET, in process: what a code change costs the hot path.

Starts the demo backend in a subprocess (its CPU is not counted), builds the
gateway's ASGI app in this process from `--src` (default: this checkout; give
another worktree to compare, e.g. main before a change) and calls it directly,
one request at a time, with no sockets: what is timed is the gateway's own work
per request (routing, codec, pipeline, reply) plus the gRPC client call.

    .venv/bin/python scripts/bench_hotpath.py [--src ../main] [--requests 3000] [--trials 5]
        [--config '{"caching": {}}'] [--path '/v1/shelves/scifi/books?pageSize=2']

Prints the median over trials of CPU µs and wall µs per request. Run two
checkouts alternately (before, after, before, after) and compare medians:
CPU per request on a shared machine moves by a few percent between runs.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run(args: argparse.Namespace, target: str) -> list[tuple[float, float]]:
    from edge.app import GatewayApp
    from edge.config import GatewayConfig

    raw = {
        "listen": {"plaintext": True, "port": 0},
        "admin": {"enabled": False},
        "backends": [{"name": "demo", "target": target}],
        "transcoding": {"reload_interval": 0},
        "access_log": {"enabled": False},
        **json.loads(args.config),
    }
    app = GatewayApp(GatewayConfig.model_validate(raw))
    await app.registry.start()
    await app.start()
    path, _, query = args.path.partition("?")
    scope = {
        "type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
        "headers": [(b"host", b"localhost"), (b"accept", b"application/json")], "client": ("127.0.0.1", 40000),
        "http_version": "1.1", "scheme": "http",
    }
    statuses: list[int] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def one() -> None:
        await app(dict(scope), receive, send)

    for _ in range(300):  # warm-up: channel, plans, caches
        await one()
    if set(statuses) != {200}:
        raise SystemExit(f"{args.path} answered {sorted(set(statuses))}")
    results = []
    for _ in range(args.trials):
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(args.requests):
            await one()
        results.append(((time.process_time() - cpu) / args.requests * 1e6, (time.perf_counter() - wall) / args.requests * 1e6))
    await app.close()
    await app.registry.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=ROOT, help="the checkout whose gateway is measured")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--config", default="{}", help="more config sections, as JSON")
    parser.add_argument("--path", default="/v1/shelves/scifi/books?pageSize=2&genre=SCIENCE_FICTION")
    parser.add_argument("--backend", help="host:port of a running demo backend (default: start one)")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRPC_EXPERIMENTS", "-event_engine_client")  # as `edge serve` runs
    sys.path[:0] = [str(args.src.resolve()), str(ROOT / "protos")]
    backend = None
    target = args.backend
    if target is None:
        port = free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT / "protos"))
        backend = subprocess.Popen([sys.executable, "-m", "edgedemo.serve", "--port", str(port)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        target = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
    try:
        results = asyncio.run(run(args, target))
    finally:
        if backend is not None:
            backend.terminate()
            backend.wait(10)
    cpu = statistics.median(r[0] for r in results)
    wall = statistics.median(r[1] for r in results)
    print(json.dumps({"src": str(args.src), "config": json.loads(args.config), "path": args.path,
                      "cpu_us": round(cpu, 1), "wall_us": round(wall, 1),
                      "trials_cpu_us": [round(r[0], 1) for r in results]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
