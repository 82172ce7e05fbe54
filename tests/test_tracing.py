"""W3C trace context parsing, and OpenTelemetry staying out of the way when off."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from edge.observability.tracing import (
    TraceContext,
    TracingConfig,
    TracingConfigError,
    build_tracer,
    clean_tracestate,
    incoming_trace,
    new_trace,
    parse_traceparent,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{SPAN}-01"


@pytest.mark.parametrize(
    "value, expected",
    [
        (VALID, (TRACE, SPAN, 1)),
        (f"00-{TRACE}-{SPAN}-00", (TRACE, SPAN, 0)),
        (f" \t{VALID} ", (TRACE, SPAN, 1)),  # optional whitespace around the value
        (f"00-{TRACE}-{SPAN}-09", (TRACE, SPAN, 9)),  # unknown flag bits kept
        (f"cc-{TRACE}-{SPAN}-01", (TRACE, SPAN, 1)),  # a future version...
        (f"cc-{TRACE}-{SPAN}-01-what-the-future-holds", (TRACE, SPAN, 1)),  # ...may carry more fields
        (f"cc-{TRACE}-{SPAN}-01x", None),  # but only after a '-'
        (f"00-{TRACE}-{SPAN}-01-extra", None),  # version 00 is exactly 55 characters
        (f"ff-{TRACE}-{SPAN}-01", None),  # forbidden version
        (f"00-{TRACE.upper()}-{SPAN}-01", None),  # upper-case hex
        (f"00-{TRACE}-{SPAN.upper()}-01", None),
        (f"0A-{TRACE}-{SPAN}-01", None),
        (f"00-{'0' * 32}-{SPAN}-01", None),  # all-zero trace id
        (f"00-{TRACE}-{'0' * 16}-01", None),  # all-zero parent id
        (f"00-{TRACE[:-1]}-{SPAN}-01", None),
        (f"00-{TRACE}-{SPAN}0-01", None),
        (f"00-{TRACE}-{SPAN}-1", None),
        (f"00_{TRACE}_{SPAN}_01", None),
        (f"00-{TRACE[:-1]}g-{SPAN}-01", None),
        (f"{VALID}, {VALID}", None),  # two traceparent headers joined by the server
        ("", None),
    ],
)
def test_traceparent(value: str, expected) -> None:
    assert parse_traceparent(value) == expected


def test_incoming_trace_reemits_version_00_with_tracestate() -> None:
    ctx = incoming_trace({"traceparent": f"cc-{TRACE}-{SPAN}-01-x", "tracestate": "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE"})
    assert ctx == TraceContext(TRACE, SPAN, 1, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
    assert ctx.sampled
    assert ctx.metadata() == [("traceparent", f"00-{TRACE}-{SPAN}-01"), ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")]


def test_tracestate_never_travels_without_a_valid_traceparent() -> None:
    assert incoming_trace({}) is None
    assert incoming_trace({"tracestate": "rojo=1"}) is None
    assert incoming_trace({"traceparent": f"00-{'0' * 32}-{SPAN}-01", "tracestate": "rojo=1"}) is None
    assert incoming_trace({"traceparent": VALID}).metadata() == [("traceparent", VALID)]


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, None),
        ("", None),
        ("rojo=1,,  congo=2 ,", "rojo=1,congo=2"),  # empty members and whitespace dropped
        ("tenant@vendor=x", "tenant@vendor=x"),
        ("Rojo=1", None),  # keys are lower case
        ("rojo=1,congo", None),  # a malformed member drops the whole header
        ("rojo=a,b", None),
        ("rojo=has space inside", "rojo=has space inside"),
        ("rojo=trailing ", "rojo=trailing"),  # trailing OWS is the list's, not the value's
        ("rojo=bad=equals", None),
        (",".join(f"k{i}=v" for i in range(33)), None),  # over 32 members
    ],
)
def test_tracestate_cleaning(value, expected) -> None:
    assert clean_tracestate(value) == expected


def test_long_tracestate_is_trimmed_to_the_cap() -> None:
    big = "big=" + "x" * 200
    members = [f"k{i}={'v' * 40}" for i in range(12)]  # 12 x 44 chars + commas > 512
    out = clean_tracestate(",".join([members[0], big, *members[1:]]), 512)
    assert out is not None and len(out) <= 512
    assert big not in out  # over-128 members go first
    assert out.split(",") == members[: len(out.split(","))]  # then members from the end


def test_new_trace_is_a_valid_root() -> None:
    ctx = new_trace(sampled=True)
    assert parse_traceparent(ctx.traceparent) == (ctx.trace_id, ctx.parent_id, 1)


def test_disabled_tracing_imports_nothing_of_opentelemetry() -> None:
    script = (
        "import sys\n"
        "from edge.observability.tracing import TracingConfig, build_tracer, incoming_trace\n"
        "assert build_tracer(TracingConfig()) is None\n"
        "incoming_trace({'traceparent': '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'})\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_enabled_without_the_sdk_is_a_clear_config_error() -> None:
    if importlib.util.find_spec("opentelemetry.sdk") is not None:
        pytest.skip("opentelemetry-sdk is installed here")
    with pytest.raises(TracingConfigError, match="pip install opentelemetry-sdk"):
        build_tracer(TracingConfig(enabled=True))


def test_spans_for_a_request_and_its_call_continue_the_clients_trace() -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    exporter = InMemorySpanExporter()
    tracer = build_tracer(TracingConfig(enabled=True), exporter=exporter)
    incoming = incoming_trace({"traceparent": VALID, "tracestate": "rojo=1"})
    with tracer.request_span("/v1/shelves/{shelf}", incoming, {"http.request.method": "GET"}) as span:
        with tracer.call_span("edgedemo.library.v1.Library/GetShelf", {}) as metadata:
            pass
        tracer.record_outcome(span, 200, 0)
    tracer.shutdown()
    server, client = sorted(exporter.get_finished_spans(), key=lambda s: s.kind != SpanKind.SERVER)
    assert format(server.context.trace_id, "032x") == TRACE
    assert format(server.parent.span_id, "016x") == SPAN
    assert client.parent.span_id == server.context.span_id
    sent = dict(metadata)
    assert sent["traceparent"] == f"00-{TRACE}-{format(client.context.span_id, '016x')}-01"
    assert sent["tracestate"] == "rojo=1"
    assert server.attributes["http.response.status_code"] == 200
