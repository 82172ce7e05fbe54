"""Gateway metrics: exact counts in one process, and summed over worker processes."""
from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from edge.observability import metrics as m

ROUTE = "/v1/shelves/{shelf}/books"
METHOD = "edgedemo.library.v1.Library/ListBooks"


def samples(text: bytes) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: bytes, metric: str, /, **labels: str) -> float | None:
    return samples(text).get((metric, frozenset(labels.items())))


@pytest.fixture
def single(monkeypatch) -> m.Metrics:
    monkeypatch.delenv(m.MULTIPROC_ENV, raising=False)
    return m.Metrics()


def test_known_sequence_counts_exactly(single: m.Metrics) -> None:
    for _ in range(3):
        single.observe_request(ROUTE, METHOD, 200, 0, 0.020, 0.016, backend="library")
    single.observe_request(ROUTE, METHOD, 404, 5, 0.004, 0.003, backend="library")
    single.observe_request(None, None, 404, None, 0.0002)
    single.auth_failure("expired")
    single.auth_failure("expired")
    single.ratelimit_decision("per-user", "deny")
    single.idempotency_outcome("replayed")
    single.batch(7)
    single.redis_error("ratelimit")
    single.set_breaker_state("redis", "open")
    single.descriptor_reload("library", ok=True)
    single.descriptor_reload("library", ok=False)
    with single.inflight():
        inside, _ = single.render()

    text, content_type = single.render()
    assert content_type.startswith("text/plain")
    assert value(inside, "edge_inflight_requests") == 1
    assert value(text, "edge_inflight_requests") == 0
    key = dict(route=ROUTE, method=METHOD)
    assert value(text, "edge_requests_total", **key, http_status="200", grpc_status="OK") == 3
    assert value(text, "edge_requests_total", **key, http_status="404", grpc_status="NOT_FOUND") == 1
    assert value(text, "edge_requests_total", route="unmatched", method="-", http_status="404", grpc_status="-") == 1
    assert value(text, "edge_request_duration_seconds_count", route=ROUTE) == 4
    assert value(text, "edge_request_duration_seconds_sum", route=ROUTE) == pytest.approx(0.064)
    # Overhead is total minus backend: 3 x 4 ms + 1 ms.
    assert value(text, "edge_gateway_overhead_seconds_sum", route=ROUTE) == pytest.approx(0.013)
    assert value(text, "edge_gateway_overhead_seconds_bucket", route=ROUTE, le="0.005") == 4
    assert value(text, "edge_gateway_overhead_seconds_bucket", route=ROUTE, le="0.0025") == 1
    assert value(text, "edge_backend_duration_seconds_count", backend="library", method=METHOD) == 4
    assert value(text, "edge_auth_failures_total", reason="expired") == 2
    assert value(text, "edge_ratelimit_decisions_total", policy="per-user", decision="deny") == 1
    assert value(text, "edge_idempotency_outcomes_total", outcome="replayed") == 1
    assert value(text, "edge_batch_size_count") == 1 and value(text, "edge_batch_size_sum") == 7
    assert value(text, "edge_redis_errors_total", operation="ratelimit") == 1
    assert value(text, "edge_breaker_state", name="redis") == 2
    assert value(text, "edge_descriptor_reloads_total", backend="library", result="success") == 1
    assert value(text, "edge_descriptor_reloads_total", backend="library", result="failure") == 1


def test_histogram_buckets_span_half_a_millisecond_to_ten_seconds(single: m.Metrics) -> None:
    single.observe_request(ROUTE, METHOD, 200, 0, 30.0, 29.0, backend="library")
    text, _ = single.render()
    les = {dict(k[1])["le"] for k in samples(text) if k[0] == "edge_request_duration_seconds_bucket"}
    assert {"0.0005", "10.0", "+Inf"} <= les
    assert value(text, "edge_request_duration_seconds_bucket", route=ROUTE, le="10.0") == 0
    assert value(text, "edge_request_duration_seconds_bucket", route=ROUTE, le="+Inf") == 1


def test_instances_do_not_share_or_touch_the_global_registry(monkeypatch) -> None:
    from prometheus_client import REGISTRY

    monkeypatch.delenv(m.MULTIPROC_ENV, raising=False)
    a, b = m.Metrics(), m.Metrics()
    a.auth_failure("missing")
    assert value(a.render()[0], "edge_auth_failures_total", reason="missing") == 1
    assert value(b.render()[0], "edge_auth_failures_total", reason="missing") is None
    assert REGISTRY.get_sample_value("edge_auth_failures_total", {"reason": "missing"}) is None


