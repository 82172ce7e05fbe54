"""Limits on what one client connection may send, which uvicorn's httptools server lacks.

Out of the box, httptools buffers a request head of any size (a 2 MB header block is
read and handed on), a connection that sends a byte a second (slowloris) is held open
for ever -- uvicorn's keep-alive timer runs only between requests -- and a malformed
request gets a plain-text 400 that does not say what was wrong. `guarded_protocol()`
subclasses the protocol class to add, per connection:

* a head size limit (request line + headers): 414 when the URL alone is over
  `max_url_bytes`, else 431; a head still arriving is cut off as soon as it is over,
  so a connection never holds more than the limit plus one socket read;
* a head timeout, from the opening of the connection (or the first byte of a
  keep-alive request) to the end of the head: 408;
* a body timeout, from the end of the head to the end of the body: 408 while no
  answer has started (the request is abandoned, its backend call never made);
* a 400 that names the parser's complaint (e.g. Content-Length with Transfer-Encoding).

A connection closed while its peer is not taking the bytes still queued for it (a client
that stopped reading: a WebSocket let go after `send_timeout`, or any answer) is reset once
`STALLED_CLOSE` seconds pass without progress, instead of being kept for as long as the
peer keeps its receive window shut.

Every refusal answers in the gateway's JSON error shape and closes the connection,
so the rest of the request is never read. The same goes for any answer that starts
before the request body has ended (a 413 for a body over the limit): it says
`Connection: close`, where uvicorn would keep reading and discarding the body to
keep the connection. Closing a socket that still has unread input sends an RST,
which can destroy the answer on its way, so such a close stops reading, lingers
`LINGER` seconds for the answer to get out, then closes.

Request smuggling needs no code here: llhttp (httptools) refuses Content-Length
together with Transfer-Encoding, repeated Content-Length and malformed chunking
before any of it reaches the application.
"""
from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from typing import Any, Callable

import orjson
import uvicorn
from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .http import new_request_id

__all__ = ["ConnectionLimits", "error_response", "guarded_protocol", "limit_connections"]

LINGER = 0.5
# A closed connection still holding bytes its peer takes none of (a client that stopped reading)
# is reset once this long passes without progress: asyncio would keep it, its buffer and its
# kernel send queue for as long as the peer keeps its window shut, which may be for ever.
STALLED_CLOSE = 10.0
_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 414: b"URI Too Long", 431: b"Request Header Fields Too Large"}
_CODES = {400: 3, 408: 4, 414: 3, 431: 3, 500: 13}  # google.rpc codes: INVALID_ARGUMENT, DEADLINE_EXCEEDED, INTERNAL
_CLOSE = (b"connection", b"close")


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int
    max_url_bytes: int
    header_timeout: float
    body_timeout: float
    keep_alive_timeout: float


def limit_connections(config: uvicorn.Config, limits: ConnectionLimits) -> None:
    """Make an (unloaded) uvicorn config serve every connection with `limits`."""
    http = config.http
    base = import_from_string(HTTP_PROTOCOLS.get(http, http)) if isinstance(http, str) else http
    config.http = guarded_protocol(base, limits)
    config.timeout_keep_alive = limits.keep_alive_timeout  # type: ignore[assignment]  # a float works


