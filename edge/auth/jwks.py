"""One issuer's signing keys, fetched asynchronously and kept fresh.

Two promises, kept together:

* A key rotation never locks users out. A token naming a `kid` the cached set
  lacks makes the gateway re-read the set. When the last fetch was less than
  `jwks_min_fetch_interval` ago, the request waits for the next allowed fetch
  (at most `jwks_unknown_kid_wait`; every waiting request shares that one
  scheduled fetch) instead of being refused. A `kid` is remembered as unknown
  (for `jwks_negative_cache_ttl`) only after a fetch that began after the
  token arrived and did not list it: a fetch that was skipped, failed, or
  started before the token came proves nothing and is never remembered.
* Forged tokens cannot turn the gateway into a fetch amplifier: whatever the
  number of distinct forged kids, fetches start at most once per
  `jwks_min_fetch_interval`. When the next allowed fetch is further away than
  `jwks_unknown_kid_wait`, the request is refused at once (401 unknown_key,
  not remembered) and the fetch is still scheduled, so a retry after it finds
  a genuinely new key.

While the endpoint is down, the last good key set keeps serving for
`jwks_grace_period` past its expiry, then tokens are refused as `unavailable`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key
from joserfc.jws import JWSRegistry

from .config import IssuerConfig
from .discovery import DiscoveryError, IssuerDiscovery
from .errors import invalid_token
from .idp_fetch import FetchError, get_json, max_age_from

log = logging.getLogger("edge.auth.jwks")

MAX_JWKS_BYTES = 1 << 20
_NEGATIVE_CACHE_MAX = 4096
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


@dataclass
class _Fetch:
    """One fetch of the key set. `started_at` stays None until the task first runs: requests
    that meet a miss before then are still answered by it (its request is not sent yet)."""

    task: asyncio.Task[bool] = field(init=False)
    started_at: float | None = None

    def began_after(self, moment: float) -> bool:
        return self.started_at is None or self.started_at >= moment


class JwksCache:
    """Signing keys of one issuer, from `jwks_url` (httpx), `jwks_file`, or the `jwks_uri` of the
    issuer's discovery document (asked for before every fetch, so a new one is followed)."""

    def __init__(
        self,
        issuer: IssuerConfig,
        client: httpx.AsyncClient | None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        discovery: IssuerDiscovery | None = None,
    ) -> None:
        if issuer.jwks_url is None and issuer.jwks_file is None and discovery is None:
            raise ValueError(f"issuer {issuer.issuer!r} has no JWKS source")
        if issuer.jwks_file is None and client is None:
            raise ValueError("a JWKS fetched over HTTP needs an httpx.AsyncClient")
        self.issuer = issuer
        self._client = client
        self._discovery = discovery
        self._now = monotonic
        self._keys: list[Key] | None = None
        self._by_kid: dict[str, list[Key]] = {}
        self._expires_at = 0.0
        self._last_attempt: float | None = None
        self._last_ok = False
        self._latest: _Fetch | None = None
        self._timer: asyncio.Task[None] | None = None
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
        latest = self._latest.task if self._latest is not None else None
        tasks = [t for t in (self._refresher, self._timer, latest, *self._nudges) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._refresher = None
        self._timer = None
        self._latest = None
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
        seen = self._now()
        deadline = seen + self.issuer.jwks_unknown_kid_wait
        while True:
            if self._negative.get(kid, 0.0) > self._now():
                raise invalid_token("unknown_key", f"unknown signing key id {kid!r}")
            latest = self._latest
            if latest is not None and (latest.began_after(seen) or not latest.task.done()):
                ok = await asyncio.shield(latest.task)
                found = self._lookup(kid, alg)
                if found:
                    return found
                if not latest.began_after(seen):
                    continue  # began before this token came: it proves nothing, wait for the next one
                if not ok:
                    raise invalid_token(
                        "unavailable", f"signing key id {kid!r} is not cached and the key set could not be re-read"
                    )
                self._remember_unknown(kid)
                raise invalid_token("unknown_key", f"unknown signing key id {kid!r}")
            now = self._now()
            at = self._next_allowed_fetch()
            if at <= now:
                self._start_fetch()
                continue
            timer = self._fetch_at(at)
            if not self._last_ok:
                # The endpoint failed last time: holding requests through an outage only piles them up.
                raise invalid_token(
                    "unavailable", f"signing key id {kid!r} is not cached and the key set could not be re-read"
                )
            if at > deadline:
                # Too long to hold the request; the fetch stays scheduled, so a retry after it finds a new key.
                raise invalid_token(
                    "unknown_key", f"unknown signing key id {kid!r}; the key set is re-read in {at - now:.1f}s"
                )
            await asyncio.shield(timer)

    def _lookup(self, kid: str, alg: str) -> list[Key]:
        return [k for k in self._by_kid.get(kid, ()) if key_fits(k, alg)]

    def _remember_unknown(self, kid: str) -> None:
        self._negative[kid] = self._now() + self.issuer.jwks_negative_cache_ttl
        self._negative.move_to_end(kid)
        while len(self._negative) > _NEGATIVE_CACHE_MAX:
            self._negative.popitem(last=False)

    def _next_allowed_fetch(self) -> float:
        if self._last_attempt is None:
            return self._now()
        return self._last_attempt + self.issuer.jwks_min_fetch_interval

    def _may_fetch(self, now: float) -> bool:
        return self._next_allowed_fetch() <= now

    def _in_flight(self) -> bool:
        return self._latest is not None and not self._latest.task.done()

    def _usable_until(self) -> float:
        return self._expires_at + self.issuer.jwks_grace_period

    async def _ensure_usable(self) -> None:
        now = self._now()
        if self._keys is not None and now < self._expires_at:
            return
        if self._keys is not None and now < self._usable_until():
            # Stale but within grace: answer now, refresh behind the request.
            if not self._in_flight() and self._may_fetch(now):
                task = asyncio.create_task(self.refresh())
                self._nudges.add(task)
                task.add_done_callback(self._nudges.discard)
            return
        if self._in_flight() or self._may_fetch(now):
            await self.refresh()
        if self._keys is None or self._now() >= self._usable_until():
            raise invalid_token("unavailable", f"signing keys of issuer {self.issuer.issuer!r} are unavailable")

    # -- fetching ----------------------------------------------------------

    async def refresh(self) -> bool:
        """Fetch now, sharing any fetch already in flight; True when a good key set was installed."""
        latest = self._latest
        if latest is None or latest.task.done():
            latest = self._start_fetch()
        return await asyncio.shield(latest.task)

    def _start_fetch(self) -> _Fetch:
        self._last_attempt = self._now()
        fetch = _Fetch()
        fetch.task = asyncio.create_task(self._fetch_and_install(fetch), name=f"jwks-fetch:{self.issuer.issuer}")
        self._latest = fetch
        return fetch

    def _fetch_at(self, at: float) -> asyncio.Task[None]:
        """The one scheduled fetch every waiting request shares (single flight)."""
        if self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._fetch_when_allowed(at), name=f"jwks-scheduled:{self.issuer.issuer}")
        return self._timer

    async def _fetch_when_allowed(self, at: float) -> None:
        while True:
            delay = max(at, self._next_allowed_fetch()) - self._now()
            if delay <= 0:
                break
            await asyncio.sleep(delay)
        if not self._in_flight():
            self._start_fetch()

    async def _fetch_and_install(self, fetch: _Fetch) -> bool:
        fetch.started_at = self._now()
        self.fetch_count += 1
        try:
            data, max_age = await self._fetch()
            keys = parse_key_set(data)
        except (JwksFetchError, FetchError, DiscoveryError, OSError, ValueError) as exc:
            self._last_ok = False
            if self._discovery is not None:
                self._discovery.mark_stale()  # the key set may have moved: read the metadata again next time
            log.warning("JWKS fetch for issuer %r failed: %s", self.issuer.issuer, exc)
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
        assert self._client is not None
        url = self.issuer.jwks_url
        if url is None:
            assert self._discovery is not None
            url = await self._discovery.jwks_uri()
        data, cache_control = await get_json(
            self._client,
            url,
            accept="application/jwk-set+json, application/json",
            timeout=self.issuer.jwks_fetch_timeout,
            max_bytes=MAX_JWKS_BYTES,
        )
        bounds, default = self.issuer.jwks_max_age_bounds, self.issuer.jwks_refresh_interval
        return data, max_age_from(cache_control, bounds, default)

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
            # A fetch for an unknown kid may have run meanwhile: keep to the minimum interval.
            while (wait := self._next_allowed_fetch() - self._now()) > 0:
                await asyncio.sleep(wait)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the refresher die
                log.exception("JWKS refresh for issuer %r crashed", self.issuer.issuer)

