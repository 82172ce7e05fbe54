"""The Idempotency-Key engine the app calls around a backend call (framework-free).

    b = await engine.begin(principal, route_id, key, method, path, query, body, headers, deadline=5.0)
    if b.state is BeginState.REPLAY:        -> answer b.stored_response with b.replay_headers()
    elif (err := b.error()) is not None:    -> render err (409 in flight / 422 mismatch)
    else:                                   -> call the backend with b.metadata() added, then
        await b.finish(StoredResponse(status, headers, body))     a response the backend produced
        await b.abandon(proven_not_sent=True)                     the call provably never left
        await b.abandon(proven_not_sent=False)                    deadline / connection lost after send

The reservation may instead go to the store with the request's rate-limit charge, in one
round trip (`StateStore.admit`): `prepare` says what to reserve, the rate limiter takes it
along (`RateLimiter.check(..., reserve=r.request)`), and `begin(..., reserving=r)` reads the
answer it brought back (or reserves alone when it brought none). A request refused between
the two (its body does not decode) gives the key back with `give_back(r)`.

An unknown outcome is not stored as final: the client gets 503/504 and its
retry runs again, carrying the same derived `idempotency-key` metadata so a
backend that deduplicates on it sees one operation. The key stays bound to
the request's fingerprint, so a different request reusing it still gets 422.

Two things keep a store outage or restart from running a request twice where
the gateway can know it would:

* A final response that cannot be stored (the store is down when the backend
  answers) is kept in memory and stored when the store is back (up to
  `max_pending_bytes`), so the retry that comes after the lock is replayed.
* When Redis restarts (the store reports a new run_id) and may have lost the
  locks of requests still running (`restart_hold`), keyed requests are answered
  as if the store were down for the longest lock a request can hold: by then
  every request that was running has ended and stored its response (storing
  needs no lock), so a retry is replayed instead of running beside it.
"""
from __future__ import annotations

import asyncio
import fnmatch
import logging
import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable, Mapping

import orjson

from ..matching import Matcher, Target
from ..state.errors import StoreUnavailable
from ..state.store import ReservationState, ReserveRequest, StateStore, give_back
from .config import IdempotencyConfig, IdempotencyRoute
from .errors import IdempotencyError, IdempotencyInFlight, IdempotencyKeyMismatch, IdempotencyKeyRequired, \
    IdempotencyUnavailable
from .fingerprint import Headers, Query, backend_key, fingerprint, parse_key

log = logging.getLogger("edge.idempotency")

REPLAYED_HEADER = "Idempotent-Replayed"
OMITTED_HEADER = "Idempotent-Replay-Body-Omitted"
METADATA_KEY = "idempotency-key"


class BeginState(str, Enum):
    PROCEED = "proceed"
    REPLAY = "replay"
    CONFLICT_IN_FLIGHT = "conflict_in_flight"
    MISMATCH = "mismatch"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    body_omitted: bool = False  # the response was over max_response_bytes: only its outcome was kept


def encode_record(r: StoredResponse) -> bytes:
    head = orjson.dumps({"v": 1, "s": r.status, "h": r.headers, "o": r.body_omitted})
    return head + b"\n" + r.body


def decode_record(data: bytes) -> StoredResponse:
    head, _, body = data.partition(b"\n")
    meta = orjson.loads(head)
    return StoredResponse(meta["s"], [(k, v) for k, v in meta["h"]], body, bool(meta["o"]))


@dataclass(frozen=True, slots=True)
class RouteRule:
    applies: bool
    require: bool


@dataclass(slots=True)
class Reserving:
    """A valid key to reserve (`prepare`) and what `begin` needs to read the store's answer.
    `request` may go to the store with the rate-limit charge and come back answered."""
    rule: RouteRule
    method: str
    route_id: str
    request: ReserveRequest


@dataclass(slots=True)
class IdempotencyCounters:
    outcomes: Counter[str] = field(default_factory=Counter)  # new/replayed/conflict/mismatch/stored/...
    store_errors: int = 0
    store_restarts: int = 0  # restarts the store reported (whether or not they started a hold)


