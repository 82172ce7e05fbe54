"""What happened to one call on its way, for the access log and metrics.

The stages write into it (identity, limits, idempotency, the backend call), the
adapter adds what its protocol answered (`http_status`, `streamed_bytes`), and
edge/observability/ reads it once the answer is out.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import grpc


@dataclass
class CallRecord:
    """What the access log and metrics report about one call."""

    route: str | None = None
    grpc_method: str | None = None
    backend: str | None = None
    principal: str | None = None
    auth_decision: str | None = None
    auth_reason: str | None = None
    ratelimit: list[dict[str, str | int]] = field(default_factory=list)
    ratelimit_decision: str | None = None
    idempotency: str | None = None
    called: bool = False  # the backend was called (not refused or replayed by the gateway)
    backend_seconds: float = 0.0
    grpc_code: grpc.StatusCode | None = None  # the code the answer carried (None: no call, no refusal)
    http_status: int | None = None
    streamed_bytes: int = 0
    protocol: str = "rest"  # the adapter that served the call (the access log's `protocol`)
