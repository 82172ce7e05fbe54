"""Bounded GETs of the JSON documents an identity provider publishes (JWKS, discovery metadata).

One place for the rules both follow: no redirects (a document is read where it was
configured or announced, never where a 3xx points), a size cap, a timeout, and a
freshness taken from `Cache-Control: max-age` but clamped to operator bounds.
"""
from __future__ import annotations

import json
import re
from typing import Any

import httpx

_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|[,\s])(?:no-store|no-cache)(?:$|[,\s])", re.IGNORECASE)


class FetchError(Exception):
    """The document could not be read (status, size, transport or JSON)."""


async def get_json(
    client: httpx.AsyncClient, url: str, *, accept: str, timeout: float, max_bytes: int
) -> tuple[Any, str | None]:
    """The parsed JSON body of a 200 answer and its Cache-Control header; FetchError otherwise."""
    try:
        async with client.stream(
            "GET", url, headers={"accept": accept}, timeout=timeout, follow_redirects=False
        ) as response:
            if response.status_code != 200:
                raise FetchError(f"HTTP {response.status_code} from {url}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise FetchError(f"{url} answered more than {max_bytes} bytes")
            cache_control = response.headers.get("cache-control")
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {exc.__class__.__name__}: {exc}") from None
    try:
        return json.loads(bytes(body)), cache_control
    except ValueError as exc:
        raise FetchError(f"{url} did not answer JSON: {exc}") from None


def max_age_from(cache_control: str | None, bounds: tuple[float, float], default: float) -> float:
    """Seconds a document may be reused: its max-age clamped to `bounds`; no-store/no-cache means the
    low bound; no Cache-Control (or no max-age in it) means `default`."""
    low, high = bounds
    if cache_control:
        if _NO_CACHE.search(cache_control):
            return low
        m = _MAX_AGE.search(cache_control)
        if m:
            return min(max(float(m.group(1)), low), high)
    return default
