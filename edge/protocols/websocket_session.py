"""One accepted WebSocket carrying one streaming gRPC call: frames in, frames out, and the end.

This is the socket half of the WebSocket adapter (edge/protocols/websocket.py does the
handshake through the core's stages); it knows ASGI `websocket.*` messages, gRPC streams
and the core's `Outcome`, nothing about routes, auth or limits, which come in as callables.

The wire protocol, from the client's side:

* each **text frame** is one request message, JSON; an **empty text frame** ends the
  requests (WebSocket has no half-close: a client streaming requests says "that was the
  last one" this way, then reads the reply). A server-streaming method takes exactly one
  request message (its first frame) and needs no empty frame. Binary frames close 1003.
* each **reply message** is one text frame of JSON (an `HttpBody` reply, one binary frame
  of its bytes);
* the call's **status** ends the socket as a close frame: code `1000` for OK, `4000 + the
  gRPC code` otherwise (4003 INVALID_ARGUMENT, 4008 RESOURCE_EXHAUSTED, 4014 UNAVAILABLE,
  ...), and a reason of `{"code": N, "message": "..."}` (the message shortened so the reason
  fits the 123 bytes a close frame allows; details, which rarely fit, are left out).

Connection-level closes use the standard codes: 1003 a binary frame, 1008 the idle timeout,
1009 a message over `max_message_bytes` (sent by the frame parser before the message is
buffered), 1011 a gateway failure, 1012 the gateway shutting down (uvicorn's drain).

Bounds (what a socket can make the gateway hold), with the config keys in
edge/websocket_config.py: incoming, the frame parser refuses a message over
`max_message_bytes`, uvicorn stops reading the socket after each message until it is taken,
and at most `inbound_queue` decoded requests wait for the backend (then nothing more is taken,
so TCP pushes back on the client). Outgoing, one reply is read from the backend only after the
previous one was handed to the transport, and uvicorn's `send` waits while the transport's
buffer is over its high-water mark: a slow reader holds one reply plus that buffer, and gRPC's
flow control stops the backend. A reply the client does not take within `send_timeout` ends
the socket (no close frame can get past a stalled reader; edge/connection_limits.py then resets
the connection if its last bytes stay untaken). `idle_timeout` (no message either
way) and `max_duration` (the whole socket, and its backend call's deadline) end it too.
"""
from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING, Any

import orjson

from transcoding.invoker import CallError

from ..http import Receive, Send

if TYPE_CHECKING:
    from ..core import Outcome

NORMAL = 1000
UNSUPPORTED_DATA = 1003
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011
GRPC_BASE = 4000  # 4000 + a google.rpc code
MAX_REASON_BYTES = 123  # RFC 6455 section 5.5: a control frame's payload is at most 125 bytes, 2 are the code

_CANCELLED, _INVALID_ARGUMENT, _DEADLINE_EXCEEDED, _INTERNAL = 1, 3, 4, 13


def close_reason(code: int, message: str) -> str:
    """`{"code":N,"message":"..."}` in at most 123 UTF-8 bytes: the message is cut (with "...")
    where the whole would not fit, never inside a character."""
    def render(text: str) -> bytes:
        return orjson.dumps({"code": code, "message": text})

    out = render(message)
    if len(out) <= MAX_REASON_BYTES:
        return out.decode()
    low, high = 0, len(message)  # the longest prefix that fits with its "..."
    while low < high:
        mid = (low + high + 1) // 2
        if len(render(message[:mid] + "...")) <= MAX_REASON_BYTES:
            low = mid
        else:
            high = mid - 1
    return render(message[:low] + "...").decode()


def close_for_status(grpc_code: int, message: str) -> tuple[int, str]:
    """The close frame that ends a call with this gRPC status."""
    return (NORMAL if grpc_code == 0 else GRPC_BASE + grpc_code), close_reason(grpc_code, message)


class SessionEnd(Exception):
    """Ends the socket with a close frame: a gRPC status (4000+) or a connection-level code."""

    def __init__(self, close_code: int, grpc_code: int, message: str) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.grpc_code = grpc_code
        self.message = message

    @classmethod
    def status(cls, grpc_code: int, message: str) -> "SessionEnd":
        return cls(NORMAL if grpc_code == 0 else GRPC_BASE + grpc_code, grpc_code, message)


_END = object()


