"""gRPC status -> HTTP status and the JSON error body every error shares.

The body is the proto3 JSON form of `google.rpc.Status` (`code`, `message`,
`details`), the same shape grpc-gateway and Google APIs answer with, so a
client parses one error format whether the gateway or a backend failed.
"""
from __future__ import annotations

import base64
import logging
from typing import Any, Iterable

import grpc
from google.protobuf import descriptor_pool, json_format
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2  # noqa: F401  registers google.rpc.* detail types
from google.rpc import status_pb2

log = logging.getLogger(__name__)

STATUS_DETAILS_KEY = "grpc-status-details-bin"


# The HTTP status each gRPC status answers with: the standard google.rpc.Code
# mapping (google/rpc/code.proto names one per code; grpc-gateway and
# google-api-core use the same). Written out as data so it can be read and
# reviewed here; tests/test_status_table.py holds it against google-api-core's
# exception classes code by code.
#
# Where google-api-core has no HTTP code we still need one, so three rows go
# beyond it (the test asserts exactly these three):
#   OK         api-core has no exception class for success: 200.
#   UNKNOWN    api-core's `Unknown` carries no HTTP code: 500, as code.proto says.
#   DATA_LOSS  api-core's `DataLoss` carries no HTTP code: 500, as code.proto says.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,                   # beyond api-core (see above)
    grpc.StatusCode.CANCELLED: 499,            # Client Closed Request
    grpc.StatusCode.UNKNOWN: 500,              # beyond api-core (see above)
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,            # beyond api-core (see above)
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
CODE_BY_NUMBER: dict[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}


def http_status_for(code: grpc.StatusCode) -> int:
    return HTTP_STATUS.get(code, 500)


def error_body(code: grpc.StatusCode, message: str, details: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    return {"code": code.value[0], "message": message, "details": list(details)}


def decode_status_details(
    trailing_metadata: Iterable[tuple[str, Any]] | None,
    pool: descriptor_pool.DescriptorPool | None = None,
) -> list[dict[str, Any]]:
    """JSON forms of the `google.rpc.Status` details a backend put in its trailer.

    Detail types are resolved from the default pool (google.rpc.* error
    details) and then from the backend's own pool; a type neither knows is
    passed through as `{"@type", "value"}` rather than dropped.
    """
    raw = None
    for key, value in trailing_metadata or ():
        if key == STATUS_DETAILS_KEY:
            raw = value
            break
    if raw is None:
        return []
    status = status_pb2.Status()
    try:
        status.ParseFromString(raw if isinstance(raw, bytes) else bytes(raw, "latin-1"))
    except DecodeError:
        log.warning("backend sent an undecodable %s trailer", STATUS_DETAILS_KEY)
        return []
    return [_detail_to_json(any_msg, pool) for any_msg in status.details]


def _detail_to_json(any_msg: Any, pool: descriptor_pool.DescriptorPool | None) -> dict[str, Any]:
    for candidate in (None, pool):
        try:
            return json_format.MessageToDict(any_msg, descriptor_pool=candidate)
        except (TypeError, KeyError, json_format.Error):
            continue
    return {"@type": any_msg.type_url, "value": base64.b64encode(any_msg.value).decode("ascii")}
