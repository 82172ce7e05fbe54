"""Client-facing idempotency errors (HTTP status + google.rpc code + details)."""
from __future__ import annotations

from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2

from ..state.errors import StatusError, detail

DOMAIN = "edge.gateway"


def _info(reason: str) -> dict:
    return detail(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN))


def _retry(seconds: int) -> dict:
    return detail(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds)))


class IdempotencyError(StatusError):
    """Base of the errors below."""


class IdempotencyKeyInvalid(IdempotencyError):
    http_status = 400
    grpc_code = code_pb2.INVALID_ARGUMENT

    def __init__(self, message: str, header: str = "Idempotency-Key") -> None:
        super().__init__(message, details=[detail(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=header, description=message)]))])


class IdempotencyKeyRequired(IdempotencyKeyInvalid):
    pass


class IdempotencyKeyMismatch(IdempotencyError):
    http_status = 422
    grpc_code = code_pb2.INVALID_ARGUMENT

    def __init__(self, header: str = "Idempotency-Key") -> None:
        super().__init__(f"this {header} was already used for a different request (method, path, query, body or "
                         f"fingerprinted headers differ); use a new key for a new request",
                         details=[_info("IDEMPOTENCY_KEY_REUSED")])


class IdempotencyInFlight(IdempotencyError):
    http_status = 409
    grpc_code = code_pb2.ABORTED

    def __init__(self, retry_after: int, header: str = "Idempotency-Key") -> None:
        super().__init__(f"a request with this {header} is still being processed; retry in {retry_after}s to get "
                         f"its response", headers={"Retry-After": str(retry_after)},
                         details=[_retry(retry_after), _info("IDEMPOTENCY_KEY_IN_FLIGHT")])
        self.retry_after = retry_after


class IdempotencyUnavailable(IdempotencyError):
    http_status = 503
    grpc_code = code_pb2.UNAVAILABLE

    def __init__(self, retry_after: int = 1, *, recovering: bool = False) -> None:
        if recovering:
            message = ("the idempotency store restarted and may have lost the keys of requests still running; "
                       f"keyed requests wait until those have ended; the request was not run (retry in {retry_after}s)")
            reason = "IDEMPOTENCY_STORE_RECOVERING"
        else:
            message = "idempotency store unavailable; the request was not run (it would risk running twice)"
            reason = "IDEMPOTENCY_STORE_UNAVAILABLE"
        super().__init__(message, headers={"Retry-After": str(retry_after)},
                         details=[_retry(retry_after), _info(reason)])
        self.retry_after = retry_after
