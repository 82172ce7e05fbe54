"""RFC 7662 token introspection for issuers that hand out opaque tokens.

Answers are cached per token hash for at most `cache_ttl` and never past the
token's own `exp`; concurrent requests carrying the same token share one call.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from .cache import ExpiringLru, token_digest
from .config import IssuerConfig
from .discovery import DiscoveryError, IssuerDiscovery
from .errors import invalid_token
from .principal import Principal, make_principal

log = logging.getLogger("edge.auth.introspection")

MAX_RESPONSE_BYTES = 64 * 1024


class _Inactive:
    """Cached 'active: false' answer."""


_INACTIVE = _Inactive()


def _basic_auth(client_id: str, client_secret: str) -> str:
    # RFC 6749 section 2.3.1: form-urlencode both parts before base64.
    raw = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class Introspector:
    """Introspection client for the one issuer configured with `introspection`."""

    def __init__(
        self,
        issuer: IssuerConfig,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
        max_entries: int = 10000,
        discovery: IssuerDiscovery | None = None,
    ) -> None:
        if issuer.introspection is None:
            raise ValueError(f"issuer {issuer.issuer!r} has no introspection config")
        if issuer.introspection.url is None and discovery is None:
            raise ValueError(f"issuer {issuer.issuer!r}: introspection has no url and no discovery")
        self._discovery = discovery
        self.issuer = issuer
        self.settings = issuer.introspection
        self._client = client
        self._clock = clock
        self._cache: ExpiringLru[Principal | _Inactive] = ExpiringLru(max_entries, clock)
        self._inflight: dict[str, asyncio.Future[Principal | _Inactive]] = {}
        self._authorization = _basic_auth(self.settings.client_id, self.settings.client_secret.get_secret_value())
        #: Calls made to the introspection endpoint: for tests and metrics.
        self.calls = 0

    async def introspect(self, token: str) -> Principal:
        digest = token_digest(token)
        answer = self._cache.get(digest)
        if answer is None:
            pending = self._inflight.get(digest)
            if pending is None:
                pending = asyncio.ensure_future(self._call(token, digest))
                self._inflight[digest] = pending
                pending.add_done_callback(lambda _f: self._inflight.pop(digest, None))
            answer = await asyncio.shield(pending)
        if isinstance(answer, _Inactive):
            raise invalid_token("inactive", "token is not active")
        return self._check(answer)

    def _check(self, principal: Principal) -> Principal:
        """Checks that depend on the clock run on every use, cached or not."""
        now = self._clock()
        leeway = self.issuer.leeway
        if principal.expires_at is not None and principal.expires_at <= now - leeway:
            raise invalid_token("expired", "token has expired")
        nbf = _number(principal.claims.get("nbf"))
        if nbf is not None and nbf > now + leeway:
            raise invalid_token("not_yet_valid", "token is not valid yet")
        return principal

    async def _endpoint(self) -> str:
        if self.settings.url is not None:
            return self.settings.url
        assert self._discovery is not None
        try:
            return await self._discovery.introspection_endpoint()
        except DiscoveryError as exc:
            log.warning("introspection endpoint of issuer %r unknown: %s", self.issuer.issuer, exc)
            raise invalid_token("unavailable", "token could not be verified: introspection endpoint unknown") from None

    async def _call(self, token: str, digest: str) -> Principal | _Inactive:
        url = await self._endpoint()
        self.calls += 1
        try:
            async with self._client.stream(
                "POST",
                url,
                data={"token": token, "token_type_hint": "access_token"},
                headers={"authorization": self._authorization, "accept": "application/json"},
                timeout=self.settings.timeout,
                follow_redirects=False,
            ) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise ValueError("introspection response too large")
                status = response.status_code
            data = json.loads(bytes(body)) if status == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("introspection at %s failed: %s", url, exc.__class__.__name__)
            if self._discovery is not None and self.settings.url is None:
                self._discovery.mark_stale()
            raise invalid_token("unavailable", "token could not be verified: introspection failed") from None
        if status != 200 or not isinstance(data, dict):
            log.warning("introspection at %s answered HTTP %s", url, status)
            raise invalid_token("unavailable", "token could not be verified: introspection failed")

        now = self._clock()
        ttl_deadline = now + self.settings.cache_ttl
        if data.get("active") is not True:
            self._cache.put(digest, _INACTIVE, ttl_deadline)
            return _INACTIVE
        self._validate(data)
        exp = _number(data.get("exp"))
        claims = {k: v for k, v in data.items() if k != "active"}
        principal = make_principal(claims, self.issuer.issuer, "introspection", exp)
        self._cache.put(digest, principal, ttl_deadline if exp is None else min(ttl_deadline, exp))
        return principal

    def _validate(self, data: dict[str, Any]) -> None:
        """An active answer must still be for this issuer and one of its audiences, when it says so."""
        iss = data.get("iss")
        if iss is not None and iss != self.issuer.issuer:
            raise invalid_token("wrong_issuer", "token issuer is not accepted")
        aud = data.get("aud")
        if aud is not None:
            auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if not set(self.issuer.audiences) & {a for a in auds if isinstance(a, str)}:
                raise invalid_token("wrong_audience", "token audience is not accepted")
        if "exp" in data and _number(data["exp"]) is None:
            raise invalid_token("malformed", "introspection gave a non-numeric exp")

