"""The Idempotency-Key engine the app calls around a backend call (framework-free).

    b = await engine.begin(principal, route_id, key, method, path, query, body, headers, deadline=5.0)
    if b.state is BeginState.REPLAY:        -> answer b.stored_response with b.replay_headers()
    elif (err := b.error()) is not None:    -> render err (409 in flight / 422 mismatch)
    else:                                   -> call the backend with b.metadata() added, then
        await b.finish(StoredResponse(status, headers, body))     a response the backend produced
        await b.abandon(proven_not_sent=True)                     the call provably never left
        await b.abandon(proven_not_sent=False)                    deadline / connection lost after send

An unknown outcome is not stored as final: the client gets 503/504 and its
retry runs again, carrying the same derived `idempotency-key` metadata so a
backend that deduplicates on it sees one operation. The key stays bound to
the request's fingerprint, so a different request reusing it still gets 422.
"""
from __future__ import annotations

import fnmatch
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable, Mapping

import orjson

from ..matching import Matcher, Target
from ..state.errors import StoreUnavailable
from ..state.store import ReservationState, StateStore
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
class IdempotencyCounters:
    outcomes: Counter[str] = field(default_factory=Counter)  # new/replayed/conflict/mismatch/stored/...
    store_errors: int = 0


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
    def __init__(self, config: IdempotencyConfig, store: StateStore) -> None:
        self.config = config
        self.store = store
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

    async def begin(self, principal_id: str | None, route_id: str, key: str | None, method: str, path: str,
                    query: Query, body: bytes, headers: Headers, *, grpc_method: str = "",
                    deadline: float | None = None) -> Begin:
        """Reserve the key or say what to answer instead. Raises IdempotencyError for a
        missing required key or a malformed one (400) and for a store outage (503)."""
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
        fp = fingerprint(method, path, query, body, headers, self.config.fingerprint_headers)
        bkey = backend_key(principal_id, route_id, key)
        try:
            res = await self.store.reserve(bkey, fp, self.lock_ttl(deadline))
        except StoreUnavailable as e:
            self.counters.store_errors += 1
            if rule.require or self.config.on_store_failure == "closed":
                self.counters.outcomes["unavailable"] += 1
                log.warning("idempotency store unavailable, refusing %s %s (fail closed): %s", method, route_id, e)
                raise IdempotencyUnavailable() from e
            self.counters.outcomes["unprotected"] += 1
            log.warning("idempotency store unavailable, running %s %s without deduplication: %s", method, route_id, e)
            return Begin(BeginState.PROCEED, backend_key=bkey)
        if res.state is ReservationState.NEW:
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
        try:
            stored = await self.store.complete(bkey, fp, encode_record(record), self.config.retention, token)
        except StoreUnavailable as e:
            self.counters.store_errors += 1
            self.counters.outcomes["store_failed"] += 1
            log.error("could not store the response for idempotency key %s: %s; its lock expires on its own and "
                      "a retry then runs again (the backend sees the same idempotency-key)", bkey[:16], e)
            return False
        self.counters.outcomes["stored" if stored else "not_stored"] += 1
        return stored

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
