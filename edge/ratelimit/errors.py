"""What a refused request gets: 429 RESOURCE_EXHAUSTED, or 503 when a
fail-closed policy cannot reach its store (`refusal` picks one for a decision)."""
from __future__ import annotations

from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2

from ..state.errors import StatusError, detail
from .decision import RateLimitDecision
from .headers import rate_limit_headers


class RateLimited(StatusError):
    http_status = 429
    grpc_code = code_pb2.RESOURCE_EXHAUSTED

    def __init__(self, message: str, *, policy: str, retry_after: int | None, headers: dict[str, str]) -> None:
        details = [detail(error_details_pb2.QuotaFailure(violations=[
            error_details_pb2.QuotaFailure.Violation(subject=f"rate-limit-policy:{policy}", description=message)]))]
        if retry_after is not None:
            details.insert(0, detail(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=retry_after))))
        super().__init__(message, headers=headers, details=details)
        self.policy = policy
        self.retry_after = retry_after


class RateLimitUnavailable(StatusError):
    http_status = 503
    grpc_code = code_pb2.UNAVAILABLE

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, details=[
            detail(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=retry_after)))])


def refusal(decision: RateLimitDecision) -> StatusError | None:
    """The error to answer a refused decision with (None when allowed): 503 when a
    fail-closed policy met a store outage, else 429 carrying the decision's headers."""
    if decision.allowed:
        return None
    if decision.store_status == "unavailable":
        return RateLimitUnavailable(decision.message or "rate limit store unavailable",
                                    retry_after=decision.retry_after or 1)
    return RateLimited(decision.message or "rate limit exceeded", policy=decision.refused_by or "",
                       retry_after=decision.retry_after, headers=dict(rate_limit_headers(decision)))
