"""A frame-level HTTP/2 client for tests that must send what a well-behaved client never would.

Frames are built with hyperframe and header blocks with hpack, so a test controls every
byte (stream ids, flags, HPACK table use); replies are parsed with hyperframe too.
"""
from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass, field

import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ENHANCE_YOUR_CALM = 0xB
CANCEL = 0x8
REFUSED_STREAM = 0x7
NO_ERROR = 0x0


@dataclass
class Reply:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    ended: bool = False
    reset: int | None = None  # RST_STREAM error code


class RawH2:
    def __init__(self, port: int, *, tls: ssl.SSLContext | None = None, settings: dict[int, int] | None = None,
                 timeout: float = 10.0, authority: str = "127.0.0.1", auto_window: bool = True) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        self.authority = authority
        self.auto_window = auto_window  # give back flow-control window for every DATA frame read
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 24
        self.replies: dict[int, Reply] = {}
        self.goaway: GoAwayFrame | None = None
        self.closed = False
        self.pings_acked = 0
        self.settings: dict[int, int] = {}
        self._buffer = b""
        self._headers: dict[int, bytes] = {}
        self.next_stream = 1
        self.sent = 0
        self.send(PREFACE + SettingsFrame(0, settings=settings or {}).serialize())

    # ---- sending ------------------------------------------------------------------------------

    def send(self, data: bytes) -> bool:
        """False once the server has closed (the bytes were not all taken)."""
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True
            return False
        self.sent += len(data)
        return True

    def block(self, path: str, method: str = "GET", extra: list[tuple[str, str]] | None = None) -> bytes:
        headers = [(":method", method), (":scheme", "http"), (":authority", self.authority), (":path", path)]
        return self.encoder.encode(headers + (extra or []))

    def headers_frame(self, stream_id: int, block: bytes, *, end_stream: bool = True, end_headers: bool = True,
                      frame_size: int = 16384) -> bytes:
        """HEADERS, followed by CONTINUATION frames when the block is over `frame_size`."""
        pieces = [block[i:i + frame_size] for i in range(0, len(block), frame_size)] or [b""]
        frame = HeadersFrame(stream_id, data=pieces[0])
        if end_stream:
            frame.flags.add("END_STREAM")
        if end_headers and len(pieces) == 1:
            frame.flags.add("END_HEADERS")
        out = frame.serialize()
        for index, piece in enumerate(pieces[1:], start=2):
            out += self.continuation(stream_id, piece, end_headers=end_headers and index == len(pieces))
        return out

    def request(self, path: str, method: str = "GET", extra: list[tuple[str, str]] | None = None,
                body: bytes | None = None, end_stream: bool = True) -> int:
        stream_id = self.new_stream()
        data = self.headers_frame(stream_id, self.block(path, method, extra), end_stream=end_stream and body is None)
        if body is not None:
            frame = DataFrame(stream_id, data=body)
            if end_stream:
                frame.flags.add("END_STREAM")
            data += frame.serialize()
        self.send(data)
        return stream_id

    def new_stream(self) -> int:
        stream_id = self.next_stream
        self.next_stream += 2
        return stream_id

    @staticmethod
    def rst(stream_id: int, code: int = CANCEL) -> bytes:
        return RstStreamFrame(stream_id, error_code=code).serialize()

    @staticmethod
    def ping(payload: bytes = b"12345678") -> bytes:
        return PingFrame(0, opaque_data=payload).serialize()

    @staticmethod
    def settings_frame(settings: dict[int, int] | None = None) -> bytes:
        return SettingsFrame(0, settings=settings or {}).serialize()

    @staticmethod
    def window_update(stream_id: int, increment: int) -> bytes:
        return WindowUpdateFrame(stream_id, window_increment=increment).serialize()

    @staticmethod
    def continuation(stream_id: int, block: bytes, *, end_headers: bool = False) -> bytes:
        frame = ContinuationFrame(stream_id, data=block)
        if end_headers:
            frame.flags.add("END_HEADERS")
        return frame.serialize()

    # ---- receiving ----------------------------------------------------------------------------

    def read(self, timeout: float = 5.0) -> bool:
        """Read and handle whatever arrives within `timeout`; False once the server has closed."""
        if self.closed:
            return False
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            return True
        except OSError:
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self._buffer += chunk
        self._parse()
        return True

    def read_until(self, done, timeout: float = 10.0) -> bool:
        """Read until `done()` is true (True) or `timeout` passes / the server closes (done() then)."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0 or not self.read(min(left, 1.0)):
                return done()
        return True

    def response(self, stream_id: int, timeout: float = 10.0) -> Reply:
        self.read_until(lambda: self.reply(stream_id).ended or self.reply(stream_id).reset is not None, timeout)
        return self.reply(stream_id)

    def reply(self, stream_id: int) -> Reply:
        return self.replies.setdefault(stream_id, Reply())

    def wait_closed(self, timeout: float = 10.0) -> bool:
        """True if the server closed the connection within `timeout` (reading everything it sent)."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self.read(min(1.0, max(0.01, deadline - time.monotonic())))
        return self.closed

    def _parse(self) -> None:
        while len(self._buffer) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(self._buffer[:9]))
            if len(self._buffer) < 9 + length:
                return
            frame.parse_body(memoryview(self._buffer[9:9 + length]))
            self._buffer = self._buffer[9 + length:]
            self._handle(frame)

    def _handle(self, frame: Frame) -> None:
        if isinstance(frame, SettingsFrame):
            if "ACK" not in frame.flags:
                self.settings.update(frame.settings)
                self.send(SettingsFrame(0, flags=["ACK"]).serialize())
        elif isinstance(frame, PingFrame):
            if "ACK" in frame.flags:
                self.pings_acked += 1
            else:
                self.send(PingFrame(0, flags=["ACK"], opaque_data=frame.opaque_data).serialize())
        elif isinstance(frame, GoAwayFrame):
            self.goaway = frame
        elif isinstance(frame, (HeadersFrame, ContinuationFrame)):
            block = self._headers.get(frame.stream_id, b"") + frame.data
            if "END_HEADERS" not in frame.flags:
                self._headers[frame.stream_id] = block
                return
            self._headers.pop(frame.stream_id, None)
            reply = self.reply(frame.stream_id)
            for name, value in self.decoder.decode(block):
                if name == ":status":
                    reply.status = int(value)
                else:
                    reply.headers[name] = value
            if "END_STREAM" in frame.flags:
                reply.ended = True
        elif isinstance(frame, DataFrame):
            reply = self.reply(frame.stream_id)
            reply.body += frame.data
            if frame.flow_controlled_length and self.auto_window:  # keep both windows open
                self.send(WindowUpdateFrame(0, window_increment=frame.flow_controlled_length).serialize()
                          + WindowUpdateFrame(frame.stream_id, window_increment=frame.flow_controlled_length).serialize())
            if "END_STREAM" in frame.flags:
                reply.ended = True
        elif isinstance(frame, RstStreamFrame):
            self.reply(frame.stream_id).reset = frame.error_code

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
