"""Which request headers reach a backend as gRPC metadata, and how backend metadata comes back.

Three rule sets (`transcoding.options.HeaderRules`), chosen per backend:

* ``allow-list`` (edge's default): only the headers named in `forward_headers`.
  Passing arbitrary client headers to a backend is a choice an operator makes by
  name, not a default (a documented refusal: both anchors pass more).
* ``grpc-gateway``: grpc-gateway v2's `DefaultHeaderMatcher` and `AnnotateContext`:
  `Grpc-Metadata-<name>` becomes `<name>`; the IANA permanent request headers
  (`Accept`, `User-Agent`, ...) become `grpcgateway-<name>`; `x-forwarded-host`
  and `x-forwarded-for` are set.
* ``envoy``: every end-to-end header under its own name, as Envoy's transcoder
  passes the whole HTTP request on to the backend.

Under every set, on top of `forward_headers`:

* never from a client: identity metadata the authenticator derives from a token
  (`x-user-id`...; its `stripped_header_names`), credentials (`Authorization`,
  `Proxy-Authorization`, `Cookie`, the API-key header: forwarding a credential is
  the authenticator's per-issuer decision, never a header rule's), the gateway's
  own metadata (`x-request-id`, `traceparent`, `tracestate`, `idempotency-key`),
  gRPC's reserved `grpc-*`, hop-by-hop and HTTP framing headers. grpc-gateway
  forwards `Authorization` (bare and as `grpcgateway-authorization`) and
  `grpcgateway-cookie`; edge does not: list `cookie` in `forward_headers` to pass it.
* `x-forwarded-for` is built, never copied: the client address the gateway
  believes (`rate_limits.trusted_proxies`, the same walk as per-IP limits), the
  trusted proxies after it, and the peer -- grpc-gateway appends the peer to
  whatever the client wrote, so a client could name any address it liked.
  `x-forwarded-host` (and, under `envoy`, `x-forwarded-proto`, `-port`,
  `forwarded`, `x-real-ip`) is believed only from a trusted proxy; otherwise
  `x-forwarded-host` is the request's `Host`, as grpc-gateway does.
* a `-bin` header is base64 (padded or not, as grpc-gateway reads it) decoded into
  binary metadata; bad base64 is a 400. A value gRPC cannot carry (anything but
  printable ASCII) is a 400 (grpc-gateway skips it silently); a header whose name
  cannot be a metadata key is skipped (both anchors' choice).

Replies (`response_metadata`): the backend's initial metadata as
`Grpc-Metadata-<key>` headers and its trailing metadata as `Grpc-Trailer-<key>`
(grpc-gateway's names), or under ``envoy`` by their own names, as Envoy passes a
backend's headers through. Binary values are sent base64-encoded (their gRPC wire
form, what Envoy passes on; grpc-gateway writes the raw bytes). Edge never sends
HTTP trailers (neither its HTTP/1.1 nor its HTTP/2 listener writes response
trailers, and browsers ignore them): a unary
reply is complete before its head is written, so its trailing metadata are
ordinary headers, with or without `TE: trailers` (grpc-gateway sends them as HTTP
trailers, and only with it); a stream's trailing metadata come after the head and
are dropped, as grpc-gateway drops them.

Everything here is built once per route's options; the allow-list path per request
is the same loop over names it always was.
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import Iterable, Sequence

from transcoding import errors
from transcoding.invoker import Metadata
from transcoding.options import HeaderRules, TranscodingOptions

from .ratelimit.client_ip import Network, forwarded_chain

__all__ = [
    "CREDENTIAL_HEADERS", "GATEWAY_METADATA", "PERMANENT_HEADERS", "RequestHeaderRules", "response_headers",
]

# The gateway's own metadata: set by the gateway only (a client's value passes after validation, by the gateway).
GATEWAY_METADATA = frozenset({"x-request-id", "traceparent", "tracestate", "idempotency-key"})
# Credentials: sent on only by the authenticator (edge/auth), per issuer and policy (x-api-key is
# the authenticator's default API-key header, a credential with or without auth configured).
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
# Connection-level and framing headers: about this HTTP hop, never about the call.
_HOP_AND_FRAMING = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade", "trailer",
    "http2-settings", "host", "content-length", "content-type", "content-encoding", "accept-encoding", "expect",
})
# Headers the gateway itself reads to run the call (deadline), not the backend's business.
_GATEWAY_CONTROLS = frozenset({"x-request-timeout"})
# What proxies say about the client: believed from trusted proxies only.
_FORWARDING = frozenset({"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port",
                         "forwarded", "x-real-ip"})
# grpc-gateway's isPermanentHTTPHeader list (IANA permanent request headers), lower-cased. Host is
# left out as grpc-gateway's own code never sees it among the headers (Go keeps it apart, in
# Request.Host), and the credentials above are never forwarded by a rule.
PERMANENT_HEADERS = frozenset({
    "accept", "accept-charset", "accept-language", "accept-ranges", "authorization", "cache-control",
    "content-type", "cookie", "date", "expect", "from", "if-match", "if-modified-since", "if-none-match",
    "if-schedule-tag-match", "if-unmodified-since", "max-forwards", "origin", "pragma", "referer",
    "user-agent", "via", "warning",
})
_GG_PREFIX = "grpc-metadata-"
_GG_PERMANENT_PREFIX = "grpcgateway-"
_METADATA_KEY = re.compile(r"^[0-9a-z_.-]+$")


def decode_binary(name: str, value: str) -> bytes:
    """A `-bin` header's base64 value (padded, or unpadded as grpc-gateway also reads it)."""
    text = value.strip()
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise errors.BadRequest(f"header {name!r} is a binary (-bin) header but not valid base64", field=name) from None


