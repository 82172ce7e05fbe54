"""In-process state store: the embedded default for one gateway process.

Same semantics as the Redis store (same integer arithmetic for limits, same
reservation states), with no awaits inside an operation, so each one is
atomic on the event loop. Memory is bounded: entries expire like Redis keys,
and when a table is full the expired ones are swept; if still full, the
oldest rate-limit entries are forgotten (those keys restart with a full
quota), while idempotency reservations are refused (StoreUnavailable: the
caller fails closed) rather than evicting a live record and risking a
second execution.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

from ..unique import unique_hex
from . import algorithms
from .errors import StoreUnavailable
from .store import Admission, LimitCheck, LimitResult, Reservation, ReservationState, ReserveRequest, StoreStats


@dataclass(slots=True)
class _Idem:
    expires: float
    state: str          # f in flight | c completed | u outcome unknown
    fingerprint: str
    token: str | None
    record: bytes | None = None


class MemoryStore:
    name = "memory"
    shared = False

    def __init__(self, *, max_rate_keys: int = 100_000, max_idempotency_keys: int = 100_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.max_rate_keys = max_rate_keys
        self.max_idempotency_keys = max_idempotency_keys
        self._clock = clock
        self._rl: dict[str, tuple[float, tuple[int, ...]]] = {}
        self._idem: dict[str, _Idem] = {}
        self.stats = StoreStats()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._rl) + len(self._idem)

    async def rate_limit(self, checks: Sequence[LimitCheck], now: float | None = None) -> list[LimitResult]:
        return self.rate_limit_sync(checks, now)

    def rate_limit_sync(self, checks: Sequence[LimitCheck], now: float | None = None) -> list[LimitResult]:
        """The whole operation; sync so the hybrid and degraded paths can call it inline."""
        self.stats.round_trips += 1
        return self._rate_limit(checks, now)

    def _rate_limit(self, checks: Sequence[LimitCheck], now: float | None) -> list[LimitResult]:
        t = self._clock() if now is None else now
        now_us = int(t * 1_000_000)
        table = self._rl
        plans = []
        admit = True
        for c in checks:
            entry = table.get(c.key)
            state = entry[1] if entry is not None and entry[0] > t else None
            p = algorithms.plan(c.algorithm == "gcra", state, now_us, c.limit, round(c.window * 1_000_000),
                                c.cost, c.max_cost if c.max_cost is not None else c.cost)
            if p.avail < c.cost:
                admit = False
            plans.append(p)
        results = []
        for c, p in zip(checks, plans):
            granted, remaining, reset_us, retry_us, new_state, ttl = algorithms.settle(p, admit)
            if new_state is not None:
                table.pop(c.key, None)  # re-insert: dict order is then least-recently-charged first
                table[c.key] = (t + ttl / 1000, new_state)
            results.append(LimitResult(admit, granted, remaining, reset_us / 1e6, retry_us / 1e6))
        if len(table) > self.max_rate_keys:
            self._shrink_rate(t)
        return results

    def _shrink_rate(self, t: float) -> None:
        table = self._rl
        for k in [k for k, (exp, _) in table.items() if exp <= t]:
            del table[k]
        target = int(self.max_rate_keys * 0.9)
        if len(table) > target:
            for k in list(table)[: len(table) - target]:
                del table[k]
                self.evicted += 1

    def _live(self, key: str, t: float) -> _Idem | None:
        rec = self._idem.get(key)
        if rec is not None and rec.expires <= t:
            del self._idem[key]
            return None
        return rec

    async def reserve(self, key: str, fingerprint: str, lock_ttl: float) -> Reservation:
        self.stats.round_trips += 1
        return self._reserve(key, fingerprint, lock_ttl)

    async def admit(self, checks: Sequence[LimitCheck], reserve: ReserveRequest,
                    now: float | None = None) -> Admission:
        """One operation, as Redis's script: the reservation only when the limits admit."""
        self.stats.round_trips += 1
        limits = self._rate_limit(checks, now)
        if not limits[0].allowed:
            return Admission(limits, None)
        try:
            return Admission(limits, self._reserve(reserve.key, reserve.fingerprint, reserve.lock_ttl))
        except StoreUnavailable as e:  # the table is full: the charge stands, as it would in two calls
            return Admission(limits, e)

    def _reserve(self, key: str, fingerprint: str, lock_ttl: float) -> Reservation:
        t = self._clock()
        rec = self._live(key, t)
        if rec is not None:
            if rec.fingerprint != fingerprint:
                return Reservation(ReservationState.MISMATCH)
            if rec.state == "f":
                return Reservation(ReservationState.IN_FLIGHT, retry_after=rec.expires - t)
            if rec.state == "c":
                return Reservation(ReservationState.COMPLETED, record=rec.record)
        elif len(self._idem) >= self.max_idempotency_keys:
            for k in [k for k, r in self._idem.items() if r.expires <= t]:
                del self._idem[k]
            if len(self._idem) >= self.max_idempotency_keys:
                self.stats.errors += 1
                raise StoreUnavailable(f"in-memory idempotency table is full ({self.max_idempotency_keys} live keys)")
        token = unique_hex()
        self._idem[key] = _Idem(t + lock_ttl, "f", fingerprint, token)
        return Reservation(ReservationState.NEW, token=token, resumed=rec is not None)

    async def complete(self, key: str, fingerprint: str, record: bytes, retention: float,
                       token: str | None = None) -> bool:
        self.stats.round_trips += 1
        t = self._clock()
        rec = self._live(key, t)
        if rec is not None and (rec.state == "c" or rec.fingerprint != fingerprint):
            return False
        self._idem[key] = _Idem(t + retention, "c", fingerprint, None, record)
        return True

    async def release(self, key: str, fingerprint: str, token: str | None = None,
                      keep_fingerprint: float | None = None) -> bool:
        self.stats.round_trips += 1
        t = self._clock()
        rec = self._live(key, t)
        if rec is None or rec.state != "f" or rec.fingerprint != fingerprint or rec.token != token:
            return False
        if keep_fingerprint is None:
            del self._idem[key]
        else:
            rec.state, rec.token, rec.expires = "u", None, t + keep_fingerprint
        return True

    async def close(self) -> None:
        self._rl.clear()
        self._idem.clear()
