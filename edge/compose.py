"""Composed routes: one HTTP request, several RPCs in parallel, one JSON reply.

A REST-adapter concern (an HTTP route with a JSON reply; when the
protocol-neutral core arrives this moves with the REST adapter). A mobile
screen that needs a shelf, its books and the caller's profile asks one URL;
the gateway runs the parts at once (after the parts they depend on) and puts
each reply under its key:

    GET /v1/screens/shelf/scifi
    -> {"shelf": {...Shelf}, "books": {...ListBooksResponse}, "me": {"error": {...google.rpc.Status}}}

The config (`compose`, edge/compose_config.py) names each part's method and
its request as proto3 JSON whose strings may hold references: the route's path
variables (`{{path.shelf}}`), query parameters (`{{query.pageSize}}`), the
caller's token claims (`{{claims.sub}}`) and earlier parts' replies
(`{{shelf.body.name}}`: the batch endpoint's syntax, edge/references.py; the
scheduling is edge/graph.py's, shared with batches). A reference with no value
(a parameter not sent, a claim not in the token, a field the reply left out)
leaves its field unset, as proto3 reads an absent field.

Each part is a `RestCall` through the REST adapter and the core, exactly as a batch item:
the method's first HTTP binding (one without `response_body` when there is one)
gives the route whose auth policy, scopes, rate limits and transcoding options
apply to it, as if that route had been called alone with the composed request's
credential. The composed request is authenticated once (a bad credential is a
401; none is let in, and each part meets its own route's policy). Each part is
charged when it runs, as a call alone would be: a part over its limit fails
under its own policy (batches instead charge everything up front).

Failure policy per part: `fail` (the default) answers the whole request with
that part's error (its status, headers and google.rpc.Status body: a 401 keeps
its WWW-Authenticate, a 429 its Retry-After) and cancels the parts still
running; `include` puts `{"error": <google.rpc.Status>}` under its key and the
request still answers 200. A part whose dependency failed is not sent (424,
under its own policy). Each part has its own timeout (its backend deadline);
the whole composition has one (`timeout`, shortened by the client's
`grpc-timeout`/`X-Request-Timeout`): parts still running then answer 504.

`fields` works on composed replies too: the keys are checked against the parts
(and what follows against each part's reply type), and parts whose keys are
not selected (and that no selected part needs) are not called at all. The reply
gets an ETag and 304s like any GET when `caching` is configured, and is
compressed like any reply.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Any

import grpc
import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from transcoding import errors
from transcoding.matcher import MethodNotAllowed, NoRoute, PathEncodingError, PathMatcher
from transcoding.partial import FieldsError, Selection, apply, compile_fields
from transcoding.routes import RouteTable
from transcoding.template import parse_template

from .auth import EffectivePolicy
from .batch import BatchDeadlineExceeded, FailedDependency, _disconnected
from .compose_config import COMPOSE_SYNTAX, SOURCES, ComposePart, ComposeRoute
from .compose_openapi import openapi_operations
from .compose_plan import PartPlan, RoutePlan, compose_problems, plan_route
from .core import CallRecord, client_deadline
from .graph import run_graph
from .http import JSON_CONTENT_TYPE, Receive, Send
from .matching import Target
from .protocols.rest import Reply, RestAdapter, RestCall, parse_query
from .references import ABSENT, Reference, follow, substitute

if TYPE_CHECKING:
    from .config import GatewayConfig

__all__ = ["ComposedRoutes", "ComposeResult", "compose_problems", "openapi_operations"]

_T = FieldDescriptor
_STRIPPED = frozenset({
    "content-type", "content-length", "content-encoding", "transfer-encoding", "if-none-match", "if-match",
    "if-modified-since", "idempotency-key", "grpc-timeout", "x-request-timeout", "accept-encoding",
})
_BOOL_TEXT = {"true": True, "false": False, "1": True, "0": False, "t": True, "f": False,
              "True": True, "False": False, "TRUE": True, "FALSE": False}
_MAX_MASKS = 256


class PartNotServed(errors.TranscodeError):
    """A part whose method no loaded backend serves (yet)."""

    http_status = 503

    grpc_code = grpc.StatusCode.UNAVAILABLE


# ---------------------------------------------------------------------------- serving

@dataclass
class PartResult:
    """One part's call, record and answer: what its access-log line needs (like a batch item)."""

    id: str
    call: RestCall
    record: CallRecord
    reply: Reply | None = None
    value: Any = ABSENT  # the JSON body, parsed only when a reference or a mask needs it
    seconds: float = 0.0
    started: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.reply is not None and 200 <= self.reply.status < 300


