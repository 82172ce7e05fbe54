"""Rate-limit arithmetic, in exact integers, shared by the memory store and
mirrored line for line by `lua/ratelimit.lua` (so both stores agree to the unit).

GCRA is kept in its leaky-bucket form: the state is (timestamp, debt) where
one request adds `window` time units of debt and debt drains at `limit` units
per time unit, capacity `limit * window`. That is the virtual-scheduling TAT
scaled by `limit`, which keeps every quantity an integer: N requests at one
instant are admitted and the N+1st refused exactly, whatever N/window is.

Sliding window keeps (window index, current count, previous count) and
weights the previous window by the part of it still inside the sliding window.

Time is counted in units of `unit_us` microseconds, the smallest power of ten
that keeps `limit * window` within 2**50 (exact in a Lua double).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

MAX_CAPACITY = 1 << 50


@lru_cache(maxsize=4096)
def time_unit_us(limit: int, window_us: int) -> int:
    unit = 1
    while limit * (window_us // unit) > MAX_CAPACITY:
        unit *= 10
    return unit


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def ttl_ms(units: int, unit_us: int) -> int:
    return max(1, _ceil_div(units * unit_us, 1000))


@dataclass(slots=True)
class Plan:
    """One check's state read in the first pass, before anything is charged."""
    gcra: bool
    limit: int
    wu: int            # window in time units
    unit: int          # microseconds per time unit
    now: int           # now in time units
    minc: int
    maxc: int
    avail: int
    debt: int = 0      # gcra
    idx: int = 0       # sliding
    e: int = 0         # sliding: elapsed units in the current window
    cur: int = 0
    prev: int = 0


def plan(gcra: bool, state: tuple[int, ...] | None, now_us: int, limit: int, window_us: int,
         minc: int, maxc: int) -> Plan:
    unit = time_unit_us(limit, window_us)
    wu = max(1, window_us // unit)
    now = now_us // unit
    if gcra:
        debt = 0
        if state is not None:
            ts, d = state
            debt = max(0, d - max(0, now - ts) * limit)
            now = max(now, ts)  # a clock that stepped back must not erase debt later
        avail = max(0, (limit * wu - debt) // wu)
        return Plan(True, limit, wu, unit, now, minc, maxc, avail, debt=debt)
    idx = now // wu
    e = now - idx * wu
    cur = prev = 0
    if state is not None:
        si, sc, sp = state
        if si == idx:
            cur, prev = sc, sp
        elif si == idx - 1:
            prev = sc
    avail = max(0, (limit * wu - prev * (wu - e) - cur * wu) // wu)
    return Plan(False, limit, wu, unit, now, minc, maxc, avail, idx=idx, e=e, cur=cur, prev=prev)


def settle(p: Plan, admit: bool) -> tuple[int, int, int, int, tuple[int, ...] | None, int]:
    """(granted, remaining, reset_us, retry_us, new_state or None, ttl_ms) for one check."""
    grant = min(p.maxc, p.avail) if admit else 0
    short = not admit and p.avail < p.minc
    retry = 0
    if p.gcra:
        debt = p.debt + grant * p.wu
        new_state = (p.now, debt) if grant > 0 else None
        ttl = ttl_ms(_ceil_div(debt, p.limit), p.unit)
        remaining = p.avail - grant
        reset = _ceil_div(debt, p.limit)
        if short:
            retry = _ceil_div(p.debt + p.minc * p.wu - p.limit * p.wu, p.limit)
    else:
        new_state = (p.idx, p.cur + grant, p.prev) if grant > 0 else None
        ttl = ttl_ms(2 * p.wu - p.e, p.unit)
        remaining = p.avail - grant
        reset = p.wu - p.e
        if short:
            if p.cur + p.minc > p.limit:
                need = 0 if p.cur == 0 else max(0, p.wu - ((p.limit - p.minc) * p.wu) // p.cur)
                retry = (p.wu - p.e) + need
            else:
                need = p.wu - ((p.limit - p.cur - p.minc) * p.wu) // p.prev
                retry = need - p.e
    return grant, remaining, reset * p.unit, max(0, retry) * p.unit, new_state, ttl
