"""Calling backends: one long-lived `grpc.aio` channel per backend, one bound
multicallable per method, and gRPC failures turned into data (`CallError`).

Calls whose requests stream (client- and bidi-streaming) go through a second,
synchronous channel to the same backend, opened on first use. grpc.aio loses
the backend's status when the backend ends such a call before it has read every
request: the next write fails and grpc.aio reports its own INTERNAL "Internal
error from Core" instead (measured: 38 of 200 ImportBooks calls on a missing
shelf, each with 20 requests, where the backend answered NOT_FOUND). The
synchronous stack stops writing and reports the backend's status (300 of 300).
The requests are either a plain sequence (a REST body, read whole before the call
starts) or an async iterator of requests arriving over time (a client protocol that
streams them, e.g. WebSocket messages); grpc's own thread reads either, the async
one through the event loop (`_LoopIterator`), and the reply (or each reply of a
bidi call) is handed to the event loop.
"""
from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass
from typing import Any, AsyncIterable, AsyncIterator, Callable, Iterator, Sequence, Union

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.message import Message

from .status import decode_status_details

Metadata = Sequence[tuple[str, str]]
# What a call whose requests stream is given: all of them, or an async iterator of them.
StreamedRequests = Union[Sequence[Message], AsyncIterable[Message]]

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
    opts = _merged(options)
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=opts)
    return grpc.aio.secure_channel(target, credentials, options=opts)


class SyncChannel:
    """A backend's synchronous channel, opened on first use (most backends never
    stream requests), with the same target, credentials and options."""

    def __init__(
        self, target: str, credentials: grpc.ChannelCredentials | None = None, options: Sequence[tuple[str, Any]] = ()
    ) -> None:
        self._args = (target, credentials, _merged(options))
        self._channel: grpc.Channel | None = None
        self._lock = threading.Lock()

    def __call__(self) -> grpc.Channel:
        with self._lock:
            if self._channel is None:
                target, credentials, opts = self._args
                self._channel = (
                    grpc.insecure_channel(target, options=opts)
                    if credentials is None
                    else grpc.secure_channel(target, credentials, options=opts)
                )
            return self._channel

    def close(self) -> None:
        with self._lock:
            if self._channel is not None:
                self._channel.close()
                self._channel = None


