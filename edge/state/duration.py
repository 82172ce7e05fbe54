"""Durations and rates as operators write them in the config ("1m", "250ms", "100/1m").

Kept beside the state store because every state-backed feature (limits,
idempotency retention, breaker windows) is configured with them.
"""
from __future__ import annotations

from typing import Any

from ..units import Duration, parse_duration

__all__ = ["Duration", "parse_duration", "parse_rate"]


def parse_rate(value: Any) -> tuple[int, float]:
    """(limit, window seconds) from "100/1m", "100/min" or {"limit": 100, "window": "1m"}."""
    if isinstance(value, dict):
        unknown = set(value) - {"limit", "window"}
        if unknown or "limit" not in value or "window" not in value:
            raise ValueError(f"a rate needs exactly 'limit' and 'window', got {sorted(value)}")
        limit, window = value["limit"], parse_duration(value["window"])
    elif isinstance(value, str) and "/" in value:
        count, _, per = value.partition("/")
        try:
            limit = int(count.strip())
        except ValueError:
            raise ValueError(f"invalid rate {value!r}: expected '<count>/<duration>' such as '100/1m'") from None
        window = parse_duration(per)
    else:
        raise ValueError(f"invalid rate {value!r}: expected '<count>/<duration>' such as '100/1m'")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"rate limit must be a positive integer, got {limit!r}")
    if window <= 0:
        raise ValueError(f"rate window must be positive, got {value!r}")
    return limit, window
