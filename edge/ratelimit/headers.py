"""RateLimit-Policy / RateLimit fields of the IETF httpapi ratelimit-headers
draft, in their structured-field form: one list member per policy applied.

    RateLimit-Policy: "per-user";q=100;w=60, "per-hour";q=1000;w=3600
    RateLimit: "per-user";r=42;t=18, "per-hour";r=958;t=1800

This is the REST rendering of a `RateLimitDecision` (decision.py); the decision
itself carries no HTTP.
"""
from __future__ import annotations

from typing import Sequence

from .decision import AppliedPolicy, RateLimitDecision


def policy_field(applied: Sequence[AppliedPolicy]) -> str:
    return ", ".join(f'"{p.name}";q={p.quota};w={p.window}' for p in applied)


def state_field(applied: Sequence[AppliedPolicy]) -> str:
    return ", ".join(f'"{p.name}";r={p.remaining};t={p.reset_seconds}' for p in applied)


def rate_limit_headers(decision: RateLimitDecision) -> list[tuple[str, str]]:
    """Headers for the response: the two fields, plus Retry-After when refused."""
    headers: list[tuple[str, str]] = []
    if decision.policies_applied:
        headers.append(("RateLimit-Policy", policy_field(decision.policies_applied)))
        headers.append(("RateLimit", state_field(decision.policies_applied)))
    if not decision.allowed and decision.retry_after is not None:
        headers.append(("Retry-After", str(decision.retry_after)))
    return headers
