"""Server-streaming replies in each anchor's format, and the choice of one per request.

A stream's messages reach the client as they arrive, in one of four framings
(`transcoding.options.StreamFormat`):

* ``ndjson`` -- one message a line, `application/x-ndjson` (edge's default since
  the start; Envoy's `stream_newline_delimited`, which Envoy labels application/json);
* ``json-array`` -- `[`, the messages separated by `,`, `]`, written incrementally,
  `application/json` (Envoy's default; an empty stream is `[]`);
* ``grpc-gateway`` -- grpc-gateway v2's `ForwardResponseStream`: one
  `{"result": <message>}` a line, `application/json`;
* ``sse`` -- Server-Sent Events as a browser's `EventSource` reads them, one
  `data: <message>` event a message, `text/event-stream` (Envoy's
  `stream_sse_style_delimited` writes exactly `data: ` + JSON + a blank line).

The route's `stream_format` is the default; the request's `Accept` may ask for
another: `application/x-ndjson`, `text/event-stream`, or `application/json` (the
JSON array, or grpc-gateway's lines where that is the route's format, since
grpc-gateway serves them under that type), with q-values (RFC 9110: the most
specific range decides a type's q; between equal q, a type named outright beats
one reached by a wildcard, then the route's default wins, then the range written
first, then the order ndjson, JSON, SSE). `*/*`, no Accept, or an Accept that names none of them
gives the default: like both anchors, a stream is never refused for its Accept.
A stream of `google.api.HttpBody` is raw bytes whatever was asked.

**A failure before the first message** still gets a real HTTP status (the head is
held back until the first message): the google.rpc.Status JSON body every edge
error has, or under ``grpc-gateway`` its own `{"error": <status>}` line (what
grpc-gateway writes at that status).

**A failure after messages were sent** cannot change the status (200 went out with
the first message), so each format says it in its body:

* ``ndjson`` and ``grpc-gateway``: a last line `{"error": <status>}` (grpc-gateway's
  exact shape, `code`/`message`/`details`);
* ``json-array``: a last element `{"error": <status>}`, then `]`, so the body stays
  valid JSON and the failure is visible. Envoy closes the array with `]` and puts
  the status only in HTTP/2 trailers (dropped on HTTP/1.1), so its client sees a
  short but complete-looking array; edge writes no response trailers (see
  edge/header_rules.py) and never lets a truncated stream pass for a whole one;
* ``sse``: an `event: error` event whose data is the status (EventSource fires it
  at `addEventListener("error", ...)` with the status in `event.data`).

A browser's EventSource reconnects when a stream ends; a page that has what it
needs calls `close()` (edge sends no `id:`, so a reconnection starts the stream
anew).
"""
from __future__ import annotations

from typing import Any

import orjson

from transcoding.options import StreamFormat

__all__ = ["Framing", "FRAMINGS", "choose_format"]


class Framing:
    """How one format writes a stream: stateless, one instance per format."""

    format: StreamFormat
    content_type: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def first(self, item: bytes) -> bytes:
        """The first message (compact JSON) as written."""
        return self.next(item)

    def next(self, item: bytes) -> bytes:
        raise NotImplementedError

    def end(self, sent_any: bool) -> bytes:
        """What closes a stream that ended well."""
        return b""

    def failure(self, status: dict[str, Any]) -> bytes:
        """What says that the stream failed after at least one message."""
        return orjson.dumps({"error": status}) + b"\n"


class _Ndjson(Framing):
    format = StreamFormat.NDJSON
    content_type = b"application/x-ndjson"

    def next(self, item: bytes) -> bytes:
        return item + b"\n"


class _JsonArray(Framing):
    format = StreamFormat.JSON_ARRAY
    content_type = b"application/json"

    def first(self, item: bytes) -> bytes:
        return b"[" + item

    def next(self, item: bytes) -> bytes:
        return b"," + item

    def end(self, sent_any: bool) -> bytes:
        return b"]" if sent_any else b"[]"

    def failure(self, status: dict[str, Any]) -> bytes:
        return b"," + orjson.dumps({"error": status}) + b"]"


class _GrpcGateway(Framing):
    format = StreamFormat.GRPC_GATEWAY
    content_type = b"application/json"

    def next(self, item: bytes) -> bytes:
        return b'{"result":' + item + b"}\n"


class _ServerSentEvents(Framing):
    format = StreamFormat.SSE
    content_type = b"text/event-stream"
    # Intermediaries must neither cache nor hold back an event stream.
    headers = ((b"cache-control", b"no-cache"),)

    def next(self, item: bytes) -> bytes:
        # Compact JSON has no raw newline (strings escape theirs), so one data line is the whole event.
        return b"data: " + item + b"\n\n"

    def failure(self, status: dict[str, Any]) -> bytes:
        return b"event: error\ndata: " + orjson.dumps(status) + b"\n\n"


FRAMINGS: dict[StreamFormat, Framing] = {
    f.format: f for f in (_Ndjson(), _JsonArray(), _GrpcGateway(), _ServerSentEvents())
}

# Media types a client may ask for; application/json is the route's JSON format (see choose_format).
_MEDIA = {
    ("application", "x-ndjson"): StreamFormat.NDJSON,
    ("application", "json"): None,
    ("text", "event-stream"): StreamFormat.SSE,
}
_CACHE_LIMIT = 256
_cache: dict[tuple[str, StreamFormat], StreamFormat] = {}


def choose_format(accept: str | None, default: StreamFormat) -> StreamFormat:
    """The format for a request's `Accept` (see the module docstring); remembered per distinct
    header, as clients send a handful of them."""
    if not accept:
        return default
    key = (accept, default)
    chosen = _cache.get(key)
    if chosen is None:
        chosen = _negotiate(accept, default)
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[key] = chosen
    return chosen


def _negotiate(accept: str, default: StreamFormat) -> StreamFormat:
    json_format = StreamFormat.GRPC_GATEWAY if default is StreamFormat.GRPC_GATEWAY else StreamFormat.JSON_ARRAY
    candidates = {t: (fmt or json_format) for t, fmt in _MEDIA.items()}
    # For each candidate type: (specificity, q, position) of the most specific range that matches it.
    best: dict[tuple[str, str], tuple[int, float, int]] = {}
    for position, part in enumerate(accept.split(",")):
        media, *params = part.split(";")
        kind, _, sub = media.strip().lower().partition("/")
        if not kind or not sub:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
                if not 0.0 <= q <= 1.0:
                    q = -1.0  # a malformed weight: the range is ignored
        if q < 0:
            continue
        for candidate in candidates:
            if kind == "*" and sub == "*":
                specificity = 1
            elif kind == candidate[0] and sub == "*":
                specificity = 2
            elif (kind, sub) == candidate:
                specificity = 3
            else:
                continue
            known = best.get(candidate)
            if known is None or specificity > known[0]:
                best[candidate] = (specificity, q, position)
    order = list(candidates)
    ranked = [
        ((q, specificity, candidates[t] is default, -position, -order.index(t)), candidates[t])
        for t, (specificity, q, position) in best.items() if q > 0
    ]
    return max(ranked)[1] if ranked else default