def _text(name: str, value: str) -> str:
    # gRPC metadata carries printable ASCII only; grpc would fail the call as a 500.
    if not (value.isascii() and value.isprintable()):
        raise errors.BadRequest(
            f"header {name!r} holds characters a gRPC backend cannot be sent (only printable ASCII)", field=name
        )
    return value


class RequestHeaderRules:
    """One route's request-header rules, built once per options (see the module docstring).

    `names` are the allow-listed headers passed as they are (the unchanged hot path);
    `needs_more` says whether `add_more` has anything to do for this route."""

    def __init__(
        self,
        options: TranscodingOptions,
        *,
        protected: Iterable[str] = (),
        credentials: Iterable[str] = (),
        trusted_proxies: Sequence[Network] = (),
    ) -> None:
        self.mode = options.header_rules
        self.trusted = tuple(trusted_proxies)
        # Never set from a client header by any rule.
        self.never = (
            frozenset(protected) | GATEWAY_METADATA | CREDENTIAL_HEADERS | frozenset(credentials)
            | _HOP_AND_FRAMING | _GATEWAY_CONTROLS
        )
        listed = frozenset(options.forward_headers) - frozenset(protected) - GATEWAY_METADATA
        self.names: tuple[str, ...] = tuple(sorted(
            n for n in listed if n not in _FORWARDING and not n.endswith("-bin")
        ))
        self.binary_names = tuple(sorted(n for n in listed if n.endswith("-bin") and n not in _FORWARDING))
        self.listed_forwarding = frozenset(n for n in listed if n in _FORWARDING)
        self.listed = frozenset(self.names) | frozenset(self.binary_names)
        self.forwarded_for = self.mode is not HeaderRules.ALLOW_LIST or "x-forwarded-for" in listed
        self.forwarded_host = self.mode is HeaderRules.GRPC_GATEWAY or "x-forwarded-host" in listed
        self.built = frozenset({"x-forwarded-for"} | ({"x-forwarded-host"} if self.forwarded_host else set()))
        self.needs_peer = bool(
            self.forwarded_for or self.forwarded_host or self.listed_forwarding or self.mode is HeaderRules.ENVOY
        )
        self.needs_more = bool(self.mode is not HeaderRules.ALLOW_LIST or self.binary_names or self.listed_forwarding)
        # grpc-gateway's permanent headers, by the metadata key each becomes (credentials never).
        self.permanent = {
            name: _GG_PERMANENT_PREFIX + name
            for name in PERMANENT_HEADERS - CREDENTIAL_HEADERS - frozenset(credentials)
            if _GG_PERMANENT_PREFIX + name not in self.never
        }

    def add_listed(self, headers: dict[str, str], out: list[tuple[str, str | bytes]]) -> None:
        """The allow-listed text headers (`forward_headers`), as they are."""
        for name in self.names:
            value = headers.get(name)
            if value is not None:
                out.append((name, _text(name, value)))

    def add_more(self, headers: dict[str, str], peer_ip: str | None, out: list[tuple[str, str | bytes]]) -> None:
        """Binary allow-listed headers, the forwarding headers, and the rule set's own mapping."""
        for name in self.binary_names:
            value = headers.get(name)
            if value is not None:
                out.append((name, decode_binary(name, value)))
        trusted_peer = False
        if self.needs_peer and peer_ip:
            chain, trusted_peer = forwarded_chain(peer_ip, headers, self.trusted)
            if self.forwarded_for and chain:
                out.append(("x-forwarded-for", ", ".join(chain)))
        if self.forwarded_host:
            host = headers.get("x-forwarded-host") if trusted_peer else None
            host = host or headers.get("host")
            if host:
                out.append(("x-forwarded-host", _text("x-forwarded-host", host)))
        mode = self.mode
        if mode is HeaderRules.ALLOW_LIST:
            self._trusted_forwarding(headers, trusted_peer, out, self.listed_forwarding)
        elif mode is HeaderRules.GRPC_GATEWAY:
            self._grpc_gateway(headers, out)
        else:
            self._envoy(headers, out)
            self._trusted_forwarding(headers, trusted_peer, out, _FORWARDING)

    def _trusted_forwarding(
        self, headers: dict[str, str], trusted_peer: bool, out: list[tuple[str, str | bytes]], names: Iterable[str]
    ) -> None:
        if not trusted_peer:
            return
        for name in names:
            if name in self.built:
                continue
            value = headers.get(name)
            if value is not None:
                out.append((name, _text(name, value)))

    def _add(self, key: str, header: str, value: str, out: list[tuple[str, str | bytes]]) -> None:
        if key in self.never or key.startswith("grpc-") or key in _FORWARDING or not _METADATA_KEY.match(key):
            return
        out.append((key, decode_binary(header, value) if key.endswith("-bin") else _text(header, value)))

    def _grpc_gateway(self, headers: dict[str, str], out: list[tuple[str, str | bytes]]) -> None:
        permanent = self.permanent
        for name, value in headers.items():
            if name.startswith(_GG_PREFIX):
                if len(name) > len(_GG_PREFIX):
                    self._add(name[len(_GG_PREFIX):], name, value, out)
            else:
                key = permanent.get(name)
                if key is not None:
                    out.append((key, _text(name, value)))

    def _envoy(self, headers: dict[str, str], out: list[tuple[str, str | bytes]]) -> None:
        listed = self.listed
        for name, value in headers.items():
            if name not in listed:  # an allow-listed header went already, under the same name
                self._add(name, name, value, out)


# ---- replies ---------------------------------------------------------------------------------

_REPLY_NEVER = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade", "trailer",
    "content-length", "content-type", "content-encoding", "x-request-id", "date", "server",
})


def response_headers(mode: HeaderRules, initial: Metadata, trailing: Metadata) -> list[tuple[bytes, bytes]]:
    """A backend's metadata as response headers (see the module docstring)."""
    if mode is HeaderRules.ENVOY:
        return _own_names(initial) + _own_names(trailing)
    return _prefixed(b"grpc-metadata-", initial) + _prefixed(b"grpc-trailer-", trailing)


def _value(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return base64.b64encode(value)
    return str(value).encode("latin-1", "replace")


def _prefixed(prefix: bytes, metadata: Metadata) -> list[tuple[bytes, bytes]]:
    return [(prefix + key.encode("latin-1"), _value(value)) for key, value in metadata]


def _own_names(metadata: Metadata) -> list[tuple[bytes, bytes]]:
    return [
        (key.encode("latin-1"), _value(value))
        for key, value in metadata
        if key not in _REPLY_NEVER and not key.startswith(("grpc-", ":"))
    ]
