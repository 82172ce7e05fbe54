"""Issue 16's performance targets, each judged from one `scripts/bench --full` run.

`verdicts(document)` reads the results document bench_suite.py writes (its `results`,
and with `--full` its `redis_commands`, `workers` and `idle` sections) and gives one
row per target: what was compared, the measured figures and ratio, the limit, and
whether it was met (None when this run did not measure it, e.g. `--only` left the
rows out or Envoy was missing). The HTTP/2 rows have no limit of their own: the issue
asks for them beside Envoy's, so they are listed with their ratios and `met` None.

Kept apart from the runner so the table can be rebuilt from a saved JSON document
(`python scripts/bench_targets.py results.json`) and checked without running a load.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Verdict", "verdicts", "render"]


@dataclass
class Verdict:
    item: str  # the item number
    target: str
    measured: str
    limit: str
    met: bool | None  # None: not measured in this run, or reported without a limit
    ratio: float | None = None


# (item, what, numerator row, denominator row, metric, limit): CPU per request unless said otherwise.
RATIO_TARGETS = [
    ("1", "GET all on (memory) / Envoy edge", "get.on", "get.envoy-edge", "cpu_us", 1.6),
    ("1", "POST all on (memory) / Envoy edge", "post.on", "post.envoy-edge", "cpu_us", 1.6),
    ("1", "GET all on (Redis) / Envoy edge", "get.on-redis", "get.envoy-edge", "cpu_us", 2.0),
    ("1", "POST all on (Redis) / Envoy edge", "post.on-redis", "post.envoy-edge", "cpu_us", 2.0),
    ("2", "GET offloads off / bare passthrough", "get.off", "get.floor", "cpu_us", 1.10),
    ("2", "POST offloads off / bare passthrough", "post.off", "post.floor", "cpu_us", 1.10),
    ("2", "GET TLS+JWT+limits (memory) / offloads off", "get.on", "get.off", "cpu_us", 1.30),
    ("2", "POST all on (memory) / offloads off", "post.on", "post.off", "cpu_us", 1.30),
    ("2", "GET Redis / memory store", "get.on-redis", "get.on", "cpu_us", 1.15),
    ("2", "POST Redis / memory store", "post.on-redis", "post.on", "cpu_us", 1.15),
    ("5", "~1 MiB reply: CPU per MiB / Envoy's", "large.get-off", "large.get-envoy", "cpu_us_per_mib", 3.0),
    ("5", "~256 KiB body: CPU per MiB / Envoy's", "large.post-off", "large.post-envoy", "cpu_us_per_mib", 3.0),
]
# HTTP/2 rows beside Envoy's (item 7): reported, no limit.
H2_PAIRS = [
    ("7", "GET HTTP/2 (h2c) offloads off / Envoy h2c", "get.off-h2", "get.envoy-h2"),
    ("7", "POST HTTP/2 (h2c) offloads off / Envoy h2c", "post.off-h2", "post.envoy-h2"),
    ("7", "GET HTTP/2 (h2) TLS+JWT+limits / Envoy edge h2", "get.on-h2", "get.envoy-edge-h2"),
]
COMPLETION = ("idem_complete", "idem_release")  # the store calls after the backend answered
NOT_PER_REQUEST = ("ping",)  # readiness checks that fell inside the sample
WORKERS_LIMIT = 1.10
IDLE_KIB_LIMIT = 10.0
IDLE_P99_LIMIT = 1.5


def _median(results: dict[str, Any], key: str, metric: str) -> float | None:
    row = results.get(key) or {}
    value = (row.get(metric) or {}).get("median")
    return value if value else None


def _unit(metric: str) -> str:
    return "ms/MiB" if metric == "cpu_us_per_mib" else "µs"


def _scaled(value: float, metric: str) -> str:
    return f"{value / 1000:.2f}" if metric == "cpu_us_per_mib" else f"{value:.0f}"


def verdicts(document: dict[str, Any]) -> list[Verdict]:
    results = document.get("results", {})
    rows: list[Verdict] = []
    for item, what, a, b, metric, limit in RATIO_TARGETS:
        x, y = _median(results, a, metric), _median(results, b, metric)
        if x and y:
            ratio = x / y
            rows.append(Verdict(item, what, f"{_scaled(x, metric)} / {_scaled(y, metric)} {_unit(metric)} = {ratio:.2f}x",
                                f"≤ {limit:.2f}x", ratio <= limit, ratio))
        else:
            rows.append(Verdict(item, what, f"not measured ({a if not x else b} missing)", f"≤ {limit:.2f}x", None))
    rows.append(_redis_trips(document))
    rows.extend(_workers(document.get("workers")))
    rows.extend(_idle(document.get("idle")))
    for item, what, a, b in H2_PAIRS:
        x, y = _median(results, a, "cpu_us"), _median(results, b, "cpu_us")
        measured = f"{x:.0f} / {y:.0f} µs = {x / y:.2f}x" if x and y else "not measured"
        rows.append(Verdict(item, what, measured, "beside Envoy", None, x / y if x and y else None))
    return rows


def _redis_trips(document: dict[str, Any]) -> Verdict:
    """Item 3: the keyed POST's round trips before its backend call. Redis's MONITOR names each
    command a request sent (`redis_commands`: one store call is one command, EVALSHA of a script),
    so the admission can be told from the completion after the backend answered (idem_complete);
    ss's count of every segment sent to Redis (`redis_trips`) is shown beside it."""
    target = "Redis round trips before the backend call, keyed POST"
    trips = _median(document.get("results", {}), "post.on-redis", "redis_trips")
    commands = (document.get("redis_commands") or {}).get("post.on-redis")
    if not commands:
        measured = f"{trips:.2f} trips per request in all (no command breakdown)" if trips else "not measured"
        return Verdict("3", target, measured, "= 1", None, trips)
    per = commands["per_request"]
    after = sum(n for name, n in per.items() if name in COMPLETION)
    admission = sum(n for name, n in per.items() if name not in COMPLETION and name not in NOT_PER_REQUEST)
    named = ", ".join(f"{name} {n:.2f}" for name, n in sorted(per.items()))
    total = f"; all segments sent (ss): {trips:.2f} per request" if trips else ""
    return Verdict("3", target, f"{admission:.2f} ({named}: after the backend answered {after:.2f}{total})", "= 1",
                   round(admission, 2) <= 1.0, admission)


