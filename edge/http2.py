"""HTTP/2 on the public listener, beside uvicorn's HTTP/1.1, on the same socket.

One listener, one process model, one TLS context: uvicorn's server accepts every
connection and `with_http2()` decides per connection which protocol serves it:
`h2` when TLS negotiated it by ALPN, cleartext `h2c` when a plaintext connection
opens with the HTTP/2 preface (prior knowledge), HTTP/1.1 otherwise (with every
limit of edge/connection_limits.py, unchanged). HTTP/2 frames are parsed by the
`h2` library; this module maps streams to ASGI calls of the same app, so routes,
batch, streams, compression, access log and metrics are the protocol-blind app's.

Why not another server: docs/performance.md (Granian and Hypercorn were measured).

What a hostile HTTP/2 client can make the gateway hold is bounded here, before any
work reaches the app (`Http2Limits`, `listen.http2` in the config):

* the decoded header list: over `max_header_bytes` a stream gets our 431 (414 for a
  URL over `max_url_bytes`); over twice that, HPACK decoding stops mid-block and the
  connection is closed (GOAWAY COMPRESSION/ENHANCE_YOUR_CALM) -- an HPACK bomb never
  expands further than that;
* a frame header announcing more than the negotiated frame size, or a header block
  (HEADERS + CONTINUATION) growing past the header limit, closes the connection at
  once instead of being buffered until it is whole;
* concurrent streams: SETTINGS_MAX_CONCURRENT_STREAMS, and the same bound on the
  app calls of a connection still running (a stream the client reset keeps counting
  until its call has ended), so resetting streams cannot multiply work (CVE-2023-44487);
  a stream opened and reset within one read is never handed to the app at all;
* client resets and control frames (PING, SETTINGS, PRIORITY, unknown) per 10 s:
  past `max_resets` / `max_control_frames` the connection gets GOAWAY ENHANCE_YOUR_CALM;
* request body bytes buffered: the stream and connection flow-control windows; data
  is acknowledged only when the app has taken it;
* response bytes: written only as the client's window allows, one app message per
  stream at a time; a stream whose window stays shut `stalled_stream_timeout` is reset;
  while the socket's write buffer is full the connection stops reading, so a client
  that sends PINGs or SETTINGS without reading the answers cannot grow it;
* time: the preface and every header block must arrive within `header_timeout`, a
  request body within `body_timeout` of its headers (408), an idle connection is
  closed after `keep_alive_timeout`; while streams are open and the peer is silent,
  a PING every `ping_interval` checks it is still there.

SIGTERM: `shutdown()` sends GOAWAY naming the last stream taken, refuses newer
streams (REFUSED_STREAM, safe to retry) and closes once the open streams have ended;
uvicorn's drain timeout cancels calls that take longer, as for HTTP/1.1.
"""
from __future__ import annotations

import asyncio
import collections
import re
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import unquote

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from hpack.table import HeaderTable
from hyperframe.frame import GoAwayFrame
from uvicorn.protocols.utils import get_local_addr, get_remote_addr

from .connection_limits import LINGER, error_response