def test_request_labels_are_capped(monkeypatch) -> None:
    monkeypatch.delenv(m.MULTIPROC_ENV, raising=False)
    metrics = m.Metrics(registry=CollectorRegistry(), max_label_values=2)
    for route in ("/a", "/b", "/c", "/d", "/a"):
        metrics.observe_request(route, "p.S/M", 200, 0, 0.001)
    text, _ = metrics.render()
    routes = {dict(k[1])["route"]: v for k, v in samples(text).items() if k[0] == "edge_requests_total"}
    assert routes == {"/a": 2, "/b": 1, "other": 2}


# --- several worker processes -------------------------------------------------

N = 25


def _worker(n: int, leave_inflight: bool, breaker: str) -> None:
    """Runs in a spawned process whose environment carries PROMETHEUS_MULTIPROC_DIR."""
    metrics = m.get_metrics()
    for i in range(n):
        metrics.observe_request(ROUTE, METHOD, 200, 0, 0.010, 0.008, backend="library")
    metrics.batch(3)
    metrics.set_breaker_state("redis", breaker)  # type: ignore[arg-type]
    if leave_inflight:
        metrics.inflight_requests.inc()


def _run_workers(args: list[tuple]) -> list[int]:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=a) for a in args]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    return [p.pid for p in procs]


def test_worker_processes_add_up(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(m.MULTIPROC_ENV, str(tmp_path))
    pids = _run_workers([(N, True, "closed"), (N, True, "open")])
    # Each worker wrote its own file per kind of value it touched.
    kinds = ("counter", "gauge_livemax", "gauge_livesum", "histogram")
    assert sorted(f.name for f in tmp_path.glob("*.db")) == sorted(f"{k}_{pid}.db" for k in kinds for pid in pids)

    text, _ = m.render_metrics()
    key = dict(route=ROUTE, method=METHOD)
    assert value(text, "edge_requests_total", **key, http_status="200", grpc_status="OK") == 2 * N
    assert value(text, "edge_request_duration_seconds_count", route=ROUTE) == 2 * N
    assert value(text, "edge_request_duration_seconds_bucket", route=ROUTE, le="0.01") == 2 * N
    assert value(text, "edge_request_duration_seconds_bucket", route=ROUTE, le="0.005") == 0
    assert value(text, "edge_backend_duration_seconds_count", backend="library", method=METHOD) == 2 * N
    assert value(text, "edge_batch_size_count") == 2
    # Live gauges: in-flight sums over live workers, the breaker shows the worst one.
    assert value(text, "edge_inflight_requests") == 2
    assert value(text, "edge_breaker_state", name="redis") == 2

    m.mark_process_dead(pids[1])
    text, _ = m.render_metrics()
    assert value(text, "edge_inflight_requests") == 1
    assert value(text, "edge_breaker_state", name="redis") == 0
    assert value(text, "edge_requests_total", **key, http_status="200", grpc_status="OK") == 2 * N


def test_env_set_after_import_still_uses_the_shared_directory(tmp_path: Path) -> None:
    """A worker that imported prometheus-client before the server set the variable."""
    script = textwrap.dedent(
        f"""
        import os
        os.environ.pop({m.MULTIPROC_ENV!r}, None)
        import prometheus_client.values
        from edge.observability import metrics
        assert not getattr(prometheus_client.values.ValueClass, "_multiprocess", False)
        os.environ[{m.MULTIPROC_ENV!r}] = {str(tmp_path)!r}
        metrics.get_metrics().auth_failure("expired")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != m.MULTIPROC_ENV}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=60)
    os.environ[m.MULTIPROC_ENV] = str(tmp_path)
    try:
        text, _ = m.render_metrics()
    finally:
        del os.environ[m.MULTIPROC_ENV]
    assert value(text, "edge_auth_failures_total", reason="expired") == 1


def test_the_cached_pid_follows_a_fork() -> None:
    """prometheus-client asks for the pid on every write to pick the right file; the gateway
    answers from a cache, which a forked child must not inherit."""
    assert m._cached_pid() == os.getpid()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os._exit(0 if m._cached_pid() == os.getpid() else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
