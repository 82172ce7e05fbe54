"""The public ASGI application: one request's way through the gateway.

`GatewayApp.__call__` reads top to bottom as the pipeline: request id, the
gateway's own endpoints, route lookup, body, transcoding, the backend call,
the reply. Every failure on the way is a client error in the common JSON
shape, or a 500 that carries the request id (details only in the log).
"""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl, quote

from transcoding import errors
from transcoding.invoker import parse_timeout
from transcoding.routes import Route

from .backends import BackendRegistry
from .config import GatewayConfig
from .http import (
    JSON_CONTENT_TYPE,
    ClientDisconnected,
    RawHeaders,
    Receive,
    Scope,
    Send,
    error_response_parts,
    header_dict,
    json_bytes,
    read_body,
    request_id_from,
    send_response,
)
from .proxy import decode_ndjson_requests, decode_request, forward_stream, forward_unary, iterate

log = logging.getLogger("edge.app")


class GatewayApp:
    """The public listener's ASGI app. The registry is started by the ASGI
    lifespan (or by the caller beforehand), so each worker process owns its
    own channels and route table."""

    def __init__(self, config: GatewayConfig, registry: BackendRegistry | None = None) -> None:
        self.config = config
        self.registry = registry or BackendRegistry(config)
        self._owns_registry = registry is None
        self._forward = frozenset(config.transcoding.forward_headers)
        self.draining = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.handle_http(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self._owns_registry:
                        await self.registry.start()
                except Exception as exc:  # report start-up failure to the server, do not hang
                    log.exception("gateway start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._owns_registry:
                    await self.registry.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def handle_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = header_dict(scope["headers"])
        request_id = request_id_from(headers)
        id_header = (b"x-request-id", request_id.encode())
        path: str = scope["path"]
        try:
            if path == "/healthz":
                return await self._health(send, id_header)
            if path == "/readyz":
                return await self._ready(send, id_header)
            table = self.registry.table  # this request's table, whatever reloads happen meanwhile
            route, bindings = table.lookup(scope["method"], _raw_path(scope))
            await self._transcode(scope, receive, send, headers, request_id, id_header, route, bindings)
        except ClientDisconnected:
            return
        except Exception as exc:
            if not isinstance(exc, errors.TranscodeError):
                log.exception("unexpected failure serving request %s", request_id)
            status, out_headers, body = error_response_parts(exc, request_id)
            out_headers.append(id_header)
            await send_response(send, status, out_headers, body)

    async def _transcode(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[str, str],
        request_id: str,
        id_header: tuple[bytes, bytes],
        route: Route,
        bindings: list[tuple[tuple[str, ...], str]],
    ) -> None:
        backend = self.registry.backends[route.backend].config
        timeout = _deadline(headers, backend.timeout, backend.max_timeout)
        query = _query(scope["query_string"])
        body = await read_body(receive, headers, self.config.transcoding.max_body_bytes)
        content_type = headers.get("content-type")
        if route.client_streaming:
            request: Any = iterate(decode_ndjson_requests(route, bindings, query, body))
        else:
            request = decode_request(route, bindings, query, body, content_type)
        metadata = self._metadata(headers, request_id)
        response_metadata = self.config.transcoding.response_metadata
        if route.server_streaming:
            await forward_stream(
                route, request, send, receive,
                timeout=timeout, metadata=metadata, response_metadata=response_metadata, extra_headers=[id_header],
            )
            return
        outcome = await forward_unary(route, request, timeout=timeout, metadata=metadata, response_metadata=response_metadata)
        outcome.headers.append(id_header)
        await send_response(send, outcome.status, outcome.headers, outcome.body)

    def _metadata(self, headers: dict[str, str], request_id: str) -> list[tuple[str, str]]:
        metadata = [("x-request-id", request_id)]
        for name in self._forward:
            if name != "x-request-id" and name in headers:
                metadata.append((name, headers[name]))
        return metadata

    async def _health(self, send: Send, id_header: tuple[bytes, bytes]) -> None:
        await send_response(send, 200, [(b"content-type", JSON_CONTENT_TYPE), id_header], b'{"status":"ok"}')

    async def _ready(self, send: Send, id_header: tuple[bytes, bytes]) -> None:
        ready = self.registry.ready() and not self.draining
        body = {"status": "ready" if ready else "not ready", "backends": self.registry.status(), "draining": self.draining}
        await send_response(send, 200 if ready else 503, [(b"content-type", JSON_CONTENT_TYPE), id_header], json_bytes(body))


def _raw_path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    if raw:
        return raw.decode("latin-1")
    return quote(scope["path"])


def _query(query_string: bytes) -> list[tuple[str, str]]:
    if not query_string:
        return []
    try:
        return parse_qsl(query_string.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise errors.BadRequest("query string is not valid UTF-8 after percent-decoding") from None


def _deadline(headers: dict[str, str], default: float, maximum: float) -> float:
    """The backend's default deadline, shortened (never lengthened past the maximum) by the client."""
    for name in ("grpc-timeout", "x-request-timeout"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            requested = parse_timeout(value)
        except ValueError as exc:
            raise errors.BadRequest(f"{name} header: {exc}", field=name) from None
        if requested <= 0:
            raise errors.BadRequest(f"{name} header must be positive", field=name)
        return min(requested, maximum)
    return default
