"""One issuer's signing keys, fetched asynchronously and kept fresh.

The cache is built so that forged tokens cannot turn the gateway into a JWKS
fetch amplifier: an unknown `kid` triggers at most one fetch per
`jwks_min_fetch_interval` (concurrent misses share one in-flight fetch, and a
kid just looked for is negatively cached), while a genuine key rotation is
picked up on the first token that names the new kid. While the endpoint is
down, the last good key set keeps serving for `jwks_grace_period` past its
expiry, then tokens are refused as `unavailable`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key
from joserfc.jws import JWSRegistry

from .config import IssuerConfig
from .errors import invalid_token

log = logging.getLogger("edge.auth.jwks")

MAX_JWKS_BYTES = 1 << 20
_NEGATIVE_CACHE_MAX = 4096
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|[,\s])(?:no-store|no-cache)(?:$|[,\s])", re.IGNORECASE)
_ASYMMETRIC_KTY = frozenset({"RSA", "EC", "OKP"})


class JwksFetchError(Exception):
    """The key set could not be fetched or held no usable key."""


def key_fits(key: Key, alg: str) -> bool:
    """Whether `key` may verify `alg` (key type, curve, `use` and the key's own `alg`)."""
    model = JWSRegistry.algorithms.get(alg)
    if model is None:
        return False
    try:
        model.check_key(key)
    except (JoseError, ValueError):
        return False
    return True


def parse_key_set(data: Any) -> list[Key]:
    """Public signing keys from a JWKS document; unusable entries are skipped, not fatal (RFC 7517 section 5)."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise JwksFetchError("not a JWK Set: no 'keys' array")
    keys: list[Key] = []
    for entry in data["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") not in _ASYMMETRIC_KTY:
            continue
        if entry.get("use", "sig") != "sig":
            continue
        if "d" in entry:
            log.warning("JWKS publishes a private key (kid=%r); skipping it", entry.get("kid"))
            continue
        try:
            keys.append(JWKRegistry.import_key(entry))
        except (JoseError, ValueError, TypeError) as exc:
            log.warning("JWKS key kid=%r skipped: %s", entry.get("kid"), exc)
    if not keys:
        raise JwksFetchError("JWK Set holds no usable signing key")
    return keys


class JwksCache:
    """Signing keys of one issuer, from `jwks_url` (httpx) or `jwks_file`."""

    def __init__(
        self,
        issuer: IssuerConfig,
        client: httpx.AsyncClient | None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if issuer.jwks_url is None and issuer.jwks_file is None:
            raise ValueError(f"issuer {issuer.issuer!r} has no JWKS source")
        if issuer.jwks_url is not None and client is None:
            raise ValueError("a jwks_url needs an httpx.AsyncClient")
        self.issuer = issuer
        self._client = client
        self._now = monotonic
        self._keys: list[Key] | None = None
        self._by_kid: dict[str, list[Key]] = {}
        self._expires_at = 0.0
        self._last_attempt: float | None = None
        self._last_ok = False
        self._inflight: asyncio.Task[bool] | None = None
        self._negative: OrderedDict[str, float] = OrderedDict()
        self._refresher: asyncio.Task[None] | None = None
        self._nudges: set[asyncio.Task[bool]] = set()
        #: Fetch attempts so far (successful or not): for tests and metrics.
        self.fetch_count = 0

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Fetch once (a failure is logged, not fatal: the endpoint may come up later) and start refreshing."""
        await self.refresh()
        if self._refresher is None:
            self._refresher = asyncio.create_task(self._refresh_loop(), name=f"jwks-refresh:{self.issuer.issuer}")

    async def close(self) -> None:
        tasks = [t for t in (self._refresher, self._inflight, *self._nudges) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._refresher = None
        self._inflight = None
        self._nudges.clear()

    # -- lookups -----------------------------------------------------------

    async def keys_for(self, kid: str | None, alg: str) -> list[Key]:
        """Candidate keys to verify a token with this `kid`/`alg`; AuthError when there are none."""
        await self._ensure_usable()
        if kid is None:
            found = [k for k in self._keys or () if key_fits(k, alg)]
            if not found:
                raise invalid_token("unknown_key", f"no key of issuer {self.issuer.issuer!r} fits alg {alg}")
            return found
        found = self._lookup(kid, alg)
        if found:
            return found
        now = self._now()
        if self._negative.get(kid, 0.0) > now:
            raise invalid_token("unknown_key", f"unknown signing key id {kid!r}")
        if self._inflight is not None or self._may_fetch(now):
            await self.refresh()
            found = self._lookup(kid, alg)
            if found:
                return found
        self._negative[kid] = self._now() + self.issuer.jwks_negative_cache_ttl
        self._negative.move_to_end(kid)
        while len(self._negative) > _NEGATIVE_CACHE_MAX:
            self._negative.popitem(last=False)
        raise invalid_token("unknown_key", f"unknown signing key id {kid!r}")

    def _lookup(self, kid: str, alg: str) -> list[Key]:
        return [k for k in self._by_kid.get(kid, ()) if key_fits(k, alg)]

    def _may_fetch(self, now: float) -> bool:
        return self._last_attempt is None or now - self._last_attempt >= self.issuer.jwks_min_fetch_interval

    def _usable_until(self) -> float:
        return self._expires_at + self.issuer.jwks_grace_period

    async def _ensure_usable(self) -> None:
        now = self._now()
        if self._keys is not None and now < self._expires_at:
            return
        if self._keys is not None and now < self._usable_until():
            # Stale but within grace: answer now, refresh behind the request.
            if self._inflight is None and self._may_fetch(now):
                task = asyncio.create_task(self.refresh())
                self._nudges.add(task)
                task.add_done_callback(self._nudges.discard)
            return
        if self._inflight is not None or self._may_fetch(now):
            await self.refresh()
        if self._keys is None or self._now() >= self._usable_until():
            raise invalid_token("unavailable", f"signing keys of issuer {self.issuer.issuer!r} are unavailable")

    # -- fetching ----------------------------------------------------------

    async def refresh(self) -> bool:
        """Fetch now, sharing any fetch already in flight; True when a good key set was installed."""
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._fetch_and_install())
            self._inflight.add_done_callback(self._clear_inflight)
        return await asyncio.shield(self._inflight)

    def _clear_inflight(self, task: asyncio.Task[bool]) -> None:
        if self._inflight is task:
            self._inflight = None

    async def _fetch_and_install(self) -> bool:
        self._last_attempt = self._now()
        self.fetch_count += 1
        source = self.issuer.jwks_url or str(self.issuer.jwks_file)
        try:
            data, max_age = await self._fetch()
            keys = parse_key_set(data)
        except (JwksFetchError, httpx.HTTPError, OSError, ValueError) as exc:
            self._last_ok = False
            log.warning("JWKS fetch for issuer %r from %s failed: %s", self.issuer.issuer, source, exc)
            return False
        by_kid: dict[str, list[Key]] = {}
        for key in keys:
            if key.kid is not None:
                by_kid.setdefault(key.kid, []).append(key)
        self._keys, self._by_kid = keys, by_kid
        self._expires_at = self._now() + max_age
        self._last_ok = True
        # Kids looked for in vain may exist now.
        self._negative = OrderedDict((k, t) for k, t in self._negative.items() if k not in by_kid)
        log.info("JWKS for issuer %r: %d key(s), fresh for %.0fs", self.issuer.issuer, len(keys), max_age)
        return True

    async def _fetch(self) -> tuple[Any, float]:
        if self.issuer.jwks_file is not None:
            raw = await asyncio.to_thread(Path(self.issuer.jwks_file).read_bytes)
            return json.loads(raw), self.issuer.jwks_refresh_interval
        assert self._client is not None and self.issuer.jwks_url is not None
        async with self._client.stream(
            "GET",
            self.issuer.jwks_url,
            headers={"accept": "application/jwk-set+json, application/json"},
            timeout=self.issuer.jwks_fetch_timeout,
            follow_redirects=False,
        ) as response:
            if response.status_code != 200:
                raise JwksFetchError(f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JwksFetchError(f"JWKS larger than {MAX_JWKS_BYTES} bytes")
            return json.loads(bytes(body)), self._max_age(response.headers.get("cache-control"))

    def _max_age(self, cache_control: str | None) -> float:
        low, high = self.issuer.jwks_max_age_bounds
        if cache_control:
            if _NO_CACHE.search(cache_control):
                return low
            m = _MAX_AGE.search(cache_control)
            if m:
                return min(max(float(m.group(1)), low), high)
        return self.issuer.jwks_refresh_interval

    async def _refresh_loop(self) -> None:
        """Refresh ahead of expiry; after a failure, retry no faster than the minimum interval."""
        floor = max(self.issuer.jwks_min_fetch_interval, 0.5)
        while True:
            if self._last_ok and self._keys is not None:
                ttl_left = self._expires_at - self._now()
                lead = min(60.0, 0.1 * max(ttl_left, 0.0))
                delay = max(ttl_left - lead, self.issuer.jwks_min_fetch_interval)
            else:
                delay = floor
            await asyncio.sleep(delay)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the refresher die
                log.exception("JWKS refresh for issuer %r crashed", self.issuer.issuer)
