#!/usr/bin/env python3
"""What one request's metrics cost, one process against many (prometheus-client's mmap files).

With `--workers N` every worker writes its metric values to mmap-backed files in
`PROMETHEUS_MULTIPROC_DIR` (edge/observability/metrics.py) instead of plain
in-memory values. This times the updates one answered GET makes (the in-flight
gauge, `observe_request` with its three histograms and counter, the protocol
counter, two rate-limit decisions) in each mode, each in its own fresh process,
alternating, and prints the median CPU µs per request of each and the difference.

    .venv/bin/python scripts/bench_metrics.py [--trials 5] [--requests 50000]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_trial(requests: int) -> float:
    """In this process, in whatever mode the environment chose: CPU µs per request."""
    sys.path.insert(0, str(ROOT))
    from edge.observability.metrics import Metrics

    metrics = Metrics()
    route, method = "/v1/shelves/{shelf}/books", "edgedemo.library.v1.LibraryService/ListBooks"

    def request() -> None:
        with metrics.inflight():
            metrics.observe_request(route, method, 200, "OK", 0.0012, 0.001, backend="demo")
            metrics.protocol_request("rest")
            metrics.ratelimit_decision("per-user", "allowed")
            metrics.ratelimit_decision("per-ip", "allowed")

    for _ in range(2000):  # warm: label children cached, files grown
        request()
    start = time.process_time()
    for _ in range(requests):
        request()
    return (time.process_time() - start) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--requests", type=int, default=50000)
    parser.add_argument("--child", choices=("one", "many"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(f"{one_trial(args.requests):.3f}")
        return
    results: dict[str, list[float]] = {"one": [], "many": []}
    with tempfile.TemporaryDirectory(prefix="edge-bench-metrics-") as tmp:
        for trial in range(args.trials):
            for mode in ("one", "many"):
                env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
                if mode == "many":
                    env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(dir=tmp)
                out = subprocess.run([sys.executable, __file__, "--child", mode, "--requests", str(args.requests)],
                                     env=env, check=True, capture_output=True, text=True).stdout
                results[mode].append(float(out))
    one, many = statistics.median(results["one"]), statistics.median(results["many"])
    print(f"one process (in-memory values):      {one:6.2f} µs per request  {sorted(results['one'])}")
    print(f"many processes (mmap files, --workers): {many:6.2f} µs per request  {sorted(results['many'])}")
    print(f"difference: {many - one:+.2f} µs per request ({many / one:.2f}x)")


if __name__ == "__main__":
    main()