class Begin:
    """The outcome of `begin`, and the handle that ends the reservation."""

    __slots__ = ("state", "backend_key", "stored_response", "retry_after", "active", "_engine", "_fp", "_token",
                 "_done")

    def __init__(self, state: BeginState, *, backend_key: str | None = None,
                 stored_response: StoredResponse | None = None, retry_after: int | None = None,
                 active: bool = False, engine: "IdempotencyEngine | None" = None, fp: str = "",
                 token: str | None = None) -> None:
        self.state = state
        self.backend_key = backend_key
        self.stored_response = stored_response
        self.retry_after = retry_after
        self.active = active  # a reservation is held: finish() or abandon() must follow
        self._engine = engine
        self._fp = fp
        self._token = token
        self._done = not active

    def error(self) -> IdempotencyError | None:
        header = self._engine.config.header if self._engine else "Idempotency-Key"
        if self.state is BeginState.CONFLICT_IN_FLIGHT:
            return IdempotencyInFlight(self.retry_after or 1, header)
        if self.state is BeginState.MISMATCH:
            return IdempotencyKeyMismatch(header)
        return None

    def metadata(self) -> list[tuple[str, str]]:
        """gRPC metadata for the backend call: the derived key backends may deduplicate on."""
        return [(METADATA_KEY, self.backend_key)] if self.backend_key and self.state is BeginState.PROCEED else []

    def replay_headers(self) -> list[tuple[str, str]]:
        r = self.stored_response
        if r is None:
            return []
        headers = list(r.headers) + [(REPLAYED_HEADER, "true")]
        if r.body_omitted:
            headers.append((OMITTED_HEADER, "true"))
        return headers

    async def finish(self, response: StoredResponse) -> bool:
        """Store the final response (errors included). True when stored."""
        if self._done or self._engine is None:
            return False
        self._done = True
        return await self._engine._finish(self.backend_key or "", self._fp, self._token, response)

    async def abandon(self, proven_not_sent: bool) -> bool:
        """End without a final response: release the key when the backend provably never
        got the call, else clear the in-flight marker so the client's retry runs again."""
        if self._done or self._engine is None:
            return False
        self._done = True
        return await self._engine._abandon(self.backend_key or "", self._fp, self._token, proven_not_sent)


_INACTIVE = Begin(BeginState.PROCEED)


