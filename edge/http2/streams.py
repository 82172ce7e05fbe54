"""HTTP/2 streams as ASGI calls of the protocol-blind app: the request head becomes a
scope, DATA frames `http.request` messages, and the app's `http.response.*` messages
HEADERS and DATA frames sent only as the client's flow-control window allows.

`StreamCalls` is the part of `Http2Session` (edge/http2/session.py) that does this;
it reads the session's connection, limits and streams and calls its `_call`,
`_reset`, `_close_stream` and `_ack`, so it holds no state of its own (no slots,
nothing more per connection).
"""
from __future__ import annotations

import asyncio
import collections
from typing import Any
from urllib.parse import unquote

import h2.events
import h2.exceptions
from h2.errors import ErrorCodes

from ..connection_limits import error_response
from .limits import refusal, refused_status

__all__ = ["Stream", "StreamCalls"]

_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"})


class Stream:
    """One request stream: its scope, the body data not yet taken, and where its answer stands."""

    __slots__ = ("id", "scope", "chunks", "more", "closed", "event", "window", "response_started", "ended",
                 "task", "timer", "head_only", "pending_headers", "refused_status", "body_told")

    def __init__(self, stream_id: int, scope: dict[str, Any], more: bool, head_only: bool) -> None:
        self.id = stream_id
        self.scope = scope
        self.chunks: collections.deque[tuple[bytes, int]] = collections.deque()
        self.more = more  # the client may still send body data
        self.closed = False  # reset, timed out or answered: the app sees http.disconnect
        self.event = asyncio.Event()  # new body data, end of body, or closed
        self.window = asyncio.Event()  # the send window may have opened
        self.response_started = False
        self.ended = False  # our END_STREAM (or RST) has been sent
        self.task: asyncio.Task | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.head_only = head_only
        self.pending_headers: list[tuple[bytes, bytes]] | None = None
        self.refused_status = 0
        self.body_told = False  # the app has been given the end of the body


