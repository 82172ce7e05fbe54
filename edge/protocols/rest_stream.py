"""A server stream written as an HTTP response (the REST adapter's).

Each message is written in the format edge/streaming.py chose for the request
(NDJSON, a JSON array, grpc-gateway's lines or Server-Sent Events), flushed as
it arrives; the HTTP status is held back until the first message (or the
error) so a stream that fails at once still gets a real HTTP error. A failure
after the stream started is written in the format's own way. A client that
goes away mid-stream cancels the backend call. Backend metadata come back as
response headers named by edge/header_rules.py.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from time import perf_counter
from typing import Callable

import grpc

from transcoding.invoker import CallError, ResponseStream
from transcoding.options import StreamFormat
from transcoding.routes import Route
from transcoding.status import error_body, http_status_for

from ..compression import StreamCompressor
from ..header_rules import response_headers
from ..http import JSON_CONTENT_TYPE, RawHeaders, Receive, Send, json_bytes, send_response
from ..streaming import Framing

__all__ = ["StreamResult", "call_error_parts", "write_stream"]


@dataclass
class StreamResult:
    status: int
    grpc_code: grpc.StatusCode
    backend_seconds: float
    sent_bytes: int  # bytes written to the client


def call_error_parts(exc: CallError) -> tuple[int, RawHeaders, bytes]:
    body = json_bytes(error_body(exc.code, exc.message, exc.details))
    return http_status_for(exc.code), [(b"content-type", JSON_CONTENT_TYPE)], body


async def write_stream(
    route: Route,
    stream: ResponseStream,
    send: Send,
    receive: Receive,
    framing: Framing,
    *,
    response_metadata: bool,
    extra_headers: RawHeaders,
    compressor: Callable[[RawHeaders], StreamCompressor | None] | None = None,
) -> StreamResult:
    """A started server (or bidi) stream written to the client in `framing`'s format
    (an HttpBody stream: its chunks raw); the stream is cancelled when this returns.

    `compressor(headers)` may return a stream compressor (and set its
    Content-Encoding on `headers`); each message is then flushed compressed."""
    started = perf_counter()
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
            return StreamResult(status, exc.code, perf_counter() - started, 0)
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

        code = grpc.StatusCode.OK
        if codec.is_http_body:
            message = first
            while message is not None:
                await write(codec.encode_stream_item(message))
                try:
                    message = await stream.next()
                except CallError as exc:  # as it always was: a status line after the raw bytes
                    await write(json_bytes({"error": error_body(exc.code, exc.message, exc.details)}) + b"\n")
                    code = exc.code
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
                    code = exc.code
                    break
                if message is None:
                    await write(framing.end(True))
                    break
                await write(framing.next(codec.encode_stream_item(message)))
        tail = packer.finish() if packer is not None else b""
        sent += len(tail)
        await send({"type": "http.response.body", "body": tail})
        return StreamResult(200, code, perf_counter() - started, sent)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if not gone.is_set() or (task is not None and task.cancelling()):
            raise
        # The client went away and its backend call was cancelled: nothing more to write.
        return StreamResult(499, grpc.StatusCode.CANCELLED, perf_counter() - started, sent)
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


async def _cancel_on_disconnect(receive: Receive, stream: ResponseStream, gone: asyncio.Event) -> None:
    """Cancel the backend call when the client goes away mid-stream."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            stream.cancel()
            return
