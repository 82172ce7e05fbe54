"""Small ASGI helpers for the hot path: reading a bounded body, sending a
response, and the one JSON error shape (`google.rpc.Status`) every error uses.

The transcoded routes do not go through a web framework's routing and
dependency machinery: on this path every microsecond is paid per request.
"""
from __future__ import annotations

import re
from typing import Any, Awaitable, Callable, Iterable

import orjson

from transcoding import errors

from .unique import unique_hex

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
RawHeaders = list[tuple[bytes, bytes]]

JSON_CONTENT_TYPE = b"application/json"

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")


class ClientDisconnected(Exception):
    """The client went away while we were reading its request."""


def request_id_from(headers: dict[str, str]) -> str:
    """The client's X-Request-ID if it is sane (charset, <= 128 chars), else a new one."""
    given = headers.get("x-request-id")
    if given and _REQUEST_ID.match(given):
        return given
    return new_request_id()


def new_request_id() -> str:
    return unique_hex()


def header_dict(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-cased names -> values; repeated headers are joined with ', ' per RFC 9110."""
    out: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


async def read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    """The whole request body, refusing (413) as soon as it is known to exceed `limit`.

    A declared Content-Length over the limit is refused before reading a
    byte; a chunked body is refused at the first chunk that crosses it.
    """
    declared = headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise errors.BadRequest("invalid Content-Length header") from None
        if size > limit:
            raise errors.PayloadTooLarge(f"request body of {size} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        if chunk:
            total += len(chunk)
            if total > limit:
                raise errors.PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_response(send: Send, status: int, headers: RawHeaders, body: bytes) -> None:
    if status != 304:  # a 304 has no content, and its Content-Length could only be the 200's (RFC 9110 8.6)
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def raw_headers(pairs: Iterable[tuple[str, str]]) -> RawHeaders:
    """Text header pairs as ASGI wants them: lower-case latin-1 bytes."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in pairs]


def json_bytes(value: Any) -> bytes:
    return orjson.dumps(value)
