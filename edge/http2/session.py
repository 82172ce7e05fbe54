"""One HTTP/2 connection (`Http2Session`): frames in through `h2`, events dispatched,
the connection's bounds enforced, timers, GOAWAY and closing, and output written as
the socket allows. Streams become ASGI calls in edge/http2/streams.py.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import h2.events
import h2.exceptions
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame
from uvicorn.protocols.utils import get_local_addr, get_remote_addr

from ..connection_limits import LINGER
from .connection import buffered_input_too_large, input_incomplete, new_connection
from .limits import AbuseCounter, Http2Limits
from .streams import Stream, StreamCalls

__all__ = ["Http2Session"]

_CONTROL_EVENTS = (h2.events.PingReceived, h2.events.RemoteSettingsChanged, h2.events.PriorityUpdated,
                   h2.events.UnknownFrameReceived)


class Http2Session(StreamCalls):
    """One HTTP/2 connection: frames in, ASGI calls out. Driven by the protocol object.

    Slotted, and nothing per connection that an idle one does not need (an asyncio.Event
    holds a 760-byte deque): idle connections are what a mobile edge holds most of.
    """

    __slots__ = ("protocol", "transport", "limits", "app", "loop", "root_path", "state", "tasks", "default_headers",
                 "server", "client", "scheme", "extensions", "streams", "running", "closing", "aborted", "last_stream",
                 "resets", "controls", "_unpaused", "_flush_pending", "_read_paused", "_timer", "_timer_kind", "_ping",
                 "_ping_sent", "_last_input", "conn")

    def __init__(self, protocol: Any, transport: Any, limits: Http2Limits, app: Any, tls: dict | None) -> None:
        self.protocol = protocol
        self.transport = transport
        self.limits = limits
        self.app = app
        self.loop: asyncio.AbstractEventLoop = protocol.loop
        config = protocol.config
        self.root_path: str = config.root_path
        self.state = protocol.app_state
        self.tasks: set[asyncio.Task] = protocol.server_state.tasks
        self.default_headers: list[tuple[bytes, bytes]] = protocol.server_state.default_headers
        self.server = get_local_addr(transport)
        self.client = get_remote_addr(transport)
        self.scheme = "https" if tls is not None else "http"
        self.extensions = {"tls": tls} if tls is not None else None
        self.streams: dict[int, Stream] = {}
        self.running = 0  # app calls not yet ended, reset streams included
        self.closing = False  # GOAWAY sent: no new streams
        self.aborted = False  # closed for a protocol error or abuse: input is ignored
        self.last_stream = 0
        self.resets = AbuseCounter()
        self.controls = AbuseCounter()
        self._unpaused: asyncio.Event | None = None  # only while the socket's write buffer is full
        self._flush_pending = False
        self._read_paused = False
        self._timer: asyncio.TimerHandle | None = None  # preface/header block, or idle
        self._timer_kind = ""
        self._ping: asyncio.TimerHandle | None = None
        self._ping_sent = 0.0
        self._last_input = time.monotonic()

        self.conn = new_connection(limits)
        self._flush()
        self._arm(limits.header_timeout, "head")

    # ---- input --------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.aborted:
            return
        self._last_input = time.monotonic()
        conn = self.conn
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            code = getattr(exc, "error_code", ErrorCodes.PROTOCOL_ERROR)
            if isinstance(exc, h2.exceptions.DenialOfServiceError):
                code = ErrorCodes.ENHANCE_YOUR_CALM
            self.abort(code)
            return
        if buffered_input_too_large(conn, self.limits):
            self.abort(ErrorCodes.ENHANCE_YOUR_CALM)
            return
        started: list[Stream] = []
        for event in events:
            kind = type(event)
            if kind is h2.events.RequestReceived:
                stream = self._request(event)
                if stream is not None:
                    started.append(stream)
            elif kind is h2.events.DataReceived:
                self._data(event)
            elif kind is h2.events.StreamEnded:
                self._body_ended(event.stream_id)
            elif kind is h2.events.WindowUpdated:
                self._window_opened(event.stream_id)
            elif kind is h2.events.StreamReset:
                if event.remote_reset and self.resets.add() > self.limits.max_resets:
                    self.abort(ErrorCodes.ENHANCE_YOUR_CALM)
                    return
                self._close_stream(event.stream_id)
            elif kind is h2.events.TrailersReceived:
                self._body_ended(event.stream_id)
            elif kind is h2.events.PingAckReceived:
                self._ping_sent = 0.0
            elif kind is h2.events.ConnectionTerminated:
                self.closing = True
                self._close_all()
                self._flush()
                self.transport.close()
                return
            elif isinstance(event, _CONTROL_EVENTS):
                if self.controls.add() > self.limits.max_control_frames:
                    self.abort(ErrorCodes.ENHANCE_YOUR_CALM)
                    return
                if kind is h2.events.RemoteSettingsChanged:
                    self._window_opened(0)
        for stream in started:  # opened and reset within this read: never handed to the app
            if not stream.closed:
                self._start(stream)
        self._after_input()
        self._flush()

    def _after_input(self) -> None:
        """Arm the right connection timer: head (a frame or header block incomplete) or idle."""
        if input_incomplete(self.conn):
            if self._timer_kind != "head":
                self._arm(self.limits.header_timeout, "head")
        elif not self.streams and self.running == 0:
            if self._timer_kind != "idle":
                self._arm(self.limits.keep_alive_timeout, "idle")
        else:
            self._disarm()
        self._arm_ping()

    def _data(self, event: h2.events.DataReceived) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is None or stream.closed:  # answered or reset: give the window back at once
            if event.flow_controlled_length:
                self._ack(event.flow_controlled_length, event.stream_id)
            return
        if event.data or event.flow_controlled_length:
            stream.chunks.append((event.data, event.flow_controlled_length))
            stream.event.set()

    def _body_ended(self, stream_id: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        stream.more = False
        if stream.timer is not None:
            stream.timer.cancel()
            stream.timer = None
        stream.event.set()

    def _window_opened(self, stream_id: int) -> None:
        if stream_id:
            stream = self.streams.get(stream_id)
            if stream is not None:
                stream.window.set()
        else:
            for stream in self.streams.values():
                stream.window.set()

    def _ack(self, length: int, stream_id: int) -> None:
        try:
            self.conn.acknowledge_received_data(length, stream_id)
        except h2.exceptions.ProtocolError:
            pass  # the connection is closing
        self._schedule_flush()

    # ---- connection management ------------------------------------------------------------------

    def _close_stream(self, stream_id: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        stream.closed = True
        stream.event.set()
        stream.window.set()
        if stream.task is None:  # never started
            self.streams.pop(stream_id, None)
            if stream.timer is not None:
                stream.timer.cancel()
                stream.timer = None

    def _close_all(self) -> None:
        for stream_id in list(self.streams):
            self._close_stream(stream_id)

    def _reset(self, stream_id: int, code: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream.ended = True
        try:
            self.conn.reset_stream(stream_id, code)
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
            pass
        self._schedule_flush()

    def abort(self, code: int) -> None:
        """Close the connection now: GOAWAY with `code`, every stream's app call sees a disconnect.

        Reading stops at once; the socket closes `LINGER` seconds later, so the GOAWAY is not
        destroyed by the RST that closing a socket with unread input sends.
        """
        if self.aborted or self.transport.is_closing():
            return
        self.aborted = self.closing = True
        try:
            self.conn.close_connection(error_code=code)
        except h2.exceptions.ProtocolError:
            pass
        self._close_all()
        self._flush()
        self._disarm()
        self.transport.pause_reading()
        self.loop.call_later(LINGER, self.transport.close)

    def shutdown(self) -> None:
        """Graceful: GOAWAY naming the last stream taken; close once the open ones have ended."""
        if self.closing:
            return
        self.closing = True
        # Written as a frame of our own: h2's close_connection would forbid answering the open streams.
        self._write(GoAwayFrame(0, last_stream_id=self.last_stream, error_code=0).serialize())
        if self.running == 0:
            self._close()

    def _close(self) -> None:
        if self.transport.is_closing():
            return
        try:
            self.conn.close_connection(error_code=ErrorCodes.NO_ERROR, last_stream_id=self.last_stream)
        except h2.exceptions.ProtocolError:
            pass
        self._flush()
        self.transport.close()

    def connection_lost(self) -> None:
        self._disarm()
        if self._ping is not None:
            self._ping.cancel()
            self._ping = None
        self.closing = True
        self._close_all()
        self._release_writers()

    def pause_writing(self) -> None:
        """The socket's buffer is full: stop producing (sends wait) and stop reading (no more ACKs to queue)."""
        if self._unpaused is None:
            self._unpaused = asyncio.Event()
        if not self._read_paused and not self.aborted and not self.transport.is_closing():
            self._read_paused = True
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._release_writers()
        if self._read_paused and not self.aborted and not self.transport.is_closing():
            self._read_paused = False
            self.transport.resume_reading()

    def _release_writers(self) -> None:
        unpaused, self._unpaused = self._unpaused, None
        if unpaused is not None:
            unpaused.set()

    # ---- timers -------------------------------------------------------------------------------

    def _arm(self, seconds: float, kind: str) -> None:
        self._disarm()
        self._timer_kind = kind
        self._timer = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_kind = ""

    def _timed_out(self) -> None:
        kind, self._timer, self._timer_kind = self._timer_kind, None, ""
        if self.transport.is_closing():
            return
        if kind == "idle":
            self.closing = True
            self._close()
        else:  # a frame or header block that never completed: nothing to answer on
            self.abort(ErrorCodes.PROTOCOL_ERROR if kind == "head" else ErrorCodes.NO_ERROR)

    def _arm_ping(self) -> None:
        interval = self.limits.ping_interval
        if interval is None or self._ping is not None or self.running == 0:
            return
        self._ping = self.loop.call_later(interval, self._ping_due)

    def _ping_due(self) -> None:
        self._ping = None
        if self.transport.is_closing() or self.running == 0:
            return
        now = time.monotonic()
        if self._ping_sent:
            if now - self._ping_sent >= self.limits.ping_timeout:  # the peer is gone: free its streams
                self.abort(ErrorCodes.NO_ERROR)
                return
        elif now - self._last_input >= self.limits.ping_interval:
            self._ping_sent = now
            self._call(self.conn.ping, b"edge-kap")
        delay = self.limits.ping_timeout if self._ping_sent else self.limits.ping_interval
        self._ping = self.loop.call_later(delay, self._ping_due)

    # ---- output -------------------------------------------------------------------------------

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        try:
            method(*args, **kwargs)
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
            return False
        self._schedule_flush()
        return True

    def _schedule_flush(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        data = self.conn.data_to_send()
        if data and not self.transport.is_closing():
            self.transport.write(data)

    def _write(self, data: bytes) -> None:
        self._flush()
        if not self.transport.is_closing():
            self.transport.write(data)
