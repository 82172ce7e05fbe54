"""Rich gRPC errors for the demo servicers.

Each helper aborts the call with a `google.rpc.Status` carried in the
`grpc-status-details-bin` trailer, the way real Google-style backends report
failures, so the gateway's error translation has details to pass through.
"""
from __future__ import annotations

from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

DETAILS_TRAILER = "grpc-status-details-bin"
ERROR_DOMAIN = "edgedemo.example.com"


def status_trailer(code: grpc.StatusCode, message: str, *details: Message) -> tuple[tuple[str, bytes], ...]:
    """The trailing metadata that carries `google.rpc.Status` for this failure."""
    status = status_pb2.Status(code=code.value[0], message=message)
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    return ((DETAILS_TRAILER, status.SerializeToString()),)


async def abort(
    context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str, *details: Message
) -> NoReturn:
    await context.abort(code, message, trailing_metadata=status_trailer(code, message, *details))
    raise AssertionError("context.abort returned")  # pragma: no cover - abort always raises


async def not_found(context: grpc.aio.ServicerContext, resource_type: str, resource_name: str) -> NoReturn:
    await abort(
        context,
        grpc.StatusCode.NOT_FOUND,
        f"{resource_type.rsplit('/', 1)[-1]} {resource_name!r} not found",
        error_details_pb2.ResourceInfo(
            resource_type=resource_type, resource_name=resource_name, description="no such resource"
        ),
    )


async def invalid_argument(context: grpc.aio.ServicerContext, *violations: tuple[str, str]) -> NoReturn:
    """`violations` are (field path, description) pairs."""
    await abort(
        context,
        grpc.StatusCode.INVALID_ARGUMENT,
        "; ".join(f"{field}: {description}" for field, description in violations),
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
                for field, description in violations
            ]
        ),
    )


async def already_exists(
    context: grpc.aio.ServicerContext, message: str, reason: str, **metadata: str
) -> NoReturn:
    await abort(
        context,
        grpc.StatusCode.ALREADY_EXISTS,
        message,
        error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata),
    )


async def failed_precondition(
    context: grpc.aio.ServicerContext, message: str, *, type: str, subject: str, description: str
) -> NoReturn:
    await abort(
        context,
        grpc.StatusCode.FAILED_PRECONDITION,
        message,
        error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(type=type, subject=subject, description=description)
            ]
        ),
    )


async def unauthenticated(context: grpc.aio.ServicerContext, message: str, reason: str) -> NoReturn:
    await abort(
        context,
        grpc.StatusCode.UNAUTHENTICATED,
        message,
        error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN),
    )
