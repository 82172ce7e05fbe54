#!/usr/bin/env python3
"""What the batch endpoint saves: one 10-item batch versus the same 10 calls one by one.

Starts the demo backend in-process and a real gateway (uvicorn, loopback only),
then times, over `--runs` rounds each:

* a batch of 10 independent GetShelf items, item i sleeping (i+1)/10 of
  `--delay-ms` in the backend (the demo's `x-demo-delay-ms` knob);
* the same 10 calls made one after another over one keep-alive connection;
* the single slowest of those calls alone (the floor a batch can approach).

Prints median and p90 latency of each, in milliseconds. Bounded: a few
hundred HTTP requests in all.

    .venv/bin/python scripts/bench_batch.py [--runs 30] [--delay-ms 50] [--json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "protos")]

import httpx

from edge.config import GatewayConfig
from tests.support.backends import demo_backend_running
from tests.support.gateway import gateway_config, running_gateway

ITEMS = 10
DELAY = "x-demo-delay-ms"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(runs: int, action: Callable[[], None]) -> list[float]:
    action()  # warm-up: connection, route table, channel
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="rounds per measurement (1-500)")
    parser.add_argument("--delay-ms", type=int, default=50, help="backend time of the slowest item (0-1000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    runs = max(1, min(args.runs, 500))
    delay = max(0, min(args.delay_ms, 1000))
    delays = [delay * (i + 1) // ITEMS for i in range(ITEMS)]
    calls = [("/v1/shelves/scifi", {DELAY: str(d)}) for d in delays]
    items = [{"id": f"i{i}", "url": url, "headers": headers} for i, (url, headers) in enumerate(calls)]

    with demo_backend_running() as backend:
        quiet = {"access_log": {"enabled": False}} if "access_log" in GatewayConfig.model_fields else {}
        config = gateway_config(
            [{"name": "demo", "target": backend.target}],
            transcoding={"forward_headers": [DELAY]},
            batch={"max_items": ITEMS, "max_concurrency": ITEMS},
            **quiet,
        )
        with running_gateway(config) as gw, httpx.Client(base_url=gw.url, timeout=30) as client:

            def one_batch() -> None:
                r = client.post("/v1/batch", json={"requests": items})
                r.raise_for_status()
                bad = [x for x in r.json()["responses"] if x["status"] != 200]
                if bad:
                    raise SystemExit(f"batch item failed: {bad[0]}")

            def sequential() -> None:
                for url, headers in calls:
                    client.get(url, headers=headers).raise_for_status()

            def slowest() -> None:
                url, headers = calls[-1]
                client.get(url, headers=headers).raise_for_status()

            results = {
                f"batch of {ITEMS}": timed(runs, one_batch),
                f"{ITEMS} sequential calls": timed(runs, sequential),
                "slowest call alone": timed(runs, slowest),
            }

    summary = {
        name: {"median_ms": round(statistics.median(s), 2), "p90_ms": round(percentile(s, 0.9), 2)}
        for name, s in results.items()
    }
    if args.json:
        print(json.dumps({"runs": runs, "item_delays_ms": delays, "results": summary}))
        return
    print(f"{runs} runs; backend delays per item (ms): {delays}")
    print(f"{'':24} {'median ms':>10} {'p90 ms':>10}")
    for name, row in summary.items():
        print(f"{name:24} {row['median_ms']:>10.1f} {row['p90_ms']:>10.1f}")


if __name__ == "__main__":
    main()
