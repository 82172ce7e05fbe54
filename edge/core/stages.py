"""The core's stages, each of one shape: `async (ctx, call_next) -> Outcome`.

edge/runtime.py puts the ones a config enables in order (a stage the config does
not enable is not in the chain at all) and ends the chain with the backend call:

    identity -> rate limits -> decode -> idempotency -> backend call

Identity and limits come before `decode` (the adapter's: the request message
from the body): a caller the gateway refuses never has its body parsed, and a
bad body from an unauthenticated client is a 401, not a 400. A call carrying an
Idempotency-Key has its key reserved in the rate-limit stage's store call
(`Idempotency.ahead`: one round trip for both, docs/state.md "Admission"); the
idempotency stage reads the answer, and a call refused between the two (its body
does not decode) gives the key back. A refusal is raised
(`AuthError`, `StatusError`, `TranscodeError`, each carrying its gRPC code) for
the adapter to render in its protocol's error shape. A new stage (a plugin hook)
is one more callable of this shape, placed where edge/runtime.py builds the list.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from time import perf_counter
from typing import Any, TypeVar

import grpc

from transcoding.invoker import CallError

from ..auth import AuthError, AuthOutcome, Authenticator, EffectivePolicy, PolicyResolver, Principal
from ..idempotency import Begin, BeginState, IdempotencyEngine, StoredResponse
from ..state import ReserveRequest
from ..ratelimit import RateLimitContext, RateLimitDecision, RateLimiter, refusal
from .context import CallContext, Next, Outcome, Stage
from .record import CallRecord

__all__ = ["Backend", "Decode", "Identity", "Idempotency", "RateLimits", "chain"]

_T = TypeVar("_T")


def chain(stages: Sequence[Stage], last: Next) -> Next:
    """The stages linked once into one callable: each gets the rest of the chain as `call_next`."""
    handler = last
    for stage in reversed(stages):
        handler = _link(stage, handler)
    return handler


def _link(stage: Stage, call_next: Next) -> Next:
    def run(ctx: CallContext) -> Coroutine[Any, Any, Outcome]:
        return stage(ctx, call_next)  # type: ignore[return-value]  # no frame of its own: the stage's coroutine

    return run


class Identity:
    """Who is calling, and whether the route lets them: the route's policy decides
    whether a credential is required; a batch item or composed part reuses its
    batch's principal and only has its route's policy checked."""

    def __init__(self, authenticator: Authenticator, policies: PolicyResolver) -> None:
        self.authenticator = authenticator
        self.policies = policies

    async def __call__(self, ctx: CallContext, call_next: Next) -> Outcome:
        route, record = ctx.route, ctx.record
        policy = ctx.policy = self.policies.resolve(
            route.full_method, route.binding.http_method, route.template, route.method)
        try:
            if ctx.preauthenticated:
                outcome = self.authenticator.authorize(ctx.principal, policy)
            else:
                outcome = await self.authenticator.authenticate(ctx.headers, policy)
        except Exception as exc:
            record.auth_decision, record.auth_reason = "denied", getattr(exc, "reason", None)
            raise
        ctx.principal, ctx.auth = outcome.principal, outcome
        _recorded(outcome, record)
        return await call_next(ctx)

    async def authenticate_once(self, headers: Mapping[str, str], policy: EffectivePolicy,
                                record: CallRecord) -> Principal | None:
        """A caller authenticated once for several calls (a batch, a composed route, a
        connection that carries many): each of its calls is then `preauthenticated`, and
        only has its own route's policy checked with this principal."""
        try:
            outcome = await self.authenticator.authenticate(headers, policy)
        except AuthError as exc:
            record.auth_decision, record.auth_reason = "denied", exc.reason
            raise
        _recorded(outcome, record)
        return outcome.principal

    def backend_metadata(self, ctx: CallContext) -> list[tuple[str, str]]:
        """The caller's identity as the gateway vouches for it (and the raw token only
        where the route's policy asks for it)."""
        if ctx.auth is None or ctx.policy is None:
            return []
        return self.authenticator.backend_metadata(ctx.auth, ctx.headers, ctx.policy)


def _recorded(outcome: AuthOutcome, record: CallRecord) -> None:
    record.auth_decision, record.auth_reason = outcome.decision, outcome.reason
    record.principal = outcome.principal.subject if outcome.principal else None


