"""What one HTTP/2 connection may make the gateway hold, and the answers past it.

`Http2Limits` (`listen.http2` in the config, plus the listener's header, URL and
time limits) is read by the connection (edge/http2/connection.py: frame and
header-block sizes, settings), the session (resets and control frames per
`ABUSE_WINDOW`, timers) and the stream bridge (a request head over the limits
is answered by `refusal`, not handed to the app).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from ..connection_limits import error_response

__all__ = ["ABUSE_WINDOW", "AbuseCounter", "Http2Limits", "refusal", "refused_status"]

ABUSE_WINDOW = 10.0  # seconds over which resets and control frames are counted
_BAD_TARGET = re.compile(rb"[\x00-\x20\x7f-\xff]")  # what HTTP/1.1's parser refuses in a request target


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

    @property
    def hard_header_limit(self) -> int:
        """Past this a header list is not even decoded: the connection is closed (an HPACK
        bomb). Up to it, a header list over `max_header_bytes` gets a 431 on its stream."""
        return 2 * self.max_header_bytes


class AbuseCounter:
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


def refused_status(path: bytes, raw_path: bytes, header_bytes: int, limits: Http2Limits) -> int:
    """The status a request head is refused with (0: none): the same 414, 431 and 400
    that HTTP/1.1's limits answer (edge/connection_limits.py)."""
    if len(path) > limits.max_url_bytes:
        return 414
    if header_bytes + len(path) > limits.max_header_bytes:
        return 431
    if not raw_path.startswith(b"/") or _BAD_TARGET.search(path) is not None:
        return 400
    return 0


def refusal(status: int, limits: Http2Limits) -> Any:
    """The ASGI app that answers a stream refused by `refused_status`."""
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