def error_response(status: int, message: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of a refusal in the gateway's JSON error shape (no framing headers)."""
    body = orjson.dumps({"code": _CODES[status], "message": message, "details": []})
    headers = [(b"content-type", b"application/json"), (b"x-request-id", new_request_id().encode()),
               (b"content-length", str(len(body)).encode())]
    return headers, body


def _error(status: int, message: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    headers, body = error_response(status, message)
    headers.insert(2, _CLOSE)
    return headers, body


def _refusal(status: int, message: str) -> Any:
    """An ASGI app answering `status` for a request whose head arrived whole but too big."""
    headers, body = _error(status, message)

    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": list(headers)})
        await send({"type": "http.response.body", "body": body})

    return refuse


class _LingeringTransport:
    """A transport whose close waits `LINGER` seconds (not reading) while input may be pending."""

    __slots__ = ("_transport", "_pending", "_closing")

    def __init__(self, transport: asyncio.Transport, pending: Callable[[], bool]) -> None:
        self._transport = transport
        self._pending = pending
        self._closing = False

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        left = self._transport.get_write_buffer_size()
        if left:  # only then can the close stall (the timer keeps this object until it fires)
            asyncio.get_running_loop().call_later(STALLED_CLOSE, self._reset_if_stalled, left)
        if not self._pending():
            self._transport.close()
            return
        self._transport.pause_reading()
        asyncio.get_running_loop().call_later(LINGER, self._transport.close)

    def _reset_if_stalled(self, before: int) -> None:
        left = self._transport.get_write_buffer_size()
        if not left:  # sent (and closed) meanwhile
            return
        if left >= before:  # not a byte taken since the last look
            self._transport.abort()
            return
        asyncio.get_running_loop().call_later(STALLED_CLOSE, self._reset_if_stalled, left)

    def is_closing(self) -> bool:
        return self._closing or self._transport.is_closing()

    def pause_reading(self) -> None:
        if not self._closing:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if not self._closing:
            self._transport.resume_reading()

    @property
    def wrapped(self) -> asyncio.Transport:
        """The transport underneath (edge/http2/ hands it to an h2c session)."""
        return self._transport

    def __getattr__(self, name: str) -> Any:  # everything else as the real transport has it
        return getattr(self._transport, name)


def guarded_protocol(base: type[asyncio.Protocol], limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """`base` (uvicorn's httptools protocol or a subclass) with the limits above."""
    if not issubclass(base, HttpToolsProtocol):
        raise TypeError(f"connection limits need uvicorn's httptools protocol, not {base.__name__}")
    url_too_long = _refusal(414, f"request URL exceeds the limit of {limits.max_url_bytes} bytes")
    head_too_large = _refusal(431, f"request line and headers exceed the limit of {limits.max_header_bytes} bytes")

    class Guarded(base):  # type: ignore[valid-type, misc]
        # Slots, not instance attributes: uvicorn's protocol already sets 28, and CPython keeps
        # an instance's attributes in a ~300-byte shared-key dict only up to 29 keys (1.5 KiB
        # from 30 on), per connection.
        __slots__ = ("_edge_timer", "_edge_in_head", "_edge_head_bytes")

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._edge_timer: asyncio.TimerHandle | None = None
            self._edge_in_head = True  # between requests or inside a head; False inside a body
            self._edge_head_bytes = 0  # bytes received since the current head began

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(_LingeringTransport(transport, self._edge_input_pending))  # type: ignore[arg-type]
            self._edge_arm(limits.header_timeout, self._edge_head_timed_out)

        def connection_lost(self, exc: Exception | None) -> None:
            self._edge_disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._edge_in_head:
                self._edge_head_bytes += len(data)
            super().data_received(data)
            if self.transport.is_closing():
                return
            if not self._edge_in_head:  # inside a body: it has body_timeout to arrive whole
                if self._edge_timer is None:
                    self._edge_arm(limits.body_timeout, self._edge_body_timed_out)
            elif self._edge_head_bytes > limits.max_header_bytes:
                if len(getattr(self, "url", b"")) > limits.max_url_bytes:
                    self._edge_reply(414, f"request URL exceeds the limit of {limits.max_url_bytes} bytes")
                else:
                    self._edge_reply(431, f"request line and headers exceed the limit of {limits.max_header_bytes} bytes")
            elif self._edge_head_bytes and self._edge_timer is None:  # a keep-alive request began
                self._edge_arm(limits.header_timeout, self._edge_head_timed_out)

        def on_headers_complete(self) -> None:
            self._edge_in_head = False
            self._edge_disarm()
            url = self.url
            size, has_body = len(url), False
            for name, value in self.headers:
                size += len(name) + len(value) + 4
                has_body = has_body or name in (b"content-length", b"transfer-encoding")
            refusal = None
            if len(url) > limits.max_url_bytes:
                refusal = url_too_long
            elif size > limits.max_header_bytes:
                refusal = head_too_large
            if refusal is None:
                super().on_headers_complete()
            else:  # the same cycle uvicorn uses for its own 503, with our answer as the app
                app, self.app = self.app, refusal
                try:
                    super().on_headers_complete()
                finally:
                    self.app = app
            if has_body and self.cycle is not None:
                self._edge_close_if_answered_early(self.cycle)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._edge_disarm()
            self._edge_in_head, self._edge_head_bytes = True, 0

        def handle_websocket_upgrade(self) -> None:
            # The connection is a WebSocket's from here on (uvicorn hands the transport to its
            # WebSocket protocol): no head or body timer of this protocol may fire on it.
            super().handle_websocket_upgrade()
            self._edge_disarm()
            self._edge_in_head, self._edge_head_bytes = True, 0

        def send_400_response(self, msg: str) -> None:
            # Called from uvicorn's `except httptools.HttpParserError`: the parser's reason is at hand.
            exc = sys.exc_info()[1]
            reason = str(exc).strip() if exc is not None and str(exc).strip() else msg
            self._edge_reply(400, f"malformed HTTP request: {reason}")

        # ---- internals ----------------------------------------------------------------

        def _edge_input_pending(self) -> bool:
            """May the client still be sending (a head or a body not yet whole)?"""
            if self._edge_in_head:
                return self._edge_head_bytes > 0
            return self.cycle is not None and self.cycle.more_body

        @staticmethod
        def _edge_close_if_answered_early(cycle: Any) -> None:
            """An answer that starts before the body has ended says Connection: close."""
            inner = cycle.send

            async def send(message: Any) -> None:
                if message["type"] == "http.response.start" and cycle.more_body:
                    message = {**message, "headers": [*message.get("headers", ()), _CLOSE]}
                await inner(message)

            cycle.send = send

        def _edge_arm(self, seconds: float, callback: Any) -> None:
            self._edge_disarm()
            self._edge_timer = self.loop.call_later(seconds, callback)

        def _edge_disarm(self) -> None:
            if self._edge_timer is not None:
                self._edge_timer.cancel()
                self._edge_timer = None

        def _edge_head_timed_out(self) -> None:
            self._edge_timer = None
            if self.transport.is_closing():
                return
            if self._edge_head_bytes == 0:  # nothing sent at all: no one to answer
                self.transport.close()
                return
            self._edge_reply(408, f"the request head did not arrive within {limits.header_timeout:g}s")

        def _edge_body_timed_out(self) -> None:
            self._edge_timer = None
            cycle = self.cycle
            if self.transport.is_closing() or cycle is None:
                return
            if cycle.response_started:
                self.transport.close()
                return
            # The app is waiting for the rest of the body: it sees a disconnect and stops.
            cycle.disconnected = True
            cycle.message_event.set()
            self._edge_reply(408, f"the request body did not arrive within {limits.body_timeout:g}s")

        def _edge_reply(self, status: int, message: str) -> None:
            headers, body = _error(status, message)
            lines = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])]
            for name, value in [*self.server_state.default_headers, *headers]:
                lines.append(name + b": " + value + b"\r\n")
            self.transport.write(b"".join(lines) + b"\r\n" + body)
            self.transport.close()

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded
