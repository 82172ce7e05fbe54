"""Calling backends: one long-lived `grpc.aio` channel per backend, one bound
multicallable per method, and gRPC failures turned into data (`CallError`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Sequence

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.message import Message

from .status import decode_status_details

Metadata = Sequence[tuple[str, str]]

# Keepalive keeps idle channels warm through NATs and load balancers and
# notices a dead backend within ~30 s instead of at the next request.
DEFAULT_CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.enable_retries", 0),
    # A backend back from an outage is reached within ~5 s: gRPC's default backoff grows
    # to 120 s, so after a long outage the gateway kept answering 503 for up to two minutes.
    ("grpc.max_reconnect_backoff_ms", 5_000),
)


def make_channel(
    target: str,
    credentials: grpc.ChannelCredentials | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    merged = dict(DEFAULT_CHANNEL_OPTIONS)
    merged.update(dict(options))
    opts = list(merged.items())
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=opts)
    return grpc.aio.secure_channel(target, credentials, options=opts)


class CallError(Exception):
    """A call that ended with a non-OK status, with everything a response needs."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        details: list[dict[str, Any]] | None = None,
        initial_metadata: Metadata = (),
        trailing_metadata: Metadata = (),
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.details = details or []
        self.initial_metadata = initial_metadata
        self.trailing_metadata = trailing_metadata

    @classmethod
    async def from_rpc_error(cls, err: grpc.aio.AioRpcError, pool: descriptor_pool.DescriptorPool | None) -> "CallError":
        trailing = err.trailing_metadata() or ()
        initial = err.initial_metadata() or ()
        return cls(
            err.code(),
            err.details() or err.code().name.lower(),
            decode_status_details(trailing, pool),
            tuple(initial),
            tuple(trailing),
        )


@dataclass
class UnaryResult:
    response: Message
    initial_metadata: Metadata
    trailing_metadata: Metadata


class MethodInvoker:
    """One backend method bound to its backend's channel."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        grpc_path: str,
        response_class: type[Message],
        client_streaming: bool,
        server_streaming: bool,
        pool: descriptor_pool.DescriptorPool | None = None,
    ) -> None:
        self.grpc_path = grpc_path
        self.client_streaming = client_streaming
        self.server_streaming = server_streaming
        self.pool = pool
        serialize: Callable[[Message], bytes] = _serialize
        deserialize = response_class.FromString
        if client_streaming and server_streaming:
            self._callable = channel.stream_stream(grpc_path, serialize, deserialize)
        elif client_streaming:
            self._callable = channel.stream_unary(grpc_path, serialize, deserialize)
        elif server_streaming:
            self._callable = channel.unary_stream(grpc_path, serialize, deserialize)
        else:
            self._callable = channel.unary_unary(grpc_path, serialize, deserialize)

    async def unary(self, request: Any, *, timeout: float, metadata: Metadata) -> UnaryResult:
        """Unary and client-streaming calls (request may be an async iterator)."""
        call = self._callable(request, timeout=timeout, metadata=metadata)
        try:
            response = await call
            return UnaryResult(response, tuple(await call.initial_metadata() or ()), tuple(await call.trailing_metadata() or ()))
        except grpc.aio.AioRpcError as err:
            raise await CallError.from_rpc_error(err, self.pool) from None

    def stream(self, request: Any, *, timeout: float, metadata: Metadata) -> "ResponseStream":
        """Server- and bidi-streaming calls."""
        return ResponseStream(self._callable(request, timeout=timeout, metadata=metadata), self.pool)


class ResponseStream:
    """Iterates a streaming call's messages; failures surface as `CallError`."""

    def __init__(self, call: Any, pool: descriptor_pool.DescriptorPool | None) -> None:
        self.call = call
        self._pool = pool
        self._iter: AsyncIterator[Message] | None = None

    async def initial_metadata(self) -> Metadata:
        try:
            return tuple(await self.call.initial_metadata() or ())
        except grpc.aio.AioRpcError as err:
            raise await CallError.from_rpc_error(err, self._pool) from None

    async def next(self) -> Message | None:
        """The next message, or None at a clean end of stream."""
        if self._iter is None:
            self._iter = self.call.__aiter__()
        try:
            return await self._iter.__anext__()
        except StopAsyncIteration:
            return None
        except grpc.aio.AioRpcError as err:
            raise await CallError.from_rpc_error(err, self._pool) from None

    def cancel(self) -> None:
        self.call.cancel()


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


_GRPC_TIMEOUT = re.compile(r"^(\d{1,8})([HMSmun])$")
_UNIT_SECONDS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_HUMAN_TIMEOUT = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)?$")


def parse_timeout(value: str) -> float:
    """Seconds from a `grpc-timeout` value ("250m", "5S") or a plain duration ("1.5", "1.5s", "200ms").

    Raises ValueError for anything else, so the caller can answer 400.
    """
    value = value.strip()
    m = _GRPC_TIMEOUT.match(value)
    if m:
        return int(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    m = _HUMAN_TIMEOUT.match(value)
    if m:
        seconds = float(m.group(1))
        return seconds / 1000.0 if m.group(2) == "ms" else seconds
    raise ValueError(f"invalid timeout {value!r}: use seconds ('1.5'), '200ms', or gRPC form ('200m', '5S')")
