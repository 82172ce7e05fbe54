"""Durations and sizes as operators write them in the config ("250ms", "1m", "4MiB").

One parser for the whole config file, so every section accepts the same forms.
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


Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(lambda s: s, return_type=float)]
"""A pydantic field type: seconds, accepting numbers and duration strings."""

_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "kb": 1000, "mb": 1000**2, "gb": 1000**3}


def parse_size(value: Any) -> int:
    """Bytes from a number or a string like '4MiB', '512KiB'."""
    if isinstance(value, bool):
        raise ValueError("expected a size like '4MiB', not a boolean")
    if isinstance(value, int):
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"invalid size {value!r}: use bytes or '512KiB', '4MiB'")
    return int(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()]


ByteSize = Annotated[int, BeforeValidator(parse_size)]
