"""The REST/JSON adapter: an HTTP request on a `google.api.http` route, through the
core (edge/core/), and back as an HTTP answer.

What is REST's here, and not the core's: the route lookup by HTTP method and path;
the request message from path variables, query and JSON body (decoded only once
the core's identity and limit stages let the caller in, so a bad body from an
unauthenticated client is still a 401); the `fields` system parameter
(edge/partial.py); the JSON reply, or a server stream in the negotiated format
(edge/protocols/rest_stream.py); every refusal as a google.rpc.Status JSON body
(edge/errors.py); RateLimit headers from the core's decision; conditional GETs
(edge/conditional.py); response compression; the access-log line.

Batch items (edge/batch.py) and composed parts (edge/compose.py) are `RestCall`s
through `RestAdapter.run` too, so each gets exactly what it would get alone.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote_to_bytes

import grpc
from google.protobuf.message import Message

from transcoding import errors
from transcoding.invoker import CallError
from transcoding.routes import Route
from transcoding.status import error_body, http_status_for

from .. import compression
from ..config import GatewayConfig
from ..core import CallContext, CallRecord, Core, Fingerprint, Outcome
from ..conditional import weaken_etag
from ..core.metadata import client_deadline
from ..errors import EXPECTED, error_parts, grpc_code_of
from ..header_rules import response_headers
from ..http import (
    JSON_CONTENT_TYPE, ClientDisconnected, RawHeaders, Receive, Scope, Send, json_bytes, raw_headers, read_body,
    send_response,
)
from ..idempotency import StoredResponse
from ..ratelimit import rate_limit_headers
from ..streaming import FRAMINGS, choose_format
from .rest_stream import call_error_parts, write_stream

if TYPE_CHECKING:
    from ..auth import AuthOutcome, Principal
    from ..conditional import ConditionalGets
    from ..observability.observer import RequestObserver
    from ..partial import Mask, PartialResponses

__all__ = ["PROTOCOL", "Reply", "RestAdapter", "RestCall", "parse_query", "raw_path_of"]

log = logging.getLogger("edge.app")

PROTOCOL = "rest"
Bindings = list[tuple[tuple[str, ...], str]]


@dataclass
class RestCall:
    """One REST call: a whole HTTP request, one item of a batch or one part of a composed route."""

    http_method: str
    raw_path: str
    query_string: bytes
    headers: dict[str, str]
    body: bytes
    client_ip: str | None
    request_id: str
    # Set for batch items: the batch authenticated once; items only check their route's policy.
    principal: Principal | None = None
    preauthenticated: bool = False
    auth: AuthOutcome | None = None  # this call's auth outcome, once checked
    charged: bool = False  # rate limits already charged (batch)
    # Set for parts of a composed route (edge/compose.py): the route is known and the request
    # message built, so the lookup and the decoding are skipped; everything else runs as alone.
    route: Route | None = None
    request: Message | None = None
    peer_ip: str | None = None  # the connection's peer (x-forwarded-for is built from it)


@dataclass
class Reply:
    status: int
    headers: RawHeaders
    body: bytes
    grpc_code: grpc.StatusCode


class _Decoding:
    """One call's REST decoding, run by the core once the caller is admitted (its `decode`),
    and the `fields` mask it found, for the reply. For a keyed call, `fingerprint_ahead`
    reads the query and deadline before the charge instead, and `decode` reuses them."""

    __slots__ = ("adapter", "call", "route", "bindings", "mask", "early")

    def __init__(self, adapter: RestAdapter, call: RestCall, route: Route, bindings: Bindings) -> None:
        self.adapter, self.call, self.route, self.bindings = adapter, call, route, bindings
        self.mask: Mask | None = None
        self.early: tuple[list[tuple[str, str]], float] | None = None  # query, deadline: read ahead

    def _query(self) -> list[tuple[str, str]]:
        """The query's pairs, less the `fields` system parameter (kept as `mask`)."""
        call, route, partial = self.call, self.route, self.adapter.partial
        query_string = call.query_string
        query = parse_query(query_string, route.options.query_unescape_plus)
        if partial is not None and (b"fields" in query_string or b"%" in query_string):
            query, self.mask = partial.take(route, query)
        return query

    def _deadline(self) -> float:
        backend = self.adapter.core.registry.backends[self.route.backend].config
        return client_deadline(self.call.headers, backend.timeout, backend.max_timeout)

    def fingerprint_ahead(self, ctx: CallContext) -> bool:
        """A keyed call's fingerprint and deadline, before the charge and without the body's
        decoding. False when the query or the deadline header is bad: `decode` refuses the
        call in its own place, after the charge, as always."""
        try:
            query, deadline = self._query(), self._deadline()
        except errors.TranscodeError:
            self.mask = None
            return False
        self.early = query, deadline
        call = self.call
        ctx.deadline, ctx.fingerprint = deadline, Fingerprint(call.http_method, call.raw_path, query, call.body)
        return True

    def decode(self, ctx: CallContext) -> None:
        call, route, adapter = self.call, self.route, self.adapter
        query = self._query() if self.early is None else self.early[0]
        mask = self.mask
        if call.request is not None:
            request = ctx.request = call.request
            if mask is not None:
                mask.prepare(request)
        elif route.client_streaming:
            ctx.request = route.request_codec.decode_stream(self.bindings, query, call.body, call.headers.get("content-type"))
        else:
            request = ctx.request = route.request_codec.decode(self.bindings, query, call.body, call.headers.get("content-type"))
            if mask is not None:
                mask.prepare(request)
        ctx.deadline = self._deadline() if self.early is None else self.early[1]
        ctx.metadata = adapter.core.metadata.outgoing(route, call.headers, call.request_id, call.peer_ip)
        if adapter.core.idempotency is not None:
            ctx.fingerprint = Fingerprint(call.http_method, call.raw_path, query, call.body)

    def stored_form(self, outcome: Outcome) -> StoredResponse:
        """What a retry under the same Idempotency-Key is answered: this reply as sent (trimmed)."""
        status, headers, body = outcome.rendered = self.adapter.render(outcome, self.route, self.mask)
        return StoredResponse(status, [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers], body)


