"""The `cors` config section: one global policy and per-route overrides.

    cors:
      allow_origins: [https://app.example.com, "https://*.example.com"]
      allow_methods: [GET, HEAD, POST, PUT, PATCH, DELETE]
      allow_headers: null            # default: the headers the gateway reads (see DEFAULT_ALLOW_HEADERS)
      expose_headers: [...]          # default: the gateway's own response headers (DEFAULT_EXPOSE_HEADERS)
      allow_credentials: false
      max_age: 10m
      routes:
        - {match: "GET /v1/public/*", allow_origins: ["*"]}
        - {match: "admin.v1.AdminService/*", allow_origins: []}     # no CORS on these routes

A route entry sets any of the global keys; what it leaves out comes from the
global ones. The most specific `match` wins (edge/matching.py), as for auth
policies. Every effective policy (the global one, and each route entry merged
over it) is checked here, so a wildcard or `null` origin can never end up
beside credentials, whichever level set which.
"""
from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..idempotency import OMITTED_HEADER, REPLAYED_HEADER
from ..matching import MatchList
from ..units import Duration
from .origins import ANY, NULL, parse_origin

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

DEFAULT_ALLOW_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# Request headers the gateway itself reads. The idempotency header (as configured) and the
# top-level `transcoding.forward_headers` are added to these at start-up.
DEFAULT_ALLOW_HEADERS = (
    "authorization", "content-type", "x-request-id", "grpc-timeout", "x-request-timeout",
    "traceparent", "tracestate",
)
# Response headers the gateway sets: a browser app may read them. `prefix*` entries expose,
# per response, the concrete names it carries with that prefix (backend metadata).
DEFAULT_EXPOSE_HEADERS = (
    "x-request-id", "ratelimit", "ratelimit-policy", "retry-after", "www-authenticate",
    REPLAYED_HEADER.lower(), OMITTED_HEADER.lower(), "grpc-metadata-*", "grpc-trailer-*",
)
MAX_AGE_LIMIT = 86400.0  # Firefox's cap; Chromium caps at 2 h whatever is sent


class _Rules(BaseModel):
    """The keys a policy has; None means "not set here"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_origins: list[str] | None = Field(None, description=(
        "exact origins, 'https://*.example.com' patterns, 'null' (explicitly) or '*' alone"))
    allow_methods: list[str] | None = Field(None, description="methods a preflight may ask for ('*': any)")
    allow_headers: list[str] | None = Field(None, description=(
        "request headers a preflight may ask for ('*': any except Authorization, which is always named)"))
    expose_headers: list[str] | None = Field(None, description=(
        "response headers a browser app may read; 'prefix*' lists the names each response has"))
    allow_credentials: bool | None = Field(None, description="cookies and Authorization on cross-origin calls")
    max_age: Duration | None = Field(None, ge=0, le=MAX_AGE_LIMIT, description="how long a browser keeps a preflight answer")

    @field_validator("allow_origins")
    @classmethod
    def _origins(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = list(dict.fromkeys(parse_origin(v) for v in value))
        if ANY in out and len(out) > 1:
            raise ValueError("'*' allows every origin and stands alone; list origins or give '*', not both")
        return out

    @field_validator("allow_methods")
    @classmethod
    def _methods(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = []
        for method in value:
            if method != "*" and not _TOKEN.match(method):
                raise ValueError(f"{method!r} is not an HTTP method")
            out.append(method.upper())
        if "*" in out and len(out) > 1:
            raise ValueError("'*' allows every method and stands alone")
        return list(dict.fromkeys(out))

    @field_validator("allow_headers")
    @classmethod
    def _headers(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for name in value:
            if name != "*" and not _TOKEN.match(name):
                raise ValueError(f"{name!r} is not a header name")
        return list(dict.fromkeys(n.lower() for n in value))

    @field_validator("expose_headers")
    @classmethod
    def _expose(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for name in value:
            if name == "*":
                raise ValueError("list the headers to expose ('*' would mean nothing with credentials and "
                                 "everything without); 'grpc-metadata-*' exposes backend metadata")
            if not _TOKEN.match(name.removesuffix("*")) or "*" in name.removesuffix("*"):
                raise ValueError(f"{name!r} is not a header name (or a 'prefix*')")
        return list(dict.fromkeys(n.lower() for n in value))


class CorsRoute(_Rules):
    """Per-route overrides; `match` uses the one pattern syntax (README: Match patterns)."""

    match: MatchList


class EffectiveCors(BaseModel):
    """One policy with every key decided: the global one, or a route entry over it."""

    model_config = ConfigDict(frozen=True)

    allow_origins: list[str]
    allow_methods: list[str]
    allow_headers: list[str] | None  # None: the defaults the gateway computes
    expose_headers: list[str]
    allow_credentials: bool
    max_age: float


class CorsConfig(_Rules):
    """`cors:` (absent or null: no CORS; every cross-origin browser call is refused by the browser)."""

    routes: list[CorsRoute] = Field(default_factory=list)

    def effective(self, route: CorsRoute | None = None) -> EffectiveCors:
        def pick(key: str, default: Any) -> Any:
            if route is not None and getattr(route, key) is not None:
                return getattr(route, key)
            own = getattr(self, key)
            return default if own is None else own

        return EffectiveCors(
            allow_origins=pick("allow_origins", []),
            allow_methods=pick("allow_methods", list(DEFAULT_ALLOW_METHODS)),
            allow_headers=pick("allow_headers", None),
            expose_headers=pick("expose_headers", list(DEFAULT_EXPOSE_HEADERS)),
            allow_credentials=pick("allow_credentials", False),
            max_age=pick("max_age", 600.0),
        )

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self) -> "CorsConfig":
        for where, route in [("cors", None), *((f"cors.routes.{i}", r) for i, r in enumerate(self.routes))]:
            policy = self.effective(route)
            if not policy.allow_credentials:
                continue
            if ANY in policy.allow_origins:
                raise ValueError(f"{where}: allow_origins '*' with allow_credentials: true would let every site "
                                 f"act with the user's credentials; list the origins")
            if NULL in policy.allow_origins:
                raise ValueError(f"{where}: the 'null' origin with allow_credentials: true would let any sandboxed "
                                 f"page act with the user's credentials; drop 'null' or credentials")
        return self
