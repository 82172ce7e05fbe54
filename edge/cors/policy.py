"""CORS at the edge: preflights answered here, CORS headers on every other answer.

Follows the Fetch standard's CORS protocol. What it does, and why:

* **Preflight** (`OPTIONS` with `Origin` and `Access-Control-Request-Method`):
  answered here, before auth, rate limits, body reading or any backend call:
  a browser sends no credentials on a preflight, so asking for a token would
  fail every cross-origin call, and charging a limit would bill the user twice
  per call. Allowed: 204 with the Access-Control-Allow-* headers. Refused
  (origin, method or a header not allowed): 403 with a google.rpc.Status body
  and no CORS headers, so the browser stops there. The policy is the route's
  that the asked-for method and the path select; a path (or method) with no
  route gets the global policy, so the real request goes on to its 404 or 405
  and the page can read that answer instead of an opaque network error.
* **Every other answer** (replies, streams, every error: 401, 403, 404, 429,
  503...) gets, for an allowed origin, `Access-Control-Allow-Origin` (the
  origin itself, or `*` for a public policy without credentials), the
  credentials flag, and `Access-Control-Expose-Headers`: the configured names
  plus, for each `prefix*` entry, the names with that prefix this response
  carries (backend metadata such as `Grpc-Metadata-Trace-Id`, which are known
  only per response). An origin that is not allowed gets no CORS headers.
* `Vary: Origin` on every answer the policy covers, whether or not the
  request had an `Origin`: the answer depends on it, and a cache must not hand
  a response made for one origin (or for none) to another.
* Access-Control-* headers from anywhere else (backend metadata passed under
  their own names) are removed: with CORS on, the gateway alone decides them.

Why not Starlette's CORSMiddleware: it has one policy for the whole app (no
per-route policy, and it cannot see which route a request took), puts the
credentials and expose headers on answers to origins it does not allow,
reflects any Origin when `*` is combined with credentials, lists only fixed
expose headers, and refuses preflights with a plain-text 400.

Per request the cost is one wrapped `send`; the per-route policy is looked up
from what the call recorded (no second route lookup), once per route.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable

from google.rpc import code_pb2, error_details_pb2

from transcoding.errors import TranscodeError

from ..http import JSON_CONTENT_TYPE, RawHeaders, Send, json_bytes, send_response
from ..matching import Matcher, Target
from ..state.errors import detail
from .config import DEFAULT_ALLOW_HEADERS, CorsConfig, EffectiveCors
from .origins import AllowedOrigins

if TYPE_CHECKING:
    from transcoding.routes import RouteTable

    from ..config import GatewayConfig
    from ..core.record import CallRecord

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Request headers a browser may send without asking, but lists in a preflight when their
# value is not the safelisted kind (Content-Type: application/json): always allowed.
_SAFELISTED = frozenset({"accept", "accept-language", "content-language", "content-type"})
_MAX_REQUESTED_HEADERS = 64
_DOMAIN = "edge.gateway"

_VARY_ACTUAL = b"Origin"
_VARY_PREFLIGHT = b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
_ACCESS_CONTROL = b"access-control-"


class CorsPolicy:
    """One effective policy with its answers prebuilt as header bytes."""

    __slots__ = ("origins", "methods", "methods_value", "headers", "any_header", "expose_value",
                 "expose_prefixes", "credentials", "max_age_value", "wildcard")

    def __init__(self, policy: EffectiveCors, default_headers: Iterable[str] = DEFAULT_ALLOW_HEADERS) -> None:
        self.origins = AllowedOrigins(policy.allow_origins)
        self.credentials = policy.allow_credentials
        # `*` is answered as `*`: never the request's Origin (config refuses it with credentials).
        self.wildcard = self.origins.any and not self.credentials
        any_method = policy.allow_methods == ["*"]
        self.methods: frozenset[str] | None = None if any_method else frozenset(policy.allow_methods)
        self.methods_value = None if any_method else ", ".join(policy.allow_methods).encode("latin-1")
        names = policy.allow_headers if policy.allow_headers is not None else [h.lower() for h in default_headers]
        self.any_header = "*" in names
        self.headers = frozenset(n for n in names if n != "*") | _SAFELISTED
        fixed = [n for n in policy.expose_headers if not n.endswith("*")]
        self.expose_value = ", ".join(fixed).encode("latin-1")
        self.expose_prefixes = tuple(n[:-1].encode("latin-1") for n in policy.expose_headers if n.endswith("*"))
        self.max_age_value = str(int(policy.max_age)).encode()

    def allow_origin_value(self, origin: str) -> bytes:
        return b"*" if self.wildcard else origin.encode("latin-1")

    # ---- actual requests ------------------------------------------------------------

    def decorate(self, headers: RawHeaders, origin: str | None) -> None:
        """Add this policy's headers to a response's (in place): Vary always, the rest
        only for an allowed origin; Access-Control-* set by anyone else are dropped."""
        names = [name for name, _ in headers]
        if _ACCESS_CONTROL in b"\n".join(names):  # rare: someone else set CORS headers
            headers[:] = [h for h in headers if not h[0].startswith(_ACCESS_CONTROL)]
            names = [name for name, _ in headers]
        if b"vary" in names:
            _merge_vary(headers, names.index(b"vary"), _VARY_ACTUAL)
        else:
            headers.append((b"vary", _VARY_ACTUAL))
        if origin is None or not self.origins.allows(origin):
            return
        headers.append((b"access-control-allow-origin", self.allow_origin_value(origin)))
        if self.credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        expose = self.expose_value
        prefixes = self.expose_prefixes
        if prefixes:
            exposed = [name for name in names if name.startswith(prefixes)]
            if exposed:
                listed = b", ".join(dict.fromkeys(exposed))
                expose = expose + b", " + listed if expose else listed
        if expose:
            headers.append((b"access-control-expose-headers", expose))

    # ---- preflights -----------------------------------------------------------------

    def preflight(self, origin: str, method: str, requested: str | None) -> tuple[int, RawHeaders, bytes]:
        """The answer to a preflight: 204 with the allow headers, or a 403 saying what is not allowed."""
        if not self.origins.allows(origin):
            shown = origin if len(origin) <= 200 else origin[:200] + "..."
            return _refusal("CORS_ORIGIN_NOT_ALLOWED", f"CORS: origin {shown!r} may not call this route")
        if not _TOKEN.match(method) or (self.methods is not None and method not in self.methods):
            return _refusal("CORS_METHOD_NOT_ALLOWED", f"CORS: method {method[:32]!r} is not allowed on this route")
        names: list[str] = []
        if requested:
            refused: list[str] = []
            for part in requested.split(","):
                name = part.strip().lower()
                if not name:
                    continue
                if not _TOKEN.match(name) or len(names) >= _MAX_REQUESTED_HEADERS:
                    return _refusal("CORS_HEADERS_NOT_ALLOWED", "CORS: Access-Control-Request-Headers is malformed "
                                    f"or names more than {_MAX_REQUESTED_HEADERS} headers")
                if not (name in self.headers or (self.any_header and name != "authorization")):
                    refused.append(name)
                names.append(name)
            if refused:
                return _refusal("CORS_HEADERS_NOT_ALLOWED",
                                f"CORS: request header(s) not allowed on this route: {', '.join(refused[:10])}")
        headers: RawHeaders = [(b"access-control-allow-origin", self.allow_origin_value(origin))]
        if self.credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        headers.append((b"access-control-allow-methods", self.methods_value or method.encode("latin-1")))
        if names:
            headers.append((b"access-control-allow-headers", ", ".join(dict.fromkeys(names)).encode("latin-1")))
        headers.append((b"access-control-max-age", self.max_age_value))
        headers.append((b"vary", _VARY_PREFLIGHT))
        return 204, headers, b""


def _merge_vary(headers: RawHeaders, index: int, value: bytes) -> None:
    current = headers[index][1]
    if current.strip() == b"*" or any(v.strip().lower() == b"origin" for v in current.split(b",")):
        return
    headers[index] = (b"vary", current + b", " + value)


def _refusal(reason: str, message: str) -> tuple[int, RawHeaders, bytes]:
    info = detail(error_details_pb2.ErrorInfo(reason=reason, domain=_DOMAIN))
    body = json_bytes({"code": code_pb2.PERMISSION_DENIED, "message": message, "details": [info]})
    return 403, [(b"content-type", JSON_CONTENT_TYPE), (b"vary", _VARY_PREFLIGHT)], body


class Cors:
    """The gateway's CORS: the global policy and per-route ones, resolved once per route."""

    def __init__(self, config: CorsConfig, default_allow_headers: Iterable[str] = DEFAULT_ALLOW_HEADERS) -> None:
        defaults = tuple(default_allow_headers)
        self.default = CorsPolicy(config.effective(), defaults)
        self._routes: Matcher[CorsPolicy] = Matcher(
            (route.match, CorsPolicy(config.effective(route), defaults)) for route in config.routes)
        self._by_route: dict[tuple[str, str, str], CorsPolicy] = {}

    def policy(self, full_method: str, http_method: str, template: str) -> CorsPolicy:
        """The policy of one route: the most specific route entry that matches, else the global one."""
        key = (full_method, http_method, template)
        policy = self._by_route.get(key)
        if policy is None:
            best = self._routes.best(Target(full_method, http_method, template)) if self._routes else None
            policy = self.default if best is None else best[1]
            if len(self._by_route) < 10_000:  # routes are few; a bound all the same
                self._by_route[key] = policy
        return policy

    @staticmethod
    def is_preflight(http_method: str, headers: dict[str, str]) -> bool:
        return http_method == "OPTIONS" and "access-control-request-method" in headers and "origin" in headers

    async def preflight(self, table: "RouteTable", raw_path: str, headers: dict[str, str], send: Send,
                        id_header: tuple[bytes, bytes], record: "CallRecord") -> tuple[int, int]:
        """Answer a preflight; (status, body bytes) for the access log. `record.route` is
        set to the route the preflight asked about (no gRPC method: nothing was called)."""
        method = headers["access-control-request-method"].strip()
        policy = self.default
        if _TOKEN.match(method):
            try:
                route, _ = table.lookup(method, raw_path)
            except TranscodeError:
                pass  # no route for that method and path: the global policy answers
            else:
                record.route = route.template
                policy = self.policy(route.full_method, route.binding.http_method, route.template)
        status, out, body = policy.preflight(headers["origin"], method, headers.get("access-control-request-headers"))
        out.append(id_header)
        record.http_status = status
        if status == 204:
            await send({"type": "http.response.start", "status": 204, "headers": out})
            await send({"type": "http.response.body", "body": b""})
        else:
            await send_response(send, status, out, body)
        return status, len(body)

    def sender(self, send: Send, origin: str | None, http_method: str, record: "CallRecord | None") -> Send:
        """`send` with this request's CORS headers added to the response head. The policy is
        the one of the route the call recorded (none recorded: the global one)."""
        cors = self

        async def send_with_cors(message: dict) -> None:
            if message["type"] == "http.response.start":
                if record is None or record.grpc_method is None or record.route is None:
                    policy = cors.default
                else:
                    policy = cors.policy(record.grpc_method, http_method, record.route)
                headers = message.get("headers")
                if not isinstance(headers, list):
                    headers = message["headers"] = list(headers or ())
                policy.decorate(headers, origin)
            await send(message)

        return send_with_cors


def build_cors(config: "GatewayConfig") -> Cors | None:
    """The gateway's `Cors`, or None when `cors` is not set. The default allowed request
    headers are the gateway's own, its idempotency header (as configured) and the
    top-level `transcoding.forward_headers`."""
    if config.cors is None:
        return None
    defaults = list(DEFAULT_ALLOW_HEADERS)
    if config.idempotency is not None:
        defaults.append(config.idempotency.header.lower())
    defaults.extend(h.lower() for h in config.transcoding.forward_headers or ())
    return Cors(config.cors, dict.fromkeys(defaults))
