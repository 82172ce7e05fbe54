"""Client errors raised while mapping an HTTP request onto a gRPC call.

Each carries the HTTP status to answer with and the gRPC code to put in the
google.rpc.Status-shaped JSON body, so the web layer never has to guess.
"""
from __future__ import annotations

from typing import Any, ClassVar

import grpc
from google.protobuf import any_pb2, json_format
from google.rpc import error_details_pb2


class TranscodeError(Exception):
    """A request the gateway refuses before any backend sees it."""

    http_status: ClassVar[int] = 400
    grpc_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_status_dict(self) -> dict[str, Any]:
        """The JSON error body: google.rpc.Status with a BadRequest detail
        naming the offending field when there is one."""
        details: list[dict[str, Any]] = []
        if self.field is not None:
            detail = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=self.field, description=self.message)
                ]
            )
            packed = any_pb2.Any()
            packed.Pack(detail)
            details.append(json_format.MessageToDict(packed))
        return {"code": self.grpc_code.value[0], "message": self.message, "details": details}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, field={self.field!r})"


class BadRequest(TranscodeError):
    http_status = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class PayloadTooLarge(TranscodeError):
    http_status = 413
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class UnsupportedMediaType(TranscodeError):
    http_status = 415
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class RouteNotFound(TranscodeError):
    http_status = 404
    grpc_code = grpc.StatusCode.NOT_FOUND


class MethodNotAllowed(TranscodeError):
    """The path exists under other HTTP methods; `allowed` feeds the Allow header."""

    http_status = 405
    grpc_code = grpc.StatusCode.UNIMPLEMENTED

    def __init__(self, message: str, allowed: list[str], *, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.allowed = sorted(set(allowed))


class NotImplementedByGateway(TranscodeError):
    http_status = 501
    grpc_code = grpc.StatusCode.UNIMPLEMENTED


__all__ = [
    "BadRequest",
    "MethodNotAllowed",
    "NotImplementedByGateway",
    "PayloadTooLarge",
    "RouteNotFound",
    "TranscodeError",
    "UnsupportedMediaType",
]
