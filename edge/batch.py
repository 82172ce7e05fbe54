"""The batch endpoint: many calls in one HTTP request, run as parallel gRPC calls.

A mobile screen that needs seven calls pays one round trip instead of seven.
Each item becomes a `RestCall` through the REST adapter and the core, so it gets
exactly the route, JSON mapping, policy check, errors and idempotency it would
get alone. What the batch adds on top:

* authentication once, for the batch (items cannot carry credentials);
* the rate-limit charge once, one unit per item, before any item runs, so a
  batch never half-runs for lack of budget;
* an `Idempotency-Key` on the batch makes the whole answer replayable;
* a dependency graph (`dependsOn`, and references between results) run with
  bounded parallelism, per batch and per backend (the reference syntax is
  edge/references.py's, the graph checks and scheduler edge/graph.py's, both
  shared with composed routes);
* one deadline for the whole batch, and cancellation of outstanding calls
  when it passes or the client goes away.

The document is parsed and checked in edge/batch_document.py. Request and answer
(the README's "Batch" section is the user documentation):

    {"requests": [{"id": "shelf", "method": "POST", "url": "/v1/shelves", "body": {"theme": "x"}},
                  {"id": "book", "method": "POST", "url": "/v1/{{shelf.body.name}}/books",
                   "body": {"title": "Dune"}}]}
    -> {"responses": [{"id": "shelf", "status": 200, "headers": {...}, "body": {...}}, ...]}
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any
from urllib.parse import quote, unquote

import grpc
import orjson

from transcoding import errors
from transcoding.routes import Route

from . import compression
from .auth import EffectivePolicy
from .batch_config import BatchConfig
from .batch_document import Item, parse_batch
from .graph import run_graph
from .http import (
    JSON_CONTENT_TYPE,
    ClientDisconnected,
    RawHeaders,
    Receive,
    Scope,
    Send,
    json_bytes,
    raw_headers,
    read_body,
)
from .core import CallRecord, client_deadline
from .idempotency import BeginState, Reserving, StoredResponse
from .protocols.rest import Reply, RestAdapter, RestCall
from .ratelimit import rate_limit_headers
from .references import ABSENT, BATCH, Reference, follow, substitute, substitute_url

__all__ = ["BatchConfig", "BatchDeadlineExceeded", "BatchEndpoint", "BatchResult", "FailedDependency", "ItemResult"]

# The gateway's own endpoints: never items, whatever the route table says.
_OWN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs", "/metrics"})
# Client trace context carries over to items that do not set their own.
_INHERITED_HEADERS = ("traceparent", "tracestate", "host")
_URL_SAFE = "/:@!$&'()*+,;=%-._~?"  # already-valid URL characters stay as written; the rest is percent-encoded


class FailedDependency(errors.TranscodeError):
    """An item not sent because an item it depends on did not succeed."""

    http_status = 424
    grpc_code = grpc.StatusCode.FAILED_PRECONDITION


class BatchDeadlineExceeded(errors.TranscodeError):
    http_status = 504
    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED


_ABSENT: Any = ABSENT


@dataclass
class ItemResult:
    """One item's call, record and answer: what its access-log line and metrics need."""

    id: str
    call: RestCall  # request_id is "<batch request id>/<item id>"; raw_path as sent (or as written, if never sent)
    record: CallRecord
    reply: Reply | None = None
    value: Any = _ABSENT  # the body as a JSON value, for references and the answer
    started: float | None = None  # perf_counter() when its dependencies were done
    seconds: float = 0.0  # from then to its answer

    @property
    def succeeded(self) -> bool:
        return self.reply is not None and 200 <= self.reply.status < 300


@dataclass
class BatchResult:
    """The batch's own call and record, and one `ItemResult` per item in request order."""

    call: RestCall
    record: CallRecord
    items: list[ItemResult] = field(default_factory=list)
    disconnected: bool = False
    bytes_out: int = 0  # the answer's body as sent (compressed or not)


