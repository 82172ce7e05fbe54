"""Issuer metadata by discovery, for issuers configured by their `issuer` URL alone.

With `discovery: true` the gateway reads the issuer's metadata document:
OpenID Connect Discovery 1.0 first (`<issuer>/.well-known/openid-configuration`,
any trailing "/" of the issuer removed before appending), then RFC 8414
(`/.well-known/oauth-authorization-server` inserted between the host and the
issuer's path). A document is used only when its `issuer` equals the configured
one character for character (OIDC Discovery section 4.3, RFC 8414 section 3.3):
otherwise anyone able to serve a document at that URL could hand the gateway a
key set of their choosing for someone else's issuer. From it the gateway takes
`jwks_uri` and, where introspection has no explicit URL, `introspection_endpoint`;
signing algorithms are never taken from it (they stay explicit in the config).

The document is kept for its `Cache-Control: max-age`, clamped to
`discovery_max_age_bounds`, and re-read when stale. While it cannot be re-read,
the last good document stays in use (the keys it points to have their own grace
period). With no document at all, the issuer's tokens are refused as
`unavailable`, exactly like a JWKS endpoint that is down, and reads are retried.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from .config import IssuerConfig, check_endpoint_url
from .idp_fetch import FetchError, get_json, max_age_from

log = logging.getLogger("edge.auth.discovery")

OIDC_WELL_KNOWN = "/.well-known/openid-configuration"
RFC8414_WELL_KNOWN = "/.well-known/oauth-authorization-server"
MAX_DOCUMENT_BYTES = 512 * 1024


class DiscoveryError(Exception):
    """No usable metadata document for the issuer (yet)."""


def discovery_urls(issuer: str) -> list[str]:
    """Where the metadata of `issuer` is looked for, in order: OIDC Discovery, then RFC 8414."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return [
        urlunsplit((parts.scheme, parts.netloc, path + OIDC_WELL_KNOWN, "", "")),
        urlunsplit((parts.scheme, parts.netloc, RFC8414_WELL_KNOWN + path, "", "")),
    ]


@dataclass(frozen=True)
class IssuerMetadata:
    """What the gateway uses from a metadata document, and where it read it."""

    issuer: str
    jwks_uri: str | None
    introspection_endpoint: str | None
    source: str


def parse_metadata(data: Any, source: str, config: IssuerConfig) -> IssuerMetadata:
    """Check a metadata document against the issuer's config; DiscoveryError says what is wrong."""
    if not isinstance(data, dict):
        raise DiscoveryError(f"{source} is not a JSON object")
    named = data.get("issuer")
    if named != config.issuer:
        raise DiscoveryError(
            f"{source} names issuer {named!r}, not the configured {config.issuer!r}: document refused "
            "(the two must be equal character for character; fix the configured issuer)"
        )
    endpoints: dict[str, str | None] = {"jwks_uri": None, "introspection_endpoint": None}
    wanted = {"jwks_uri": config.needs_discovered_jwks, "introspection_endpoint": config.needs_discovered_introspection}
    for name, needed in wanted.items():
        if not needed:
            continue
        value = data.get(name)
        if not isinstance(value, str) or not value:
            raise DiscoveryError(f"{source} has no {name}")
        try:
            endpoints[name] = check_endpoint_url(value, f"{source}: {name}")
        except ValueError as exc:
            raise DiscoveryError(str(exc)) from None
    return IssuerMetadata(config.issuer, endpoints["jwks_uri"], endpoints["introspection_endpoint"], source)


