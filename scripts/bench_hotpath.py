#!/usr/bin/env python3
"""Gateway CPU per GET, in process: what a code change costs the hot path.

Starts the demo backend in a subprocess (its CPU is not counted), builds the
gateway's ASGI app in this process from `--src` (default: this checkout; give
another worktree to compare, e.g. main before a change) and calls it directly,
one request at a time, with no sockets: what is timed is the gateway's own work
per request (routing, codec, pipeline, reply) plus the gRPC client call.

    .venv/bin/python scripts/bench_hotpath.py [--src ../main] [--requests 3000] [--trials 5]
        [--config '{"caching": {}}'] [--path '/v1/shelves/scifi/books?pageSize=2']
        [--all-on] [--post] [--profile FILE]

`--all-on` configures what scripts/bench_suite.py's "gw-on" gateway has besides TLS (JWT auth from a
dev issuer minted into a temporary directory, two rate-limit policies, idempotency keys, the memory
store) and sends its bearer token; `--post` sends the suite's POST (with `--all-on`, each with a
fresh Idempotency-Key). `--stub-backend` calls the backend once per method and hands its answer to
every later call, so only the gateway's own work is timed (steadier: gRPC's client is most of the
CPU otherwise). `--profile FILE` writes a cProfile of the timed trials (this thread's CPU).

Prints the median over trials of CPU µs and wall µs per request (and the CPU of the loop's thread
alone: gRPC's C-core threads excluded). Run two
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
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run(args: argparse.Namespace, target: str) -> list[tuple[float, float, float]]:
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
    if args.stub_backend:
        stub_backend()
    app = GatewayApp(GatewayConfig.model_validate(raw))
    await app.registry.start()
    await app.start()
    path, _, query = args.path.partition("?")
    headers = [(b"host", b"localhost"), (b"accept", b"application/json"), *args.headers]
    if args.body:
        headers.append((b"content-type", b"application/json"))
    scope = {
        "type": "http", "method": args.method, "path": path, "raw_path": path.encode(),
        "query_string": query.encode(), "headers": headers, "client": ("127.0.0.1", 40000),
        "http_version": "1.1", "scheme": "http",
    }
    body = args.body.encode()
    request = {"type": "http.request", "body": body, "more_body": False}
    statuses: list[int] = []
    counter = iter(range(1 << 62))

    async def receive() -> dict:
        return request

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    if args.idempotency:
        async def one() -> None:
            key = (b"idem-%d" % next(counter),)
            await app({**scope, "headers": [*headers, (b"idempotency-key", *key)]}, receive, send)
    else:
        async def one() -> None:
            await app(dict(scope), receive, send)

    for _ in range(300):  # warm-up: channel, plans, caches
        await one()
    if set(statuses) != {200}:
        raise SystemExit(f"{args.method} {args.path} answered {sorted(set(statuses))}")
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.thread_time)  # this thread's CPU: not gRPC's threads, not waits
        profiler.enable()
    results = []
    for _ in range(args.trials):
        cpu, wall, own = time.process_time(), time.perf_counter(), time.thread_time()
        for _ in range(args.requests):
            await one()
        n = args.requests
        results.append(((time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6,
                        (time.thread_time() - own) / n * 1e6))
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    if set(statuses) != {200}:
        raise SystemExit(f"{args.method} {args.path} answered {sorted(set(statuses))}")
    await app.close()
    await app.registry.close()
    return results


def stub_backend() -> None:
    """Each method's first answer from the backend, kept and given back to every later call (the
    request still serialized, as gRPC would): what is left is the gateway's own work."""
    from transcoding.invoker import MethodInvoker

    real = MethodInvoker.unary
    kept: dict[int, object] = {}

    async def unary(self, request, *, timeout, metadata):  # type: ignore[no-untyped-def]
        result = kept.get(id(self))
        if result is None:
            result = kept[id(self)] = await real(self, request, timeout=timeout, metadata=metadata)
        else:
            request.SerializeToString()
        return result

    MethodInvoker.unary = unary  # type: ignore[method-assign]


def all_on_config(work: Path, args: argparse.Namespace) -> dict:
    """The sections scripts/bench_suite.py gives its "gw-on" gateway besides TLS, read from the YAML it
    writes, with a token for its dev issuer in `args.headers`."""
    import yaml

    import bench_suite
    from edge.devtoken import ensure_dev_issuer, mint_dev_token

    private, jwks = ensure_dev_issuer(work / "issuer")
    written = yaml.safe_load(bench_suite.gateway_config(work, "on", 0, 0, jwks=jwks).read_text())
    token = mint_dev_token(private)
    args.headers.append((b"authorization", f"Bearer {token}".encode()))
    return {section: written[section] for section in ("auth", "rate_limits", "idempotency", "store")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=ROOT, help="the checkout whose gateway is measured")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--config", default="{}", help="more config sections, as JSON")
    parser.add_argument("--path", default="/v1/shelves/scifi/books?pageSize=2&genre=SCIENCE_FICTION")
    parser.add_argument("--backend", help="host:port of a running demo backend (default: start one)")
    parser.add_argument("--all-on", action="store_true", help="JWT auth, two rate limits, idempotency (memory)")
    parser.add_argument("--post", action="store_true", help="the suite's POST instead of a GET")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the timed trials here")
    parser.add_argument("--stub-backend", action="store_true",
                        help="call the backend once per method and replay its answer: the gateway's own CPU alone")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="the event loop (default uvloop, as `edge serve` runs)")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRPC_EXPERIMENTS", "-event_engine_client")  # as `edge serve` runs
    sys.path.insert(0, str(ROOT / "scripts"))
    import bench_suite  # noqa: E402  (it puts this checkout first on sys.path: --src goes before it below)

    sys.path[:0] = [str(args.src.resolve()), str(ROOT / "protos")]

    args.method, args.body, args.headers, args.idempotency = "GET", "", [], False
    if args.post:
        args.method, args.body, args.path = "POST", bench_suite.POST_BODY, bench_suite.POST_PATH
    scratch = tempfile.TemporaryDirectory(prefix="bench-hotpath-")
    if args.all_on:
        args.config = json.dumps({**json.loads(args.config), **all_on_config(Path(scratch.name), args)})
        args.idempotency = args.post
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
        if args.loop == "uvloop":
            import uvloop

            results = uvloop.run(run(args, target))
        else:
            results = asyncio.run(run(args, target))
        import edge

        assert Path(edge.__file__).resolve().is_relative_to(args.src.resolve()), edge.__file__
    finally:
        scratch.cleanup()
        if backend is not None:
            backend.terminate()
            backend.wait(10)
    cpu = statistics.median(r[0] for r in results)
    wall = statistics.median(r[1] for r in results)
    loop_thread = statistics.median(r[2] for r in results)
    print(json.dumps({"src": str(args.src), "loop": args.loop, "method": args.method, "path": args.path,
                      "config": "all on (memory)" if args.all_on else json.loads(args.config), "stub_backend": args.stub_backend,
                      "cpu_us": round(cpu, 1), "wall_us": round(wall, 1), "loop_thread_cpu_us": round(loop_thread, 1),
                      "trials_cpu_us": [round(r[0], 1) for r in results]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