class RequestFeed:
    """The request messages of one call, bounded: `put` waits while `limit` are unread.

    The backend reads it as its request iterator: grpc's synchronous stack (used for calls
    whose requests stream, transcoding/invoker.py) iterates it on one of its own threads,
    each `next` waiting for the event loop to hand over a message; grpc.aio iterates it
    asynchronously. `end()` is the half-close; `abort()` drops what is queued and ends it,
    so a grpc thread waiting for a message never waits for ever."""

    def __init__(self, limit: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._items: collections.deque[Any] = collections.deque()
        self._limit = limit
        self._ended = False
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._lock = threading.Lock()  # one grpc thread at a time asks the loop

    @property
    def ended(self) -> bool:
        return self._ended

    async def put(self, message: Any) -> None:
        while len(self._items) >= self._limit and not self._ended:
            self._space.clear()
            await self._space.wait()
        if self._ended:
            return
        self._items.append(message)
        self._ready.set()

    def end(self) -> None:
        self._ended = True
        self._ready.set()
        self._space.set()

    def abort(self) -> None:
        self._items.clear()
        self.end()

    async def get(self) -> Any:
        """The next message, or `_END` once ended and drained."""
        while not self._items:
            if self._ended:
                return _END
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        self._space.set()
        return item

    def __aiter__(self) -> "RequestFeed":
        return self

    async def __anext__(self) -> Any:
        item = await self.get()
        if item is _END:
            raise StopAsyncIteration
        return item

    def __iter__(self) -> "RequestFeed":
        return self

    def __next__(self) -> Any:  # on a grpc thread
        with self._lock:
            try:
                item = asyncio.run_coroutine_threadsafe(self.get(), self._loop).result()
            except (RuntimeError, asyncio.CancelledError):  # the loop is gone: no more requests
                raise StopIteration from None
        if item is _END:
            raise StopIteration
        return item


@dataclass
class Limits:
    idle_timeout: float
    max_duration: float
    send_timeout: float
    inbound_queue: int


@dataclass
class SessionResult:
    grpc_code: int
    close_code: int | None  # None: the client left (or stopped reading), no close frame was sent
    messages_in: int = 0
    messages_out: int = 0
    bytes_out: int = 0
    backend_seconds: float = 0.0


class Session:
    """One streaming call over an accepted socket (see the module docstring for the protocol).

    `decode(text)` turns one text frame into a request message (raising the gateway's errors,
    which end the socket with their gRPC code); `charge()`, if given, is awaited before each
    message is decoded; `encode(message)` gives a reply frame's bytes (`binary` says which
    kind of frame). `start(requests)` runs the call on the core with its request: the one
    message (server streaming) or the feed (client and bidi streaming), and gives its
    `Outcome`: a started stream to relay, or the one reply or status of a client stream."""

    def __init__(
        self,
        receive: Receive,
        send: Send,
        limits: Limits,
        *,
        client_streaming: bool,
        server_streaming: bool,
        decode: Callable[[str], Any],
        encode: Callable[[Any], bytes],
        binary: bool,
        start: Callable[[Any], Awaitable["Outcome"]],
        charge: Callable[[], Awaitable[None]] | None = None,
        status_of: Callable[[BaseException], tuple[int, str]],
    ) -> None:
        self._receive = receive
        self._send = send
        self.limits = limits
        self.client_streaming = client_streaming
        self.server_streaming = server_streaming
        self._decode = decode
        self._encode = encode
        self._binary = binary
        self._start = start
        self._charge = charge
        self._status_of = status_of
        self._last_activity = monotonic()
        self._stalled = False
        self._sending = False
        self.result = SessionResult(grpc_code=0, close_code=None)

    # ---- the whole socket -----------------------------------------------------------

    async def run(self) -> SessionResult:
        feed = RequestFeed(self.limits.inbound_queue)
        reader = asyncio.create_task(self._read(feed), name="edge-ws-read")
        caller = asyncio.create_task(self._call(feed), name="edge-ws-call")
        watchdog = asyncio.create_task(self._watch(), name="edge-ws-watch")
        tasks = {reader, caller, watchdog}
        end: SessionEnd | None = None
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            first = reader if reader in done else caller if caller in done else watchdog
            exc = first.exception()
            if isinstance(exc, SessionEnd):
                end = exc
            elif isinstance(exc, OSError):  # the server's "client disconnected" on a send: nobody to tell
                self.result.grpc_code = _CANCELLED
            elif exc is not None:
                code, message = self._status_of(exc)
                end = SessionEnd.status(code, message)
            elif first is reader:  # the client went away: nothing to tell it
                self.result.grpc_code = _CANCELLED
            else:
                end = first.result()
        finally:
            # The call is cancelled before the feed ends: ended first, a client that left would
            # look like a half-close, and the backend could finish the call as if asked to.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            feed.abort()
        if end is not None:
            self.result.grpc_code = end.grpc_code
            if not self._stalled:
                await self._close(end.close_code, close_reason(end.grpc_code, end.message))
        return self.result

    async def _close(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(self._send({"type": "websocket.close", "code": code, "reason": reason}),
                                   self.limits.send_timeout)
        except Exception:  # gone or stalled: the transport is closed when the app returns
            return
        self.result.close_code = code

    # ---- the three tasks ------------------------------------------------------------

    async def _read(self, feed: RequestFeed) -> None:
        """Frames -> request messages. Returns when the client goes away; raises SessionEnd
        for what ends the socket with a close frame."""
        taken = 0
        while True:
            message = await self._receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive":
                continue
            self._last_activity = monotonic()
            text = message.get("text")
            if text is None:
                raise SessionEnd(UNSUPPORTED_DATA, _INVALID_ARGUMENT,
                                 "send each request message as a text frame of JSON, not a binary frame")
            if text == "":
                feed.end()  # the half-close
                continue
            if feed.ended:
                raise SessionEnd.status(_INVALID_ARGUMENT, "a request message after the end of the requests"
                                        if self.client_streaming else "this method takes one request message")
            if self._charge is not None:
                await self._charge()
            request = self._decode(text)
            taken += 1
            self.result.messages_in = taken
            await feed.put(request)
            if not self.client_streaming:
                feed.end()

    async def _call(self, feed: RequestFeed) -> SessionEnd:
        """The backend call; its status as the SessionEnd that closes the socket."""
        started = monotonic()
        try:
            requests: Any = feed
            if not self.client_streaming:
                requests = await feed.get()
                if requests is _END:
                    raise SessionEnd.status(_INVALID_ARGUMENT, "the requests ended before the request message")
            outcome = await self._start(requests)
            if outcome.stream is not None:
                return await self._relay(outcome.stream)
            if outcome.reply is None:
                return SessionEnd.status(outcome.code.value[0], outcome.details)
            await self._write(self._encode(outcome.reply))
            return SessionEnd.status(0, "OK")
        finally:
            self.result.backend_seconds = monotonic() - started

    async def _relay(self, stream: Any) -> SessionEnd:
        try:
            while True:
                try:
                    message = await stream.next()
                except CallError as exc:
                    return SessionEnd.status(exc.code.value[0], exc.message)
                if message is None:
                    return SessionEnd.status(0, "OK")
                await self._write(self._encode(message))
        finally:
            stream.cancel()

    async def _write(self, data: bytes) -> None:
        frame = {"type": "websocket.send", "bytes": data} if self._binary else {
            "type": "websocket.send", "text": data.decode()}
        self._sending = True  # not idle while a reply waits for the client: send_timeout decides then
        try:
            await asyncio.wait_for(self._send(frame), self.limits.send_timeout)
        except asyncio.TimeoutError:
            self._stalled = True
            raise SessionEnd(POLICY_VIOLATION, _CANCELLED,
                             f"a reply was not read within {self.limits.send_timeout:g}s") from None
        finally:
            self._sending = False
        self._last_activity = monotonic()
        self.result.messages_out += 1
        self.result.bytes_out += len(data)

    async def _watch(self) -> SessionEnd:
        """Ends the socket when it has been idle too long, or lived too long."""
        limits = self.limits
        deadline = monotonic() + limits.max_duration
        while True:
            now = monotonic()
            if self._sending:
                self._last_activity = now
            idle_at = self._last_activity + limits.idle_timeout
            if now >= deadline:
                return SessionEnd.status(_DEADLINE_EXCEEDED,
                                         f"the socket's max_duration of {limits.max_duration:g}s passed")
            if now >= idle_at:
                return SessionEnd(POLICY_VIOLATION, _CANCELLED,
                                  f"no message either way for {limits.idle_timeout:g}s (idle_timeout)")
            await asyncio.sleep(min(idle_at, deadline) - now)