class RateLimits:
    """All the limits a call falls under, in one store round trip; with `reservations` (the
    idempotency stage, when there is one), a keyed call's reservation goes in that same call."""

    def __init__(self, limiter: RateLimiter, reservations: Idempotency | None = None) -> None:
        self.limiter = limiter
        self.reservations = reservations

    async def __call__(self, ctx: CallContext, call_next: Next) -> Outcome:
        if ctx.charged:
            return await call_next(ctx)
        route = ctx.route
        reserve = self.reservations.ahead(ctx) if self.reservations is not None else None
        decision = await self.limiter.check(self.subject(
            ctx.principal, ctx.client_ip, ctx.http_method, route.template,
            route.method.containing_service.full_name, route.full_method), reserve=reserve)
        ctx.ratelimit = self.admit(decision, ctx.record)  # a 429 reserved nothing
        ctx.charged = True
        if reserve is None:
            return await call_next(ctx)
        try:
            return await call_next(ctx)
        except BaseException:  # refused after admission (a body that does not decode): nothing ran
            await asyncio.shield(self.reservations.give_back(ctx))  # type: ignore[union-attr]
            raise

    @staticmethod
    def subject(principal: Principal | None, client_ip: str | None, http_method: str, route: str, service: str,
                method: str) -> RateLimitContext:
        """What a call's limits are keyed and matched on (a batch's items: the batch's caller)."""
        return RateLimitContext(
            principal_id=principal.subject if principal else None,
            claims=principal.claims if principal else None,
            client_ip=client_ip,
            route=route,
            service=service,
            method=method,
            http_method=http_method,
        )

    async def charge_many(self, subjects: list[tuple[RateLimitContext, int]], record: CallRecord,
                          reserve: ReserveRequest | None = None) -> RateLimitDecision:
        """Several calls' units decided together (a batch: all its items before any runs),
        with the batch's own Idempotency-Key reservation in the same store call."""
        return self.admit(await self.limiter.check_many(subjects, reserve=reserve), record)

    @staticmethod
    def admit(decision: RateLimitDecision, record: CallRecord) -> RateLimitDecision:
        record.ratelimit_decision = "allowed" if decision.allowed else "limited"
        record.ratelimit = [
            {"policy": p.name, "limit": p.quota, "remaining": p.remaining} for p in decision.policies_applied
        ]
        error = refusal(decision)
        if error is not None:
            raise error
        return decision


class Decode:
    """The seam between admission and the call: the adapter's `decode` builds the
    request message(s), metadata and deadline; then the caller's identity is added
    to the metadata."""

    def __init__(self, identity: Identity | None) -> None:
        self.identity = identity

    async def __call__(self, ctx: CallContext, call_next: Next) -> Outcome:
        if ctx.decode is not None:
            ctx.decode(ctx)
        if self.identity is not None and ctx.auth is not None:
            ctx.metadata.extend(self.identity.backend_metadata(ctx))
        return await call_next(ctx)


# The backend may have acted: a deadline or a broken connection after sending, or a cancel.
_UNKNOWN_OUTCOME = frozenset((grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE))
_IDEMPOTENCY_OUTCOME = {
    BeginState.PROCEED: None,
    BeginState.REPLAY: "replayed",
    BeginState.CONFLICT_IN_FLIGHT: "conflict",
    BeginState.MISMATCH: "mismatch",
}


