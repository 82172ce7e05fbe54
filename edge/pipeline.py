"""One call's way through the offloads to its backend.

`Pipeline.run` is the same for a request that arrived alone and for an item
of a batch, so both get the same route table, JSON mapping, auth policy,
limits and errors. In order:

1. route lookup in the live table (the table is fixed for the whole call);
2. identity: client-supplied identity headers are dropped on every route,
   then the route's policy decides whether a credential is required
   (a batch item reuses the batch's principal, and only its policy is checked);
3. rate limits, all policies in one store round trip (a batch is charged
   once, for all its items, before any item runs);
4. the request message from path, body and query;
5. Idempotency-Key: reserve, or replay, or refuse;
6. the gRPC call, then the stored outcome for idempotent retries.

Two REST-adapter stages sit on either side of the call when configured: the
`fields` system parameter (edge/partial.py: taken out of the query, the reply
trimmed) and conditional GETs (edge/conditional.py: ETag, Cache-Control, 304).

What happened on the way is kept in `CallRecord` for the access log and metrics.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

import grpc

from transcoding import errors
from transcoding.invoker import CallError, parse_timeout
from transcoding.options import HeaderRules
from transcoding.routes import Route

from .auth.config import DEFAULT_IDENTITY_METADATA
from .backends import BackendRegistry
from .compression import stream_compressor
from .config import GatewayConfig
from .errors import error_parts, grpc_code_of
from .header_rules import RequestHeaderRules
from .http import RawHeaders, Receive, Send, raw_headers
from .observability.tracing import incoming_trace
from .idempotency import BeginState, IdempotencyEngine, StoredResponse
from .proxy import (
    CallOutcome, call_error_parts, forward_stream, forward_unary,
)
from .ratelimit import RateLimitContext, RateLimitDecision, RateLimiter, rate_limit_headers, refusal
from .streaming import FRAMINGS, choose_format

if TYPE_CHECKING:
    from .conditional import ConditionalGets
    from .partial import PartialResponses
    from .auth import AuthOutcome, Authenticator, EffectivePolicy, PolicyResolver, Principal

Bindings = list[tuple[tuple[str, ...], str]]


@dataclass
class Call:
    """One call to route: a whole HTTP request, or one item of a batch."""

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
    request: Any = None
    peer_ip: str | None = None  # the connection's peer (x-forwarded-for is built from it)


@dataclass
class Reply:
    status: int
    headers: RawHeaders
    body: bytes
    grpc_code: int


@dataclass
class CallRecord:
    """What the access log and metrics report about one call."""

    route: str | None = None
    grpc_method: str | None = None
    backend: str | None = None
    principal: str | None = None
    auth_decision: str | None = None
    auth_reason: str | None = None
    ratelimit: list[dict[str, Any]] = field(default_factory=list)
    ratelimit_decision: str | None = None
    idempotency: str | None = None
    called: bool = False  # the backend was called (not refused or replayed by the gateway)
    backend_seconds: float = 0.0
    grpc_code: int | None = None
    http_status: int | None = None
    streamed_bytes: int = 0


class Pipeline:
    def __init__(
        self,
        config: GatewayConfig,
        registry: BackendRegistry,
        *,
        authenticator: Authenticator | None = None,
        policies: PolicyResolver | None = None,
        limiter: RateLimiter | None = None,
        idempotency: IdempotencyEngine | None = None,
        store: Any | None = None,
        partial: PartialResponses | None = None,
        caching: ConditionalGets | None = None,
    ) -> None:
        self.config = config
        self.partial = partial  # the `fields` system parameter (REST)
        self.caching = caching  # ETag / If-None-Match / Cache-Control (REST)
        self.store = store  # the shared state store behind limits and idempotency, if any
        self.registry = registry
        self.authenticator = authenticator
        self.policies = policies
        self.limiter = limiter
        self.idempotency = idempotency
        self.stripped = frozenset(authenticator.stripped_header_names) if authenticator else frozenset()
        # Names no header rule may set from a client header (edge/header_rules.py): identity
        # (the defaults too, so a backend never sees a forged x-user-id even with auth off),
        # credentials and the Idempotency-Key header (the gateway derives its own).
        self._protected = self.stripped | frozenset(DEFAULT_IDENTITY_METADATA)
        credentials = set(authenticator.credential_header_names) if authenticator else set()
        if idempotency is not None:
            credentials.add(idempotency.config.header.lower())
        self._credentials = frozenset(credentials)
        self._trusted = list(config.rate_limits.trusted_proxies) if config.rate_limits is not None else []
        # id(route.options) -> its rules; the options are held in _rules_for so an id is never reused.
        self._rules: dict[int, RequestHeaderRules] = {}
        self._rules_for: list[Any] = []
        self._settling: set[asyncio.Future[None]] = set()  # keyed calls settling after their caller left

    def header_rules(self, route: Route) -> RequestHeaderRules:
        """A route's request-header rules, built once per options object."""
        rules = self._rules.get(id(route.options))
        return rules if rules is not None else self._build_rules(route.options)

    def _build_rules(self, options: Any) -> RequestHeaderRules:
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

    # ---- the steps --------------------------------------------------------------------

    def lookup(self, call: Call, record: CallRecord) -> tuple[Route, Bindings]:
        if call.route is not None:
            route, bindings = call.route, []
        else:
            route, bindings = self.registry.table.lookup(call.http_method, call.raw_path)
        record.route, record.grpc_method, record.backend = route.template, route.full_method, route.backend
        return route, bindings

    def policy_for(self, route: Route) -> EffectivePolicy | None:
        if self.policies is None:
            return None
        return self.policies.resolve(route.full_method, route.binding.http_method, route.template, route.method)

    async def authenticate(self, call: Call, route: Route, record: CallRecord) -> EffectivePolicy | None:
        policy = self.policy_for(route)
        if self.authenticator is None or policy is None:
            return policy
        try:
            if call.preauthenticated:
                outcome = self.authenticator.authorize(call.principal, policy)
            else:
                outcome = await self.authenticator.authenticate(call.headers, policy)
        except Exception as exc:
            record.auth_decision, record.auth_reason = "denied", getattr(exc, "reason", None)
            raise
        call.principal, call.auth = outcome.principal, outcome
        record.auth_decision, record.auth_reason = outcome.decision, outcome.reason
        record.principal = outcome.principal.subject if outcome.principal else None
        return policy

    def _limit_context(self, call: Call, http_method: str, route: Route | None, path: str) -> RateLimitContext:
        principal = call.principal
        return RateLimitContext(
            principal_id=principal.subject if principal else None,
            claims=principal.claims if principal else None,
            client_ip=call.client_ip,
            route=route.template if route else path,
            service=route.method.containing_service.full_name if route else "",
            method=route.full_method if route else "",
            http_method=http_method,
        )

    async def charge(self, call: Call, route: Route | None, record: CallRecord) -> RawHeaders:
        """Rate limits for this call, all its policies in one store round trip."""
        if self.limiter is None or call.charged:
            return []
        ctx = self._limit_context(call, call.http_method, route, call.raw_path)
        return self._limit_outcome(await self.limiter.check(ctx), call, record)

    async def charge_items(self, call: Call, record: CallRecord, items: list[tuple[str, str]]) -> RawHeaders:
        """A batch's charge: one unit per item on every policy its route falls under, all
        items decided together before any runs, so a batch never half-runs for lack of budget."""
        if self.limiter is None or call.charged or not items:
            return []
        table = self.registry.table
        contexts = []
        for http_method, path in items:
            try:
                route: Route | None = table.lookup(http_method, path)[0]
            except errors.TranscodeError:
                route = None  # still one unit: the item is answered (404, 405...) like a single call
            contexts.append((self._limit_context(call, http_method, route, path), 1))
        return self._limit_outcome(await self.limiter.check_many(contexts), call, record)

    def _limit_outcome(self, decision: RateLimitDecision, call: Call, record: CallRecord) -> RawHeaders:
        record.ratelimit_decision = "allowed" if decision.allowed else "limited"
        record.ratelimit = [
            {"policy": p.name, "limit": p.quota, "remaining": p.remaining} for p in decision.policies_applied
        ]
        error = refusal(decision)
        if error is not None:
            raise error
        call.charged = True
        return raw_headers(rate_limit_headers(decision))

    def deadline(self, call: Call, route: Route) -> float:
        backend = self.registry.backends[route.backend].config
        return client_deadline(call.headers, backend.timeout, backend.max_timeout)

    def metadata(self, call: Call, route: Route, policy: EffectivePolicy | None) -> list[tuple[str, Any]]:
        headers = call.headers
        metadata = [("x-request-id", call.request_id)]
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
            rules.add_more(headers, call.peer_ip, metadata)
        if self.authenticator is not None and call.auth is not None and policy is not None:
            # The caller's identity as the gateway vouches for it (and the raw token
            # only where the route's policy asks for it).
            metadata.extend(self.authenticator.backend_metadata(call.auth, headers, policy))
        return metadata

    # ---- the whole call ---------------------------------------------------------------

    async def run(
        self,
        call: Call,
        record: CallRecord,
        *,
        send: Send | None = None,
        receive: Receive | None = None,
        extra_headers: RawHeaders = (),
        stream_cap: int = 1000,
        accept_encoding: str | None = None,
    ) -> Reply | None:
        """The reply, or None when a server stream was written straight to `send`."""
        route, bindings = self.lookup(call, record)
        policy = await self.authenticate(call, route, record)
        limit_headers = await self.charge(call, route, record)
        headers_out = list(extra_headers) + limit_headers
        query = parse_query(call.query_string, route.options.query_unescape_plus)
        mask = None
        if self.partial is not None and (b"fields" in call.query_string or b"%" in call.query_string):
            query, mask = self.partial.take(route, query)
        content_type = call.headers.get("content-type")
        if call.request is not None:
            request: Any = call.request
            if mask is not None:
                mask.prepare(request)
        elif route.client_streaming:
            request = route.request_codec.decode_stream(bindings, query, call.body, content_type)
        else:
            request = route.request_codec.decode(bindings, query, call.body, content_type)
            if mask is not None:
                mask.prepare(request)
        timeout = self.deadline(call, route)
        metadata = self.metadata(call, route, policy)

        if route.server_streaming:
            if send is not None and receive is not None:
                compress = self.config.compression
                opted_out = compress.route_opted_out(route.full_method, route.template, route.binding.http_method)
                framing = FRAMINGS[choose_format(call.headers.get("accept"), route.options.stream_format)]
                outcome = await forward_stream(
                    route, request, send, receive, framing, timeout=timeout, metadata=metadata,
                    response_metadata=route.options.response_metadata, extra_headers=headers_out,
                    compressor=lambda headers: stream_compressor(compress, accept_encoding, headers, opted_out=opted_out),
                )
                record.backend_seconds, record.grpc_code, record.http_status = (
                    outcome.backend_seconds, outcome.grpc_code, outcome.status)
                record.streamed_bytes, record.called = outcome.sent_bytes, True
                return None
            return await self._collect_stream(route, request, timeout, metadata, headers_out, record, stream_cap)

        begin = None
        if self.idempotency is not None:
            begin = await self.idempotency.begin(
                call.principal.subject if call.principal else None,
                f"{route.binding.http_method} {route.template}",
                call.headers.get(self.idempotency.config.header.lower()),
                call.http_method, call.raw_path, query, call.body, call.headers,
                grpc_method=route.full_method, deadline=timeout,
            )
            record.idempotency = _IDEMPOTENCY_OUTCOME.get(begin.state)
            if begin.state is BeginState.REPLAY:
                stored = begin.stored_response
                replay_headers = raw_headers(begin.replay_headers())  # the stored headers and the replay marker
                record.http_status = stored.status
                return Reply(stored.status, headers_out + replay_headers, stored.body, 0)
            error = begin.error()
            if error is not None:
                raise error
            metadata.extend(begin.metadata())
            if not begin.active:
                begin = None
            else:
                record.idempotency = "new"

        record.called = True
        pending = forward_unary(route, request, timeout=timeout, metadata=metadata, response_metadata=route.options.response_metadata)
        if mask is not None:  # trimmed before an idempotent outcome is stored, so a replay is trimmed too
            pending = mask.trimmed(pending)
        if begin is None:
            outcome = await pending
        else:
            outcome = await self._keyed_call(begin, pending)
            await self._settle(begin, outcome)
        record.backend_seconds, record.grpc_code, record.http_status = outcome.backend_seconds, outcome.grpc_code, outcome.status
        reply = Reply(outcome.status, headers_out + outcome.headers, outcome.body, outcome.grpc_code)
        if self.caching is not None:
            reply = self.caching.finish(call, route, policy, reply, outcome.backend_metadata)
            record.http_status = reply.status
        return reply

    async def _keyed_call(self, begin: Any, call: Coroutine[Any, Any, CallOutcome]) -> CallOutcome:
        """A call under an Idempotency-Key runs to its end even when its caller is cancelled
        (a batch whose client hung up or whose deadline passed, a drain): by then the backend
        may have acted, and freeing the key would let the retry act again. Its outcome is
        settled when it ends, so the retry waits (409) and then gets it replayed."""
        task = asyncio.ensure_future(call)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(self._settle_later(begin))
            raise
        except BaseException:  # crashed: the outcome is unknown, let the retry run again
            await asyncio.shield(begin.abandon(proven_not_sent=False))
            raise

    def _settle_later(self, begin: Any) -> Callable[[asyncio.Future[CallOutcome]], None]:
        def settle(task: asyncio.Future[CallOutcome]) -> None:
            if task.cancelled() or task.exception() is not None:
                work = begin.abandon(proven_not_sent=False)
            else:
                work = self._settle(begin, task.result())
            settling = asyncio.ensure_future(work)
            self._settling.add(settling)  # held until done: the loop keeps only weak references
            settling.add_done_callback(self._settling.discard)

        return settle

    async def _settle(self, begin: Any, outcome: CallOutcome) -> None:
        """Store what the backend answered; for an unknown outcome, free the key for the retry."""
        if outcome.grpc_code in _UNKNOWN_OUTCOME:
            # A deadline or a broken connection after sending: the backend may or may not
            # have acted. Not final: the retry is forwarded again (with the same
            # idempotency-key metadata, so a deduplicating backend sees one operation).
            await begin.abandon(proven_not_sent=False)
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in outcome.headers]
        await begin.finish(StoredResponse(outcome.status, headers, outcome.body))

    async def _collect_stream(
        self, route: Route, request: Any, timeout: float, metadata: list[tuple[str, str]],
        headers_out: RawHeaders, record: CallRecord, cap: int,
    ) -> Reply:
        """A server stream as one JSON array (batch items), refused past `cap` messages."""
        stream = route.invoker.stream(request, timeout=timeout, metadata=metadata)
        record.called = True
        items: list[bytes] = []
        try:
            while (message := await stream.next()) is not None:
                if len(items) >= cap:
                    raise errors.PayloadTooLarge(f"stream has more than {cap} messages; call it alone to stream it")
                items.append(route.response_codec.encode_stream_item(message))
        except CallError as exc:
            status, headers, body = call_error_parts(exc)
            record.grpc_code, record.http_status = exc.code.value[0], status
            return Reply(status, headers_out + headers, body, exc.code.value[0])
        finally:
            stream.cancel()
        record.grpc_code, record.http_status = 0, 200
        return Reply(200, headers_out + [(b"content-type", b"application/json")], b"[" + b",".join(items) + b"]", 0)

    def error_reply(self, exc: BaseException, call: Call, record: CallRecord) -> Reply:
        status, headers, body = error_parts(exc, call.request_id)
        record.http_status, record.grpc_code = status, grpc_code_of(exc)
        return Reply(status, headers, body, record.grpc_code)


_IDEMPOTENCY_OUTCOME = {
    BeginState.PROCEED: None,
    BeginState.REPLAY: "replayed",
    BeginState.CONFLICT_IN_FLIGHT: "conflict",
    BeginState.MISMATCH: "mismatch",
}
# The backend may have acted: a deadline or a broken connection after sending, or a cancel.
# (Numbers, as CallOutcome.grpc_code holds them.)
_UNKNOWN_OUTCOME = frozenset(code.value[0] for code in (
    grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE))


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


def client_deadline(headers: dict[str, str], default: float, maximum: float) -> float:
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
