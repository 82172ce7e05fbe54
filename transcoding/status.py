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
from google.api_core import exceptions as api_exceptions
from google.protobuf import descriptor_pool, json_format
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2  # noqa: F401  registers google.rpc.* detail types
from google.rpc import status_pb2

log = logging.getLogger(__name__)

STATUS_DETAILS_KEY = "grpc-status-details-bin"


def _build_http_codes() -> dict[grpc.StatusCode, int]:
    codes: dict[grpc.StatusCode, int] = {}
    for code in grpc.StatusCode:
        if code is grpc.StatusCode.OK:
            codes[code] = 200
            continue
        # google-api-core's table is the standard google.rpc.Code mapping; it
        # leaves UNKNOWN and DATA_LOSS without an HTTP code: both are 500.
        http = getattr(api_exceptions.exception_class_for_grpc_status(code), "code", None)
        codes[code] = http if isinstance(http, int) else 500
    return codes


HTTP_STATUS: dict[grpc.StatusCode, int] = _build_http_codes()
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