class Idempotency:
    """Idempotency-Key: reserve, replay the stored answer, or refuse. Streams pass by."""

    def __init__(self, engine: IdempotencyEngine) -> None:
        self.engine = engine
        self.header = engine.config.header.lower()
        self._settling: set[asyncio.Future[None]] = set()  # keyed calls settling after their caller left

    def ahead(self, ctx: CallContext) -> ReserveRequest | None:
        """For the rate-limit stage, before its charge: the reservation this call's key needs,
        to go in the same store call. None when there is none to take ahead (no key, a stream,
        a route or method keys do not apply to, an adapter that cannot read the fingerprint
        before decoding, a key `begin` refuses); this stage then does what it always did."""
        route = ctx.route
        key = ctx.headers.get(self.header)
        if key is None or route.server_streaming or ctx.fingerprint_ahead is None:
            return None
        route_id = f"{route.binding.http_method} {route.template}"
        if not self.engine.rule_for(route_id, ctx.http_method, route.full_method).applies:
            return None
        if not ctx.fingerprint_ahead(ctx):
            return None
        fp, principal = ctx.fingerprint, ctx.principal
        assert fp is not None
        reserving = ctx.reserving = self.engine.prepare(
            principal.subject if principal else None, route_id, key, fp.method, fp.path, fp.query, fp.body,
            ctx.headers, grpc_method=route.full_method, deadline=ctx.deadline)
        return reserving.request if reserving is not None else None

    async def give_back(self, ctx: CallContext) -> None:
        """The call was refused after its key was reserved with the charge and before this stage."""
        await self.engine.give_back(ctx.reserving)
        ctx.reserving = None

    async def __call__(self, ctx: CallContext, call_next: Next) -> Outcome:
        route, record, fp = ctx.route, ctx.record, ctx.fingerprint
        if route.server_streaming or fp is None:
            return await call_next(ctx)
        principal = ctx.principal
        reserving, ctx.reserving = ctx.reserving, None
        begin = await self.engine.begin(
            principal.subject if principal else None, f"{route.binding.http_method} {route.template}",
            ctx.headers.get(self.header), fp.method, fp.path, fp.query, fp.body, ctx.headers,
            grpc_method=route.full_method, deadline=ctx.deadline, reserving=reserving,
        )
        record.idempotency = _IDEMPOTENCY_OUTCOME.get(begin.state)
        if begin.state is BeginState.REPLAY:
            return Outcome(stored=begin.stored_response, replay_headers=begin.replay_headers())
        error = begin.error()
        if error is not None:
            raise error
        ctx.metadata.extend(begin.metadata())
        if not begin.active:
            return await call_next(ctx)
        record.idempotency = "new"
        outcome, stored = await self._keyed_call(begin, self._stored(ctx, call_next))
        await self._settle(begin, outcome, stored)
        return outcome

    @staticmethod
    async def _stored(ctx: CallContext, call_next: Next) -> tuple[Outcome, StoredResponse | None]:
        """The call and the answer to keep for its retries, made in one piece (so a call
        whose caller left is still stored as it would have been answered)."""
        outcome = await call_next(ctx)
        return outcome, ctx.stored_form(outcome) if ctx.stored_form is not None else None

    async def _keyed_call(
        self, begin: Begin, call: Coroutine[Any, Any, tuple[Outcome, StoredResponse | None]]
    ) -> tuple[Outcome, StoredResponse | None]:
        """A call under an Idempotency-Key runs to its end even when its caller is cancelled
        (a batch whose client hung up or whose deadline passed, a drain): by then the backend
        may have acted, and freeing the key would let the retry act again. Its outcome is
        settled when it ends, so the retry waits (409) and then gets it replayed.

        The task hands its end to `done` itself, which this caller awaits: cancelling the
        caller cancels `done`, never the task (what `asyncio.shield` does, without its two
        `ensure_future`s and the callback hop between the task and its outer future: ~20 µs
        per keyed call on 3.11, where both are Python)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[tuple[Outcome, StoredResponse | None]] = loop.create_future()
        task = loop.create_task(_handed_over(call, done))
        try:
            return await done
        except asyncio.CancelledError:
            task.add_done_callback(self._settle_later(begin))
            raise
        except BaseException:  # crashed: the outcome is unknown, let the retry run again
            await asyncio.shield(begin.abandon(proven_not_sent=False))
            raise

    def _settle_later(self, begin: Begin) -> Callable[[asyncio.Future[tuple[Outcome, StoredResponse | None]]], None]:
        def settle(task: asyncio.Future[tuple[Outcome, StoredResponse | None]]) -> None:
            if task.cancelled() or task.exception() is not None:
                work = begin.abandon(proven_not_sent=False)
            else:
                work = self._settle(begin, *task.result())
            settling = asyncio.ensure_future(work)
            self._settling.add(settling)  # held until done: the loop keeps only weak references
            settling.add_done_callback(self._settling.discard)

        return settle

    async def _settle(self, begin: Begin, outcome: Outcome, stored: StoredResponse | None) -> None:
        """Store what the backend answered; for an unknown outcome, free the key for the retry."""
        if outcome.code in _UNKNOWN_OUTCOME or stored is None:
            # A deadline or a broken connection after sending: the backend may or may not
            # have acted. Not final: the retry is forwarded again (with the same
            # idempotency-key metadata, so a deduplicating backend sees one operation).
            await begin.abandon(proven_not_sent=False)
            return
        await begin.finish(stored)


async def _handed_over(call: Coroutine[Any, Any, _T], done: asyncio.Future[_T]) -> _T:
    """Run `call`, handing its end to `done` while someone awaits it. Once `done` is cancelled
    (its caller left), the end stays the task's own, for the callback that settles it."""
    try:
        result = await call
    except asyncio.CancelledError:
        if not done.done():
            done.cancel()
        raise  # the task ends cancelled, as the call did
    except Exception as exc:
        if done.done():
            raise
        done.set_exception(exc)  # the caller raises it; the task ends quietly (nothing left unretrieved)
        return None  # type: ignore[return-value]
    except BaseException as exc:  # SystemExit, KeyboardInterrupt: the caller's too, and still the loop's
        if not done.done():
            done.set_exception(exc)
        raise
    if not done.done():
        done.set_result(result)
    return result


class Backend:
    """The end of the chain: the gRPC call. A unary (or client-streaming) call is
    awaited; a server stream is started and handed back unread."""

    async def __call__(self, ctx: CallContext) -> Outcome:
        route = ctx.route
        ctx.record.called = True
        if route.server_streaming:
            return Outcome(stream=route.invoker.stream(ctx.request, timeout=ctx.deadline, metadata=ctx.metadata))
        started = perf_counter()
        try:
            result = await route.invoker.unary(ctx.request, timeout=ctx.deadline, metadata=ctx.metadata)
        except CallError as exc:
            return Outcome(exc.code, exc.message, exc.details, header_metadata=exc.initial_metadata,
                           trailer_metadata=exc.trailing_metadata, backend_seconds=perf_counter() - started)
        return Outcome(reply=result.response, header_metadata=result.initial_metadata,
                       trailer_metadata=result.trailing_metadata, backend_seconds=perf_counter() - started)
