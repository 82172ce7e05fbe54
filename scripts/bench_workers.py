#!/usr/bin/env python3
"""CPU per request of `edge serve` with one worker and with `--workers 2`, pinned (issue 16 item 4).

On a 2-core machine the load generator, the backend and two workers cannot each have a core, so
`scripts/bench --full`'s get.off-2w row mixes the gateway's own cost with contention. Here the
gateway (its supervisor and workers) is pinned to CPU 0 and the Go backend and h2load to CPU 1
(`taskset`), and each configuration gets the same fixed request rate (open loop), so CPU per
request compares the work done per request, not how busy each process is:

* `1 worker`: `edge serve`;
* `1 worker, multiprocess metrics`: the same with PROMETHEUS_MULTIPROC_DIR set, as the
  workers run it (prometheus-client's mmap-backed values);
* `2 workers`: `edge serve --workers 2`: a supervisor, two workers on one shared socket;
* `1 worker, half the rate`: the first server again at half the rate, which is what each of
  two workers sees. A server's CPU per request grows as its rate falls (fewer requests per
  event-loop wake-up, per epoll_wait, per gRPC poller round), so this is the cost the second
  worker adds without any multi-process machinery;
* `... one connection`: 1 worker and 2 workers with the load on a single connection (a quarter
  of the rate), so one of the two workers serves it all and the other idles: the supervisor,
  the multiprocess metrics and the shared socket, without two busy processes taking turns
  on one core.

What it cannot show: whether two workers on two free cores do twice the work. Both workers share
CPU 0 here; that needs a machine with a core per worker plus cores for the load.

    .venv/bin/python scripts/bench_workers.py [--rate 600] [--duration 8] [--runs 3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "protos"), str(ROOT / "scripts")]

import bench_suite as bench  # noqa: E402

GATEWAY_CPU, LOAD_CPU = "0", "1"


def process_cpu(pid: int) -> dict[int, float]:
    return {member: bench.cpu_seconds(member) for member in bench.descendants(pid)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=600, help="requests per second, every configuration")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3, help="interleaved rounds")
    args = parser.parse_args()
    measure(args.rate, args.duration, args.runs)
    return 0


def measure(rate: float, duration: float, runs: int, log=print) -> dict:
    """Every configuration at `rate`, `runs` interleaved rounds of `duration` seconds; the medians.

    Returned (and printed through `log`) for scripts/bench --full too: `rows` maps each configuration
    to its median CPU µs per request, its range, p99 and the supervisor's share; `two_over_one` and
    `one_connection_two_over_one` are the ratios issue 16 item 4 targets."""
    if (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        raise SystemExit("needs two CPUs and taskset (util-linux)")
    work = Path(tempfile.mkdtemp(prefix="edge-workers-"))
    fleet = bench.Fleet(work)
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'protos'}:{ROOT}")
    try:
        demo_port = bench.free_port()
        fleet.start("demo", ["taskset", "-c", LOAD_CPU, sys.executable, "-m", "edgedemo.serve", "--port",
                             str(demo_port)], "", lambda: bench.tcp_open(demo_port), env=env)
        binary = bench.build_go_backend()
        bench.record_replies(f"127.0.0.1:{demo_port}", work / "replies.json")
        backend_port = bench.free_port()
        fleet.start("backend", ["taskset", "-c", LOAD_CPU, str(binary), "-port", str(backend_port), "-replies",
                                str(work / "replies.json")], "", lambda: bench.tcp_open(backend_port))
        configs = {
            "1 worker": ([], {}),
            "1 worker, multiprocess metrics": ([], {"PROMETHEUS_MULTIPROC_DIR": str(work / "metrics-1")}),
            "2 workers": (["--workers", "2"], {}),
        }
        servers = {}
        for name, (extra, more_env) in configs.items():
            for value in more_env.values():
                Path(value).mkdir()
            port = bench.free_port()
            config = bench.gateway_config(work, name.replace(" ", "-").replace(",", ""), port, backend_port)
            url = f"http://127.0.0.1:{port}"
            servers[name] = fleet.start(
                name, ["taskset", "-c", GATEWAY_CPU, sys.executable, "-m", "edge.cli", "serve", "--config", str(config),
                       "--log-level", "warning", *extra], url,
                lambda url=url: bench.http("GET", url + "/readyz")[0] == 200, env=dict(env, **more_env))
        request = bench.Request("GET", bench.GET_PATH)

        def load(url: str, rate: float, duration: float, clients: int = 16) -> dict:
            argv_prefix = ["taskset", "-c", LOAD_CPU]
            return run_pinned_h2load(work, url + request.path, rate / clients, clients, duration, argv_prefix)

        for server in servers.values():  # warm-up
            load(server.url, rate, 2)
        plan = [(name, server, rate, 16) for name, server in servers.items()]
        plan.append(("1 worker, half the rate", servers["1 worker"], rate / 2, 16))
        plan.append(("1 worker, one connection", servers["1 worker"], rate / 4, 1))
        plan.append(("2 workers, one connection", servers["2 workers"], rate / 4, 1))
        results: dict[str, list[dict]] = {name: [] for name, _, _, _ in plan}
        load_start = bench_loadavg()
        log(f"workers: load average {load_start}; {rate:g} req/s, {runs} rounds x {duration:g}s; gateway on "
            f"CPU {GATEWAY_CPU}, backend and h2load on CPU {LOAD_CPU}")
        for round_no in range(runs):
            for name, server, row_rate, clients in plan:
                before = process_cpu(server.pid)
                r = load(server.url, row_rate, duration, clients)
                after = process_cpu(server.pid)
                requests = max(1, r["requests"])
                per_process = {pid: (after[pid] - before.get(pid, 0.0)) / requests * 1e6 for pid in after}
                total = sum(per_process.values())
                supervisor = per_process.get(server.pid, 0.0) if name.startswith("2 workers") else 0.0
                results[name].append({"cpu_us": total, "supervisor_us": supervisor, "p99_ms": r["p99_ms"],
                                      "rps": r["rps"], "per_process": sorted(per_process.values(), reverse=True)})
                log(f"  round {round_no + 1} {name:32} {total:6.0f} µs/req  p99 {r['p99_ms']:6.2f} ms  "
                    f"{r['rps']:6.0f} req/s  per process {', '.join(f'{v:.0f}' for v in results[name][-1]['per_process'])}")
        rows = {}
        for name, runs_of in results.items():
            rows[name] = {"cpu_us": statistics.median(x["cpu_us"] for x in runs_of),
                          "cpu_us_min": min(x["cpu_us"] for x in runs_of), "cpu_us_max": max(x["cpu_us"] for x in runs_of),
                          "p99_ms": statistics.median(x["p99_ms"] for x in runs_of),
                          "supervisor_us": statistics.median(x["supervisor_us"] for x in runs_of)}
        base = rows["1 worker"]["cpu_us"]
        for name, row in rows.items():
            log(f"{name:32} {row['cpu_us']:6.0f} µs/req ({row['cpu_us_min']:.0f}-{row['cpu_us_max']:.0f})"
                f"  {row['cpu_us'] / base:5.2f}x  p99 {row['p99_ms']:6.2f} ms  supervisor {row['supervisor_us']:4.1f} µs/req")
        summary = {
            "rate": rate, "duration_s": duration, "runs": runs, "rows": rows,
            "two_over_one": rows["2 workers"]["cpu_us"] / base,
            "one_connection_two_over_one": rows["2 workers, one connection"]["cpu_us"]
            / rows["1 worker, one connection"]["cpu_us"],
            "load_average": [load_start, bench_loadavg()],
        }
        log(f"one connection: 2 workers / 1 worker = {summary['one_connection_two_over_one']:.2f}x")
        log(f"load average at the end {summary['load_average'][1]}")
        return summary
    finally:
        fleet.stop()
        shutil.rmtree(work, ignore_errors=True)


def run_pinned_h2load(work: Path, url: str, rps_per_client: float, clients: int, duration: float,
                      prefix: list[str]) -> dict:
    real = shutil.which("h2load")
    wrapper = work / "h2load-pinned"
    wrapper.write_text(f"#!/bin/sh\nexec {' '.join(prefix)} {real} \"$@\"\n")
    wrapper.chmod(0o755)
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{work}:{old}"
    try:
        (work / "h2load").unlink(missing_ok=True)
        (work / "h2load").symlink_to(wrapper)
        return bench.run_h2load(work, url, duration=duration, clients=clients, rps_per_client=rps_per_client, h1=True)
    finally:
        os.environ["PATH"] = old


def bench_loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


if __name__ == "__main__":
    sys.exit(main())
