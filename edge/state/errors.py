"""Errors of the state-backed features.

`StoreUnavailable` is internal: the engines catch it and apply their
configured failure mode. `StatusError` is what reaches the app: it carries the
HTTP status, the google.rpc code and details, so the app renders it in the one
JSON error shape `{"code", "message", "details"}` every other error uses.
"""
from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2, json_format
from google.protobuf.message import Message


class StoreUnavailable(Exception):
    """The state store could not answer (down, too slow, breaker open, full)."""


class StatusError(Exception):
    """A client-facing error: HTTP status + google.rpc.Status body + extra headers."""

    http_status: int = 500
    grpc_code: int = 2  # UNKNOWN

    def __init__(self, message: str, *, headers: dict[str, str] | None = None,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})
        self.details: list[dict[str, Any]] = list(details or [])

    def body(self) -> dict[str, Any]:
        """The google.rpc.Status JSON body."""
        return {"code": self.grpc_code, "message": self.message, "details": self.details}


def detail(message: Message) -> dict[str, Any]:
    """A google.rpc error-detail message as its JSON `Any` form (with "@type")."""
    packed = any_pb2.Any()
    packed.Pack(message)
    return json_format.MessageToDict(packed)
