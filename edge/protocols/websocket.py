"""WebSocket: a client protocol adapter for streaming methods, on the core (edge/core/).

A client opens a WebSocket on a streaming method's route (the path a REST call of that
method would use, e.g. `ws://host/v1/notes:chat`) and then sends one JSON request message
per text frame and reads one JSON reply message per text frame; the call's gRPC status
ends the socket as a close frame (edge/protocols/websocket_session.py: the wire protocol,
the close codes and the bounds).

A socket's call goes through the core's own chain of stages, as a REST call does (identity,
rate limits, decode, the backend call), and the socket is accepted only once the caller is
admitted, between those stages and the backend call; so a refusal is a plain HTTP answer to
the upgrade request in the REST error shape (google.rpc.Status JSON, `WWW-Authenticate`,
`Retry-After`): 404 no route, 400 not a streaming method, 403 a browser origin not allowed,
401/403 auth, 429 rate limits, 503 shed. In order:

1. the route: the path's route for the first of GET, POST, PUT, PATCH, DELETE whose method
   streams (a WebSocket handshake is always a GET; the route's own HTTP method names it for
   `match` patterns, policies and limits);
2. the origin (cross-site WebSocket hijacking): a browser sends `Origin`; it must be the
   gateway's own origin or one the route's CORS policy allows (edge/cors/). Clients that send
   no `Origin` are not browsers and are not checked;
3. the credential: `Authorization`, or a `bearer.<token>` subprotocol beside `edge.json`
   (edge/auth/subprotocol.py), handed to the core as the `authorization` header;
4. the core's chain, with one stage of this adapter's just before the backend call
   (`_Opening`): by then identity and limits have admitted the caller (the connection is
   charged once, as one call) and `decode` has set the metadata and deadline, so the socket
   is accepted there (echoing `edge.json` if offered, never the bearer value, with the
   RateLimit headers), and the session (edge/protocols/websocket_session.py) runs the rest of
   the chain, the backend call, with its request message(s) once they arrive. With
   `charge_messages`, every request message is charged too, by the same rate-limit stage
   (a refusal then closes the socket with 4008).

Request messages are decoded as a unary body of the route would be (its body rule), with
the path and query bindings applied to every message, as NDJSON lines are. The backend
call's deadline is the socket's `max_duration`, or less when the client sends
`grpc-timeout` / `X-Request-Timeout`. WebSocket runs over HTTP/1.1 (RFC 6455); HTTP/2's
extended CONNECT (RFC 8441) is not offered, so browsers open their sockets over HTTP/1.1.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Any

import grpc
import orjson

from transcoding import errors

from ..auth.subprotocol import subprotocol_credential
from ..core import Backend, CallContext, CallRecord, Core, Next, Outcome, chain, client_deadline
from ..errors import EXPECTED, error_parts, grpc_code_of
from ..http import JSON_CONTENT_TYPE, RawHeaders, Receive, Scope, Send, header_dict, json_bytes, raw_headers, request_id_from
from ..ratelimit import rate_limit_headers
from .rest import parse_query, raw_path_of
from .websocket_session import Limits, Session

if TYPE_CHECKING:
    from transcoding.routes import Route, RouteTable

    from ..cors import Cors
    from ..observability.observer import RequestObserver
    from ..overload import LoadShedder
    from ..websocket_config import WebSocketConfig

log = logging.getLogger("edge.websocket")

PROTOCOL = "websocket"
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_HANDSHAKE_HEADERS = ("sec-websocket-", "upgrade", "connection")


@dataclass
class Handshake:
    """The upgrade request, as the access log reports a call (edge/observability/observer.py)."""

    request_id: str
    client_ip: str | None
    http_method: str
    query_string: bytes
    headers: dict[str, str]
    body: bytes = b""


class WebSocketAdapter:
    """Serves `websocket` ASGI scopes: the handshake through the core's stages, then a Session."""

    protocol = PROTOCOL

    def __init__(self, config: "WebSocketConfig | None", core: Core, observer: "RequestObserver",
                 cors: "Cors | None", client_ip: Any) -> None:
        self.config = config
        self.core = core
        self.observer = observer
        self.cors = cors
        self._client_ip = client_ip
        if config is not None:
            self.limits = Limits(config.idle_timeout, config.max_duration, config.send_timeout, config.inbound_queue)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        raw = header_dict(scope["headers"])
        request_id = request_id_from(raw)
        id_header = (b"x-request-id", request_id.encode())
        # The handshake's own headers (the bearer subprotocol among them) go no further.
        headers = {k: v for k, v in raw.items() if not k.startswith(_HANDSHAKE_HEADERS)}
        logged = Handshake(request_id, self._client_ip(scope, raw), "GET", scope.get("query_string", b""), headers)
        record = CallRecord(protocol=PROTOCOL)
        opening: _Opening | None = None
        try:
            if self.config is None:
                raise errors.RouteNotFound("WebSocket is not enabled on this gateway (config: websocket)")
            raw_path = raw_path_of(scope)
            route, bindings, subprotocol = self._handshake(scope, raw, headers, raw_path, record)
            logged.http_method = route.binding.http_method
            opening = _Opening(self, scope, receive, send, route, bindings, subprotocol, id_header)
            ctx = CallContext(route, record, headers, request_id, logged.http_method, logged.client_ip,
                              decode=opening.decode)
            with self.observer.metrics.inflight():  # an open socket is a request in flight
                await chain((*self.core.stages, opening), Backend())(ctx)
        except Exception as exc:
            if opening is not None and opening.accepted:  # the session ends every failure itself: not expected
                log.error("unexpected failure in WebSocket %s", request_id, exc_info=exc)
            elif isinstance(exc, OSError):  # the server's "client disconnected": it left mid-handshake
                record.grpc_code = grpc.StatusCode.CANCELLED
            else:
                if not isinstance(exc, EXPECTED):
                    log.error("unexpected failure in WebSocket handshake %s", request_id, exc_info=exc)
                status, out, body = error_parts(exc, request_id)
                record.http_status, record.grpc_code = status, grpc_code_of(exc)
                await _refuse(scope, send, status, [*out, id_header], body)
                self._finish(logged, record, scope, len(body), started)
                return
        self._finish(logged, record, scope, opening.bytes_out if opening is not None else 0, started)

    def _handshake(self, scope: Scope, raw: dict[str, str], headers: dict[str, str], raw_path: str,
                   record: CallRecord) -> tuple["Route", Any, str | None]:
        """Route, origin and credential; raises the refusal."""
        table = self.core.registry.table
        route, bindings = table.lookup(streaming_method(table, raw_path), raw_path)
        record.route, record.grpc_method, record.backend = route.template, route.full_method, route.backend
        origin = raw.get("origin")
        if origin is not None and not self._origin_allowed(origin, scope, raw, route):
            raise OriginRefused(f"WebSocket: origin {origin[:200]!r} may not open a socket on this route")
        authorization, subprotocol = subprotocol_credential(scope.get("subprotocols") or (), raw)
        if authorization is not None:
            headers["authorization"] = authorization  # validated by the identity stage as any Authorization
        return route, bindings, subprotocol

    def _origin_allowed(self, origin: str, scope: Scope, raw: dict[str, str], route: "Route") -> bool:
        """The gateway's own origin, or one the route's CORS policy allows."""
        scheme = "https" if scope.get("scheme") == "wss" else "http"
        host = raw.get("host", "")
        if origin == f"{scheme}://{host}" or origin == f"{scheme}://{_without_default_port(host, scheme)}":
            return True
        if self.cors is None:
            return False
        return self.cors.policy(route.full_method, route.binding.http_method, route.template).origins.allows(origin)

    def _finish(self, logged: Handshake, record: CallRecord, scope: Scope, sent: int, started: float) -> None:
        self.observer.finish(logged, record, http_status=record.http_status or 0, bytes_out=sent,
                             total_s=perf_counter() - started, path=scope["path"],
                             http_version=scope.get("http_version", "1.1"))


