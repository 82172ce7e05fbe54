"""What the rate limiter decided about one request, as a plain value.

The limiter produces a `RateLimitDecision`; how it reaches the client is the
protocol's business: REST renders it as the `RateLimit-Policy`, `RateLimit` and
`Retry-After` headers (`headers.rate_limit_headers`) and a refusal as a 429 or
503 error (`errors.refusal`); a gRPC adapter can render the same value as
trailers. Nothing here knows about HTTP, so the limiter does not either.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AppliedPolicy:
    """One policy the request was counted against, and where its counter stands."""
    name: str
    quota: int
    window: int          # seconds (rounded up)
    remaining: int
    reset_seconds: int   # seconds (rounded up)


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    allowed: bool
    policies_applied: list[AppliedPolicy]
    retry_after: int | None = None
    store_status: str = "ok"   # ok | lease | degraded | open | unavailable | exempt | none
    refused_by: str | None = None
    message: str | None = None
