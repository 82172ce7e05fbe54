"""scripts/bench_targets.py judges issue 16's targets from a results document as scripts/bench writes it.

No load is run here: the documents are built by hand, so each verdict can be checked against
figures whose answer is known (a ratio just under and just over its limit, a row left out).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scripts.bench_targets import render, verdicts

ROOT = Path(__file__).resolve().parent.parent


def row(cpu: float, **more: float) -> dict:
    out = {"cpu_us": {"median": cpu, "min": cpu, "max": cpu}}
    for key, value in more.items():
        out[key] = {"median": value, "min": value, "max": value}
    return out


def document(**extra: object) -> dict:
    results = {
        "get.envoy-edge": row(200), "post.envoy-edge": row(250),
        "get.on": row(319), "post.on": row(401),  # 1.595x met, 1.604x not met
        "get.off": row(250), "post.off": row(300),
        "get.floor": row(220), "post.floor": row(280),  # 1.14x not met, 1.07x met
        "get.on-redis": row(390), "post.on-redis": row(470, redis_trips=2.07),
        "large.get-off": row(900, cpu_us_per_mib=30000), "large.get-envoy": row(300, cpu_us_per_mib=10000),
        "get.off-h2": row(500), "get.envoy-h2": row(200),
    }
    return {"results": results, **extra}


def by_target(rows, words: str):
    found = [v for v in rows if v.target == words]
    assert len(found) == 1, [v.target for v in rows]
    return found[0]


def test_ratio_targets_meet_at_the_limit_and_fail_past_it():
    rows = verdicts(document())
    assert by_target(rows, "GET all on (memory) / Envoy edge").met is True
    post = by_target(rows, "POST all on (memory) / Envoy edge")
    assert post.met is False and abs(post.ratio - 401 / 250) < 1e-9
    assert "401 / 250 µs = 1.60x" in post.measured
    assert by_target(rows, "GET offloads off / bare passthrough").met is False
    assert by_target(rows, "POST offloads off / bare passthrough").met is True
    assert by_target(rows, "~1 MiB reply: CPU per MiB / Envoy's").met is True  # exactly 3.00x
    assert "30.00 / 10.00 ms/MiB" in by_target(rows, "~1 MiB reply: CPU per MiB / Envoy's").measured


def test_rows_left_out_are_not_judged():
    rows = verdicts(document())
    body = by_target(rows, "~256 KiB body: CPU per MiB / Envoy's")
    assert body.met is None and "not measured" in body.measured
    workers = [v for v in rows if v.item == "4"]
    assert len(workers) == 1 and workers[0].met is None
    h2 = by_target(rows, "POST HTTP/2 (h2c) offloads off / Envoy h2c")
    assert h2.met is None and h2.measured == "not measured"
    assert by_target(rows, "GET HTTP/2 (h2c) offloads off / Envoy h2c").ratio == 2.5


def test_redis_admission_counts_commands_before_the_backend_call():
    one = verdicts(document(redis_commands={"post.on-redis": {"requests": 50, "per_request": {
        "admit": 1.0, "idem_complete": 1.0, "ping": 0.04}}}))
    verdict = by_target(one, "Redis round trips before the backend call, keyed POST")
    assert verdict.met is True and verdict.ratio == 1.0
    assert "after the backend answered 1.00" in verdict.measured and "2.07" in verdict.measured
    three = verdicts(document(redis_commands={"post.on-redis": {"requests": 50, "per_request": {
        "ratelimit": 1.0, "idem_reserve": 1.0, "idem_complete": 1.0}}}))
    assert by_target(three, "Redis round trips before the backend call, keyed POST").met is False
    unknown = verdicts(document())
    assert by_target(unknown, "Redis round trips before the backend call, keyed POST").met is None


def test_workers_and_idle_connections():
    rows = verdicts(document(
        workers={"rows": {"2 workers": {"cpu_us": 330}, "1 worker": {"cpu_us": 300}}, "two_over_one": 1.1,
                 "one_connection_two_over_one": 1.02},
        idle={"rss": [{"kind": "HTTP/1.1", "connections": 10000, "kib_per_connection": 9.9},
                      {"kind": "h2c", "connections": 10000, "kib_per_connection": 10.1},
                      {"kind": "HTTP/2 over TLS", "connections": 10000, "kib_per_connection": 52.0}],
              "load": {"rate": 1500, "alone_p99_ms": 10.0,
                       "crowds": {"10000 idle HTTP/1.1": {"p99_ms": 15.5, "p99_over_alone": 1.55}}}}))
    assert [v.met for v in rows if v.item == "4"] == [True]
    idle = [v for v in rows if v.item == "6"]
    assert [v.met for v in idle] == [True, False, None, False]
    assert "15.50 / 10.00 ms = 1.55x" in idle[-1].measured


def test_rendered_from_a_saved_document(tmp_path):
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps(document()))
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_targets.py"), str(saved)],
                         capture_output=True, text=True, check=True).stdout
    assert out == render(verdicts(document())) + "\n"
    assert "NOT met" in out and " met " in out
