"""Rate-limit policies as they appear in the gateway config (`rate_limits:`).

    rate_limits:
      instances: 4                   # gateway processes sharing the limits (degraded share)
      trusted_proxies: [10.0.0.0/8]  # peers whose X-Forwarded-For is believed
      policies:
        - name: per-user-second
          limit: 10
          window: 1s
          key: principal
        - name: per-user-hour
          limit: 1000
          window: 1h
          key: principal
          algorithm: sliding_window
        - name: per-plan
          key: principal
          match: ["library.v1.LibraryService/*"]
          vary_by_claim: {claim: plan, tiers: {free: 100/1m, premium: 1000/1m}, default: 100/1m}
        - name: global-writes
          limit: 5000
          window: 1s
          key: global
          match: ["POST /v1/*", "*/Create*"]
          on_store_failure: closed
"""
from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from ..matching import MatchList
from ..state.duration import Duration, parse_rate

DEFAULT_EXEMPT = ("/healthz", "/readyz", "/livez", "grpc.health.v1.Health/*")
KeyKind = Literal["principal", "ip", "route", "service", "global"]
Rate = Annotated[tuple[int, float], BeforeValidator(parse_rate)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClaimTiers(_Model):
    """Limits chosen by a token claim: `{claim: plan, tiers: {free: 100/1m, ...}, default: 10/1m}`."""
    claim: str = Field(min_length=1, description="claim name; dots walk nested objects (org.plan)")
    tiers: dict[str, Rate] = Field(min_length=1)
    default: Rate | None = Field(None, description="when the claim is missing or names no tier")


class RateLimitPolicy(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="shown in RateLimit headers")
    limit: int | None = Field(None, ge=1, le=1_000_000_000, description="requests (cost units) per window")
    window: Duration | None = Field(None, ge=0.001, le=366 * 86400)
    algorithm: Literal["gcra", "sliding_window"] = "gcra"
    key: KeyKind | list[KeyKind] = Field("principal", description="what one counter is kept for")
    match: MatchList = Field(default_factory=lambda: ["*"], min_length=1, description=(
        "patterns (edge/matching.py): 'pkg.Service/Method', 'pkg.Service/*', 'pkg.*', "
        "'GET /v1/route/{template}', '/v1/*'; every matching policy applies"))
    vary_by_claim: ClaimTiers | None = None
    on_store_failure: Literal["degrade", "open", "closed"] = "degrade"
    local_share: float | None = Field(None, gt=0, le=1, description=(
        "degraded mode: the fraction of the limit each instance enforces alone (default 1/instances)"))
    hybrid: bool | None = Field(None, description="override rate_limits.hybrid.enabled for this policy")

    @model_validator(mode="after")
    def _has_rate(self) -> "RateLimitPolicy":
        if (self.limit is None) != (self.window is None):
            raise ValueError(f"policy {self.name!r}: set both 'limit' and 'window'")
        if self.limit is None and (self.vary_by_claim is None or self.vary_by_claim.default is None):
            raise ValueError(f"policy {self.name!r}: set 'limit' and 'window', or 'vary_by_claim' with a 'default'")
        return self

    @property
    def keys(self) -> tuple[KeyKind, ...]:
        return tuple(self.key) if isinstance(self.key, list) else (self.key,)


class HybridConfig(_Model):
    """Per-instance leases of `batch` units taken from Redis in one call and
    spent locally for up to `lease_ttl`: far fewer Redis round trips on hot keys,
    at a bounded cost in accuracy (docs/state.md states the bound)."""
    enabled: bool = False
    batch: int = Field(10, ge=1, le=10_000)
    lease_ttl: Duration = Field(1.0, gt=0)


class RateLimitConfig(_Model):
    enabled: bool = True
    policies: list[RateLimitPolicy] = Field(default_factory=list)
    exempt: MatchList = Field(default_factory=lambda: list(DEFAULT_EXEMPT),
                              description="routes or methods never counted (same patterns as match)")
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(default_factory=list)
    instances: int = Field(1, ge=1, description="gateway instances sharing the limits")
    hybrid: HybridConfig = HybridConfig()

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _cidrs(cls, v: object) -> object:
        if isinstance(v, list):
            out = []
            for item in v:
                try:
                    out.append(ip_network(str(item), strict=False))
                except ValueError as e:
                    raise ValueError(f"trusted_proxies: {item!r} is not an IP address or CIDR ({e})") from None
            return out
        return v

    @model_validator(mode="after")
    def _unique(self) -> "RateLimitConfig":
        seen: set[str] = set()
        for p in self.policies:
            if p.name in seen:
                raise ValueError(f"rate limit policy name {p.name!r} is used twice")
            seen.add(p.name)
        return self
