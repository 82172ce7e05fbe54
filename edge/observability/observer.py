"""Turning what happened to one call (`CallRecord`) into its access-log line
and its metrics, in one place, for single requests and batch items alike.

The engines (auth, limits, idempotency) do not know about metrics: they
report into the record, and the observer counts from there.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from .accesslog import AccessLogConfig, AccessLogEntry, AccessLogger, AuthInfo, RateLimitInfo
from .metrics import Metrics, get_metrics

if TYPE_CHECKING:
    from ..core.record import CallRecord


class LoggedCall(Protocol):
    """What a line says about the request itself (any adapter's call has these)."""

    request_id: str
    client_ip: str | None
    http_method: str
    query_string: bytes
    headers: Mapping[str, str]
    body: bytes


class RequestObserver:
    def __init__(self, access_log: AccessLogConfig, metrics: Metrics | None = None) -> None:
        self.metrics = metrics or get_metrics()
        self.access = AccessLogger(access_log)

    def close(self) -> None:
        self.access.close()

    def finish(
        self,
        call: LoggedCall,
        record: CallRecord,
        *,
        http_status: int,
        bytes_out: int,
        total_s: float,
        path: str,
        batch_id: str | None = None,
        http_version: str = "1.1",
    ) -> None:
        metrics = self.metrics
        grpc_code = record.grpc_code
        if batch_id is None:
            metrics.observe_request(
                record.route, record.grpc_method, http_status, grpc_code, total_s,
                record.backend_seconds if record.called else None,
                backend=record.backend if record.called else None,
            )
            metrics.protocol_request(record.protocol)
        elif record.called and record.backend and record.grpc_method:
            metrics.observe_backend(record.backend, record.grpc_method, record.backend_seconds)
        if record.auth_decision == "denied":
            metrics.auth_failure(record.auth_reason or "unknown")
        limited = record.ratelimit_decision == "limited"
        for applied in record.ratelimit:
            metrics.ratelimit_decision(applied["policy"], "deny" if limited and applied["remaining"] <= 0 else "allow")
        if record.idempotency:
            metrics.idempotency_outcome(record.idempotency)

        entry = AccessLogEntry(
            request_id=call.request_id,
            batch_id=batch_id,
            client_ip=call.client_ip,
            principal=record.principal,
            http_method=call.http_method,
            http_version=http_version,
            protocol=record.protocol,
            path=path,
            route=record.route,
            grpc_method=record.grpc_method,
            http_status=http_status,
            grpc_status=grpc_code,
            bytes_in=len(call.body),
            bytes_out=bytes_out,
            user_agent=call.headers.get("user-agent"),
        )
        entry.set_timings(total_s, record.backend_seconds if record.called else None)
        if record.auth_decision:
            entry.auth = AuthInfo(_AUTH_DECISIONS.get(record.auth_decision, record.auth_decision), record.auth_reason)
        if record.ratelimit:
            tightest = min(record.ratelimit, key=lambda p: p["remaining"])
            entry.ratelimit = RateLimitInfo(
                tightest["policy"], tightest["limit"], tightest["remaining"], "deny" if limited else "allow"
            )
        if record.idempotency:
            entry.idempotency = record.idempotency
        self.access.log(entry, query=call.query_string, headers=call.headers, body=call.body)


_AUTH_DECISIONS = {"allowed": "allow", "denied": "deny", "anonymous": "anonymous"}