class RestAdapter:
    """The REST protocol on the core: `serve` answers one HTTP request, `run` one call."""

    protocol = PROTOCOL

    def __init__(self, config: GatewayConfig, core: Core, *, partial: PartialResponses | None = None,
                 caching: ConditionalGets | None = None) -> None:
        self.config = config
        self.core = core
        self.partial = partial  # the `fields` system parameter
        self.caching = caching  # ETag / If-None-Match / Cache-Control
        self._body_limit = config.compression.decompression_limit(config.transcoding.max_body_bytes)
        self._opted_out: dict[tuple[str, str | None, str], bool] = {}

    # ---- one HTTP request -----------------------------------------------------------------

    async def serve(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], request_id: str,
                    client_ip: str | None, record: CallRecord, observer: RequestObserver) -> None:
        """A request on the route table: read, run, answered (or streamed), logged."""
        started = perf_counter()
        id_header = (b"x-request-id", request_id.encode())
        peer = scope.get("client")
        call = RestCall(scope["method"], raw_path_of(scope), scope["query_string"], headers, b"", client_ip,
                        request_id, peer_ip=peer[0] if peer else None)
        config = self.config
        with observer.metrics.inflight():
            try:
                body = await read_body(receive, headers, config.transcoding.max_body_bytes)
                call.body = compression.decompress_request(body, headers.get("content-encoding"), self._body_limit)
                reply = await self.run(call, record, send=send, receive=receive, extra_headers=[id_header],
                                       accept_encoding=headers.get("accept-encoding"))
            except ClientDisconnected:
                return
            except Exception as exc:
                if not isinstance(exc, EXPECTED):
                    log.error("unexpected failure serving request %s", request_id, exc_info=exc)
                reply = self.error_reply(exc, call, record)
                reply.headers.append(id_header)
            if reply is not None:
                opted_out = record.grpc_method is not None and self._route_opted_out(
                    record.grpc_method, record.route, call.http_method)
                status, sent = reply.status, await self.answer(send, reply, headers.get("accept-encoding"), opted_out)
            else:  # a stream, already written
                status, sent = record.http_status or 200, record.streamed_bytes
            observer.finish(call, record, http_status=status, bytes_out=sent,
                            total_s=perf_counter() - started, path=scope["path"], http_version=scope["http_version"])

    async def answer(self, send: Send, reply: Reply, accept_encoding: str | None, opted_out: bool = False) -> int:
        """The reply sent, compressed as the client accepts; the body's bytes as sent."""
        out = compression.compress_response(
            self.config.compression, accept_encoding, reply.headers, reply.body, opted_out=opted_out)
        if out is not reply.body and self.caching is not None:
            weaken_etag(reply.headers)  # a coded reply's tag is weak (edge/conditional.py)
        await send_response(send, reply.status, reply.headers, out)
        return len(out)

    def _route_opted_out(self, grpc_method: str, route: str | None, http_method: str) -> bool:
        """The compression opt-out of a route, looked up once per route (it reads the config's patterns)."""
        key = (grpc_method, route, http_method)
        opted_out = self._opted_out.get(key)
        if opted_out is None:
            opted_out = self.config.compression.route_opted_out(grpc_method, route, http_method)
            if len(self._opted_out) < 10_000:  # routes are few; a bound all the same
                self._opted_out[key] = opted_out
        return opted_out

    # ---- one call -------------------------------------------------------------------------

    def lookup(self, call: RestCall, record: CallRecord) -> tuple[Route, Bindings]:
        if call.route is not None:
            route, bindings = call.route, []
        else:
            route, bindings = self.core.registry.table.lookup(call.http_method, call.raw_path)
        record.route, record.grpc_method, record.backend = route.template, route.full_method, route.backend
        return route, bindings

    async def run(
        self,
        call: RestCall,
        record: CallRecord,
        *,
        send: Send | None = None,
        receive: Receive | None = None,
        extra_headers: RawHeaders = (),  # type: ignore[assignment]
        stream_cap: int = 1000,
        accept_encoding: str | None = None,
    ) -> Reply | None:
        """The reply, or None when a server stream was written straight to `send`."""
        route, bindings = self.lookup(call, record)
        decoding = _Decoding(self, call, route, bindings)
        ctx = CallContext(route, record, call.headers, call.request_id, call.http_method, call.client_ip,
                          call.principal, call.preauthenticated, call.charged, decode=decoding.decode)
        if self.core.idempotency is not None and not route.server_streaming:
            ctx.stored_form = decoding.stored_form
            ctx.fingerprint_ahead = decoding.fingerprint_ahead
        outcome = await self.core.run(ctx)
        call.principal, call.auth, call.charged = ctx.principal, ctx.auth, ctx.charged
        headers_out = list(extra_headers)
        if outcome.ratelimit is not None:
            headers_out += raw_headers(rate_limit_headers(outcome.ratelimit))

        if outcome.stream is not None:
            if send is not None and receive is not None:
                return await self._write_stream(call, route, outcome, record, send, receive, headers_out,
                                                accept_encoding)
            return await self._collect_stream(route, outcome, headers_out, record, stream_cap)

        if outcome.stored is not None:  # an idempotent replay: the stored headers and the replay marker
            stored = outcome.stored
            record.http_status = stored.status
            return Reply(stored.status, headers_out + raw_headers(outcome.replay_headers), stored.body, grpc.StatusCode.OK)

        rendered = outcome.rendered  # made already when the idempotency stage stored it
        status, headers, body = rendered if isinstance(rendered, tuple) else self.render(outcome, route, decoding.mask)
        record.http_status = status
        reply = Reply(status, headers_out + headers, body, outcome.code)
        if self.caching is not None:
            metadata = (*outcome.header_metadata, *outcome.trailer_metadata) if outcome.reply is not None else ()
            reply = self.caching.finish(call, route, ctx.policy, reply, metadata)
            record.http_status = reply.status
        return reply

    def render(self, outcome: Outcome, route: Route, mask: Mask | None) -> tuple[int, RawHeaders, bytes]:
        """A unary outcome as an HTTP status, headers and body (trimmed to `fields`)."""
        if outcome.reply is not None:
            body, content_type = route.response_codec.encode(outcome.reply)
            status, headers = 200, [(b"content-type", content_type.encode("latin-1"))]
        else:
            body = json_bytes(error_body(outcome.code, outcome.details, outcome.error_details))
            status, headers = http_status_for(outcome.code), [(b"content-type", JSON_CONTENT_TYPE)]
        if route.options.response_metadata:
            headers += response_headers(route.options.header_rules, outcome.header_metadata, outcome.trailer_metadata)
        if mask is not None:
            body = mask.trim(status, body)
        return status, headers, body

    async def _write_stream(self, call: RestCall, route: Route, outcome: Outcome, record: CallRecord, send: Send,
                            receive: Receive, headers_out: RawHeaders, accept_encoding: str | None) -> None:
        compress = self.config.compression
        opted_out = compress.route_opted_out(route.full_method, route.template, route.binding.http_method)
        framing = FRAMINGS[choose_format(call.headers.get("accept"), route.options.stream_format)]
        assert outcome.stream is not None
        result = await write_stream(
            route, outcome.stream, send, receive, framing, response_metadata=route.options.response_metadata,
            extra_headers=headers_out,
            compressor=lambda headers: compression.stream_compressor(compress, accept_encoding, headers, opted_out=opted_out),
        )
        record.backend_seconds, record.grpc_code, record.http_status = (
            result.backend_seconds, result.grpc_code, result.status)
        record.streamed_bytes = result.sent_bytes
        return None

    async def _collect_stream(self, route: Route, outcome: Outcome, headers_out: RawHeaders, record: CallRecord,
                              cap: int) -> Reply:
        """A server stream as one JSON array (batch items), refused past `cap` messages."""
        stream = outcome.stream
        assert stream is not None
        items: list[bytes] = []
        try:
            while (message := await stream.next()) is not None:
                if len(items) >= cap:
                    raise errors.PayloadTooLarge(f"stream has more than {cap} messages; call it alone to stream it")
                items.append(route.response_codec.encode_stream_item(message))
        except CallError as exc:
            status, headers, body = call_error_parts(exc)
            record.grpc_code, record.http_status = exc.code, status
            return Reply(status, headers_out + headers, body, exc.code)
        finally:
            stream.cancel()
        record.grpc_code, record.http_status = grpc.StatusCode.OK, 200
        return Reply(200, headers_out + [(b"content-type", b"application/json")], b"[" + b",".join(items) + b"]",
                     grpc.StatusCode.OK)

    def error_reply(self, exc: BaseException, call: RestCall, record: CallRecord) -> Reply:
        """A refusal (or an unexpected failure: a 500 naming the request id) as a REST answer."""
        status, headers, body = error_parts(exc, call.request_id)
        record.http_status, record.grpc_code = status, grpc_code_of(exc)
        return Reply(status, headers, body, record.grpc_code)


