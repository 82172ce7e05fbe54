"""The auth engine the gateway app calls once per request, free of any web framework.

`authenticate(headers, policy)` answers with an AuthOutcome or raises AuthError
(status, RFC 6750 error, WWW-Authenticate). The app must, on EVERY route,
drop client-sent headers named in `stripped_header_names` before building
backend metadata, and send credentials on (`credential_header_names`) only
through `backend_metadata`, which forwards the token only where the policy asks.
Tokens are never logged; a short SHA-256 fingerprint stands in for them.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Self

import httpx

from .apikeys import ApiKeyStore, hash_api_key
from .cache import ExpiringLru, token_digest
from .config import AuthConfig
from .discovery import IssuerDiscovery
from .errors import AuthError, invalid_token
from .introspection import Introspector
from .keystore import MemoryKeyBackend, StoredKeys, backend_for
from .jwt_validation import JwtValidator
from .policy import EffectivePolicy, PolicyResolver, ProtoPolicy
from .principal import AuthOutcome, Principal
from .shape import is_jwt_shaped

log = logging.getLogger("edge.auth")

# RFC 6750 section 2.1 b64token.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by exact name (URL-style names contain dots), else by dotted path into nested objects."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _metadata_value(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=True, sort_keys=True)
    return None


class Authenticator:
    """Validates credentials and applies per-route policy. Use `async with` or start()/close()."""

    def __init__(
        self,
        config: AuthConfig,
        *,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        state_store: Any = None,
    ) -> None:
        """`state_store` (an edge.state store) holds the stored API keys when `api_key_store` is set:
        Redis shares them with every gateway; without one, or with the memory store, they are per process."""
        self.config = config
        self._clock = clock
        self._own_client = http_client is None
        needs_http = any(i.jwks_url or i.introspection or i.discovery for i in config.issuers)
        self._client = http_client or (httpx.AsyncClient(follow_redirects=False) if needs_http else None)
        #: Issuer metadata read by discovery, per issuer (shared by its JWKS cache and introspector).
        self.discovery: dict[str, IssuerDiscovery] = {
            i.issuer: IssuerDiscovery(i, self._client, monotonic=monotonic)
            for i in config.issuers
            if i.discovery and self._client is not None
        }
        self.jwt = JwtValidator(config.issuers, self._client, clock=clock, monotonic=monotonic, discovery=self.discovery)
        introspecting = next((i for i in config.issuers if i.introspection), None)
        self.introspector = (
            Introspector(
                introspecting,
                self._client,
                clock=clock,
                max_entries=config.cache_max_entries,
                discovery=self.discovery.get(introspecting.issuer),
            )
            if introspecting is not None and self._client is not None
            else None
        )
        self.api_keys = ApiKeyStore(config.api_keys, config.api_key_tier_claim)
        #: Keys added and revoked at run time (`edge keys`, admin API), when `api_key_store` is set.
        self.stored_keys: StoredKeys | None = None
        if config.api_key_store is not None:
            backend = backend_for(state_store) if state_store is not None else MemoryKeyBackend()
            self.stored_keys = StoredKeys(
                config.api_key_store,
                backend,
                tier_claim=config.api_key_tier_claim,
                max_entries=config.cache_max_entries,
                clock=clock,
            )
        self._cache: ExpiringLru[Principal] = ExpiringLru(config.cache_max_entries, clock)
        #: Client-sent headers the app removes on every route before the backend sees anything.
        self.stripped_header_names: frozenset[str] = frozenset(config.identity_metadata)
        #: Headers that carry credentials: forwarded only via backend_metadata().
        self.credential_header_names: frozenset[str] = frozenset({"authorization", config.api_key_header})
        #: Issuers whose validated tokens are passed on to backends unless a route policy says otherwise.
        self._forwarding_issuers = frozenset(i.issuer for i in config.issuers if i.forward_token)

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Warm the key caches (an unreachable JWKS or discovery document is logged; its tokens
        fail as `unavailable` until it answers)."""
        introspection_only = [d for name, d in self.discovery.items() if not self.jwt.issuers.get(name)]
        await asyncio.gather(self.jwt.start(), *(d.refresh() for d in introspection_only))

    async def close(self) -> None:
        await self.jwt.close()
        for discovery in self.discovery.values():
            await discovery.close()
        if self._own_client and self._client is not None:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def signature_checks(self) -> int:
        return self.jwt.signature_checks

    def policy_resolver(self, proto_options_lookup: Callable[[str], ProtoPolicy | None] | None = None) -> PolicyResolver:
        return PolicyResolver(self.config, proto_options_lookup)

    # -- per request -------------------------------------------------------

    async def authenticate(self, headers: Mapping[str, str], policy: EffectivePolicy) -> AuthOutcome:
        """Check the request's credential against `policy`; raise AuthError to refuse it."""
        if policy.auth == "none":
            return AuthOutcome(None, "anonymous", "auth not required")
        lowered = {k.lower(): v for k, v in headers.items()}
        bearer = lowered.get("authorization")
        api_key = lowered.get(self.config.api_key_header)
        fingerprint = "-"
        try:
            if bearer is None and api_key is None:
                if policy.auth == "optional":
                    return AuthOutcome(None, "anonymous", "no credential")
                raise AuthError(401, None, "a bearer token is required", "missing")
            if bearer is not None and api_key is not None:
                raise AuthError(400, "invalid_request", "send a bearer token or an API key, not both", "malformed")
            credential = self._credential(bearer, api_key)
            digest = token_digest(credential)  # the cache key; its start is the log fingerprint
            fingerprint = digest[:12]
            principal = await self._principal(credential, digest, is_api_key=api_key is not None)
            self._authorize(principal, policy)
        except AuthError as refusal:
            log.info(
                "auth refused status=%s reason=%s fp=%s policy=%s: %s",
                refusal.status,
                refusal.reason,
                fingerprint,
                policy.source,
                refusal.description,
            )
            raise
        log.debug("auth allowed via=%s sub=%r iss=%r fp=%s policy=%s", principal.via, principal.subject, principal.issuer, fingerprint, policy.source)
        return AuthOutcome(principal, "allowed", f"valid {principal.via}")

    def _credential(self, bearer: str | None, api_key: str | None) -> str:
        raw = bearer if bearer is not None else api_key
        assert raw is not None
        limit = self.config.max_token_bytes
        if len(raw) > limit + len("Bearer "):
            raise AuthError(431, "invalid_request", f"credential is larger than {limit} bytes", "too_large")
        if bearer is None:
            value = raw.strip()
        else:
            scheme, _, value = raw.strip().partition(" ")
            if scheme.lower() != "bearer":
                raise AuthError(401, "invalid_request", "Authorization must use the Bearer scheme", "malformed")
            value = value.strip()
        if len(value.encode("utf-8", "surrogatepass")) > limit:
            raise AuthError(431, "invalid_request", f"credential is larger than {limit} bytes", "too_large")
        if not value or not _B64TOKEN.fullmatch(value):
            raise AuthError(401, "invalid_request" if bearer is not None else "invalid_token", "credential is malformed", "malformed")
        return value

    async def _principal(self, credential: str, digest: str, *, is_api_key: bool) -> Principal:
        if is_api_key:
            if not self.api_keys and self.stored_keys is None:
                raise AuthError(401, "invalid_token", "API keys are not accepted", "bad_api_key")
            digest = hash_api_key(credential)
            principal = self.api_keys.find(digest)
            if principal is not None:
                return principal
            if self.stored_keys is None:
                raise AuthError(401, "invalid_token", "API key is not valid", "bad_api_key")
            return await self.stored_keys.authenticate(digest)
        if not is_jwt_shaped(credential):
            if self.introspector is None:
                raise invalid_token("malformed", "token is not a JWT: expected three dot-separated parts")
            return await self.introspector.introspect(credential)
        cached = self._cache.get(digest)
        if cached is not None:
            return cached
        principal = await self.jwt.validate(credential)
        deadline = self._clock() + self.config.cache_ttl
        if principal.expires_at is not None:
            deadline = min(deadline, principal.expires_at)
        self._cache.put(digest, principal, deadline)
        return principal

    def authorize(self, principal: Principal | None, policy: EffectivePolicy) -> AuthOutcome:
        """Apply `policy` to a caller authenticated earlier (e.g. once for a whole batch)."""
        if policy.auth == "none":
            return AuthOutcome(None, "anonymous", "auth not required")
        if principal is None:
            if policy.auth == "optional":
                return AuthOutcome(None, "anonymous", "no credential")
            raise AuthError(401, None, "a bearer token is required", "missing")
        self._authorize(principal, policy)
        return AuthOutcome(principal, "allowed", f"valid {principal.via}")

    @staticmethod
    def _authorize(principal: Principal, policy: EffectivePolicy) -> None:
        if policy.issuers and principal.issuer not in policy.issuers:
            raise invalid_token("wrong_issuer", "token issuer is not accepted for this route")
        missing = policy.scopes_all_of - principal.scopes
        if missing:
            raise AuthError(
                403,
                "insufficient_scope",
                f"missing scope(s): {' '.join(sorted(missing))}",
                "insufficient_scope",
                scope=" ".join(sorted(policy.scopes_all_of)),
            )
        for group in policy.scopes_any_of:
            if group and not group & principal.scopes:
                wanted = " ".join(sorted(group))
                raise AuthError(
                    403, "insufficient_scope", f"needs one of the scopes: {wanted}", "insufficient_scope", scope=wanted
                )

    # -- identity to the backend ------------------------------------------

    def identity_metadata(self, principal: Principal) -> list[tuple[str, str]]:
        """gRPC metadata describing the caller, per `identity_metadata` (name <- claim)."""
        out: list[tuple[str, str]] = []
        for name, claim in self.config.identity_metadata.items():
            text = _metadata_value(_claim(principal.claims, claim))
            if text is None or text == "":
                continue
            if not _PRINTABLE.fullmatch(text):
                log.info("identity metadata %s not sent: claim %r is not printable ASCII", name, claim)
                continue
            out.append((name, text))
        return out

    def backend_metadata(
        self, outcome: AuthOutcome, headers: Mapping[str, str], policy: EffectivePolicy
    ) -> list[tuple[str, str]]:
        """Identity metadata, plus the caller's validated Authorization header where tokens are
        forwarded: as the route policy says, else as the token's issuer says (`forward_token`)."""
        principal = outcome.principal
        if principal is None:
            return []
        out = self.identity_metadata(principal)
        forward = policy.forward_token
        if forward is None:
            forward = principal.issuer in self._forwarding_issuers
        if forward and principal.via in ("jwt", "introspection"):
            bearer = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
            if bearer is not None:
                out.append(("authorization", bearer.strip()))
        return out

