"""Forwarding one matched route to its backend and writing the reply.

Unary replies are one JSON document. Server-streaming replies are written in the
format edge/streaming.py chose for the request (NDJSON, a JSON array, grpc-gateway's
lines or Server-Sent Events), flushed as each message arrives; the HTTP status is
held back until the first message (or the error) so a stream that fails at once
still gets a real HTTP error. A failure after the stream started is written in the
format's own way. A client that goes away mid-stream cancels the backend call.
Client- and bidi-streaming request bodies are decoded by the route's codec
(RequestCodec.decode_stream: a JSON array, NDJSON or JSON values one after another).
Backend metadata come back as response headers named by edge/header_rules.py.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Callable


from transcoding.invoker import CallError, Metadata
from transcoding.options import HeaderRules, StreamFormat
from transcoding.routes import Route
from transcoding.status import error_body, http_status_for

from .header_rules import response_headers
from .http import JSON_CONTENT_TYPE, RawHeaders, Receive, Send, json_bytes, send_response
from .streaming import Framing

log = logging.getLogger("edge.proxy")


@dataclass
class CallOutcome:
    """What the access log and the idempotency store need to know about a call."""

    status: int
    grpc_code: int
    body: bytes
    headers: RawHeaders
    backend_seconds: float = 0.0
    sent_bytes: int = 0  # streams: bytes written to the client
    backend_metadata: Metadata = ()  # unary replies: initial then trailing metadata (edge/conditional.py reads it)


def call_error_parts(exc: CallError) -> tuple[int, RawHeaders, bytes]:
    body = json_bytes(error_body(exc.code, exc.message, exc.details))
    return http_status_for(exc.code), [(b"content-type", JSON_CONTENT_TYPE)], body


async def forward_unary(
    route: Route,
    request: Any,
    *,
    timeout: float,
    metadata: Metadata,
    response_metadata: bool,
) -> CallOutcome:
    """Unary and client-streaming calls: one reply document (or the error)."""
    started = perf_counter()
    try:
        result = await route.invoker.unary(request, timeout=timeout, metadata=metadata)
    except CallError as exc:
        status, headers, body = call_error_parts(exc)
        if response_metadata:
            headers += response_headers(route.options.header_rules, exc.initial_metadata, exc.trailing_metadata)
        return CallOutcome(status, exc.code.value[0], body, headers, perf_counter() - started)
    elapsed = perf_counter() - started
    body, content_type = route.response_codec.encode(result.response)
    headers = [(b"content-type", content_type.encode("latin-1"))]
    if response_metadata:
        headers += response_headers(route.options.header_rules, result.initial_metadata, result.trailing_metadata)
    outcome = CallOutcome(200, 0, body, headers, elapsed)
    if result.initial_metadata or result.trailing_metadata:
        outcome.backend_metadata = (*result.initial_metadata, *result.trailing_metadata)
    return outcome


async def forward_stream(
    route: Route,
    request: Any,
    send: Send,
    receive: Receive,
    framing: Framing,
    *,
    timeout: float,
    metadata: Metadata,
    response_metadata: bool,
    extra_headers: RawHeaders,
    compressor: Callable[[RawHeaders], Any] | None = None,
) -> CallOutcome:
    """Server- and bidi-streaming calls, written to the client in `framing`'s format
    (an HttpBody stream: its chunks raw).

    `compressor(headers)` may return a stream compressor (and set its
    Content-Encoding on `headers`); each message is then flushed compressed."""
    started = perf_counter()
    stream = route.invoker.stream(request, timeout=timeout, metadata=metadata)
    gone = asyncio.Event()
    watcher = asyncio.create_task(_cancel_on_disconnect(receive, stream, gone))
    codec = route.response_codec
    rules = route.options.header_rules
    sent = 0
    try:
        try:
            first = await stream.next()
            initial = await stream.initial_metadata() if response_metadata else ()
        except CallError as exc:
            status, headers, body = _stream_refusal(exc, framing)
            if response_metadata:
                headers += response_headers(rules, exc.initial_metadata, exc.trailing_metadata)
            await send_response(send, status, headers + extra_headers, body)
            return CallOutcome(status, exc.code.value[0], body, headers, perf_counter() - started)
        if codec.is_http_body:
            raw_type = codec.stream_chunk_type(first) if first is not None else "application/octet-stream"
            headers = [(b"content-type", raw_type.encode("latin-1"))]
        else:
            headers = [(b"content-type", framing.content_type), *framing.headers, (b"vary", b"Accept")]
        headers += extra_headers
        if response_metadata:
            headers += response_headers(rules, initial, ())  # a stream's trailers come after the head: dropped
        packer = compressor(headers) if compressor is not None else None
        await send({"type": "http.response.start", "status": 200, "headers": headers})

        async def write(chunk: bytes) -> None:
            nonlocal sent
            if packer is not None:
                chunk = packer.compress(chunk)
            sent += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        code = 0
        if codec.is_http_body:
            message = first
            while message is not None:
                await write(codec.encode_stream_item(message))
                try:
                    message = await stream.next()
                except CallError as exc:  # as it always was: a status line after the raw bytes
                    await write(json_bytes({"error": error_body(exc.code, exc.message, exc.details)}) + b"\n")
                    code = exc.code.value[0]
                    break
        elif first is None:
            await write(framing.end(False))
        else:
            await write(framing.first(codec.encode_stream_item(first)))
            while True:
                try:
                    message = await stream.next()
                except CallError as exc:
                    await write(framing.failure(error_body(exc.code, exc.message, exc.details)))
                    code = exc.code.value[0]
                    break
                if message is None:
                    await write(framing.end(True))
                    break
                await write(framing.next(codec.encode_stream_item(message)))
        tail = packer.finish() if packer is not None else b""
        sent += len(tail)
        await send({"type": "http.response.body", "body": tail})
        return CallOutcome(200, code, b"", headers, perf_counter() - started, sent)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if not gone.is_set() or (task is not None and task.cancelling()):
            raise
        # The client went away and its backend call was cancelled: nothing more to write.
        return CallOutcome(499, 1, b"", [], perf_counter() - started, sent)
    finally:
        watcher.cancel()
        stream.cancel()


def _stream_refusal(exc: CallError, framing: Framing) -> tuple[int, RawHeaders, bytes]:
    """A stream that failed before its first message: a real HTTP error. grpc-gateway
    writes its `{"error": ...}` line at that status; the other formats, edge's error body."""
    if framing.format is StreamFormat.GRPC_GATEWAY:
        body = framing.failure(error_body(exc.code, exc.message, exc.details))
        return http_status_for(exc.code), [(b"content-type", JSON_CONTENT_TYPE)], body
    return call_error_parts(exc)


async def _cancel_on_disconnect(receive: Receive, stream: Any, gone: asyncio.Event) -> None:
    """Cancel the backend call when the client goes away mid-stream."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            stream.cancel()
            return