@dataclass
class ComposeResult:
    call: RestCall
    record: CallRecord
    items: list[PartResult] = field(default_factory=list)
    disconnected: bool = False
    bytes_out: int = 0


class ComposedRoutes:
    """Every `compose` route of a config: matched before the route table, parts run through the REST adapter."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.routes = list(config.compose)
        self._matcher: PathMatcher[ComposeRoute] = PathMatcher()
        for route in self.routes:
            self._matcher.add(route.http_method, parse_template(route.template), route)
        self._table: RouteTable | None = None
        self._plans: dict[str, RoutePlan] = {}

    def match(self, http_method: str, raw_path: str) -> tuple[ComposeRoute, dict[str, str]] | None:
        """The composed route for this request and its path variables, or None."""
        try:
            found = self._matcher.lookup(http_method, raw_path)
        except (NoRoute, MethodNotAllowed, PathEncodingError):
            return None
        return found.value, {names[0]: value for names, value in found.bindings}

    def plan(self, rest: RestAdapter, route: ComposeRoute) -> RoutePlan:
        table = rest.core.registry.table
        if table is not self._table:  # a reload: plans hold the old table's routes
            self._table, self._plans = table, {}
        plan = self._plans.get(route.route)
        if plan is None:
            plan = self._plans[route.route] = plan_route(route, table, rest.core.policy_for)[0]
        return plan

    async def handle(
        self, rest: RestAdapter, route: ComposeRoute, variables: dict[str, str], scope: dict[str, Any],
        receive: Receive, send: Send, headers: dict[str, str], request_id: str, client_ip: str | None,
    ) -> ComposeResult:
        raw_path = scope.get("raw_path") or scope["path"].encode()
        call = RestCall(scope["method"], raw_path.decode("latin-1"), scope.get("query_string", b""), headers, b"",
                    client_ip, request_id)
        record = CallRecord(route=route.template)
        result = ComposeResult(call, record)
        try:
            reply = await self._serve(rest, route, variables, call, result, receive)
        except Exception as exc:  # noqa: BLE001 - every failure is an answer; error_reply logs the unexpected
            reply = rest.error_reply(exc, call, record)
        if reply is None:
            result.disconnected = True
            return result
        record.http_status = reply.status
        reply.headers.append((b"x-request-id", request_id.encode("latin-1")))
        result.bytes_out = await rest.answer(send, reply, headers.get("accept-encoding"))
        return result

    async def _serve(self, rest: RestAdapter, route: ComposeRoute, variables: dict[str, str], call: RestCall,
                     result: ComposeResult, receive: Receive) -> Reply | None:
        record = result.record
        # Once for the composition, as `optional`: a bad credential is refused, none is let in;
        # each part then meets its own route's policy with this principal.
        call.principal = await rest.core.authenticate(
            call.headers, EffectivePolicy(auth="optional", source="compose"), record)
        plan = self.plan(rest, route)
        query = self._query(route, call)
        selection, needed = self._mask(plan, query.pop("fields", None))
        parts = [p for p in route.parts if p.id in needed]
        results = {p.id: PartResult(p.id, _part_call(call, p), CallRecord()) for p in parts}
        result.items = list(results.values())
        claims = call.principal.claims if call.principal is not None else {}
        sources = {"path": variables, "query": query, "claims": claims}
        referenced = {ref for p in parts for ref in route.depends(p.id)}
        abort = asyncio.Event()

        async def run(part_id: str) -> None:
            part_plan = plan.parts[part_id]
            mine = results[part_id]
            mine.started = perf_counter()
            try:
                reply = await self._run_part(rest, route, part_plan, mine, results, sources, call)
            except Exception as exc:  # noqa: BLE001 - a part's failure is its answer
                reply = rest.error_reply(exc, mine.call, mine.record)
            mine.reply, mine.seconds = reply, perf_counter() - mine.started
            if part_id in referenced and mine.succeeded:
                mine.value = _json(reply)
            if not mine.succeeded and part_plan.part.on_error == "fail":
                abort.set()  # the answer is this error: the rest is not worth waiting for

        timeout = client_deadline(call.headers, route.timeout, route.timeout)
        outcome = await run_graph(
            [p.id for p in parts], {p.id: route.depends(p.id) for p in parts}, run,
            timeout=timeout, stop=_first_of(_disconnected(receive), abort.wait()),
        )
        if outcome.stopped and not abort.is_set():
            return None  # the client went away
        for part_id in outcome.late:
            late = results[part_id]
            if late.reply is None:
                exc = BatchDeadlineExceeded(
                    f"part {part_id!r} of {route.route} did not finish within the composition's {timeout:g}s"
                    if not abort.is_set() else f"part {part_id!r} was cancelled: another part failed")
                late.reply = rest.error_reply(exc, late.call, late.record)
                late.seconds = perf_counter() - late.started if late.started is not None else 0.0
        for part in parts:  # config order: the first failing `fail` part is the answer
            mine = results[part.id]
            if part.on_error == "fail" and not mine.succeeded and part.id not in outcome.late:
                assert mine.reply is not None
                record.grpc_code = mine.reply.grpc_code
                return Reply(mine.reply.status, list(mine.reply.headers), mine.reply.body, mine.reply.grpc_code)
        for part in parts:
            mine = results[part.id]
            if part.on_error == "fail" and not mine.succeeded:  # cancelled by the deadline
                assert mine.reply is not None
                return Reply(mine.reply.status, list(mine.reply.headers), mine.reply.body, mine.reply.grpc_code)
        body = self._assemble(plan, parts, results, selection)
        record.grpc_code = grpc.StatusCode.OK
        reply = Reply(200, [(b"content-type", JSON_CONTENT_TYPE)], body, grpc.StatusCode.OK)
        caching = rest.caching
        if caching is not None and call.http_method in ("GET", "HEAD"):
            target = Target("", route.http_method, route.template)
            reply = caching.conclude(call, caching.plan_for(target, plan.takes_credential), reply)
        return reply

    def _query(self, route: ComposeRoute, call: RestCall) -> dict[str, str]:
        allowed = set(route.query_names) | {"fields"}
        out: dict[str, str] = {}
        for key, value in parse_query(call.query_string):
            if key not in allowed:
                reads = ", ".join(route.query_names) or "none"
                raise errors.BadRequest(
                    f"unknown query parameter {key!r}: {route.route} reads {reads} (and fields)", field=key)
            if key in out:
                raise errors.BadRequest(f"query parameter {key!r} given more than once", field=key)
            out[key] = value
        return {k: v for k, v in out.items() if v != ""}

    def _mask(self, plan: RoutePlan, text: str | None) -> tuple[Selection | None, frozenset[str]]:
        """The selection over the composed reply, and the parts it needs (all without a mask)."""
        route = plan.config
        everything = frozenset(p.id for p in route.parts)
        if text is None:
            return None, everything
        found = plan.masks.get(text)
        if found is None:
            try:
                selection = compile_fields(text, plan.level)
                found = (selection, self._needed(route, selection) if selection is not None else everything)
            except FieldsError as exc:
                found = exc
            if len(plan.masks) < _MAX_MASKS:
                plan.masks[text] = found
        if isinstance(found, FieldsError):
            raise errors.BadRequest(str(found), field="fields")
        return found

    @staticmethod
    def _needed(route: ComposeRoute, selection: Selection) -> frozenset[str]:
        if selection.star:
            return frozenset(p.id for p in route.parts)
        by_key = {p.output_key: p.id for p in route.parts if p.output}
        todo = [by_key[key] for key in selection.keys]
        needed: set[str] = set()
        while todo:
            part_id = todo.pop()
            if part_id not in needed:
                needed.add(part_id)
                todo.extend(route.depends(part_id))
        return frozenset(needed)

    async def _run_part(self, rest: RestAdapter, route: ComposeRoute, plan: PartPlan, mine: PartResult,
                        results: dict[str, PartResult], sources: dict[str, Any], composite: RestCall) -> Reply:
        part = plan.part
        failed = [d for d in route.depends(part.id) if not results[d].succeeded]
        if failed:
            statuses = ", ".join(f"{d!r} answered {results[d].reply.status}" for d in failed)  # type: ignore[union-attr]
            raise FailedDependency(f"part {part.id!r} was not sent: its dependency {statuses}")
        if plan.route is None or plan.problem is not None:
            raise PartNotServed(f"part {part.id!r} cannot run: {plan.problem}")

        def resolve(ref: Reference, where: str) -> Any:
            if ref.source in SOURCES:
                return follow(sources[ref.source], ref.path)
            value = results[ref.source].value
            return ABSENT if value is ABSENT else follow(value, ref.path)

        where = f"part {part.id!r} request"
        document = substitute(part.request, resolve, COMPOSE_SYNTAX, where)
        if plan.coerce:
            document = _coerce_bools(document, plan.route.method.input_type)
        message = plan.route.request_class()
        try:
            json_format.ParseDict(document, message, descriptor_pool=plan.route.method.input_type.file.pool)
        except (json_format.ParseError, ValueError, TypeError) as exc:
            raise errors.BadRequest(f"{where}: {exc}", field=f"{part.id}.request") from None
        call = mine.call
        call.route, call.request, call.query_string = plan.route, message, plan.query
        call.http_method, call.raw_path = plan.route.binding.http_method, plan.route.template
        headers = {k: v for k, v in composite.headers.items() if k not in _STRIPPED}
        for name, value in part.headers.items():
            text = substitute(value, resolve, COMPOSE_SYNTAX, f"part {part.id!r} headers")
            if text is not ABSENT:
                headers[name] = str(text)
        if part.timeout is not None:
            headers["x-request-timeout"] = f"{part.timeout:g}"
        call.headers = headers
        reply = await rest.run(call, mine.record)
        assert reply is not None
        return reply

    def _assemble(self, plan: RoutePlan, parts: list[ComposePart], results: dict[str, PartResult],
                  selection: Selection | None) -> bytes:
        """`{"key": <reply>, ...}` spliced from the parts' bytes; parsed only to trim."""
        pieces = []
        for part in parts:
            if not part.output:
                continue
            key = part.output_key
            if selection is not None and not selection.star and key not in selection.keys:
                continue
            mine = results[part.id]
            assert mine.reply is not None
            if mine.succeeded:
                body = mine.reply.body or b"null"
                sub = selection.keys.get(key) if selection is not None else None
                if sub is not None:
                    value = mine.value if mine.value is not ABSENT else _json(mine.reply)
                    body = orjson.dumps(apply(sub, value))
            else:
                body = b'{"error":' + (mine.reply.body or b"null") + b"}"
            pieces.append(b'"' + key.encode("ascii") + b'":' + body)
        return b"{" + b",".join(pieces) + b"}"