class StreamCalls:
    """Streams in, ASGI calls out: the stream half of `Http2Session`."""

    __slots__ = ()

    def _request(self, event: h2.events.RequestReceived) -> Stream | None:
        """A new stream from its request head; None when it is refused at once (REFUSED_STREAM)."""
        stream_id = event.stream_id
        if self.closing or self.running >= self.limits.max_concurrent_streams:
            # After GOAWAY, or reset streams whose calls still run: the client may retry this one.
            self._reset(stream_id, ErrorCodes.REFUSED_STREAM)
            if self.resets.add() > self.limits.max_resets:
                self.abort(ErrorCodes.ENHANCE_YOUR_CALM)
            return None
        self.last_stream = max(self.last_stream, stream_id)
        method = path = b""
        authority = None
        headers: list[tuple[bytes, bytes]] = []
        size = 0
        has_host = False
        for name, value in event.headers:
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    path = value
                elif name == b":authority":
                    authority = value
                continue
            size += len(name) + len(value) + 4
            has_host = has_host or name == b"host"
            headers.append((name, value))
        if authority is not None and not has_host:
            headers.insert(0, (b"host", authority))
            size += len(authority) + 8
        more = event.stream_ended is None
        raw_path, _, query = path.partition(b"?")
        text_path = raw_path.decode("latin-1")
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "2",
            "server": self.server, "client": self.client, "scheme": self.scheme,
            "method": method.decode("latin-1"), "root_path": self.root_path,
            "path": self.root_path + (unquote(text_path) if "%" in text_path else text_path),
            "raw_path": self.root_path.encode("latin-1") + raw_path, "query_string": query,
            "headers": headers, "state": self.state.copy(),
        }
        if self.extensions is not None:
            scope["extensions"] = {"tls": dict(self.extensions["tls"])}
        stream = Stream(stream_id, scope, more, method == b"HEAD")
        self.streams[stream_id] = stream
        stream.refused_status = refused_status(path, raw_path, size, self.limits)
        if more:
            stream.timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out, stream)
        return stream

    def _start(self, stream: Stream) -> None:
        self.running += 1
        if stream.refused_status:
            app = refusal(stream.refused_status, self.limits)
        else:
            app = self.app
        task = self.loop.create_task(self._run(app, stream))
        stream.task = task
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # ---- the ASGI call ------------------------------------------------------------------------

    async def _run(self, app: Any, stream: Stream) -> None:
        try:
            await app(stream.scope, lambda: self._receive(stream), lambda message: self._send(stream, message))
        except BaseException as exc:  # noqa: BLE001 - the stream ends either way; the error is the app's
            if not stream.response_started and not stream.closed and not isinstance(exc, asyncio.CancelledError):
                headers, body = error_response(500, "internal error")
                self._respond(stream, 500, headers, body)
            if not isinstance(exc, Exception):
                raise
            self.protocol.logger.error("Exception in ASGI application", exc_info=exc)
        finally:
            if not stream.ended:
                self._reset(stream.id, ErrorCodes.INTERNAL_ERROR if not stream.closed else ErrorCodes.CANCEL)
            self._finished(stream)

    def _finished(self, stream: Stream) -> None:
        self.running -= 1
        stream.closed = True
        if stream.timer is not None:
            stream.timer.cancel()
            stream.timer = None
        while stream.chunks:  # unread body data: its window goes back to the connection
            _, length = stream.chunks.popleft()
            if length:
                self._ack(length, stream.id)
        self.streams.pop(stream.id, None)
        if self.aborted or self.transport.is_closing():
            return
        if self.closing and self.running == 0:
            self._close()
            return
            return
        self._after_input()
        self._schedule_flush()

    async def _receive(self, stream: Stream) -> dict[str, Any]:
        while not stream.chunks and stream.more and not stream.closed:
            stream.event.clear()
            await stream.event.wait()
        if stream.chunks:
            data, length = stream.chunks.popleft()
            if length:
                self._ack(length, stream.id)
            more = bool(stream.chunks) or stream.more
            stream.body_told = not more
            return {"type": "http.request", "body": data, "more_body": more}
        if not stream.body_told and not stream.closed:
            stream.body_told = True
            return {"type": "http.request", "body": b"", "more_body": False}
        while not stream.closed:  # after the whole body, `receive` waits for the end of the stream (ASGI)
            stream.event.clear()
            await stream.event.wait()
        return {"type": "http.disconnect"}

    async def _send(self, stream: Stream, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._response_head(stream, message)
            return
        if kind != "http.response.body":
            return
        if not stream.response_started:
            raise RuntimeError("http.response.body before http.response.start")
        if stream.closed or stream.ended:
            return
        body: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        conn = self.conn
        if stream.pending_headers is not None:
            headers, stream.pending_headers = stream.pending_headers, None
            end = not more and (not body or stream.head_only)
            if not self._call(conn.send_headers, stream.id, headers, end_stream=end):
                return
            if end:
                self._ended(stream)
                return
        if stream.head_only:
            if not more:
                self._call(conn.send_data, stream.id, b"", end_stream=True)
                self._ended(stream)
            return
        await self._send_data(stream, body, more)

    def _response_head(self, stream: Stream, message: dict[str, Any]) -> None:
        """`http.response.start`: the HEADERS frame waits for the first body message, which
        may end the stream with it (an empty answer is one frame)."""
        if stream.response_started:
            raise RuntimeError("http.response.start sent twice")
        stream.response_started = True
        headers = [(b":status", str(message["status"]).encode())]
        for name, value in message.get("headers", ()):
            name = name.lower()
            if name not in _HOP_BY_HOP:
                headers.append((name, value))
        headers.extend(self.default_headers)
        stream.pending_headers = headers

    async def _send_data(self, stream: Stream, body: bytes, more: bool) -> None:
        """DATA frames of one body message, as the flow-control windows and the socket allow."""
        conn = self.conn
        view = memoryview(body)
        while True:
            unpaused = self._unpaused
            if unpaused is not None:
                await unpaused.wait()
            if stream.closed or self.transport.is_closing():
                return
            if not view:
                if not more:
                    self._call(conn.send_data, stream.id, b"", end_stream=True)
                    self._ended(stream)
                return
            try:
                window = min(conn.local_flow_control_window(stream.id), conn.max_outbound_frame_size)
            except h2.exceptions.ProtocolError:
                return
            if window <= 0:
                stream.window.clear()
                try:
                    await asyncio.wait_for(stream.window.wait(), self.limits.stalled_stream_timeout)
                except TimeoutError:  # the client keeps its window shut: give the stream up
                    self._reset(stream.id, ErrorCodes.CANCEL)
                    self._close_stream(stream.id)
                    return
                continue
            piece, view = view[:window], view[window:]
            last = not view and not more
            if not self._call(conn.send_data, stream.id, bytes(piece), end_stream=last):
                return
            if last:
                self._ended(stream)
                return

    def _ended(self, stream: Stream) -> None:
        """Our END_STREAM is out. A client still sending a body (an early answer) is told to stop."""
        stream.ended = True
        if stream.more:
            self._reset(stream.id, ErrorCodes.NO_ERROR)
        stream.closed = True
        stream.event.set()

    def _respond(self, stream: Stream, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """A whole answer the gateway writes itself (a timeout, a refusal)."""
        stream.response_started = True
        head = [(b":status", str(status).encode()), *headers, *self.default_headers]
        if not self._call(self.conn.send_headers, stream.id, head, end_stream=False):
            return
        if self.conn.local_flow_control_window(stream.id) >= len(body):
            self._call(self.conn.send_data, stream.id, body, end_stream=True)
            self._ended(stream)

    def _body_timed_out(self, stream: Stream) -> None:
        stream.timer = None
        if stream.closed or not stream.more:
            return
        if not stream.response_started:
            headers, body = error_response(408, f"the request body did not arrive within {self.limits.body_timeout:g}s")
            self._respond(stream, 408, headers, body)
        if not stream.ended:
            self._reset(stream.id, ErrorCodes.CANCEL)
        self._close_stream(stream.id)
        self._flush()
