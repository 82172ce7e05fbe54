"""A call's incoming metadata turned into what the backend is sent: the outgoing
metadata (request id, trace context, the forwarded headers per `header_rules`)
and the deadline.

Protocol-neutral: every client protocol the gateway speaks brings name -> value
metadata (HTTP headers, a WebSocket's handshake headers, gRPC metadata), and the
same rules decide what of it a backend sees. The caller's identity is added by
the identity stage, the idempotency key by the idempotency stage.
"""
from __future__ import annotations

from collections.abc import Mapping

from transcoding import errors
from transcoding.invoker import parse_timeout
from transcoding.options import HeaderRules, TranscodingOptions
from transcoding.routes import Route

from ..auth.config import DEFAULT_IDENTITY_METADATA
from ..header_rules import RequestHeaderRules
from ..observability.tracing import incoming_trace
from .context import OutgoingMetadata


class MetadataRules:
    """Per route options, the request-header rules; built once per options object."""

    def __init__(self, *, stripped: frozenset[str], credentials: frozenset[str], trusted_proxies: list[str]) -> None:
        self.stripped = stripped
        # Names no header rule may set from a client header (edge/header_rules.py): identity
        # (the defaults too, so a backend never sees a forged x-user-id even with auth off),
        # credentials and the Idempotency-Key header (the gateway derives its own).
        self._protected = stripped | frozenset(DEFAULT_IDENTITY_METADATA)
        self._credentials = credentials
        self._trusted = trusted_proxies
        # id(route.options) -> its rules; the options are held in _rules_for so an id is never reused.
        self._rules: dict[int, RequestHeaderRules] = {}
        self._rules_for: list[TranscodingOptions] = []

    def header_rules(self, route: Route) -> RequestHeaderRules:
        """A route's request-header rules, built once per options object."""
        rules = self._rules.get(id(route.options))
        return rules if rules is not None else self._build_rules(route.options)

    def _build_rules(self, options: TranscodingOptions) -> RequestHeaderRules:
        if len(self._rules) > 256:  # reloads build new options: keep the cache bounded
            self._rules.clear()
            self._rules_for.clear()
        protected = self.stripped if options.header_rules is HeaderRules.ALLOW_LIST else self._protected
        rules = RequestHeaderRules(
            options, protected=protected, credentials=self._credentials, trusted_proxies=self._trusted
        )
        self._rules_for.append(options)
        self._rules[id(options)] = rules
        return rules

    def outgoing(self, route: Route, headers: Mapping[str, str], request_id: str,
                 peer_ip: str | None) -> OutgoingMetadata:
        """The metadata a backend is sent for these incoming headers (identity comes later)."""
        metadata: OutgoingMetadata = [("x-request-id", request_id)]
        trace = incoming_trace(headers)
        if trace is not None:
            metadata.extend(trace.metadata())
        rules = self._rules.get(id(route.options)) or self.header_rules(route)
        for name in rules.names:  # the allow-list (forward_headers), the loop it always was
            value = headers.get(name)
            if value is not None:
                # gRPC metadata carries printable ASCII only; grpc would fail the call as a 500.
                if not (value.isascii() and value.isprintable()):
                    raise errors.BadRequest(
                        f"header {name!r} holds characters a gRPC backend cannot be sent (only printable ASCII)",
                        field=name,
                    )
                metadata.append((name, value))
        if rules.needs_more:
            rules.add_more(headers, peer_ip, metadata)
        return metadata


def client_deadline(headers: Mapping[str, str], default: float, maximum: float) -> float:
    """The backend's default deadline, changed by the client's `grpc-timeout` or
    `X-Request-Timeout`, never past the configured maximum."""
    for name in ("grpc-timeout", "x-request-timeout"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            requested = parse_timeout(value)
        except ValueError as exc:
            raise errors.BadRequest(f"{name} header: {exc}", field=name) from None
        if requested <= 0:
            raise errors.BadRequest(f"{name} header must be positive", field=name)
        return min(requested, maximum)
    return default