class BatchEndpoint:
    """`POST <batch.path>`. One per process: the per-backend caps are shared by all its batches."""

    def __init__(self, config: BatchConfig) -> None:
        self.config = config
        self.path = config.path
        self._backend_slots: dict[str, asyncio.Semaphore] = {}

    async def handle(
        self,
        rest: RestAdapter,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[str, str],
        request_id: str,
        client_ip: str | None,
    ) -> BatchResult:
        """Serve one batch request; nothing is sent when the client went away."""
        call = RestCall("POST", self.path, scope.get("query_string", b""), headers, b"", client_ip, request_id)
        call.peer_ip = scope["client"][0] if scope.get("client") else None
        result = BatchResult(call, CallRecord(route=self.path))
        try:
            if scope["method"] != "POST":
                raise errors.MethodNotAllowed(f"{scope['method']} is not allowed on the batch endpoint {self.path}; use POST", ["POST"])
            reply = await self._serve(rest, call, result, receive)
        except ClientDisconnected:
            reply = None
        except Exception as exc:  # noqa: BLE001 - every failure is an answer; error_reply logs the unexpected
            reply = rest.error_reply(exc, call, result.record)
        if reply is None:
            result.disconnected = True
            return result
        result.record.http_status = reply.status
        reply.headers.append((b"x-request-id", request_id.encode("latin-1")))
        # A batch answer is the big one a slow mobile link waits for: compressed like any answer.
        result.bytes_out = await rest.answer(send, reply, headers.get("accept-encoding"))
        return result

    # ---- the batch ------------------------------------------------------------------------

    async def _serve(self, rest: RestAdapter, call: RestCall, result: BatchResult, receive: Receive) -> Reply | None:
        record = result.record
        # Once for the batch; the items reuse the principal and check only their routes' policies.
        call.principal = await rest.core.authenticate(
            call.headers, EffectivePolicy(auth=self.config.auth, source="batch"), record)
        content_type = call.headers.get("content-type")
        if content_type is not None and not _is_json(content_type):
            raise errors.UnsupportedMediaType(f"a batch is a JSON document; Content-Type {content_type!r} is not JSON")
        limit = self.config.max_body_bytes
        raw = await read_body(receive, call.headers, limit)
        call.body = compression.decompress_request(raw, call.headers.get("content-encoding"), limit)
        items = parse_batch(call.body, self.config)
        timeout = client_deadline(call.headers, self.config.max_timeout, self.config.max_timeout)
        headers_out: RawHeaders = [(b"content-type", JSON_CONTENT_TYPE)]
        engine = rest.core.idempotency
        principal = call.principal.subject if call.principal else None
        key = call.headers.get(engine.config.header.lower()) if engine is not None else None
        # the batch's key is reserved in the store call that charges its items (one round trip)
        ahead = engine.prepare(principal, f"POST {self.path}", key, "POST", self.path, [], call.body, call.headers,
                               deadline=timeout) if engine is not None and key is not None else None
        headers_out += await _charge_items(rest, call, record, [(i.method, i.url.partition("?")[0]) for i in items],
                                           ahead)

        begin = None
        if engine is not None:
            begin = await engine.begin(principal, f"POST {self.path}", key, "POST", self.path, [], call.body,
                                       call.headers, deadline=timeout, reserving=ahead)
            if begin.state is BeginState.REPLAY:
                record.idempotency = "replayed"
                stored = begin.stored_response
                replayed = raw_headers(begin.replay_headers())
                headers = [h for h in headers_out if h[0] != b"content-type"] + replayed
                return Reply(stored.status, headers, stored.body, grpc.StatusCode.OK)
            error = begin.error()
            if error is not None:
                record.idempotency = "conflict" if begin.state is BeginState.CONFLICT_IN_FLIGHT else "mismatch"
                raise error
            if not begin.active:
                begin = None
            else:
                record.idempotency = "new"

        try:
            finished = await self._run(rest, call, items, result, receive, timeout)
        except BaseException:
            if begin is not None:
                await asyncio.shield(begin.abandon(proven_not_sent=False))
            raise
        if not finished:  # the client went away: nobody reads the answer, a retry runs again
            if begin is not None:
                await asyncio.shield(begin.abandon(proven_not_sent=False))
            return None
        body = json_bytes({"responses": [_answer(r) for r in result.items]})
        if begin is not None:
            # Final even when some items timed out: replaying beats running the successful ones twice.
            await begin.finish(StoredResponse(200, [("content-type", "application/json")], body))
        record.grpc_code = grpc.StatusCode.OK
        return Reply(200, headers_out, body, grpc.StatusCode.OK)

    async def _run(
        self, rest: RestAdapter, call: RestCall, items: list[Item], result: BatchResult, receive: Receive, timeout: float
    ) -> bool:
        """Run every item within the deadline; False when the client disconnected."""
        results = {item.id: ItemResult(item.id, _placeholder_call(call, item), CallRecord()) for item in items}
        result.items = [results[item.id] for item in items]
        by_id = {item.id: item for item in items}
        slots = asyncio.Semaphore(self.config.max_concurrency)

        async def run(item_id: str) -> None:
            await self._run_item(rest, call, by_id[item_id], results, slots)

        outcome = await run_graph(
            [item.id for item in items], {item.id: item.depends_on for item in items}, run,
            timeout=timeout, stop=_disconnected(receive),
        )
        if outcome.stopped:
            return False
        for item_id in outcome.late:
            late = results[item_id]
            exc = BatchDeadlineExceeded(f"the batch deadline of {timeout:g}s passed before item {item_id!r} finished")
            late.reply = rest.error_reply(exc, late.call, late.record)
            late.value = _json_value(late.reply)
            late.seconds = perf_counter() - late.started if late.started is not None else 0.0
        return True

    async def _run_item(
        self,
        rest: RestAdapter,
        batch: RestCall,
        item: Item,
        results: dict[str, ItemResult],
        slots: asyncio.Semaphore,
    ) -> None:
        """One item, its dependencies done (edge/graph.py waits for them)."""
        mine = results[item.id]
        call = mine.call
        mine.started = perf_counter()
        try:
            failed = [d for d in item.depends_on if not results[d].succeeded]
            if failed:
                statuses = ", ".join(f"{d!r} answered {results[d].reply.status}" for d in failed)  # type: ignore[union-attr]
                raise FailedDependency(f"item {item.id!r} was not sent: its dependency {statuses}")
            url, body = item.url, item.body
            if item.has_references:
                resolve = _resolver(results)
                url = substitute_url(url, resolve, BATCH)
                if body is not _ABSENT:
                    body = substitute(body, resolve, BATCH, "body")
            _fill_call(call, url, body, item, batch.headers, self.path, _credential_headers(rest))
            async with slots:
                backend = _backend_of(rest, call)
                async with self._backend_slot(backend) if backend is not None else contextlib.nullcontext():
                    reply = await rest.run(call, mine.record, stream_cap=self.config.stream_max_messages)
            assert reply is not None  # no `send`: streams are collected into one reply
        except Exception as exc:  # noqa: BLE001 - one item's failure is its answer, never the batch's
            reply = rest.error_reply(exc, call, mine.record)
        if item.method == "HEAD":
            reply.body = b""  # as alone: a HEAD answer has no body
        mine.reply, mine.value, mine.seconds = reply, _json_value(reply), perf_counter() - mine.started

    def _backend_slot(self, backend: str) -> asyncio.Semaphore:
        slot = self._backend_slots.get(backend)
        if slot is None:
            slot = self._backend_slots[backend] = asyncio.Semaphore(self.config.max_concurrency_per_backend)
        return slot