class _Opening:
    """The stage just before the backend call: the caller is admitted, so the socket is
    accepted and the session runs the rest of the chain (the backend call) with the request
    message(s) as they arrive. Its Outcome is the session's end, in gRPC terms."""

    def __init__(self, adapter: WebSocketAdapter, scope: Scope, receive: Receive, send: Send, route: "Route",
                 bindings: Any, subprotocol: str | None, id_header: tuple[bytes, bytes]) -> None:
        self.adapter, self.scope, self.receive, self.send = adapter, scope, receive, send
        self.route, self.bindings, self.subprotocol, self.id_header = route, bindings, subprotocol, id_header
        self.query: list[tuple[str, str]] = []
        self.accepted = False
        self.bytes_out = 0

    def decode(self, ctx: CallContext) -> None:
        """The core's `decode`, run once the caller is admitted: the query, the metadata and the
        deadline (the request messages come later, one a frame, decoded by the session)."""
        adapter, route = self.adapter, self.route
        assert adapter.config is not None
        self.query = parse_query(self.scope.get("query_string", b""), route.options.query_unescape_plus)
        ctx.deadline = client_deadline(ctx.headers, adapter.config.max_duration, adapter.config.max_duration)
        peer = self.scope.get("client")
        ctx.metadata = adapter.core.metadata.outgoing(route, ctx.headers, ctx.request_id, peer[0] if peer else None)

    async def __call__(self, ctx: CallContext, call_next: Next) -> Outcome:
        adapter, route, record = self.adapter, self.route, ctx.record
        assert adapter.config is not None
        headers: RawHeaders = [self.id_header]
        if ctx.ratelimit is not None:
            headers += raw_headers(rate_limit_headers(ctx.ratelimit))
        await self.send({"type": "websocket.accept", "subprotocol": self.subprotocol, "headers": headers})
        self.accepted = True
        record.http_status = 101
        codec, bindings, query = route.request_codec, self.bindings, self.query

        async def start(requests: Any) -> Outcome:
            ctx.request = requests
            return await call_next(ctx)

        session = Session(
            self.receive, self.send, adapter.limits,
            client_streaming=route.client_streaming, server_streaming=route.server_streaming,
            decode=lambda text: codec.decode(bindings, query, text.encode(), "application/json"),
            encode=route.response_codec.encode_stream_item, binary=route.response_codec.is_http_body,
            start=start,
            charge=_message_charge(adapter.core, ctx) if adapter.config.charge_messages else None,
            status_of=lambda exc: _status_of(exc, ctx.request_id),
        )
        result = await session.run()
        code = _STATUS_CODES.get(result.grpc_code, grpc.StatusCode.UNKNOWN)
        record.grpc_code, record.backend_seconds, record.streamed_bytes = code, result.backend_seconds, result.bytes_out
        self.bytes_out = result.bytes_out
        return Outcome(code=code, backend_seconds=result.backend_seconds)


