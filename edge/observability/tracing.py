"""W3C trace context at the edge, and optional OpenTelemetry spans.

Without tracing the gateway is a pass-through participant: a valid incoming
`traceparent` (and its `tracestate`) is forwarded to the backend unchanged;
an invalid one is dropped, never forwarded half-parsed.

OpenTelemetry is optional and off by default. When off, nothing of it is
imported and the request path pays one `is None` check. When on, the
`opentelemetry-sdk` package must be installed (it is not a dependency of the
gateway); a span is made per request (SERVER) and per gRPC call (CLIENT), and
the backend receives the call span as its parent.
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span

TRACESTATE_MAX_CHARS = 512
TRACESTATE_MAX_MEMBERS = 32

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.DOTALL)
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_KEY = r"(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})"
_VALUE = r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
_MEMBER = re.compile(f"{_KEY}={_VALUE}")


@dataclass(frozen=True)
class TraceContext:
    """A validated incoming trace context (always re-emitted as version 00)."""

    trace_id: str
    parent_id: str
    flags: int
    tracestate: str | None = None

    @property
    def sampled(self) -> bool:
        return bool(self.flags & 0x01)

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.parent_id}-{self.flags:02x}"

    def metadata(self) -> list[tuple[str, str]]:
        """gRPC metadata for the backend call."""
        out = [("traceparent", self.traceparent)]
        if self.tracestate:
            out.append(("tracestate", self.tracestate))
        return out


def parse_traceparent(value: str) -> tuple[str, str, int] | None:
    """(trace id, parent id, flags), or None if `value` is not a valid traceparent.

    Version 00 must be exactly 55 characters; a higher version may carry more
    fields after a '-', which are ignored (W3C forward compatibility); 'ff',
    upper-case hex and all-zero ids are invalid."""
    m = _TRACEPARENT.fullmatch(value.strip(" \t"))
    if m is None:
        return None
    version, trace_id, parent_id, flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id, parent_id, int(flags, 16)


def clean_tracestate(value: str | None, max_chars: int = TRACESTATE_MAX_CHARS) -> str | None:
    """A tracestate fit to forward, or None. Malformed or over 32 members: dropped
    whole (W3C). Over `max_chars`: members over 128 characters go first, then
    members from the end, until it fits."""
    if not value:
        return None
    members = [m.strip(" \t") for m in value.split(",")]
    members = [m for m in members if m]
    if not members or len(members) > TRACESTATE_MAX_MEMBERS:
        return None
    if not all(_MEMBER.fullmatch(m) for m in members):
        return None
    if len(",".join(members)) > max_chars:
        members = [m for m in members if len(m) <= 128]
        while members and len(",".join(members)) > max_chars:
            members.pop()
    return ",".join(members) or None


def incoming_trace(headers: Mapping[str, str], *, max_tracestate: int = TRACESTATE_MAX_CHARS) -> TraceContext | None:
    """The request's trace context from lower-cased headers, or None (absent or
    invalid; tracestate is never forwarded without a valid traceparent)."""
    raw = headers.get("traceparent")
    if raw is None:
        return None
    parsed = parse_traceparent(raw)
    if parsed is None:
        return None
    return TraceContext(*parsed, clean_tracestate(headers.get("tracestate"), max_tracestate))


def new_trace(sampled: bool = False) -> TraceContext:
    """A fresh trace root, for callers that want every backend call traced."""
    return TraceContext(os.urandom(16).hex(), os.urandom(8).hex(), 0x01 if sampled else 0x00)


# --- OpenTelemetry (optional) ------------------------------------------------------


class TracingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    service_name: str = "edge-gateway"
    exporter: Literal["otlp", "console", "none"] = Field(
        "otlp",
        description="otlp needs opentelemetry-exporter-otlp (configured by OTEL_EXPORTER_OTLP_* env vars); "
        "none uses the process's global TracerProvider as configured elsewhere",
    )


class TracingConfigError(Exception):
    """Tracing is enabled but cannot work; the message says what to install."""


class Tracer:
    """Spans for a request and its backend call; built only when tracing is enabled."""

    def __init__(self, tracer: Any, provider: Any) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._tracer = tracer
        self._provider = provider
        self._propagator = TraceContextTextMapPropagator()
        self._kinds = trace.SpanKind
        self._status = trace.Status
        self._error = trace.StatusCode.ERROR

    @contextmanager
    def request_span(self, name: str, incoming: TraceContext | None, attributes: Mapping[str, Any]) -> Iterator["Span"]:
        """The SERVER span of one request, child of the client's trace when it sent one.
        `name` should be the route template (or 'unmatched'), never the raw path."""
        context = None
        if incoming is not None:
            carrier = dict(incoming.metadata())
            context = self._propagator.extract(carrier)
        with self._tracer.start_as_current_span(
            name, context=context, kind=self._kinds.SERVER, attributes=dict(attributes)
        ) as span:
            yield span

    @contextmanager
    def call_span(self, full_method: str, attributes: Mapping[str, Any]) -> Iterator[list[tuple[str, str]]]:
        """A CLIENT span around one gRPC call; yields the traceparent/tracestate
        metadata that makes the backend's spans its children."""
        service, _, method = full_method.partition("/")
        attrs = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method, **attributes}
        with self._tracer.start_as_current_span(full_method, kind=self._kinds.CLIENT, attributes=attrs):
            carrier: dict[str, str] = {}
            self._propagator.inject(carrier)
            yield list(carrier.items())

    def record_outcome(self, span: "Span", http_status: int, grpc_code: int | None) -> None:
        span.set_attribute("http.response.status_code", http_status)
        if grpc_code is not None:
            span.set_attribute("rpc.grpc.status_code", grpc_code)
        if http_status >= 500:
            span.set_status(self._status(self._error))

    def shutdown(self) -> None:
        """Flush and stop exporting (only a provider this module built)."""
        if self._provider is not None:
            self._provider.shutdown()


def build_tracer(config: TracingConfig, *, exporter: "SpanExporter | None" = None) -> Tracer | None:
    """None when tracing is off (and then nothing of OpenTelemetry is imported).
    `exporter` overrides the configured one (tests pass an in-memory exporter)."""
    if not config.enabled:
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
    except ImportError as exc:
        raise TracingConfigError(
            f"tracing.enabled is true but OpenTelemetry is not installed ({exc.name} missing): "
            "pip install opentelemetry-sdk, or set tracing.enabled: false"
        ) from None
    if exporter is None and config.exporter == "none":
        return Tracer(trace.get_tracer("edge"), None)
    provider = TracerProvider(resource=Resource.create({"service.name": config.service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif config.exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise TracingConfigError(
                "tracing.exporter is 'otlp' but opentelemetry-exporter-otlp is not installed: "
                "pip install opentelemetry-exporter-otlp, or choose exporter: console or none"
            ) from None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return Tracer(provider.get_tracer("edge"), provider)
