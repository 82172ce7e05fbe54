"""The rate-limit engine the app calls once per request (framework-free).

`RateLimiter.check(ctx, cost)` finds the policies that apply to the request,
resolves each one's limit (claim tiers) and counter key, and asks the store
to evaluate all of them in one atomic call: one Redis round trip whatever
the number of policies, and all-or-nothing (a refusal charges nothing).

When the store fails, each policy follows its `on_store_failure`: `closed`
refuses (503), `open` lets the request through uncounted, and `degrade`
(default) enforces the policy in this process with its share of the limit
(`local_share`, default 1/instances), so the fleet stays near the limit.

Hybrid mode (`rate_limits.hybrid`) leases up to `batch` units per counter
from Redis in one call and spends them locally for up to `lease_ttl`.

An Idempotency-Key reservation may ride along (`check(..., reserve=...)`): when
the charge goes to the store, the reservation goes in the same call
(`StateStore.admit`) and its answer comes back in `reserve.answer`, so a keyed
request costs one round trip, not two. The store takes it only if the limits
admit the request; and if a store failure's mode refuses a request whose key was
taken anyway (Redis Cluster sends the two apart), the key is given back.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..matching import Matcher, Target
from ..state.errors import StoreUnavailable
from ..state.keys import partition as safe_partition
from ..state.memory import MemoryStore
from ..state.store import LimitCheck, LimitResult, ReserveRequest, StateStore, give_back
from .config import RateLimitConfig, RateLimitPolicy
from .decision import AppliedPolicy, RateLimitDecision

log = logging.getLogger("edge.ratelimit")


@dataclass(frozen=True, slots=True)
class RateLimitContext:
    """What the limiter needs to know about a request.

    `route` is the matched route template ("/v1/shelves/{shelf}"), `service`
    the gRPC service ("library.v1.LibraryService") and `method` the gRPC
    method, either bare ("GetShelf") or full ("library.v1.LibraryService/GetShelf").
    """
    principal_id: str | None
    claims: Mapping[str, Any] | None
    client_ip: str | None
    route: str = ""
    service: str = ""
    method: str = ""
    http_method: str = ""

    @property
    def full_method(self) -> str:
        if "/" in self.method or not self.method:
            return self.method.lstrip("/")
        return f"{self.service}/{self.method}" if self.service else self.method


_ALLOW_NONE = RateLimitDecision(True, [], None, "none")
_ALLOW_EXEMPT = RateLimitDecision(True, [], None, "exempt")
class _Policy:
    """A policy compiled once: matcher, partition function, claim tiers."""

    def __init__(self, policy: RateLimitPolicy, instances: int, hybrid: bool) -> None:
        self.policy = policy
        self.name = policy.name
        self.algorithm = policy.algorithm
        self.code = "g" if policy.algorithm == "gcra" else "s"
        self.kinds = policy.keys
        self.base = (policy.limit, policy.window) if policy.limit is not None else None
        tiers = policy.vary_by_claim
        self.claim_path = tuple(tiers.claim.split(".")) if tiers else ()
        self.tiers = dict(tiers.tiers) if tiers else {}
        self.tier_default = (tiers.default if tiers and tiers.default else self.base)
        self.on_failure = policy.on_store_failure
        self.share = policy.local_share if policy.local_share is not None else 1.0 / instances
        self.hybrid = policy.hybrid if policy.hybrid is not None else hybrid

    def rate(self, claims: Mapping[str, Any] | None) -> tuple[int, float]:
        if not self.claim_path:
            return self.base  # type: ignore[return-value]
        value: Any = claims
        for part in self.claim_path:
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, (list, tuple)):
            value = next((v for v in value if isinstance(v, str) and v in self.tiers), None)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) in self.tiers:
            return self.tiers[str(value)]
        return self.tier_default  # type: ignore[return-value]

    def partition(self, ctx: RateLimitContext) -> str:
        parts = []
        for kind in self.kinds:
            if kind == "principal":
                parts.append(f"u={ctx.principal_id}" if ctx.principal_id else f"ip={ctx.client_ip or '-'}")
            elif kind == "ip":
                parts.append(f"ip={ctx.client_ip or '-'}")
            elif kind == "route":
                parts.append(f"r={ctx.http_method} {ctx.route}")
            elif kind == "service":
                parts.append(f"s={ctx.service or ctx.full_method.partition('/')[0]}")
            else:
                parts.append("*")
        return safe_partition("|".join(parts))


@dataclass(slots=True)
class _Spec:
    policy: _Policy
    limit: int
    window: float
    key: str
    cost: int = 1


@dataclass(slots=True)
class _Lease:
    left: int
    expires: float
    remaining: int = 0          # fleet-wide remaining Redis reported at the last refill
    reset_at: float = 0.0
    blocked_until: float = 0.0  # Redis said no until then (for blocked_cost units or more)
    blocked_cost: int = 0


def _put_back(taken: list[tuple[_Lease, int]]) -> None:
    """Return units taken from leases for a request that was not admitted after all."""
    for lease, n in taken:
        lease.left += n


def _ceil(x: float) -> int:
    return max(0, math.ceil(x - 1e-9))


def _window_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@dataclass(slots=True)
class RateLimitCounters:
    decisions: Counter[str] = field(default_factory=Counter)  # allowed/limited/degraded/open/closed/exempt
    by_policy: Counter[str] = field(default_factory=Counter)  # refusals per policy
    store_errors: int = 0
    leases: int = 0          # Redis refills in hybrid mode
    lease_hits: int = 0      # requests served from leases alone


class RateLimiter:
    def __init__(self, config: RateLimitConfig, store: StateStore, *,
                 clock: Callable[[], float] | None = None) -> None:
        self.config = config
        self.store = store
        self._clock = clock
        self._hybrid = config.hybrid.enabled and store.shared
        self._config_policies = [_Policy(p, config.instances, self._hybrid) for p in config.policies]
        self._matcher: Matcher[_Policy] = Matcher((p.policy.match, p) for p in self._config_policies)
        self._declared: dict[str, list[_Policy]] = {}
        self._exempt = Matcher([(config.exempt, True)])
        self._selection: dict[tuple[str, str, str], list[_Policy] | None] = {}
        # A caller's specs and store checks on a route, built once: the same user from the same
        # address on the same route makes the same keys every time (claim tiers excepted).
        self._prepared: dict[tuple[Any, ...], tuple[list[_Spec], list[LimitCheck]]] = {}
        self._local = MemoryStore(max_rate_keys=50_000)  # degraded-mode counters
        self._leases: dict[str, _Lease] = {}
        self._refilling: dict[str, asyncio.Future[None]] = {}
        self._was_degraded = False
        self.counters = RateLimitCounters()

    def set_declared_policies(self, by_method: Mapping[str, Sequence[RateLimitPolicy]]) -> None:
        """Limits backend teams declared in their protos, by full method name.
        A config policy of the same name that matches the method overrides one."""
        names = {p.name for p in self._config_policies}
        self._declared = {m: [_Policy(p, self.config.instances, self._hybrid) for p in ps if p.name not in names]
                          for m, ps in by_method.items()}
        self._selection.clear()
        self._prepared.clear()

    def _select(self, ctx: RateLimitContext) -> list[_Policy] | None:
        full = ctx.full_method
        key = (ctx.route, ctx.http_method, full)
        try:
            return self._selection[key]
        except KeyError:
            pass
        target = Target(full, ctx.http_method.upper(), ctx.route)
        if self._exempt.any(target):
            chosen: list[_Policy] | None = None
        else:  # every matching policy applies (edge/matching.py)
            chosen = self._matcher.all(target) + self._declared.get(full, [])
        if len(self._selection) > 8192:
            self._selection.clear()
        self._selection[key] = chosen
        return chosen

    async def check(self, ctx: RateLimitContext, cost: int = 1,
                    reserve: ReserveRequest | None = None) -> RateLimitDecision:
        """Decide one request (cost > 1 charges that many units, e.g. one per batch item).
        `reserve`: an idempotency reservation to take in the same store call (module docstring)."""
        if cost < 1:
            raise ValueError("cost must be at least 1")
        if not self.config.enabled:
            return _ALLOW_NONE
        selected = self._select(ctx)
        if selected is None:
            self.counters.decisions["exempt"] += 1
            return _ALLOW_EXEMPT
        if not selected:
            return _ALLOW_NONE
        prepared_key = (ctx.route, ctx.http_method, ctx.method, ctx.service, ctx.principal_id, ctx.client_ip, cost)
        prepared = self._prepared.get(prepared_key)
        if prepared is None:
            specs = []
            for p in selected:
                limit, window = p.rate(ctx.claims)
                if cost > limit:
                    return self._refuse_cost(p, limit, window, cost)
                specs.append(_Spec(p, limit, window, self._key(p, limit, window, ctx), cost))
            prepared = (specs, [LimitCheck(s.key, s.policy.algorithm, s.limit, s.window, s.cost) for s in specs])
            if not any(p.claim_path for p in selected):  # a claim tier is per token: not cached
                if len(self._prepared) >= 8192:
                    self._prepared.clear()
                self._prepared[prepared_key] = prepared
        return await self._charge(prepared[0], reserve, prepared[1])

    async def check_many(self, requests: Sequence[tuple[RateLimitContext, int]],
                         reserve: ReserveRequest | None = None) -> RateLimitDecision:
        """Decide several requests together, all or nothing, in one store call: a batch
        whose items hit different routes is charged on every policy any item falls
        under (a counter shared by items is charged their summed cost)."""
        if not self.config.enabled:
            return _ALLOW_NONE
        merged: dict[str, _Spec] = {}
        for ctx, cost in requests:
            if cost < 1:
                raise ValueError("cost must be at least 1")
            for p in self._select(ctx) or ():
                limit, window = p.rate(ctx.claims)
                key = self._key(p, limit, window, ctx)
                spec = merged.get(key)
                if spec is None:
                    merged[key] = _Spec(p, limit, window, key, cost)
                else:
                    spec.cost += cost
        if not merged:
            return _ALLOW_NONE
        for spec in merged.values():
            if spec.cost > spec.limit:
                return self._refuse_cost(spec.policy, spec.limit, spec.window, spec.cost)
        return await self._charge(list(merged.values()), reserve)

    @staticmethod
    def _key(p: _Policy, limit: int, window: float, ctx: RateLimitContext) -> str:
        return f"{p.code}:{p.name}:{limit}/{round(window * 1000)}:{p.partition(ctx)}"

    async def _charge(self, specs: list[_Spec], reserve: ReserveRequest | None,
                      checks: list[LimitCheck] | None = None) -> RateLimitDecision:
        now = self._clock() if self._clock is not None else None
        try:
            if self._hybrid and any(s.policy.hybrid for s in specs):
                decision = await self._check_hybrid(specs, now, reserve)
            else:
                if checks is None:
                    checks = [LimitCheck(s.key, s.policy.algorithm, s.limit, s.window, s.cost) for s in specs]
                results = await self._ask_store(checks, now, reserve)
                decision = self._decide(specs, results, "ok")
        except StoreUnavailable as e:
            decision = self._store_failed(specs, now, e)
            if not decision.allowed and reserve is not None:
                await give_back(self.store, reserve, reserve.answer)  # no reservation outlives a refusal
                reserve.answer = None
            return decision
        if self._was_degraded:
            self._was_degraded = False
            log.warning("rate limit store %s answers again; limits are fleet-wide again", self.store.name)
        return decision

    async def _ask_store(self, checks: list[LimitCheck], now: float | None,
                         reserve: ReserveRequest | None) -> list[LimitResult]:
        """The store's answer for these limits; a reservation rides along in the same call and
        its answer is left in `reserve.answer`. Raises StoreUnavailable for the limits' part."""
        if reserve is None:
            return await self.store.rate_limit(checks, now)
        admission = await self.store.admit(checks, reserve, now)
        reserve.answer = admission.reservation
        if isinstance(admission.limits, StoreUnavailable):
            raise admission.limits
        return admission.limits

    def _decide(self, specs: Sequence[_Spec], results: Sequence[LimitResult], status: str,
                extra_remaining: Sequence[int] | None = None) -> RateLimitDecision:
        applied = [AppliedPolicy(s.policy.name, s.limit, _ceil(s.window),
                                 r.remaining + (extra_remaining[i] if extra_remaining else 0), _ceil(r.reset_after))
                   for i, (s, r) in enumerate(zip(specs, results))]
        if results[0].allowed:
            self.counters.decisions["allowed" if status in ("ok", "lease") else status] += 1
            return RateLimitDecision(True, applied, None, status)
        worst = max(range(len(results)), key=lambda i: results[i].retry_after)
        return self._refused(specs[worst], applied, results[worst].retry_after, status)

    def _refused(self, spec: _Spec, applied: list[AppliedPolicy], retry: float, status: str) -> RateLimitDecision:
        retry_after = max(1, _ceil(retry))
        name = spec.policy.name
        self.counters.decisions["limited"] += 1
        self.counters.by_policy[name] += 1
        return RateLimitDecision(False, applied, retry_after, status, name,
                                 f"rate limit {name!r} exceeded ({spec.limit} per {_window_text(spec.window)}); "
                                 f"retry in {retry_after}s")

    def _refuse_cost(self, p: _Policy, limit: int, window: float, cost: int) -> RateLimitDecision:
        self.counters.decisions["limited"] += 1
        self.counters.by_policy[p.name] += 1
        retry = max(1, _ceil(window))
        return RateLimitDecision(False, [AppliedPolicy(p.name, limit, retry, 0, retry)], retry, "ok", p.name,
                                 f"request cost {cost} exceeds the whole limit of {p.name!r} "
                                 f"({limit} per {_window_text(window)}); it can never be admitted")

    def _store_failed(self, specs: Sequence[_Spec], now: float | None,
                      error: StoreUnavailable) -> RateLimitDecision:
        self.counters.store_errors += 1
        if not self._was_degraded:
            self._was_degraded = True
            log.warning("rate limit store %s unavailable (%s); applying on_store_failure per policy",
                        self.store.name, error)
        closed = next((s for s in specs if s.policy.on_failure == "closed"), None)
        if closed is not None:
            self.counters.decisions["closed"] += 1
            return RateLimitDecision(False, [], 1, "unavailable", closed.policy.name,
                                     f"rate limit store unavailable and policy {closed.policy.name!r} fails closed")
        local = [_Spec(s.policy, max(1, int(s.limit * s.policy.share)), s.window, s.key, s.cost)
                 for s in specs if s.policy.on_failure == "degrade"]
        if not local:
            self.counters.decisions["open"] += 1
            return RateLimitDecision(True, [], None, "open")
        results = self._local.rate_limit_sync(
            [LimitCheck(s.key, s.policy.algorithm, s.limit, s.window, s.cost) for s in local], now)
        return self._decide(local, results, "degraded")

    def _batch(self, spec: _Spec) -> int:
        return max(1, min(self.config.hybrid.batch, spec.limit))

    async def _check_hybrid(self, specs: Sequence[_Spec], now: float | None,
                            reserve: ReserveRequest | None) -> RateLimitDecision:
        """Spend local leases; refill the ones short of each spec's cost from Redis in one call
        (which a reservation rides along). Concurrent requests short of the same lease wait for
        one refill instead of each leasing a batch (which would strand units in this process)."""
        await self._wait_for_refills(specs)
        t = now if now is not None else time.monotonic()
        spent = self._spend_leases(specs, t)
        if isinstance(spent, RateLimitDecision):
            return spent
        taken, need = spent
        if not need:
            self.counters.lease_hits += 1
            self.counters.decisions["allowed"] += 1
            return RateLimitDecision(True, [self._lease_view(s, t) for s in specs], None, "lease")
        results = await self._refill(specs, need, taken, now, reserve)
        by_index = dict(zip((i for i, _, _ in need), results))
        if not results[0].allowed:
            return self._refill_refused(specs, need, results, by_index, taken, t)
        self._keep_leases(specs, need, results, t)
        self.counters.decisions["allowed"] += 1
        return RateLimitDecision(True, [self._lease_view(s, t, by_index.get(i)) for i, s in enumerate(specs)],
                                 None, "ok")

    async def _wait_for_refills(self, specs: Sequence[_Spec]) -> None:
        """Wait while another request refills a lease this one is short of (bounded rounds)."""
        for _ in range(16):
            waiting = []
            for s in specs:
                if s.policy.hybrid and s.key in self._refilling:
                    lease = self._leases.get(s.key)
                    if lease is None or lease.left < s.cost:
                        waiting.append(self._refilling[s.key])
            if not waiting:
                return
            await asyncio.wait(waiting)

    def _spend_leases(self, specs: Sequence[_Spec], t: float
                      ) -> RateLimitDecision | tuple[list[tuple[_Lease, int]], list[tuple[int, int, int]]]:
        """Take each spec's cost from its lease where it holds enough. Returns the units taken
        (to put back if the request is refused) and what Redis must grant, as (spec index, min
        units, max units); or the refusal when a lease remembers that Redis said no."""
        leases = self._leases
        taken: list[tuple[_Lease, int]] = []
        need: list[tuple[int, int, int]] = []
        for i, s in enumerate(specs):
            cost = s.cost
            if not s.policy.hybrid:
                need.append((i, cost, cost))
                continue
            lease = leases.get(s.key)
            if lease is not None and lease.expires <= t:
                del leases[s.key]
                lease = None
            if lease is not None and lease.left >= cost:
                lease.left -= cost
                taken.append((lease, cost))
                continue
            if lease is not None and lease.blocked_until > t and cost >= lease.blocked_cost:
                _put_back(taken)
                applied = [self._lease_view(x, t) for x in specs]
                return self._refused(s, applied, lease.blocked_until - t, "lease")
            part = lease.left if lease is not None else 0
            if part:
                lease.left = 0  # type: ignore[union-attr]
                taken.append((lease, part))  # type: ignore[arg-type]
            need.append((i, cost - part, max(cost - part, self._batch(s))))
        return taken, need

    async def _refill(self, specs: Sequence[_Spec], need: list[tuple[int, int, int]],
                      taken: list[tuple[_Lease, int]], now: float | None,
                      reserve: ReserveRequest | None) -> list[LimitResult]:
        """One store call for every unit the leases lack; other requests short of the same
        leases wait for it (`_wait_for_refills`)."""
        refilling = [specs[i].key for i, _, _ in need if specs[i].policy.hybrid and specs[i].key not in self._refilling]
        loop = asyncio.get_running_loop()
        for key in refilling:
            self._refilling[key] = loop.create_future()
        try:
            results = await self._ask_store(
                [LimitCheck(specs[i].key, specs[i].policy.algorithm, specs[i].limit, specs[i].window, mn, mx)
                 for i, mn, mx in need], now, reserve)
        except StoreUnavailable:
            _put_back(taken)
            raise
        finally:
            for key in refilling:
                self._refilling.pop(key).set_result(None)
        self.counters.leases += 1
        return results

    def _refill_refused(self, specs: Sequence[_Spec], need: list[tuple[int, int, int]], results: list[LimitResult],
                        by_index: dict[int, LimitResult], taken: list[tuple[_Lease, int]], t: float
                        ) -> RateLimitDecision:
        """Redis refused: the units taken from leases go back, and each lease remembers the
        refusal until its Retry-After, so the next requests are refused without a round trip."""
        _put_back(taken)
        for (i, _, _), r in zip(need, results):
            if specs[i].policy.hybrid and r.retry_after > 0:
                lease = self._leases.get(specs[i].key)
                if lease is None:
                    lease = self._leases[specs[i].key] = _Lease(0, t + r.retry_after)
                lease.blocked_until, lease.blocked_cost = t + r.retry_after, specs[i].cost
                lease.expires = max(lease.expires, lease.blocked_until)
        applied = [self._lease_view(s, t, by_index.get(i)) for i, s in enumerate(specs)]
        worst = max(by_index, key=lambda i: by_index[i].retry_after)
        return self._refused(specs[worst], applied, by_index[worst].retry_after, "ok")

    def _keep_leases(self, specs: Sequence[_Spec], need: list[tuple[int, int, int]], results: list[LimitResult],
                     t: float) -> None:
        """Keep what Redis granted beyond this request's cost, up to `batch - 1` units per
        counter (the overshoot bound), for up to `lease_ttl`."""
        leases = self._leases
        for (i, mn, _), r in zip(need, results):
            s = specs[i]
            if not s.policy.hybrid:
                continue
            cap = self._batch(s) - 1
            extra = r.granted - mn
            lease = leases.get(s.key)
            if lease is not None and lease.expires > t:
                lease.left = min(cap, lease.left + extra)
                lease.expires = min(lease.expires, t + self.config.hybrid.lease_ttl)
            else:
                lease = leases[s.key] = _Lease(min(cap, extra), t + self.config.hybrid.lease_ttl)
            lease.remaining, lease.reset_at, lease.blocked_until = r.remaining, t + r.reset_after, 0.0
        if len(leases) > 10_000:
            for k in [k for k, v in leases.items() if v.expires <= t]:
                del leases[k]

    def _lease_view(self, s: _Spec, t: float, r: LimitResult | None = None) -> AppliedPolicy:
        lease = self._leases.get(s.key) if s.policy.hybrid else None
        left = lease.left if lease is not None else 0
        if r is not None:
            return AppliedPolicy(s.policy.name, s.limit, _ceil(s.window), r.remaining + left, _ceil(r.reset_after))
        if lease is None:
            return AppliedPolicy(s.policy.name, s.limit, _ceil(s.window), 0, _ceil(s.window))
        return AppliedPolicy(s.policy.name, s.limit, _ceil(s.window), min(s.limit, lease.remaining + left),
                             _ceil(max(0.0, lease.reset_at - t)))