class IdempotencyEngine:
    def __init__(self, config: IdempotencyConfig, store: StateStore, *, longest_lock: float | None = None) -> None:
        """`longest_lock`: the longest lock a request can hold under the gateway's config (its longest
        deadline plus `lock_margin`), how long a store restart holds keyed requests; default `max_lock_ttl`."""
        self.config = config
        self.store = store
        self.longest_lock = min(longest_lock, config.max_lock_ttl) if longest_lock is not None else config.max_lock_ttl
        self._hold_until = 0.0  # time.monotonic() before which keyed requests wait for a restarted store
        self._pending: dict[tuple[str, str], tuple[bytes, str | None]] = {}  # responses waiting to be stored
        self._pending_bytes = 0
        self._storing: asyncio.Task[None] | None = None
        listeners = getattr(store, "restart_listeners", None)
        if listeners is not None:
            listeners.append(self._store_restarted)
        self._pattern = re.compile(config.key_pattern)
        self._rules: Matcher[IdempotencyRoute] = Matcher((r.match, r) for r in config.routes)
        self._stored = [re.compile(fnmatch.translate(h)) for h in config.stored_headers]
        self._cache: dict[tuple[str, str, str], RouteRule] = {}
        self.counters = IdempotencyCounters()

    def rule_for(self, route_id: str, method: str, grpc_method: str = "") -> RouteRule:
        """Does idempotency apply to this route and method, and is the key required? `route_id` is
        "VERB /template" (or a bare template); the most specific `routes` rule decides."""
        method = method.upper()
        cache_key = (route_id, method, grpc_method)
        rule = self._cache.get(cache_key)
        if rule is not None:
            return rule
        rule = RouteRule(False, False)
        if self.config.enabled:
            found = self._rules.best(Target.of_route_id(route_id, method, grpc_method))
            if found is not None:
                r = found[1]
                methods = r.methods if r.methods is not None else self.config.methods
                rule = RouteRule(r.enabled and method in methods, r.enabled and r.require and method in methods)
            else:
                rule = RouteRule(method in self.config.methods, False)
        if len(self._cache) > 8192:
            self._cache.clear()
        self._cache[cache_key] = rule
        return rule

    def lock_ttl(self, deadline: float | None) -> float:
        """The in-flight lock lasts as long as the request may: its deadline plus a margin."""
        if deadline is None:
            return min(self.config.lock_ttl, self.config.max_lock_ttl)
        return max(0.1, min(deadline + self.config.lock_margin, self.config.max_lock_ttl))

    def prepare(self, principal_id: str | None, route_id: str, key: str | None, method: str, path: str,
                query: Query, body: bytes, headers: Headers, *, grpc_method: str = "",
                deadline: float | None = None) -> Reserving | None:
        """The reservation `begin` would take, so it can go to the store ahead, with the
        rate-limit charge. None when there is none to take ahead: idempotency does not apply,
        the key is missing or malformed, or a restart hold is on (`begin` answers for those,
        in their place, as it always did). Raises nothing and counts nothing."""
        rule = self.rule_for(route_id, method, grpc_method)
        if not rule.applies or key is None or self._holding():
            return None
        try:
            key = parse_key(key, max_length=self.config.key_max_length, pattern=self._pattern,
                            header=self.config.header)
        except IdempotencyError:
            return None
        return self._reserving(rule, principal_id, route_id, key, method, path, query, body, headers, deadline)

    def _reserving(self, rule: RouteRule, principal_id: str | None, route_id: str, key: str, method: str,
                   path: str, query: Query, body: bytes, headers: Headers, deadline: float | None) -> Reserving:
        fp = fingerprint(method, path, query, body, headers, self.config.fingerprint_headers)
        request = ReserveRequest(backend_key(principal_id, route_id, key), fp, self.lock_ttl(deadline),
                                 self.config.retention)
        return Reserving(rule, method, route_id, request)

    def _holding(self) -> float:
        """Seconds left of a restart hold (0 when none)."""
        if not self._hold_until:
            return 0.0
        left = self._hold_until - time.monotonic()
        if left > 0:
            return left
        self._hold_until = 0.0
        return 0.0

    async def begin(self, principal_id: str | None, route_id: str, key: str | None, method: str, path: str,
                    query: Query, body: bytes, headers: Headers, *, grpc_method: str = "",
                    deadline: float | None = None, reserving: Reserving | None = None) -> Begin:
        """Reserve the key or say what to answer instead. Raises IdempotencyError for a
        missing required key or a malformed one (400) and for a store outage (503).
        `reserving`: what `prepare` returned for this request (the arguments before it are
        then not read again), answered or not by the store call of the rate-limit charge."""
        if reserving is None:
            rule = self.rule_for(route_id, method, grpc_method)
            if not rule.applies:
                return _INACTIVE
            header = self.config.header
            if key is None:
                if rule.require:
                    self.counters.outcomes["missing"] += 1
                    raise IdempotencyKeyRequired(f"this route requires an {header} header (a unique value per "
                                                 f"operation, reused on retries)", header)
                return _INACTIVE
            try:
                key = parse_key(key, max_length=self.config.key_max_length, pattern=self._pattern, header=header)
            except IdempotencyError:
                self.counters.outcomes["invalid"] += 1
                raise
            reserving = self._reserving(rule, principal_id, route_id, key, method, path, query, body, headers,
                                        deadline)
            left = self._holding()
            if left:
                return self._without_store(rule, method, route_id, reserving.request.key, "recovering from a restart",
                                           retry_after=math.ceil(left))
        return await self._take(reserving)

    async def _take(self, reserving: Reserving) -> Begin:
        """The store's answer for the key (brought along with the charge, or asked for now) as a Begin."""
        rule, method, route_id, request = reserving.rule, reserving.method, reserving.route_id, reserving.request
        bkey, fp = request.key, request.fingerprint
        res, request.answer = request.answer, None
        if res is None:
            try:
                res = await self.store.reserve(bkey, fp, request.lock_ttl)
            except StoreUnavailable as e:
                res = e
        if isinstance(res, StoreUnavailable):
            self.counters.store_errors += 1
            return self._without_store(rule, method, route_id, bkey, str(res))
        if res.state is ReservationState.NEW:
            if self._hold_until and self._hold_until > time.monotonic():
                # this very call opened the connection that found the store restarted: the hold applies to it too
                await give_back(self.store, request, res)
                return self._without_store(rule, method, route_id, bkey, "recovering from a restart",
                                           retry_after=math.ceil(self._hold_until - time.monotonic()))
            self.counters.outcomes["new"] += 1
            return Begin(BeginState.PROCEED, backend_key=bkey, active=True, engine=self, fp=fp, token=res.token)
        if res.state is ReservationState.COMPLETED and res.record is not None:
            self.counters.outcomes["replayed"] += 1
            return Begin(BeginState.REPLAY, backend_key=bkey, stored_response=decode_record(res.record), engine=self)
        if res.state is ReservationState.IN_FLIGHT:
            self.counters.outcomes["conflict"] += 1
            return Begin(BeginState.CONFLICT_IN_FLIGHT, backend_key=bkey, engine=self,
                         retry_after=max(1, math.ceil(res.retry_after or 1)))
        self.counters.outcomes["mismatch"] += 1
        return Begin(BeginState.MISMATCH, backend_key=bkey, engine=self)

    async def give_back(self, reserving: Reserving | None) -> bool:
        """The request was refused after its key was reserved with the charge and before `begin`
        (its body did not decode, a header was unusable): nothing ran, so the key is released
        (one that resumed an unknown outcome stays bound to its fingerprint). True when released."""
        if reserving is None:
            return False
        request = reserving.request
        answer, request.answer = request.answer, None
        released = await give_back(self.store, request, answer)
        if released:
            self.counters.outcomes["released"] += 1
        return released

    def _without_store(self, rule: RouteRule, method: str, route_id: str, bkey: str, why: str,
                       retry_after: int | None = None) -> Begin:
        """The store cannot vouch for this key: refuse (fail closed), or run without deduplication."""
        recovering = retry_after is not None
        if rule.require or self.config.on_store_failure == "closed":
            self.counters.outcomes["unavailable"] += 1
            log.warning("idempotency store %s, refusing %s %s (fail closed)",
                        why if recovering else f"unavailable ({why})", method, route_id)
            raise IdempotencyUnavailable(retry_after or 1, recovering=recovering)
        self.counters.outcomes["unprotected"] += 1
        log.warning("idempotency store %s, running %s %s without deduplication",
                    why if recovering else f"unavailable ({why})", method, route_id)
        return Begin(BeginState.PROCEED, backend_key=bkey)

    def _store_restarted(self, node: str, persistent: bool) -> None:
        """The store reports that `node` restarted; `persistent`: it reloaded its data from an AOF."""
        self.counters.store_restarts += 1
        mode = self.config.restart_hold
        if mode == "never" or (mode == "auto" and persistent):
            log.warning("idempotency store %s restarted%s; no hold (restart_hold: %s)", node,
                        " with AOF on" if persistent else "", mode)
            return
        self._hold_until = max(self._hold_until, time.monotonic() + self.longest_lock)
        self.counters.outcomes["restart_hold"] += 1
        log.warning("idempotency store %s restarted%s: the locks of requests still running may be lost; keyed "
                    "requests are refused (or run unprotected where on_store_failure: proceed) for %.1fs, the "
                    "longest lock a request can hold", node, " (AOF on)" if persistent else " without AOF",
                    self.longest_lock)

    def _keep_headers(self, headers: Iterable[tuple[str, str]] | Mapping[str, str]) -> list[tuple[str, str]]:
        items = headers.items() if isinstance(headers, Mapping) else headers
        return [(k, v) for k, v in items if any(p.match(k.lower()) for p in self._stored)]

    async def _finish(self, bkey: str, fp: str, token: str | None, response: StoredResponse) -> bool:
        kept = self._keep_headers(response.headers)
        if response.body_omitted or len(response.body) > self.config.max_response_bytes:
            record = StoredResponse(response.status, kept, b"", True)
            self.counters.outcomes["stored_outcome_only"] += 1
        else:
            record = StoredResponse(response.status, kept, response.body)
        encoded = encode_record(record)
        try:
            stored = await self.store.complete(bkey, fp, encoded, self.config.retention, token)
        except StoreUnavailable as e:
            self.counters.store_errors += 1
            self.counters.outcomes["store_failed"] += 1
            self._store_later(bkey, fp, encoded, token, str(e))
            return False
        self.counters.outcomes["stored" if stored else "not_stored"] += 1
        return stored

    def _store_later(self, bkey: str, fp: str, encoded: bytes, token: str | None, why: str) -> None:
        """Keep a final response the store could not take, and store it when the store is back."""
        if self._pending_bytes + len(encoded) > self.config.max_pending_bytes:
            self.counters.outcomes["store_dropped"] += 1
            log.error("could not store the response for idempotency key %s (%s) and max_pending_bytes is reached: "
                      "after its lock expires a retry runs again (the backend sees the same idempotency-key)",
                      bkey[:16], why)
            return
        old = self._pending.get((bkey, fp))
        self._pending_bytes += len(encoded) - (len(old[0]) if old else 0)
        self._pending[(bkey, fp)] = (encoded, token)
        log.error("could not store the response for idempotency key %s (%s); kept, and stored when the store is "
                  "back (%d waiting)", bkey[:16], why, len(self._pending))
        if self._storing is None or self._storing.done():
            self._storing = asyncio.ensure_future(self._store_pending())

    async def _store_pending(self) -> None:
        """Store the kept responses, retrying with backoff while the store stays down. Storing
        needs no lock: a final response of the same request is a true answer whenever it lands
        (one that finds the key already completed is dropped)."""
        delay = 0.05
        while self._pending:
            await asyncio.sleep(delay)
            for (bkey, fp), (encoded, token) in list(self._pending.items()):
                try:
                    stored = await self.store.complete(bkey, fp, encoded, self.config.retention, token)
                except StoreUnavailable:
                    delay = min(delay * 2, 1.0)
                    break
                self._pending.pop((bkey, fp), None)
                self._pending_bytes -= len(encoded)
                self.counters.outcomes["stored_late" if stored else "not_stored"] += 1
                log.warning("stored the kept response for idempotency key %s%s", bkey[:16],
                            "" if stored else " (not needed: the key was already completed or reused)")
            else:
                delay = 0.05

    @property
    def pending(self) -> int:
        """Final responses waiting for the store to come back."""
        return len(self._pending)

    async def close(self) -> None:
        """Stop retrying; one last attempt for responses still waiting (logged if it fails)."""
        if self._storing is not None:
            self._storing.cancel()
            await asyncio.gather(self._storing, return_exceptions=True)
            self._storing = None
        for (bkey, fp), (encoded, token) in list(self._pending.items()):
            try:
                await self.store.complete(bkey, fp, encoded, self.config.retention, token)
                self.counters.outcomes["stored_late"] += 1
            except StoreUnavailable as e:
                self.counters.outcomes["store_dropped"] += 1
                log.error("shutting down with the response for idempotency key %s not stored (%s): after its lock "
                          "expires a retry runs again", bkey[:16], e)
        self._pending.clear()
        self._pending_bytes = 0

    async def _abandon(self, bkey: str, fp: str, token: str | None, proven_not_sent: bool) -> bool:
        try:
            released = await self.store.release(bkey, fp, token,
                                                None if proven_not_sent else self.config.retention)
        except StoreUnavailable as e:
            self.counters.store_errors += 1
            log.error("could not release idempotency key %s: %s; it frees itself when its lock expires", bkey[:16], e)
            return False
        self.counters.outcomes["released" if proven_not_sent else "unknown_outcome"] += 1
        return released