def _resolver(results: dict[str, ItemResult]):
    """A reference's value from an earlier item's JSON answer; a 400 for the item when there is none."""

    def resolve(ref: Reference, where: str) -> Any:
        value = results[ref.source].value
        if value is _ABSENT:
            raise errors.BadRequest(
                f"{where}: reference {ref.text} has no value: item {ref.source!r} answered no JSON body", field=where
            )
        found = follow(value, ref.path)
        if found is ABSENT:
            dotted = ".".join(ref.path) or "(the whole body)"
            raise errors.BadRequest(
                f"{where}: reference {ref.text} has no value: the body of item {ref.source!r} has nothing at {dotted}",
                field=where,
            )
        return found

    return resolve


# ---- one item's call -----------------------------------------------------------------------------


def _placeholder_call(batch: RestCall, item: Item) -> RestCall:
    return RestCall(
        http_method=item.method,
        raw_path=item.url.partition("?")[0],
        query_string=b"",
        headers={},
        body=b"",
        client_ip=batch.client_ip,
        peer_ip=batch.peer_ip,
        request_id=f"{batch.request_id}/{item.id}",
        principal=batch.principal,
        preauthenticated=True,
        charged=True,
    )


def _fill_call(
    call: RestCall, url: str, body: Any, item: Item, batch_headers: dict[str, str], batch_path: str, credentials: frozenset[str]
) -> None:
    """Path, query, headers and body as if the item had arrived alone; refuses the gateway's own paths."""
    safe_url = quote(url, safe=_URL_SAFE)
    path, _, query = safe_url.partition("?")
    decoded = unquote(path)
    if decoded in _OWN_PATHS or decoded == "/admin" or decoded.startswith("/admin/") or decoded == batch_path:
        raise errors.BadRequest(
            f"{decoded} is one of the gateway's own endpoints, not a JSON route; it cannot be a batch item", field="url"
        )
    headers = dict(item.headers)
    for name in credentials:
        # Items carry no credential of their own: the batch's (authenticated once) stands for
        # every item, e.g. for a route whose policy forwards the caller's token to the backend.
        headers.pop(name, None)
        if name in batch_headers:
            headers[name] = batch_headers[name]
    for name in _INHERITED_HEADERS:
        if name in batch_headers and name not in headers:
            headers[name] = batch_headers[name]
    call.raw_path, call.query_string = path, query.encode("ascii")
    if body is _ABSENT:
        call.body = b""
    elif isinstance(body, str) and "content-type" in headers and not _is_json(headers["content-type"]):
        call.body = body.encode("utf-8")  # e.g. NDJSON for a client-streaming route, or an HttpBody payload
    else:
        call.body = _json_body(body)
        headers.setdefault("content-type", "application/json")
    call.headers = headers


