#!/usr/bin/env python3
"""Overload: offer three times what the backend can serve, with and without load shedding,
and show the gateway refusing the excess fast (503/429) and recovering when the load stops,
instead of queueing without bound. Loopback only, bounded in count and time.

The backend (in this process) serves GetShelf with a fixed capacity: `--backend-slots`
calls at a time, each taking `--service-ms`; more calls wait in line. So it serves
slots / service time calls a second (100/s by default). The gateway runs as its own
process, twice:

* shedding off (`overload.max_inflight: null`, no rate limit): every request is taken
  on and waits at the backend; latency grows with the queue until the backend
  deadline turns the waiting into 504s;
* shedding on: a global rate limit a little under the backend's capacity (429 for the
  rest) and `overload.max_inflight` at four times its slots (503 for bursts past it).

Each run has three phases at a fixed open-loop rate: half the capacity (baseline),
`--factor` times the capacity (overload), half again (recovery). Printed per phase:
answers by status, p50/p99 latency of the 200s and of the refusals, the most requests
outstanding at once, and the gateway's memory.

    .venv/bin/python scripts/overload.py [--duration 15] [--factor 3] [--json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "protos"), str(ROOT / "scripts")]

import grpc  # noqa: E402
import httpx  # noqa: E402
from grpc_reflection.v1alpha import reflection  # noqa: E402

from edgedemo import library_pb2_grpc  # noqa: E402
from edgedemo.library_server import LibraryServicer  # noqa: E402
from edgedemo.serve import LIBRARY_SERVICE  # noqa: E402
from loadkit import LOOPBACK, GatewayProcess, free_port, open_loop, percentile  # noqa: E402
from tests.support.backends import LoopThread  # noqa: E402


class LimitedLibrary(LibraryServicer):
    """GetShelf with a fixed capacity: `slots` calls at once, `service` seconds each."""

    def __init__(self, slots: int, service: float) -> None:
        super().__init__()
        self.slots = asyncio.Semaphore(slots)
        self.service = service

    async def GetShelf(self, request, context):  # noqa: ANN001, N802 - the gRPC method
        async with self.slots:
            await asyncio.sleep(self.service)
            return await super().GetShelf(request, context)


async def start_backend(slots: int, service: float) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    library_pb2_grpc.add_LibraryServiceServicer_to_server(LimitedLibrary(slots, service), server)
    reflection.enable_server_reflection([LIBRARY_SERVICE, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(f"{LOOPBACK}:0")
    await server.start()
    return server, port


def gateway_yaml(port: int, backend_port: int, shedding: bool, capacity: int, max_inflight: int) -> str:
    protection = (f"overload: {{max_inflight: {max_inflight}, retry_after: 1s}}\n"
                  f"rate_limits: {{policies: [{{name: capacity, limit: {int(capacity * 0.8)}, window: 1s, key: global}}]}}\n"
                  if shedding else "overload: {max_inflight: null}\n")
    return f"""
listen: {{host: {LOOPBACK}, port: {port}, plaintext: true}}
admin: {{enabled: false}}
lifecycle: {{pre_drain_delay: 0s, drain_timeout: 2s}}
access_log: {{enabled: false}}
transcoding: {{reload_interval: 0}}
backends: [{{name: limited, target: '{LOOPBACK}:{backend_port}', timeout: 5s}}]
{protection}"""


async def get_shelf(client: httpx.AsyncClient, n: int) -> tuple[str, int]:
    return "get", (await client.get("/v1/shelves/scifi")).status_code


def phase_report(result, rss_peak: int) -> dict:
    refused = result.latencies(429, 503)
    return {
        "requests": len(result.outcomes) + result.dropped, "statuses": result.statuses(),
        "not_started_client_cap": result.dropped, "max_outstanding": result.max_outstanding,
        "ok_ms": {"p50": round(percentile(result.latencies(200), 0.5) * 1000, 1),
                  "p99": round(percentile(result.latencies(200), 0.99) * 1000, 1)},
        "refused_ms": {"p50": round(percentile(refused, 0.5) * 1000, 1), "p99": round(percentile(refused, 0.99) * 1000, 1)},
        "gateway_rss_mb_peak": round(rss_peak / 2**20, 1),
    }


def run_gateway(backend_port: int, shedding: bool, args: argparse.Namespace, capacity: int) -> dict:
    port = free_port()
    gateway = GatewayProcess(gateway_yaml(port, backend_port, shedding, capacity, args.backend_slots * 4), port).start()
    phases = {}
    try:
        for name, rate, seconds in (("baseline", capacity / 2, 5), ("overload", capacity * args.factor, args.duration),
                                    ("recovery", capacity / 2, 5)):
            peak = [gateway.rss_bytes()]
            result = asyncio.run(open_loop(gateway.url, rate, seconds, get_shelf, max_outstanding=args.max_outstanding,
                                           timeout=15, on_tick=lambda _t: peak.append(gateway.rss_bytes())))
            phases[name] = {"rate": rate, **phase_report(result, max(peak))}
    finally:
        gateway.stop()
    return phases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15, help="seconds of overload per run (3-300)")
    parser.add_argument("--factor", type=float, default=3, help="offered load over capacity (1.5-10)")
    parser.add_argument("--backend-slots", type=int, default=4, help="calls the backend serves at once (1-64)")
    parser.add_argument("--service-ms", type=float, default=40, help="time per backend call (5-1000)")
    parser.add_argument("--max-outstanding", type=int, default=2000, help="the client's own cap (10-5000)")
    parser.add_argument("--only", choices=["on", "off"], help="run just one of the two gateways")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not (3 <= args.duration <= 300 and 1.5 <= args.factor <= 10 and 1 <= args.backend_slots <= 64
            and 5 <= args.service_ms <= 1000 and 10 <= args.max_outstanding <= 5000):
        parser.error("an option is out of range")
    capacity = int(args.backend_slots / (args.service_ms / 1000))
    loop = LoopThread("limited-backend")
    server, backend_port = loop.run(start_backend(args.backend_slots, args.service_ms / 1000))
    report = {"backend_capacity_per_s": capacity}
    try:
        for label, shedding in (("shedding off", False), ("shedding on", True)):
            if args.only is None or (args.only == "on") == shedding:
                report[label] = run_gateway(backend_port, shedding, args, capacity)
    finally:
        loop.run(server.stop(None))
        loop.close()
    if args.json:
        print(json.dumps(report))
    else:
        print(f"backend capacity: {capacity} calls/s")
        for label in ("shedding off", "shedding on"):
            for phase, values in report.get(label, {}).items():
                print(f"{label:>13} {phase:>9}: {json.dumps(values)}")
    on = report.get("shedding on")
    if on is None:
        return 0
    overload, recovery = on["overload"], on["recovery"]
    shed_fast = overload["refused_ms"]["p99"] < 100
    recovered = set(recovery["statuses"]) == {200}
    bounded = overload["ok_ms"]["p99"] < 20 * args.service_ms
    return 0 if shed_fast and recovered and bounded else 1


if __name__ == "__main__":
    sys.exit(main())
