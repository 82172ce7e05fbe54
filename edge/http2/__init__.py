"""HTTP/2 on the public listener, beside uvicorn's HTTP/1.1, on the same socket.

One listener, one process model, one TLS context: uvicorn's server accepts every
connection and `with_http2()` decides per connection which protocol serves it:
`h2` when TLS negotiated it by ALPN, cleartext `h2c` when a plaintext connection
opens with the HTTP/2 preface (prior knowledge), HTTP/1.1 otherwise (with every
limit of edge/connection_limits.py, unchanged). HTTP/2 frames are parsed by the
`h2` library; streams become ASGI calls of the same app, so routes, batch, streams,
compression, access log and metrics are the protocol-blind app's.

The package, by concern: protocol.py (`with_http2`: which protocol serves a
connection), session.py (`Http2Session`: one connection's frames, bounds, timers,
GOAWAY and output), streams.py (a stream as an ASGI call: scope, body in, answer out
within the flow-control windows), limits.py (`Http2Limits`, the abuse counters, the
431/414/400 refusals), connection.py (the `h2` connection configured with our limits
from the first frame, and its lighter per-connection state).

Why not another server: docs/performance.md (Granian and Hypercorn were measured).

What a hostile HTTP/2 client can make the gateway hold is bounded here, before any
work reaches the app (`Http2Limits`, `listen.http2` in the config):

* the decoded header list: over `max_header_bytes` a stream gets our 431 (414 for a
  URL over `max_url_bytes`); over twice that, HPACK decoding stops mid-block and the
  connection is closed (GOAWAY COMPRESSION/ENHANCE_YOUR_CALM) -- an HPACK bomb never
  expands further than that;
* a frame header announcing more than the negotiated frame size, or a header block
  (HEADERS + CONTINUATION) growing past the header limit, closes the connection at
  once instead of being buffered until it is whole;
* concurrent streams: SETTINGS_MAX_CONCURRENT_STREAMS, and the same bound on the
  app calls of a connection still running (a stream the client reset keeps counting
  until its call has ended), so resetting streams cannot multiply work (CVE-2023-44487);
  a stream opened and reset within one read is never handed to the app at all;
* client resets and control frames (PING, SETTINGS, PRIORITY, unknown) per 10 s:
  past `max_resets` / `max_control_frames` the connection gets GOAWAY ENHANCE_YOUR_CALM;
* request body bytes buffered: the stream and connection flow-control windows; data
  is acknowledged only when the app has taken it;
* response bytes: written only as the client's window allows, one app message per
  stream at a time; a stream whose window stays shut `stalled_stream_timeout` is reset;
  while the socket's write buffer is full the connection stops reading, so a client
  that sends PINGs or SETTINGS without reading the answers cannot grow it;
* time: the preface and every header block must arrive within `header_timeout`, a
  request body within `body_timeout` of its headers (408), an idle connection is
  closed after `keep_alive_timeout`; while streams are open and the peer is silent,
  a PING every `ping_interval` checks it is still there.

SIGTERM: `shutdown()` sends GOAWAY naming the last stream taken, refuses newer
streams (REFUSED_STREAM, safe to retry) and closes once the open streams have ended;
uvicorn's drain timeout cancels calls that take longer, as for HTTP/1.1.
"""
from __future__ import annotations
from __future__ import annotations

from .limits import Http2Limits
from .protocol import PREFACE, with_http2
from .session import Http2Session

__all__ = ["PREFACE", "Http2Limits", "Http2Session", "with_http2"]
