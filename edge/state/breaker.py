"""Circuit breaker for the state store.

A dead or hung Redis must cost a request at most one short timeout per
breaker window, not one per request: after `failure_threshold` consecutive
failures the breaker opens and calls fail at once; after `open_seconds` one
probe is let through (half-open); its success closes the breaker, its failure
opens it for another window. Every transition is logged and counted.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Callable, Literal

log = logging.getLogger("edge.state.breaker")

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(self, name: str, *, failure_threshold: int = 3, open_seconds: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.failure_threshold = max(1, failure_threshold)
        self.open_seconds = open_seconds
        self._clock = clock
        self.state: BreakerState = "closed"
        self._consecutive = 0
        self._opened_at = 0.0
        self._probe_started: float | None = None
        self.transitions: Counter[tuple[str, str]] = Counter()
        self.failures = 0
        self.short_circuits = 0

    def allow(self) -> bool:
        """May a call go to the store now? False means fail fast, without waiting."""
        if self.state == "closed":
            return True
        now = self._clock()
        if self.state == "open":
            if now - self._opened_at < self.open_seconds:
                self.short_circuits += 1
                return False
            self._move("half_open", "probing after %.3fs open" % (now - self._opened_at))
            self._probe_started = now
            return True
        # half-open: one probe at a time; a probe that never reported is presumed lost
        if self._probe_started is not None and now - self._probe_started < self.open_seconds:
            self.short_circuits += 1
            return False
        self._probe_started = now
        return True

    def record_success(self) -> None:
        self._consecutive = 0
        if self.state != "closed":
            self._probe_started = None
            self._move("closed", "store answered")

    def record_failure(self, error: BaseException | None = None) -> None:
        self.failures += 1
        self._consecutive += 1
        if self.state == "half_open":
            self._open(f"probe failed: {error!r}")
        elif self.state == "closed" and self._consecutive >= self.failure_threshold:
            self._open(f"{self._consecutive} consecutive failures, last: {error!r}")

    def record_abandoned(self) -> None:
        """The call was cancelled before it could tell: let the next call probe."""
        if self.state == "half_open":
            self._probe_started = None

    def _open(self, reason: str) -> None:
        self._opened_at = self._clock()
        self._probe_started = None
        self._move("open", reason + "; failing fast for %.3fs" % self.open_seconds)

    def _move(self, to: BreakerState, reason: str) -> None:
        before, self.state = self.state, to
        self.transitions[(before, to)] += 1
        level = logging.WARNING if to == "open" else logging.INFO
        log.log(level, "circuit breaker %s: %s -> %s (%s)", self.name, before, to, reason)

    def snapshot(self) -> dict[str, object]:
        """Counters for metrics."""
        return {
            "state": self.state,
            "failures": self.failures,
            "short_circuits": self.short_circuits,
            "transitions": {f"{a}->{b}": n for (a, b), n in self.transitions.items()},
        }
