"""The public ASGI application: one dispatch on the scope's type, then on the request,
to the protocol adapter that serves it (edge/protocols/), each on the one core (edge/core/).

The gateway's own endpoints (`/healthz`, `/readyz`, `/openapi.json`, `/docs`) are
answered here, before any route lookup, auth or limit; so are CORS preflights and
load shedding. The batch endpoint and composed routes are REST endpoints of their own
(edge/batch.py, edge/compose.py, running their items through the REST adapter);
everything else is a REST call. A `websocket` scope would get its own branch in
`__call__`, beside `http` and `lifespan`. Every failure is a client error in the
protocol's error shape, or a 500 that carries the request id (details only in the log).
"""
from __future__ import annotations

import logging
from time import perf_counter
from typing import Any

from .apidocs import DOCS_PATH, OPENAPI_PATH, ApiDocs
from .backends import BackendRegistry
from .batch import BatchEndpoint
from .compose import ComposedRoutes
from .config import GatewayConfig
from .cors import build_cors
from .core import CallRecord, Core
from .http import JSON_CONTENT_TYPE, Receive, Scope, Send, header_dict, json_bytes, request_id_from, send_response
from .observability.observer import RequestObserver
from .overload import LoadShedder
from .protocols.rest import RestAdapter, RestCall, raw_path_of
from .protocols.websocket import WebSocketAdapter, refuse_shed
from .readiness import Readiness
from .runtime import build_runtime

log = logging.getLogger("edge.app")


