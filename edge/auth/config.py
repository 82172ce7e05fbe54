"""The `auth` section of the gateway config.

Everything that can be wrong in an auth config is refused at start-up, with the
offending key named: a typo or a half-configured issuer must never quietly turn
into an open route or a token nobody can verify.
"""
from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from ..matching import MatchSpec, patterns_of
from ..units import parse_duration
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

Seconds = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "ES256K", "EdDSA", "Ed25519", "Ed448"}
)
# RFC 7518 section 3.2: an HMAC key at least as long as the hash output.
_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}

#: gRPC metadata names the gateway may set (lower-case; no pseudo, grpc- or binary names).
_METADATA_NAME = re.compile(r"^[0-9a-z_.-]+$")
_RESERVED_METADATA = frozenset({"authorization", "content-type", "te", "host", "user-agent", "grpc-timeout"})

Tier = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]

API_KEY_ISSUER = "edge:api-key"
"""The `issuer` of principals authenticated by an API key (usable in policy `issuers`)."""

DEFAULT_IDENTITY_METADATA: dict[str, str] = {"x-user-id": "sub", "x-auth-issuer": "iss", "x-auth-scopes": "scope"}

class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_endpoint_url(url: str, what: str) -> str:
    """https only; plain http is accepted for loopback hosts (local IdPs, tests)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http(s) URL, got {url!r}")
    if parts.scheme == "http":
        host = parts.hostname
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise ValueError(f"{what} must use https (plain http only for loopback hosts), got {url!r}")
    return url


class IntrospectionConfig(_Model):
    """RFC 7662 token introspection for an issuer that hands out opaque tokens."""

    url: str | None = Field(None, description="omit to take introspection_endpoint from the issuer's discovery document")
    client_id: Annotated[str, Field(min_length=1)]
    client_secret: SecretStr
    cache_ttl: Seconds = Field(60.0, description="upper bound; never beyond the token's exp")
    timeout: Seconds = 5.0

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else check_endpoint_url(v, "introspection.url")

    @field_validator("client_secret")
    @classmethod
    def _secret(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value():
            raise ValueError("introspection.client_secret must not be empty")
        return v


class IssuerConfig(_Model):
    """One trusted token issuer: where its keys come from and what its tokens must say."""

    issuer: Annotated[str, Field(min_length=1)]
    audiences: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    algorithms: list[str] = Field(default_factory=list, description="explicit; never 'none'; HMAC and asymmetric never mixed")
    jwks_url: str | None = None
    jwks_file: Path | None = None
    discovery: bool = Field(
        False, description="read jwks_uri (and introspection_endpoint) from the issuer's OIDC / RFC 8414 metadata"
    )
    discovery_refresh_interval: Seconds = Field(3600.0, description="when the metadata has no Cache-Control max-age")
    discovery_max_age_bounds: tuple[Seconds, Seconds] = Field((60.0, 86400.0), description="clamp for its max-age")
    shared_secret: SecretStr | None = Field(None, description="HMAC key, for HS* algorithms only")
    leeway: Annotated[int, Field(ge=0, le=300)] = 30
    required_claims: list[str] = Field(default_factory=lambda: ["sub"], description="besides exp, iss and aud, always required")
    expected_typ: str | None = Field(None, description="e.g. 'at+jwt', so ID tokens are not taken as access tokens")
    jwks_refresh_interval: Seconds = Field(300.0, description="when the JWKS response has no Cache-Control max-age")
    jwks_max_age_bounds: tuple[Seconds, Seconds] = Field((60.0, 86400.0), description="clamp for a server-sent max-age")
    jwks_min_fetch_interval: Seconds = Field(10.0, description="no two fetches closer than this")
    jwks_negative_cache_ttl: Seconds = Field(
        60.0, description="how long a kid that a fetch (begun after the token came) did not list is not looked for again"
    )
    jwks_unknown_kid_wait: Annotated[float, BeforeValidator(parse_duration), Field(ge=0, le=120)] = Field(
        10.0, description="how long a token with a new kid may wait for the next allowed fetch; past it: 401, not remembered"
    )
    jwks_grace_period: Annotated[float, BeforeValidator(parse_duration), Field(ge=0, le=7 * 86400)] = Field(
        3600.0, description="how long past expiry the last good key set is served while the endpoint fails"
    )
    jwks_fetch_timeout: Seconds = 5.0
    introspection: IntrospectionConfig | None = None
    forward_token: bool = Field(
        False, description="pass this issuer's validated Authorization header on to backends (a route policy may override)"
    )

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url(cls, v: str | None) -> str | None:
        return None if v is None else check_endpoint_url(v, "jwks_url")

    @field_validator("algorithms")
    @classmethod
    def _algorithms(cls, v: list[str]) -> list[str]:
        for alg in v:
            if alg.lower() == "none":
                raise ValueError("algorithm 'none' is never accepted")
            if alg not in HMAC_ALGORITHMS | ASYMMETRIC_ALGORITHMS:
                raise ValueError(f"unknown algorithm {alg!r}")
        if set(v) & HMAC_ALGORITHMS and set(v) & ASYMMETRIC_ALGORITHMS:
            raise ValueError("algorithms must not mix HMAC (HS*) with asymmetric algorithms")
        if len(set(v)) != len(v):
            raise ValueError("algorithms lists an algorithm twice")
        return v

    @property
    def is_hmac(self) -> bool:
        return bool(set(self.algorithms) & HMAC_ALGORITHMS)

    @property
    def needs_discovered_jwks(self) -> bool:
        return self.discovery and bool(self.algorithms) and not self.is_hmac and not (self.jwks_url or self.jwks_file)

    @property
    def needs_discovered_introspection(self) -> bool:
        return self.discovery and self.introspection is not None and self.introspection.url is None

    def _check_discovery(self, name: str) -> None:
        if self.introspection is not None and self.introspection.url is None and not self.discovery:
            raise ValueError(f"{name}: introspection needs a url, or discovery: true to read introspection_endpoint")
        if not self.discovery:
            return
        check_endpoint_url(self.issuer, f"{name}: with discovery, the issuer")
        parts = urlsplit(self.issuer)
        if parts.query or parts.fragment:
            raise ValueError(f"{name}: an issuer used for discovery has no query or fragment (RFC 8414 section 2)")
        if not (self.needs_discovered_jwks or self.needs_discovered_introspection):
            raise ValueError(
                f"{name}: discovery is on but there is nothing to discover (keys and introspection are configured explicitly)"
            )
        lo, hi = self.discovery_max_age_bounds
        if lo > hi:
            raise ValueError(f"{name}: discovery_max_age_bounds must be (low, high)")

    @model_validator(mode="after")
    def _key_source(self) -> IssuerConfig:
        name = f"issuer {self.issuer!r}"
        self._check_discovery(name)
        if not self.algorithms:
            if self.introspection is None:
                raise ValueError(f"{name}: algorithms is empty; list the JWT algorithms it signs with, or configure introspection")
            if self.jwks_url or self.jwks_file or self.shared_secret:
                raise ValueError(f"{name}: a key source is configured but algorithms is empty")
            # (discovery then only finds the introspection endpoint)
            return self
        if self.is_hmac:
            secret = self.shared_secret.get_secret_value().encode() if self.shared_secret else b""
            if not secret:
                raise ValueError(f"{name}: HMAC algorithms need a non-empty shared_secret")
            need = max(_HMAC_MIN_BYTES[a] for a in self.algorithms)
            if len(secret) < need:
                raise ValueError(f"{name}: shared_secret must be at least {need} bytes for {', '.join(self.algorithms)}")
            if self.jwks_url or self.jwks_file:
                raise ValueError(f"{name}: HMAC issuers take shared_secret, not jwks_url/jwks_file")
        else:
            if self.shared_secret is not None:
                raise ValueError(f"{name}: shared_secret is only for HMAC (HS*) algorithms")
            given = [k for k in ("jwks_url", "jwks_file") if getattr(self, k) is not None]
            if len(given) > 1:
                raise ValueError(f"{name}: asymmetric algorithms need exactly one of jwks_url or jwks_file, not both")
            if not given and not self.discovery:
                raise ValueError(
                    f"{name}: asymmetric algorithms need exactly one of jwks_url or jwks_file, or discovery: true "
                    "(jwks_uri from <issuer>/.well-known/openid-configuration or RFC 8414 metadata)"
                )
        lo, hi = self.jwks_max_age_bounds
        if lo > hi:
            raise ValueError(f"{name}: jwks_max_age_bounds must be (low, high)")
        return self


class PolicyFields(_Model):
    """What a route demands of the caller."""

    auth: Literal["required", "optional", "none"] = "required"
    scopes_all_of: list[str] = Field(default_factory=list)
    scopes_any_of: list[str] = Field(default_factory=list)
    issuers: list[str] = Field(default_factory=list, description="empty: any configured issuer (and API keys)")
    forward_token: bool | None = Field(
        None, description="pass the caller's bearer token on to the backend; unset: as the token's issuer says"
    )
    allow_proto_none: bool = Field(False, description="let a proto option relax auth to optional/none here")


class PolicyRule(PolicyFields):
    """A policy and the routes it covers: one `match` pattern or a list (syntax: edge/matching.py)."""

    match: MatchSpec


class ApiKeyEntry(_Model):
    """An API key, stored only as the hex SHA-256 of the key."""

    sha256: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]
    principal: Annotated[str, Field(min_length=1)]
    scopes: list[str] = Field(default_factory=list)
    tier: Tier | None = Field(None, description="set as the api_key_tier_claim claim (rate-limit vary_by_claim)")

    @field_validator("sha256")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()


class ApiKeyStoreConfig(_Model):
    """API keys kept in the state store (`store:`), managed by `edge keys` and the admin API."""

    cache_ttl: Annotated[float, BeforeValidator(parse_duration), Field(ge=0, le=300)] = Field(
        5.0, description="per-process cache of lookups: a revocation reaches every gateway within this"
    )


class AuthConfig(_Model):
    realm: str = "edge"
    issuers: list[IssuerConfig] = Field(default_factory=list)
    max_token_bytes: Annotated[int, Field(ge=512, le=1 << 20)] = 8192
    cache_ttl: Seconds = Field(300.0, description="validated-token cache; 0 disables it")
    cache_max_entries: Annotated[int, Field(ge=0)] = 10000
    identity_metadata: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_IDENTITY_METADATA),
        description="gRPC metadata name -> claim (dotted path for nested claims); replaces the defaults when given",
    )
    api_key_header: str = "x-api-key"
    api_keys: list[ApiKeyEntry] = Field(default_factory=list)
    api_key_store: ApiKeyStoreConfig | None = Field(None, description="keys in the state store too (off when absent)")
    api_key_tier_claim: Annotated[str, Field(pattern=r"^[A-Za-z0-9_:-]{1,64}$")] = Field(
        "tier", description="claim that carries an API key's tier (no dots: rate limits read dots as nesting)"
    )
    policies: list[PolicyRule] = Field(default_factory=list)
    default_policy: PolicyFields = Field(default_factory=PolicyFields, description="when no policy matches")

    @field_validator("identity_metadata")
    @classmethod
    def _metadata(cls, v: dict[str, str]) -> dict[str, str]:
        for name, claim in v.items():
            if not _METADATA_NAME.match(name) or name.startswith("grpc-") or name.endswith("-bin") or name in _RESERVED_METADATA:
                raise ValueError(
                    f"identity_metadata name {name!r} must be a lower-case ASCII gRPC metadata name, "
                    "not reserved, not grpc-* and not *-bin"
                )
            if not claim:
                raise ValueError(f"identity_metadata {name!r} names no claim")
        return v

    @field_validator("api_key_header")
    @classmethod
    def _api_key_header(cls, v: str) -> str:
        v = v.lower()
        if not _METADATA_NAME.match(v) or v == "authorization":
            raise ValueError(f"api_key_header {v!r} must be a lower-case header name other than authorization")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> AuthConfig:
        names = [i.issuer for i in self.issuers]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"issuers: {sorted(dupes)} configured more than once")
        if API_KEY_ISSUER in names:
            raise ValueError(f"issuers: {API_KEY_ISSUER!r} is reserved for API keys")
        introspecting = [i.issuer for i in self.issuers if i.introspection]
        if len(introspecting) > 1:
            # An opaque token names no issuer: sending it to several endpoints would leak it.
            raise ValueError(f"issuers: only one issuer may use introspection, found {introspecting}")
        matches = [m for p in self.policies for m in patterns_of(p.match)]
        dupes = {m for m in matches if matches.count(m) > 1}
        if dupes:
            raise ValueError(f"policies: match {sorted(dupes)} given more than once")
        known = set(names) | {API_KEY_ISSUER}
        for p in [*self.policies, self.default_policy]:
            unknown = set(p.issuers) - known
            if unknown:
                where = getattr(p, "match", "default_policy")
                raise ValueError(f"policies[{where}]: issuers {sorted(unknown)} are not configured")
        if self.api_key_tier_claim in ("sub", "iss", "scope", "key_id"):
            raise ValueError(f"api_key_tier_claim {self.api_key_tier_claim!r} would overwrite an identity claim")
        if self.api_key_header in self.identity_metadata:
            raise ValueError(f"api_key_header {self.api_key_header!r} is also an identity_metadata name")
        hashes = [k.sha256 for k in self.api_keys]
        if len(set(hashes)) != len(hashes):
            raise ValueError("api_keys: the same key hash is listed twice")
        return self