class IssuerDiscovery:
    """The metadata document of one issuer, read lazily, shared by its JWKS cache and introspector."""

    def __init__(
        self,
        issuer: IssuerConfig,
        client: httpx.AsyncClient,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not issuer.discovery:
            raise ValueError(f"issuer {issuer.issuer!r} does not use discovery")
        self.issuer = issuer
        self._client = client
        self._now = monotonic
        self._urls = discovery_urls(issuer.issuer)
        self._metadata: IssuerMetadata | None = None
        self._fresh_until = 0.0
        self._last_attempt: float | None = None
        self._inflight: asyncio.Task[bool] | None = None
        #: Why the last read failed (None after a good one): for logs and `edge check`.
        self.last_error: str | None = None
        #: Whether that failure was a document that answered but was refused (a configuration error,
        #: such as a mismatched issuer) rather than a server that could not be reached.
        self.last_refused = False
        #: Document reads so far (each may try both well-known URLs): for tests and metrics.
        self.fetch_count = 0

    async def close(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
            await asyncio.gather(self._inflight, return_exceptions=True)
            self._inflight = None

    async def metadata(self, *, paced: bool = True) -> IssuerMetadata:
        """The current document, re-read first when stale. `paced`: no two reads closer than
        `jwks_min_fetch_interval` (callers that pace themselves, like the JWKS cache, pass False)."""
        now = self._now()
        if self._metadata is not None and now < self._fresh_until:
            return self._metadata
        if self._inflight is not None or not paced or self._may_fetch(now):
            await self.refresh()
        if self._metadata is None:
            raise DiscoveryError(self.last_error or f"no metadata document for issuer {self.issuer.issuer!r} yet")
        return self._metadata

    async def jwks_uri(self) -> str:
        """For the JWKS cache, which keeps to its own minimum interval."""
        uri = (await self.metadata(paced=False)).jwks_uri
        assert uri is not None  # parse_metadata requires it for issuers that need it
        return uri

    async def introspection_endpoint(self) -> str:
        uri = (await self.metadata()).introspection_endpoint
        assert uri is not None
        return uri

    def mark_stale(self) -> None:
        """Something fetched from the document's endpoints failed: read the document again next time."""
        self._fresh_until = 0.0

    def _may_fetch(self, now: float) -> bool:
        return self._last_attempt is None or now - self._last_attempt >= self.issuer.jwks_min_fetch_interval

    async def refresh(self) -> bool:
        """Read the document now, sharing a read in flight; True when a good document was installed."""
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._read(), name=f"discovery:{self.issuer.issuer}")
            self._inflight.add_done_callback(self._clear_inflight)
        return await asyncio.shield(self._inflight)

    def _clear_inflight(self, task: asyncio.Task[bool]) -> None:
        if self._inflight is task:
            self._inflight = None

    async def _read(self) -> bool:
        self._last_attempt = self._now()
        self.fetch_count += 1
        problems: list[str] = []
        refused = False  # a document that answered but is not acceptable (wrong issuer...): a config error
        for url in list(self._urls):
            try:
                data, cache_control = await get_json(
                    self._client,
                    url,
                    accept="application/json",
                    timeout=self.issuer.jwks_fetch_timeout,
                    max_bytes=MAX_DOCUMENT_BYTES,
                )
                metadata = parse_metadata(data, url, self.issuer)
            except FetchError as exc:
                problems.append(str(exc))
                continue
            except DiscoveryError as exc:
                refused = True
                problems.append(str(exc))
                continue
            max_age = max_age_from(
                cache_control, self.issuer.discovery_max_age_bounds, self.issuer.discovery_refresh_interval
            )
            changed = self._metadata != metadata
            self._metadata, self._fresh_until, self.last_error = metadata, self._now() + max_age, None
            if url != self._urls[0]:  # ask the URL that answered first next time
                self._urls.remove(url)
                self._urls.insert(0, url)
            (log.info if changed else log.debug)(
                "discovery for issuer %r from %s: jwks_uri=%s introspection_endpoint=%s, fresh for %.0fs",
                self.issuer.issuer, url, metadata.jwks_uri, metadata.introspection_endpoint, max_age,
            )
            return True
        error = f"no usable metadata document for issuer {self.issuer.issuer!r}: " + "; ".join(problems)
        if self._metadata is not None:
            error += f" (still using the one read from {self._metadata.source})"
        # Retries repeat the same story: say it once at its level, then quietly.
        level = logging.DEBUG if error == self.last_error else logging.ERROR if refused else logging.WARNING
        log.log(level, "%s", error)
        self.last_error, self.last_refused = error, refused
        return False


async def check_discovery(issuer: IssuerConfig, client: httpx.AsyncClient) -> tuple[str, bool] | None:
    """For `edge check`: None when the issuer's metadata reads and fits, else (why not, whether it is
    a configuration error). A document that answers and is refused is one; a server that cannot be
    reached (no network where the check runs, IdP down) is only worth a warning."""
    discovery = IssuerDiscovery(issuer, client)
    try:
        if await discovery.refresh():
            return None
        assert discovery.last_error is not None
        return discovery.last_error, discovery.last_refused
    finally:
        await discovery.close()