def _json_body(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # an integer past 64 bits or a lone surrogate: sent on as a call alone would carry it
        return json.dumps(value, separators=(",", ":")).encode()


async def _charge_items(rest: RestAdapter, call: RestCall, record: CallRecord, items: list[tuple[str, str]],
                        ahead: Reserving | None = None) -> RawHeaders:
    """A batch's charge: one unit per item on every policy its route falls under, all
    items decided together before any runs, so a batch never half-runs for lack of budget
    (with the batch's own key reserved `ahead` in the same store call)."""
    limits = rest.core.limits
    if limits is None or call.charged or not items:
        return []
    table = rest.core.registry.table
    subjects = []
    for http_method, path in items:
        try:
            route: Route | None = table.lookup(http_method, path)[0]
        except errors.TranscodeError:
            route = None  # still one unit: the item is answered (404, 405...) like a single call
        if route is None:
            subject = limits.subject(call.principal, call.client_ip, http_method, path, "", "")
        else:
            subject = limits.subject(call.principal, call.client_ip, http_method, route.template, route.method.containing_service.full_name,
                                     route.full_method)
        subjects.append((subject, 1))
    decision = await limits.charge_many(subjects, record, ahead.request if ahead is not None else None)
    call.charged = True
    return raw_headers(rate_limit_headers(decision))


def _credential_headers(rest: RestAdapter) -> frozenset[str]:
    names = {"authorization"}
    if rest.core.authenticator is not None:
        names |= set(rest.core.authenticator.credential_header_names)
    return frozenset(names)


def _backend_of(rest: RestAdapter, call: RestCall) -> str | None:
    """The backend the item will reach (for its per-backend cap), or None when it has no route."""
    try:
        route, _ = rest.core.registry.table.lookup(call.http_method, call.raw_path)
    except errors.TranscodeError:
        return None  # the adapter raises the same error and it becomes the item's answer
    return route.backend


async def _disconnected(receive: Receive) -> None:
    """Returns when the client has gone away (the request body was read already)."""
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    except Exception:  # noqa: BLE001 - a server that cannot receive any more has lost the client too
        return


# ---- the answer --------------------------------------------------------------------------------


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _content_type(reply: Reply) -> str:
    for name, value in reply.headers:
        if name.lower() == b"content-type":
            return value.decode("latin-1")
    return ""


def _json_value(reply: Reply) -> Any:
    """The body as a JSON value when it is JSON (what references and the answer embed), else _ABSENT."""
    if not reply.body or not _is_json(_content_type(reply)):
        return _ABSENT
    try:
        return orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        return _ABSENT


def _answer(result: ItemResult) -> dict[str, Any]:
    """One entry of `responses`: JSON bodies as JSON, other text as a string, binary as base64."""
    reply = result.reply
    assert reply is not None
    headers: dict[str, str] = {}
    for name, value in reply.headers:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        if key != "content-length":
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
    out: dict[str, Any] = {"id": result.id, "status": reply.status, "headers": headers}
    if result.value is not _ABSENT:
        out["body"] = result.value
    elif not reply.body:
        out["body"] = None
    else:
        try:
            out["body"] = reply.body.decode("utf-8")
        except UnicodeDecodeError:
            out["body"] = base64.b64encode(reply.body).decode("ascii")
            out["bodyEncoding"] = "base64"
    return out
