"""Idempotency-Key handling as configured in the gateway config (`idempotency:`).

    idempotency:
      methods: [POST, PATCH]          # where a key is honoured by default
      retention: 24h                  # how long a final response is replayed
      routes:                         # the most specific match wins (edge/matching.py)
        - match: ["POST /v1/orders", "shop.v1.Orders/Create*"]
          require: true               # 400 without a key; 503 when the store is down
        - match: ["/v1/search*"]
          enabled: false
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..matching import MatchList
from ..state.duration import Duration
from ..units import ByteSize


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _methods(v: list[str]) -> list[str]:
    out = [m.upper() for m in v]
    bad = [m for m in out if not re.fullmatch(r"[A-Z]+", m)]
    if bad:
        raise ValueError(f"not HTTP methods: {bad}")
    return out


class IdempotencyRoute(_Model):
    match: MatchList = Field(min_length=1, description="patterns (edge/matching.py): 'POST /v1/x', '/v1/*', 'pkg.Svc/*'")
    methods: list[str] | None = Field(None, description="HTTP methods this rule covers (default: idempotency.methods)")
    require: bool = False
    enabled: bool = True

    @field_validator("methods")
    @classmethod
    def _check_methods(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _methods(v)


class IdempotencyConfig(_Model):
    enabled: bool = True
    header: str = "Idempotency-Key"
    methods: list[str] = Field(default_factory=lambda: ["POST", "PATCH"])
    routes: list[IdempotencyRoute] = Field(default_factory=list)
    retention: Duration = Field(86400.0, gt=0)
    max_response_bytes: int = Field(1 << 20, ge=0, description="bigger responses are stored as outcome only")
    key_max_length: int = Field(255, ge=1, le=4096)
    key_pattern: str = Field(r"[\x21\x23-\x5b\x5d-\x7e]+", description=(
        "regex a key must match in full (default: visible ASCII except '\"' and '\\')"))
    fingerprint_headers: list[str] = Field(default_factory=list, description="request headers that are part of the request's identity")
    stored_headers: list[str] = Field(default_factory=lambda: [
        "content-type", "content-language", "location", "etag", "last-modified", "grpc-metadata-*"],
        description="response headers kept for replays (globs, case-insensitive)")
    lock_ttl: Duration = Field(30.0, gt=0, description="in-flight lock when the request has no deadline")
    lock_margin: Duration = Field(1.0, ge=0, description="added to the request deadline for the lock")
    max_lock_ttl: Duration = Field(300.0, gt=0)
    on_store_failure: Literal["closed", "proceed"] = Field("closed", description=(
        "routes that do not require a key but got one: fail closed (503) or run without dedup; "
        "routes that require a key always fail closed"))
    restart_hold: Literal["auto", "always", "never"] = Field("auto", description=(
        "after Redis restarts (its run_id changes), answer keyed requests as if the store were down for the "
        "longest lock a request can hold, so a retry never runs beside an attempt whose lock the restart lost; "
        "auto: unless the restarted Redis reports AOF on (its locks survived)"))
    max_pending_bytes: ByteSize = Field(64 << 20, ge=0, description=(
        "final responses that could not be stored (store down) are kept and stored when it is back, "
        "up to this many bytes per process"))

    @field_validator("methods")
    @classmethod
    def _check_methods(cls, v: list[str]) -> list[str]:
        return _methods(v)

    @field_validator("key_pattern")
    @classmethod
    def _regex(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"key_pattern is not a valid regex: {e}") from None
        return v

    @field_validator("fingerprint_headers", "stored_headers")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        return [h.lower() for h in v]