def _part_call(composite: RestCall, part: ComposePart) -> RestCall:
    return RestCall(
        http_method="POST", raw_path=part.method, query_string=b"", headers={}, body=b"",
        client_ip=composite.client_ip, request_id=f"{composite.request_id}/{part.id}",
        principal=composite.principal, preauthenticated=True,
    )


def _json(reply: Reply) -> Any:
    try:
        return orjson.loads(reply.body) if reply.body else ABSENT
    except orjson.JSONDecodeError:
        return ABSENT


def _coerce_bools(value: Any, descriptor: Descriptor) -> Any:
    """Text from the path or the query into the bool fields it fills ("true", "1", "f"...)."""
    if not isinstance(value, dict) or descriptor.full_name.startswith("google.protobuf."):
        return value
    out = {}
    for key, item in value.items():
        f = descriptor.fields_by_name.get(key) or next((g for g in descriptor.fields if g.json_name == key), None)
        if f is None:
            out[key] = item
        elif f.type == _T.TYPE_BOOL and isinstance(item, str):
            if item not in _BOOL_TEXT:
                raise errors.BadRequest(f"{item!r} is not a valid bool for {f.name!r} (use true or false)", field=key)
            out[key] = _BOOL_TEXT[item]
        elif f.message_type is not None and not f.is_repeated:
            out[key] = _coerce_bools(item, f.message_type)
        else:
            out[key] = item
    return out


async def _first_of(*waits: Any) -> None:
    """Returns when the first of `waits` does; the others are cancelled."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