def raw_path_of(scope: Scope) -> str:
    raw = scope.get("raw_path")
    if raw:
        return raw.decode("latin-1")
    return quote(scope["path"])


def parse_query(query_string: bytes, unescape_plus: bool = True) -> list[tuple[str, str]]:
    """`name=value` pairs split on `&`, names and values percent-decoded (so a name
    like `shelf.search%5Bfoo%5D` reaches the field lookup as `shelf.search[foo]`),
    `+` a space when `unescape_plus` (grpc-gateway, HTML forms; Envoy keeps it a `+`).

    A piece without `=` names no value and is dropped, as Envoy's parser does
    (cache busters like `?1699999999` or `?_`); so is one with an empty name.
    A `%` not followed by two hex digits stays as it is. 400 when the decoded
    bytes are not UTF-8.
    """
    if not query_string:
        return []
    pairs: list[tuple[str, str]] = []
    try:
        for piece in query_string.split(b"&"):
            name, eq, value = piece.partition(b"=")
            if not eq or not name:
                continue
            if b"%" in piece or (unescape_plus and b"+" in piece):
                pairs.append((_query_text(name, unescape_plus), _query_text(value, unescape_plus)))
            else:
                pairs.append((name.decode("utf-8"), value.decode("utf-8")))
    except UnicodeDecodeError:
        raise errors.BadRequest("query string is not valid UTF-8 after percent-decoding") from None
    return pairs


def _query_text(raw: bytes, unescape_plus: bool) -> str:
    if unescape_plus and b"+" in raw:
        raw = raw.replace(b"+", b" ")
    if b"%" in raw:
        raw = unquote_to_bytes(raw)
    return raw.decode("utf-8")