def _merged(options: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    merged = dict(DEFAULT_CHANNEL_OPTIONS)
    merged.update(dict(options))
    return list(merged.items())


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
        return cls.from_error(err, pool)

    @classmethod
    def from_error(cls, err: Any, pool: descriptor_pool.DescriptorPool | None) -> "CallError":
        """From a failed call of either stack (both have code/details/metadata accessors)."""
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


SyncChannelSource = Callable[[], grpc.Channel]


class MethodInvoker:
    """One backend method bound to its backend's channel.

    `sync_channel` gives the backend's synchronous channel (opened on first use) for
    methods whose requests stream; without it they use grpc.aio and its lost status."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        grpc_path: str,
        response_class: type[Message],
        client_streaming: bool,
        server_streaming: bool,
        pool: descriptor_pool.DescriptorPool | None = None,
        sync_channel: SyncChannelSource | None = None,
    ) -> None:
        self.grpc_path = grpc_path
        self.client_streaming = client_streaming
        self.server_streaming = server_streaming
        self.pool = pool
        serialize: Callable[[Message], bytes] = _serialize
        deserialize = response_class.FromString
        self._sync_channel = sync_channel if client_streaming else None
        self._sync_callable: Any = None
        self._codec = (serialize, deserialize)
        if client_streaming and server_streaming:
            self._callable = channel.stream_stream(grpc_path, serialize, deserialize)
        elif client_streaming:
            self._callable = channel.stream_unary(grpc_path, serialize, deserialize)
        elif server_streaming:
            self._callable = channel.unary_stream(grpc_path, serialize, deserialize)
        else:
            self._callable = channel.unary_unary(grpc_path, serialize, deserialize)

    def _sync(self) -> Any:
        if self._sync_callable is None:
            assert self._sync_channel is not None
            channel = self._sync_channel()
            kind = channel.stream_stream if self.server_streaming else channel.stream_unary
            self._sync_callable = kind(self.grpc_path, *self._codec)
        return self._sync_callable

    async def unary(self, request: Any, *, timeout: float, metadata: Metadata) -> UnaryResult:
        """Unary and client-streaming calls (for client streaming, a sequence or an async iterator of requests)."""
        if self._sync_channel is not None:
            return await self._sync_unary(request, timeout, metadata)
        call = self._callable(request, timeout=timeout, metadata=metadata)
        try:
            response = await call
            return UnaryResult(response, tuple(await call.initial_metadata() or ()), tuple(await call.trailing_metadata() or ()))
        except grpc.aio.AioRpcError as err:
            raise await CallError.from_rpc_error(err, self.pool) from None

    async def _sync_unary(self, requests: StreamedRequests, timeout: float, metadata: Metadata) -> UnaryResult:
        future = self._sync().future(_request_iterator(requests), timeout=timeout, metadata=metadata)
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(_resolve, ended))
        try:
            await ended
        except asyncio.CancelledError:
            future.cancel()
            raise
        try:
            response = future.result()
        except grpc.RpcError as err:
            raise CallError.from_error(err, self.pool) from None
        return UnaryResult(response, tuple(future.initial_metadata() or ()), tuple(future.trailing_metadata() or ()))

    def stream(self, request: Any, *, timeout: float, metadata: Metadata) -> "ResponseStream":
        """Server- and bidi-streaming calls (for bidi, a sequence or an async iterator of requests)."""
        if self._sync_channel is not None:
            responses = self._sync()(_request_iterator(request), timeout=timeout, metadata=metadata)
            return ResponseStream(_PumpedCall(responses), self.pool)
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
        except grpc.RpcError as err:  # grpc.aio's, or a synchronous bidi call's
            raise CallError.from_error(err, self._pool) from None

    async def next(self) -> Message | None:
        """The next message, or None at a clean end of stream."""
        if self._iter is None:
            self._iter = self.call.__aiter__()
        try:
            return await self._iter.__anext__()
        except StopAsyncIteration:
            return None
        except grpc.RpcError as err:  # grpc.aio's, or a synchronous bidi call's
            raise CallError.from_error(err, self._pool) from None

    def cancel(self) -> None:
        self.call.cancel()


def _request_iterator(requests: StreamedRequests) -> Iterator[Message]:
    """The requests as grpc's synchronous stack reads them: a plain iterator."""
    if isinstance(requests, AsyncIterable):
        return _LoopIterator(requests, asyncio.get_running_loop())
    return iter(requests)


class _LoopIterator:
    """Requests arriving over time, read from grpc's own thread: each `next` waits for
    the async iterator's next item on the event loop. The call ends its requests when
    the iterator ends; when the call is cancelled first, grpc stops reading, and the
    one read in progress ends with the iterator's next item (or its end)."""

    def __init__(self, source: AsyncIterable[Message], loop: asyncio.AbstractEventLoop) -> None:
        self._source = source.__aiter__()
        self._loop = loop

    def __iter__(self) -> "_LoopIterator":
        return self

    def __next__(self) -> Message:
        try:
            item = asyncio.run_coroutine_threadsafe(self._next(), self._loop).result()
        except RuntimeError:  # the loop is closed: nobody sends any more
            raise StopIteration from None
        if item is _END:
            raise StopIteration
        return item

    async def _next(self) -> Any:
        try:
            return await self._source.__anext__()
        except StopAsyncIteration:
            return _END


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_END = object()


class _PumpedCall:
    """A synchronous bidi call seen as a grpc.aio one: a thread of its own reads the
    replies and hands each to the event loop, one at a time (it waits until the
    previous one is taken, so a slow client holds at most one reply in memory)."""

    def __init__(self, responses: Any) -> None:
        self._responses = responses
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._taken = threading.Semaphore(0)
        self._thread: threading.Thread | None = None

    def _pump(self) -> None:
        try:
            for response in self._responses:
                self._loop.call_soon_threadsafe(self._queue.put_nowait, response)
                self._taken.acquire()
            item: Any = _END
        except grpc.RpcError as err:
            item = err
        except BaseException as exc:  # never lose the end: the reader would wait forever
            item = exc
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is reading any more
            pass

    def __aiter__(self) -> "_PumpedCall":
        if self._thread is None:
            self._thread = threading.Thread(target=self._pump, name="edge-bidi-call", daemon=True)
            self._thread.start()
        return self

    async def __anext__(self) -> Message:
        item = await self._queue.get()
        if item is _END:
            raise StopAsyncIteration
        if isinstance(item, BaseException):  # the call's grpc.RpcError, or what broke the pump
            raise item
        self._taken.release()
        return item

    async def initial_metadata(self) -> Metadata:
        return await asyncio.to_thread(self._responses.initial_metadata)

    def cancel(self) -> None:
        self._responses.cancel()
        self._taken.release()  # a pump waiting for the reader sees the cancellation next


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
