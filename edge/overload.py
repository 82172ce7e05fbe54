"""Load shedding: a cap on the requests one process serves at once.

Without it, a gateway past its capacity accepts everything: each request holds a
task, a backend call and its buffers while it waits, latency grows with the
queue and memory with the offered load, until clients time out and retry into
the same queue. With `overload.max_inflight`, a request that arrives while the
process already serves that many is answered 503 (gRPC UNAVAILABLE) with
Retry-After at once, before routing, auth or reading its body, so the requests
admitted keep their latency and the process recovers as soon as the load drops.
Health endpoints are never shed: a load balancer must see the process alive.
"""
from __future__ import annotations

import math

from .http import JSON_CONTENT_TYPE, Send, json_bytes

__all__ = ["LoadShedder"]


class LoadShedder:
    """Counts requests in flight; `admit()` or answer with `refuse()`."""

    __slots__ = ("limit", "inflight", "shed", "_headers", "_body")

    def __init__(self, limit: int, retry_after: float) -> None:
        self.limit = limit
        self.inflight = 0
        self.shed = 0  # requests refused so far
        self._body = json_bytes({
            "code": 14,
            "message": f"the gateway is overloaded ({limit} requests in flight in this process); retry later",
            "details": [],
        })
        self._headers = [(b"content-type", JSON_CONTENT_TYPE), (b"retry-after", str(math.ceil(retry_after)).encode()),
                         (b"content-length", str(len(self._body)).encode())]

    def admit(self) -> bool:
        """Take a slot, or False when all are taken (the caller must then `refuse`)."""
        if self.inflight >= self.limit:
            self.shed += 1
            return False
        self.inflight += 1
        return True

    def release(self) -> None:
        self.inflight -= 1

    def answer(self, request_id_header: tuple[bytes, bytes]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The 503: status, headers and body (a WebSocket handshake answers it too)."""
        return 503, [*self._headers, request_id_header], self._body

    async def refuse(self, send: Send, request_id_header: tuple[bytes, bytes]) -> None:
        status, headers, body = self.answer(request_id_header)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