class GatewayApp:
    """The public listener's ASGI app. `start()` runs from the ASGI lifespan
    (or from the server beforehand), so each worker process owns its own
    channels, route table and store connections."""

    def __init__(self, config: GatewayConfig, registry: BackendRegistry | None = None) -> None:
        self.config = config
        self.registry = registry or BackendRegistry(config)
        self.core: Core | None = None
        self.rest: RestAdapter | None = None
        self.draining = False
        self._closers: list[Any] = []
        self._client_ip = _client_ip_resolver(config)
        self.batch = BatchEndpoint(config.batch) if config.batch is not None else None
        self.compose = ComposedRoutes(config) if config.compose else None
        self.observer: RequestObserver | None = None
        self.docs: ApiDocs | None = None
        self.readiness: Readiness | None = None
        limit = config.overload.max_inflight
        self.shedder = LoadShedder(limit, config.overload.retry_after) if limit is not None else None
        self.cors = build_cors(config)
        self.websocket: WebSocketAdapter | None = None

    async def start(self) -> None:
        runtime = await build_runtime(self.config, self.registry)
        self.core, self._closers = runtime.core, runtime.closers
        self.rest = RestAdapter(self.config, runtime.core, partial=runtime.partial, caching=runtime.caching)
        self.observer = RequestObserver(self.config.access_log)
        self.docs = ApiDocs(self.config, self.registry, self.core.policies)
        self.readiness = Readiness(self.registry, self.core.store)
        self.websocket = WebSocketAdapter(self.config.websocket, runtime.core, self.observer, self.cors, self._client_ip)

    async def close(self) -> None:
        for close in reversed(self._closers):
            await close()
        self._closers = []
        if self.observer is not None:
            self.observer.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            shedder = self.shedder
            if shedder is None or scope["path"] in _NEVER_SHED:
                await self.handle_http(scope, receive, send)
            elif shedder.admit():
                try:
                    await self.handle_http(scope, receive, send)
                finally:
                    shedder.release()
            else:  # overloaded: answered at once, before routing or reading the body
                if self.observer is not None:
                    self.observer.metrics.shed_request()
                headers = header_dict(scope["headers"])
                request_id = request_id_from(headers)
                if self.cors is not None:  # a browser app can read the 503 and its Retry-After
                    send = self.cors.sender(send, headers.get("origin"), scope["method"], None)
                await shedder.refuse(send, (b"x-request-id", request_id.encode()))
        elif kind == "websocket":  # streaming methods over WebSocket (edge/protocols/websocket.py)
            assert self.websocket is not None, "GatewayApp.start() was not called"
            shedder = self.shedder
            if shedder is None:
                await self.websocket(scope, receive, send)
            elif shedder.admit():  # a socket is in flight for as long as it is open
                try:
                    await self.websocket(scope, receive, send)
                finally:
                    shedder.release()
            else:
                if self.observer is not None:
                    self.observer.metrics.shed_request()
                await refuse_shed(scope, send, shedder)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.registry.start()
                    await self.start()
                except Exception as exc:  # report start-up failure to the server, do not hang
                    log.exception("gateway start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await self.registry.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def handle_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = header_dict(scope["headers"])
        request_id = request_id_from(headers)
        id_header = (b"x-request-id", request_id.encode())
        path: str = scope["path"]
        if path == "/healthz":
            return await send_response(send, 200, [(b"content-type", JSON_CONTENT_TYPE), id_header], b'{"status":"ok"}')
        if path == "/readyz":
            return await self._ready(send, id_header)
        rest, observer, docs = self.rest, self.observer, self.docs
        assert rest is not None and observer is not None and docs is not None, "GatewayApp.start() was not called"
        record = CallRecord()
        if self.cors is not None:  # browsers on other origins: preflights end here, every other answer gets CORS headers
            if self.cors.is_preflight(scope["method"], headers):
                return await self._preflight(observer, scope, send, headers, request_id, id_header)
            send = self.cors.sender(send, headers.get("origin"), scope["method"], record)
        if path in (OPENAPI_PATH, DOCS_PATH) and scope["method"] in ("GET", "HEAD"):
            return await docs.respond(path, send, id_header)
        if self.batch is not None and path == self.batch.path:  # before any route: the batch runs its items through the adapter
            return await self._batch(rest, observer, scope, receive, send, headers, request_id)
        if self.compose is not None:  # composed routes shadow the route table (edge/compose.py)
            composed = self.compose.match(scope["method"], raw_path_of(scope))
            if composed is not None:
                return await self._compose(rest, observer, scope, receive, send, headers, request_id, composed)
        await rest.serve(scope, receive, send, headers, request_id, self._client_ip(scope, headers), record, observer)

    async def _batch(self, rest: RestAdapter, observer: RequestObserver, scope: Scope, receive: Receive, send: Send,
                     headers: dict[str, str], request_id: str) -> None:
        """One access-log line for the batch and one per item, all sharing the batch's request id."""
        started = perf_counter()
        assert self.batch is not None
        with observer.metrics.inflight():
            result = await self.batch.handle(rest, scope, receive, send, headers, request_id,
                                             self._client_ip(scope, headers))
        if result.items:
            observer.metrics.batch(len(result.items))
        for item in result.items:
            status = item.reply.status if item.reply is not None else (item.record.http_status or 0)
            sent = len(item.reply.body) if item.reply is not None else 0
            observer.finish(item.call, item.record, http_status=status, bytes_out=sent, total_s=item.seconds,
                            path=item.call.raw_path, batch_id=request_id, http_version=scope["http_version"])
        observer.finish(result.call, result.record, http_status=result.record.http_status or 0,
                        bytes_out=result.bytes_out, total_s=perf_counter() - started, path=scope["path"],
                        http_version=scope["http_version"])

    async def _preflight(self, observer: RequestObserver, scope: Scope, send: Send, headers: dict[str, str],
                         request_id: str, id_header: tuple[bytes, bytes]) -> None:
        """A CORS preflight, answered before auth, limits and the body: one access-log line."""
        assert self.cors is not None
        started = perf_counter()
        call = RestCall(http_method="OPTIONS", raw_path=raw_path_of(scope), query_string=scope["query_string"],
                    headers=headers, body=b"", client_ip=self._client_ip(scope, headers), request_id=request_id)
        record = CallRecord()
        status, sent = await self.cors.preflight(self.registry.table, call.raw_path, headers, send, id_header, record)
        observer.finish(call, record, http_status=status, bytes_out=sent, total_s=perf_counter() - started,
                        path=scope["path"], http_version=scope["http_version"])

    async def _compose(self, rest: RestAdapter, observer: RequestObserver, scope: Scope, receive: Receive, send: Send,
                       headers: dict[str, str], request_id: str, composed: tuple[Any, dict[str, str]]) -> None:
        """One access-log line for the composed request and one per part (as batch items)."""
        started = perf_counter()
        assert self.compose is not None
        route, variables = composed
        with observer.metrics.inflight():
            result = await self.compose.handle(rest, route, variables, scope, receive, send, headers, request_id,
                                               self._client_ip(scope, headers))
        for item in result.items:
            if item.reply is None:
                continue  # not run (its key not selected, or the client left)
            observer.finish(item.call, item.record, http_status=item.reply.status, bytes_out=len(item.reply.body),
                            total_s=item.seconds, path=item.call.raw_path, batch_id=request_id,
                            http_version=scope["http_version"])
        if not result.disconnected:
            observer.finish(result.call, result.record, http_status=result.record.http_status or 0,
                            bytes_out=result.bytes_out, total_s=perf_counter() - started, path=scope["path"],
                            http_version=scope["http_version"])

    async def _ready(self, send: Send, id_header: tuple[bytes, bytes]) -> None:
        if self.readiness is None:  # not started yet
            ready, body = False, {"status": "starting"}
        else:
            ready, body = await self.readiness.report(self.draining)
        await send_response(send, 200 if ready else 503, [(b"content-type", JSON_CONTENT_TYPE), id_header], json_bytes(body))


_NEVER_SHED = frozenset({"/healthz", "/readyz"})


def _client_ip_resolver(config: GatewayConfig):
    """The client's address: the peer, or X-Forwarded-For when the peer is a trusted proxy."""
    from .ratelimit import client_ip

    trusted = config.rate_limits.trusted_proxies if config.rate_limits is not None else []

    def resolve(scope: Scope, headers: dict[str, str]) -> str | None:
        peer = scope.get("client")
        peer_ip = peer[0] if peer else ""
        if not trusted:
            return peer_ip or None
        return client_ip(peer_ip, headers, trusted) or None

    return resolve
