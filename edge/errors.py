"""Every refusal, whichever layer raised it, as one HTTP answer.

Transcoding, auth, rate limiting and idempotency each raise their own error
type (each carrying its HTTP status); here they all become the same
`google.rpc.Status` JSON body, plus the headers their standards ask for
(`WWW-Authenticate`, `Retry-After`, `Allow`, `RateLimit`).
"""
from __future__ import annotations

import logging

import grpc
from google.rpc import code_pb2

from transcoding import errors as transcoding_errors
from transcoding.status import error_body

from .auth.errors import AuthError
from .http import JSON_CONTENT_TYPE, ClientDisconnected, RawHeaders, json_bytes, raw_headers
from .state.errors import StatusError

log = logging.getLogger("edge.errors")

_AUTH_CODES = {401: code_pb2.UNAUTHENTICATED, 403: code_pb2.PERMISSION_DENIED, 431: code_pb2.INVALID_ARGUMENT}

# The exceptions that are answers, not failures: never logged with a traceback.
EXPECTED = (transcoding_errors.TranscodeError, AuthError, StatusError, ClientDisconnected)


def error_parts(exc: BaseException, request_id: str, realm: str = "edge") -> tuple[int, RawHeaders, bytes]:
    """Status, headers and JSON body for `exc`; anything unexpected is a 500 naming the request id."""
    headers: RawHeaders = [(b"content-type", JSON_CONTENT_TYPE)]
    if isinstance(exc, transcoding_errors.TranscodeError):
        if isinstance(exc, transcoding_errors.MethodNotAllowed):
            headers.append((b"allow", ", ".join(exc.allowed).encode()))
        return exc.http_status, headers, json_bytes(exc.to_status_dict())
    if isinstance(exc, AuthError):
        headers.append((b"www-authenticate", exc.www_authenticate(realm).encode("latin-1")))
        code = _AUTH_CODES.get(exc.status, code_pb2.INVALID_ARGUMENT)
        return exc.status, headers, json_bytes({"code": code, "message": exc.description, "details": []})
    if isinstance(exc, StatusError):
        headers.extend(raw_headers(exc.headers.items()))
        return exc.http_status, headers, json_bytes(exc.body())
    log.error("unexpected failure serving request %s", request_id, exc_info=exc)
    body = error_body(grpc.StatusCode.INTERNAL, f"internal error; quote request id {request_id} when reporting it")
    return 500, headers, json_bytes(body)


def grpc_code_of(exc: BaseException) -> grpc.StatusCode:
    """The gRPC code an error answer carries, for logs and metrics."""
    if isinstance(exc, transcoding_errors.TranscodeError):
        return exc.grpc_code
    if isinstance(exc, AuthError):
        return _BY_NUMBER[_AUTH_CODES.get(exc.status, code_pb2.INVALID_ARGUMENT)]
    if isinstance(exc, StatusError):
        return _BY_NUMBER.get(int(exc.grpc_code), grpc.StatusCode.UNKNOWN)
    return grpc.StatusCode.INTERNAL


_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
