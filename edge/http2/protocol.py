"""The listener's protocol class, serving HTTP/2 where the connection asks for it.

uvicorn's server accepts every connection; the class `with_http2` makes decides per
connection: `h2` when TLS negotiated it by ALPN, cleartext `h2c` when a plaintext
connection opens with the HTTP/2 preface (prior knowledge), HTTP/1.1 otherwise (with
every limit of edge/connection_limits.py, unchanged).
"""
from __future__ import annotations

import asyncio
from typing import Any

from .limits import Http2Limits
from .session import Http2Session

__all__ = ["PREFACE", "with_http2"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def with_http2(base: type[asyncio.Protocol], limits: Http2Limits, *, h2c: bool) -> type[asyncio.Protocol]:
    """`base` (the HTTP/1.1 protocol class) serving HTTP/2 where the connection asks for it.

    TLS: ALPN `h2` (offer it with `CertificateReloader.set_alpn_protocols`). Plaintext with
    `h2c`: a connection whose first bytes are the HTTP/2 preface; anything else is HTTP/1.1.
    """
    from ..tls import tls_scope_extension

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