def _message_charge(core: Core, ctx: CallContext) -> Any:
    """One more unit per request message, by the core's own rate-limit stage."""
    limits = core.limits
    if limits is None:
        return None

    async def charge() -> None:
        ctx.charged = False
        await limits(ctx, _admitted)

    return charge


async def _admitted(ctx: CallContext) -> Outcome:
    return Outcome()


_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}


class OriginRefused(errors.TranscodeError):
    http_status = 403
    grpc_code = grpc.StatusCode.PERMISSION_DENIED


def streaming_method(table: "RouteTable", raw_path: str) -> str:
    """The HTTP method whose route at `raw_path` streams: 404 if no route has the path,
    400 if its routes are all unary."""
    unary: str | None = None
    for method in _METHODS:
        try:
            route, _ = table.lookup(method, raw_path)
        except errors.TranscodeError:
            continue
        if route.client_streaming or route.server_streaming:
            return method
        unary = unary or route.full_method
    if unary is not None:
        raise errors.BadRequest(f"{unary} is not a streaming method: a WebSocket serves streaming methods only")
    raise errors.RouteNotFound(f"no route for a WebSocket at {raw_path[:200]}")


def _without_default_port(host: str, scheme: str) -> str:
    default = ":443" if scheme == "https" else ":80"
    return host[: -len(default)] if host.endswith(default) else host


def _status_of(exc: BaseException, request_id: str) -> tuple[int, str]:
    """A failure inside the session as a gRPC code number and message (the REST error's)."""
    _, _, body = error_parts(exc, request_id)
    return grpc_code_of(exc).value[0], orjson.loads(body)["message"]


async def refuse_shed(scope: Scope, send: Send, shedder: "LoadShedder") -> None:
    """An overloaded process answers a handshake as it answers a request: 503 with Retry-After."""
    request_id = request_id_from(header_dict(scope["headers"]))
    status, headers, body = shedder.answer((b"x-request-id", request_id.encode()))
    await _refuse(scope, send, status, headers, body)


async def _refuse(scope: Scope, send: Send, status: int, headers: RawHeaders, body: bytes) -> None:
    """A refused handshake: an HTTP answer with the REST error body, where the server lets
    the app answer (the ASGI `websocket.http.response` extension), else a bare 403."""
    if "websocket.http.response" in scope.get("extensions", {}):
        if not any(name == b"content-type" for name, _ in headers):
            headers.append((b"content-type", JSON_CONTENT_TYPE))
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": json_bytes({"status": status}).decode()})
