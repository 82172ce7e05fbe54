"""Forwarding one matched route to its backend and writing the reply.

Unary replies are one JSON document. Server-streaming replies are NDJSON, one
message per line, flushed as each arrives; the HTTP status is held back until
the first message (or the error) so a stream that fails at once still gets a
real HTTP error. An error after the stream started arrives as a last line
holding the status object. Client- and bidi-streaming request bodies are
decoded by the route's codec (RequestCodec.decode_stream: a JSON array, NDJSON
or JSON values one after another).
"""
from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Callable


from transcoding.invoker import CallError, Metadata
from transcoding.routes import Route
from transcoding.status import error_body, http_status_for

from .http import JSON_CONTENT_TYPE, RawHeaders, Receive, Send, json_bytes, send_response

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


def metadata_headers(metadata: Metadata) -> RawHeaders:
    """Backend metadata as `Grpc-Metadata-<key>` headers (binary values base64-encoded)."""
    out: RawHeaders = []
    for key, value in metadata:
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode("ascii")
        out.append((b"grpc-metadata-" + key.encode("latin-1"), str(value).encode("latin-1", "replace")))
    return out


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
            headers += metadata_headers(exc.initial_metadata) + metadata_headers(exc.trailing_metadata)
        return CallOutcome(status, exc.code.value[0], body, headers, perf_counter() - started)
    elapsed = perf_counter() - started
    body, content_type = route.response_codec.encode(result.response)
    headers = [(b"content-type", content_type.encode("latin-1"))]
    if response_metadata:
        headers += metadata_headers(result.initial_metadata) + metadata_headers(result.trailing_metadata)
    outcome = CallOutcome(200, 0, body, headers, elapsed)
    if result.initial_metadata or result.trailing_metadata:
        outcome.backend_metadata = (*result.initial_metadata, *result.trailing_metadata)
    return outcome


async def forward_stream(
    route: Route,
    request: Any,
    send: Send,
    receive: Receive,
    *,
    timeout: float,
    metadata: Metadata,
    response_metadata: bool,
    extra_headers: RawHeaders,
    compressor: Callable[[RawHeaders], Any] | None = None,
) -> CallOutcome:
    """Server- and bidi-streaming calls, written to the client as NDJSON.

    `compressor(headers)` may return a stream compressor (and set its
    Content-Encoding on `headers`); each line is then flushed compressed."""
    started = perf_counter()
    stream = route.invoker.stream(request, timeout=timeout, metadata=metadata)
    watcher = asyncio.create_task(_cancel_on_disconnect(receive, stream))
    sent = 0
    try:
        try:
            first = await stream.next()
            initial = await stream.initial_metadata() if response_metadata else ()
        except CallError as exc:
            status, headers, body = call_error_parts(exc)
            await send_response(send, status, headers + extra_headers, body)
            return CallOutcome(status, exc.code.value[0], body, headers, perf_counter() - started)
        # NDJSON, or for a stream of google.api.HttpBody the first chunk's own content type.
        content_type = route.response_codec.stream_content_type or getattr(first, "content_type", "") or "application/octet-stream"
        headers = [(b"content-type", content_type.encode("latin-1"))]
        headers += extra_headers + metadata_headers(initial)
        packer = compressor(headers) if compressor is not None else None
        await send({"type": "http.response.start", "status": 200, "headers": headers})

        async def write(chunk: bytes) -> None:
            nonlocal sent
            if packer is not None:
                chunk = packer.compress(chunk)
            sent += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        code = 0
        message = first
        while message is not None:
            await write(route.response_codec.encode_stream_item(message))
            try:
                message = await stream.next()
            except CallError as exc:
                await write(json_bytes({"error": error_body(exc.code, exc.message, exc.details)}) + b"\n")
                code = exc.code.value[0]
                break
        tail = packer.finish() if packer is not None else b""
        sent += len(tail)
        await send({"type": "http.response.body", "body": tail})
        return CallOutcome(200, code, b"", headers, perf_counter() - started, sent)
    finally:
        watcher.cancel()
        stream.cancel()


async def _cancel_on_disconnect(receive: Receive, stream: Any) -> None:
    """Cancel the backend call when the client goes away mid-stream."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            stream.cancel()
            return