def _workers(workers: dict[str, Any] | None) -> list[Verdict]:
    what = "--workers 2 / 1 worker, CPU per request, pinned (scripts/bench_workers.py)"
    if not workers:
        return [Verdict("4", what, "not measured (scripts/bench --full runs it)", f"≤ {WORKERS_LIMIT:.2f}x", None)]
    rows = workers["rows"]
    two, one = rows["2 workers"]["cpu_us"], rows["1 worker"]["cpu_us"]
    conn = workers["one_connection_two_over_one"]
    ratio = workers["two_over_one"]
    return [Verdict("4", what, f"{two:.0f} / {one:.0f} µs = {ratio:.2f}x (one connection, one worker busy: {conn:.2f}x)",
                    f"≤ {WORKERS_LIMIT:.2f}x", ratio <= WORKERS_LIMIT, ratio)]


def _idle(idle: dict[str, Any] | None) -> list[Verdict]:
    out: list[Verdict] = []
    if not idle:
        return [Verdict("6", "RSS per idle connection; loaded p99 with the idle crowd",
                        "not measured (scripts/bench --full runs it)", f"≤ {IDLE_KIB_LIMIT:.0f} KiB; ≤ {IDLE_P99_LIMIT}x", None)]
    for row in idle.get("rss", []):
        kib = row["kib_per_connection"]
        plain = "TLS" not in row["kind"]
        out.append(Verdict("6", f"RSS per idle {row['kind']} connection ({row['connections']} held)", f"{kib:.1f} KiB",
                           f"≤ {IDLE_KIB_LIMIT:.0f} KiB" if plain else "reported", kib <= IDLE_KIB_LIMIT if plain else None,
                           kib))
    load = idle.get("load") or {}
    for label, crowd in (load.get("crowds") or {}).items():
        ratio = crowd["p99_over_alone"]
        out.append(Verdict("6", f"loaded p99 with {label} / without ({load['rate']:.0f} req/s)",
                           f"{crowd['p99_ms']:.2f} / {load['alone_p99_ms']:.2f} ms = {ratio:.2f}x",
                           f"≤ {IDLE_P99_LIMIT:.1f}x", ratio <= IDLE_P99_LIMIT, ratio))
    return out


def render(rows: list[Verdict]) -> str:
    """The verdicts as a fixed-width table (what scripts/bench prints at the end of a run)."""
    def met(v: Verdict) -> str:
        return "-" if v.met is None else ("met" if v.met else "NOT met")

    width = max(len(v.target) for v in rows)
    lines = [f"issue 16 targets (this run)", f"{'':3}{'target':{width}}  {'limit':>11}  {'met':7}  measured",
             "-" * (width + 40)]
    lines += [f"{v.item:3}{v.target:{width}}  {v.limit:>11}  {met(v):7}  {v.measured}" for v in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: scripts/bench_targets.py results.json")
    print(render(verdicts(json.loads(Path(sys.argv[1]).read_text()))))