__all__ = ["PREFACE", "Http2Limits", "Http2Session", "with_http2"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ABUSE_WINDOW = 10.0  # seconds over which resets and control frames are counted
_BAD_TARGET = re.compile(rb"[\x00-\x20\x7f-\xff]")  # what HTTP/1.1's parser refuses in a request target
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"})
_CONTROL_EVENTS = (h2.events.PingReceived, h2.events.RemoteSettingsChanged, h2.events.PriorityUpdated,
                   h2.events.UnknownFrameReceived)


@dataclass(frozen=True)
class Http2Limits:
    max_header_bytes: int
    max_url_bytes: int
    header_timeout: float
    body_timeout: float
    keep_alive_timeout: float
    max_concurrent_streams: int = 100
    stream_window: int = 256 * 1024
    connection_window: int = 1024 * 1024
    max_frame_size: int = 16384
    max_resets: int = 200
    max_control_frames: int = 1000
    ping_interval: float | None = 30.0
    ping_timeout: float = 15.0
    stalled_stream_timeout: float = 30.0


def _hpack_int(value: int, prefix_bits: int, first: int) -> bytes:
    """RFC 7541 5.1 integer with an N-bit prefix; `first` holds the representation's flag bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class PlainHeaderEncoder:
    """HPACK for responses without the dynamic table and without Huffman coding.

    hpack's Encoder searches and grows the dynamic table for every header of every
    response (x-request-id and date never repeat, so that work buys nothing) and
    Huffman-codes each string in Python: measured at ~45 us per response. This one
    uses the static table for names (and the few full matches) and writes everything
    else as a literal "without indexing": a few microseconds. Its first block (and
    the first after the peer changes SETTINGS_HEADER_TABLE_SIZE) starts with a
    table-size update to 0, so it never has to track a table the peer may shrink.
    """

    __slots__ = ("_size_update",)

    # The static table's encodings, shared by every connection: full matches, then names.
    _full: dict[tuple[bytes, bytes], bytes] = {}
    _names: dict[bytes, bytes] = {}
    for _index, (_name, _value) in enumerate(HeaderTable.STATIC_TABLE, start=1):
        _full.setdefault((_name, _value), _hpack_int(_index, 7, 0x80))
        _names.setdefault(_name, _hpack_int(_index, 4, 0x00))
    del _index, _name, _value

    def __init__(self) -> None:
        self._size_update = True

    @property
    def header_table_size(self) -> int:
        return 0

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        self._size_update = True

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        out = [b"\x20"] if self._size_update else []  # dynamic table size update: 0
        self._size_update = False
        full, names = self._full, self._names
        for header in headers:
            name, value = header[0], header[1]
            indexed = full.get((name, value))
            if indexed is not None:
                out.append(indexed)
                continue
            prefix = names.get(name)
            if prefix is None:
                out.append(b"\x00")
                out.append(_hpack_int(len(name), 7, 0) + name)
            else:
                out.append(prefix)
            out.append(_hpack_int(len(value), 7, 0) + value)
        return b"".join(out)


class _Values(list):
    """A setting's current value and the values waiting for acknowledgement.

    h2 keeps these in `collections.deque`s: an empty-ish deque costs ~760 bytes (one
    64-slot block), and a connection has ~13 of them (local and remote settings), most of
    an idle h2c connection's footprint. A one- or two-item list does the same job here.
    """

    __slots__ = ()

    def popleft(self) -> int | None:
        return self.pop(0)


class _DynamicEntries(list):
    """hpack's dynamic table entries in a list (newest first) instead of a 760-byte deque.

    At most SETTINGS_HEADER_TABLE_SIZE / 32 entries (128 at the default 4 KiB), so
    inserting at the front costs nothing that matters, and most clients' tables stay small.
    """

    __slots__ = ()

    def appendleft(self, entry: tuple[bytes, bytes]) -> None:
        self.insert(0, entry)


_SETTLED: dict[int, tuple[int]] = {}  # one shared `(value,)` per value: what most settings stay at


class CompactSettings(h2.settings.Settings):
    """h2's Settings without a deque per setting; same values, same validation.

    A setting with nothing pending is a shared one-item tuple (h2 reads `[0]` and `len`);
    a write turns it into a `_Values` list, which acknowledge() pops as it pops a deque.
    """

    def __init__(self, client: bool = True, initial_values: dict | None = None) -> None:
        super().__init__(client=client, initial_values=initial_values)
        self._settings = {key: _SETTLED.setdefault(values[0], (values[0],)) for key, values in self._settings.items()}

    def __setitem__(self, key: Any, value: int) -> None:
        current = self._settings.get(key)
        if current is not None and type(current) is not _Values:
            self._settings[key] = _Values(current)
        super().__setitem__(key, value)  # validates; a new key gets a deque([None, value])
        if type(self._settings[key]) is not _Values:
            self._settings[key] = _Values(self._settings[key])


class _FrameDispatch:
    """h2's frame-type -> handler table, bound on lookup instead of a dict of a dozen bound
    methods built per connection (~1.2 KB each)."""

    __slots__ = ("_conn",)
    _names = {kind: handler.__name__ for kind, handler in
              h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))._frame_dispatch_table.items()}

    def __init__(self, conn: h2.connection.H2Connection) -> None:
        self._conn = conn

    def __getitem__(self, kind: type) -> Callable[..., Any]:
        return getattr(self._conn, self._names[kind])


class _Stream:
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


class _Counter:
    """Events in the current ABUSE_WINDOW seconds."""

    __slots__ = ("start", "count")

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.count = 0

    def add(self) -> int:
        now = time.monotonic()
        if now - self.start > ABUSE_WINDOW:
            self.start, self.count = now, 0
        self.count += 1
        return self.count


class Http2Session:
    """One HTTP/2 connection: frames in, ASGI calls out. Driven by the protocol object.

    Slotted, and nothing per connection that an idle one does not need (an asyncio.Event
    holds a 760-byte deque): idle connections are what a mobile edge holds most of.
    """

    __slots__ = ("protocol", "transport", "limits", "app", "loop", "root_path", "state", "tasks", "default_headers",
                 "server", "client", "scheme", "extensions", "streams", "running", "closing", "aborted", "last_stream",
                 "resets", "controls", "_unpaused", "_flush_pending", "_read_paused", "_timer", "_timer_kind", "_ping",
                 "_ping_sent", "_last_input", "conn", "hard_header_limit")

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
        self.streams: dict[int, _Stream] = {}
        self.running = 0  # app calls not yet ended, reset streams included
        self.closing = False  # GOAWAY sent: no new streams
        self.aborted = False  # closed for a protocol error or abuse: input is ignored
        self.last_stream = 0
        self.resets = _Counter()
        self.controls = _Counter()
        self._unpaused: asyncio.Event | None = None  # only while the socket's write buffer is full
        self._flush_pending = False
        self._read_paused = False
        self._timer: asyncio.TimerHandle | None = None  # preface/header block, or idle
        self._timer_kind = ""
        self._ping: asyncio.TimerHandle | None = None
        self._ping_sent = 0.0
        self._last_input = time.monotonic()

        cfg = h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_inbound_headers=True,
            normalize_inbound_headers=True, validate_outbound_headers=False, normalize_outbound_headers=False)
        conn = self.conn = h2.connection.H2Connection(cfg)
        conn.encoder = PlainHeaderEncoder()
        self.hard_header_limit = 2 * limits.max_header_bytes
        # In force from the first frame (h2 would otherwise apply them only once the client acknowledges).
        conn.remote_settings = CompactSettings(client=True)  # the client's: RFC 9113 defaults until it says
        conn.local_settings = CompactSettings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: self.hard_header_limit,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: limits.stream_window,
            h2.settings.SettingCodes.MAX_FRAME_SIZE: limits.max_frame_size,
            h2.settings.SettingCodes.ENABLE_PUSH: 0,
        })
        conn.decoder.max_header_list_size = self.hard_header_limit
        conn.decoder.header_table.dynamic_entries = _DynamicEntries()
        conn._frame_dispatch_table = _FrameDispatch(conn)
        conn.max_inbound_frame_size = limits.max_frame_size
        conn.initiate_connection()
        if limits.connection_window > 65535:
            conn.increment_flow_control_window(limits.connection_window - 65535)
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
        if self._buffered_input_too_large():
            self.abort(ErrorCodes.ENHANCE_YOUR_CALM)
            return
        started: list[_Stream] = []
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

    def _buffered_input_too_large(self) -> bool:
        """A frame announced over the frame size, or a header block over the hard limit, still arriving.

        h2 checks a frame's length only once the whole frame is buffered, and joins CONTINUATION frames
        (up to 64) before decoding; both would let one connection park megabytes here.
        """
        buffer = getattr(self.conn, "incoming_buffer", None)
        pending = getattr(buffer, "_data", b"")
        if len(pending) >= 9 and int.from_bytes(pending[:3], "big") > self.limits.max_frame_size:
            return True
        blocks = getattr(buffer, "_headers_buffer", ())
        return bool(blocks) and sum(len(f.data) for f in blocks) > self.hard_header_limit

    def _after_input(self) -> None:
        """Arm the right connection timer: head (a frame or header block incomplete) or idle."""
        buffer = getattr(self.conn, "incoming_buffer", None)
        incomplete = bool(getattr(buffer, "_data", b"")) or bool(getattr(buffer, "_headers_buffer", ())) \
            or bool(getattr(buffer, "_preamble_len", 0))
        if incomplete:
            if self._timer_kind != "head":
                self._arm(self.limits.header_timeout, "head")
        elif not self.streams and self.running == 0:
            if self._timer_kind != "idle":
                self._arm(self.limits.keep_alive_timeout, "idle")
        else:
            self._disarm()
        self._arm_ping()

    def _request(self, event: h2.events.RequestReceived) -> _Stream | None:
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
        stream = _Stream(stream_id, scope, more, method == b"HEAD")
        self.streams[stream_id] = stream
        limits = self.limits
        if len(path) > limits.max_url_bytes:
            stream.refused_status = 414
        elif size + len(path) > limits.max_header_bytes:
            stream.refused_status = 431
        elif not raw_path.startswith(b"/") or _BAD_TARGET.search(path) is not None:
            stream.refused_status = 400
        if more:
            stream.timer = self.loop.call_later(limits.body_timeout, self._body_timed_out, stream)
        return stream

    def _start(self, stream: _Stream) -> None:
        self.running += 1
        if stream.refused_status:
            app = _refusal(stream.refused_status, self.limits)
        else:
            app = self.app
        task = self.loop.create_task(self._run(app, stream))
        stream.task = task
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

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

    # ---- the ASGI call ------------------------------------------------------------------------

    async def _run(self, app: Any, stream: _Stream) -> None:
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

    def _finished(self, stream: _Stream) -> None:
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

    async def _receive(self, stream: _Stream) -> dict[str, Any]:
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

    async def _send(self, stream: _Stream, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
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

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        try:
            method(*args, **kwargs)
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
            return False
        self._schedule_flush()
        return True

    def _ended(self, stream: _Stream) -> None:
        """Our END_STREAM is out. A client still sending a body (an early answer) is told to stop."""
        stream.ended = True
        if stream.more:
            self._reset(stream.id, ErrorCodes.NO_ERROR)
        stream.closed = True
        stream.event.set()

    def _respond(self, stream: _Stream, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """A whole answer the gateway writes itself (a timeout, a refusal)."""
        stream.response_started = True
        head = [(b":status", str(status).encode()), *headers, *self.default_headers]
        if not self._call(self.conn.send_headers, stream.id, head, end_stream=False):
            return
        if self.conn.local_flow_control_window(stream.id) >= len(body):
            self._call(self.conn.send_data, stream.id, body, end_stream=True)
            self._ended(stream)

    def _body_timed_out(self, stream: _Stream) -> None:
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


def _refusal(status: int, limits: Http2Limits) -> Any:
    message = {
        414: f"request URL exceeds the limit of {limits.max_url_bytes} bytes",
        431: f"request line and headers exceed the limit of {limits.max_header_bytes} bytes",
        400: "malformed HTTP request: invalid character in :path",
    }[status]
    headers, body = error_response(status, message)

    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": list(headers)})
        await send({"type": "http.response.body", "body": body})

    return refuse


def with_http2(base: type[asyncio.Protocol], limits: Http2Limits, *, h2c: bool) -> type[asyncio.Protocol]:
    """`base` (the HTTP/1.1 protocol class) serving HTTP/2 where the connection asks for it.

    TLS: ALPN `h2` (offer it with `CertificateReloader.set_alpn_protocols`). Plaintext with
    `h2c`: a connection whose first bytes are the HTTP/2 preface; anything else is HTTP/1.1.
    """
    from .tls import tls_scope_extension

    class Http1Or2(base):  # type: ignore[valid-type, misc]
        __slots__ = ("_edge_h2", "_edge_sniff")  # slots: see Guarded in edge/connection_limits.py

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._edge_h2: Http2Session | None = None
            self._edge_sniff: bytes | None = None  # plaintext: the first bytes, until they decide

        def connection_made(self, transport: Any) -> None:
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
                self._edge_become_h2(transport, tls_scope_extension(ssl_object))
                return
            super().connection_made(transport)
            if ssl_object is None and h2c:
                self._edge_sniff = b""

        def data_received(self, data: bytes) -> None:
            if self._edge_h2 is not None:
                self._edge_h2.data_received(data)
                return
            if self._edge_sniff is not None:
                data = self._edge_sniff + data
                if len(data) < len(PREFACE) and PREFACE.startswith(data):
                    self._edge_sniff = data  # the head timer of HTTP/1.1 still runs
                    return
                self._edge_sniff = None
                if data.startswith(PREFACE):
                    self._edge_disarm()  # HTTP/1.1's head timer
                    if self.timeout_keep_alive_task is not None:
                        self.timeout_keep_alive_task.cancel()
                        self.timeout_keep_alive_task = None
                    self._edge_become_h2(getattr(self.transport, "wrapped", self.transport), None)
                    self._edge_h2.data_received(data)  # type: ignore[union-attr]
                    return
            super().data_received(data)

        def _edge_become_h2(self, transport: Any, tls: dict | None) -> None:
            self.transport = transport
            self.connections.add(self)
            # HTTP/1.1's per-connection state is never used again: its parser, pipeline deque and
            # flow control (an asyncio.Event) would stay for the connection's life.
            self.parser = self.pipeline = self.flow = None
            self._edge_h2 = Http2Session(self, transport, limits, self.app, tls)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._edge_h2 is None:
                super().connection_lost(exc)
                return
            self.connections.discard(self)
            self._edge_h2.connection_lost()

        def eof_received(self) -> Any:
            if self._edge_h2 is None:
                return super().eof_received()
            return None

        def shutdown(self) -> None:
            if self._edge_h2 is None:
                super().shutdown()
            else:
                self._edge_h2.shutdown()

        def pause_writing(self) -> None:
            if self._edge_h2 is None:
                super().pause_writing()
            else:
                self._edge_h2.pause_writing()

        def resume_writing(self) -> None:
            if self._edge_h2 is None:
                super().resume_writing()
            else:
                self._edge_h2.resume_writing()

    Http1Or2.alpn_protocols = ["h2", "http/1.1"]  # read by edge.tls.apply_to_uvicorn's context factory
    Http1Or2.__name__ = Http1Or2.__qualname__ = f"Http2{base.__name__}"
    return Http1Or2
