"""Durations and rates as operators write them in the config ("1m", "250ms", "100/1m").

Kept beside the state store because every state-backed feature (limits,
idempotency retention, breaker windows) is configured with them.
"""
from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {
    "ms": 0.001,
    "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as "90s", "1m", "1h30m", "250ms", "min"."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if not text:
            raise ValueError("empty duration")
        try:
            seconds = float(text)
        except ValueError:
            if text in _UNITS:  # "min" alone means one minute, as in "100/min"
                seconds = _UNITS[text]
            else:
                seconds, pos = 0.0, 0
                for m in _PART.finditer(text):
                    if text[pos:m.start()].strip() or m.group(2) not in _UNITS:
                        raise ValueError(f"invalid duration {value!r}: use e.g. 500ms, 10s, 1m, 1h, 1d")
                    seconds += float(m.group(1)) * _UNITS[m.group(2)]
                    pos = m.end()
                if pos == 0 or text[pos:].strip():
                    raise ValueError(f"invalid duration {value!r}: use e.g. 500ms, 10s, 1m, 1h, 1d")
    else:
        raise ValueError(f"expected a duration, got {type(value).__name__}")
    if seconds != seconds or seconds < 0:
        raise ValueError(f"duration must not be negative: {value!r}")
    return seconds


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


Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(lambda s: s, return_type=float)]
"""A pydantic field type: seconds, accepting numbers and duration strings."""
