"""Who the caller is, once a credential has been checked."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Via = Literal["jwt", "introspection", "api_key"]
Decision = Literal["allowed", "anonymous"]


@dataclass(frozen=True)
class Principal:
    """A verified caller. `claims` always carries `sub`, `iss` and `scope` (space-joined)
    so identity metadata maps the same way whatever the credential was."""

    subject: str
    issuer: str
    scopes: frozenset[str]
    claims: dict[str, Any] = field(repr=False, hash=False, compare=False)
    via: Via
    expires_at: float | None = None


@dataclass(frozen=True)
class AuthOutcome:
    """A request the policy lets through: with a principal, or anonymous (optional/none routes)."""

    principal: Principal | None
    decision: Decision
    reason: str


def scopes_from_claims(claims: dict[str, Any]) -> frozenset[str]:
    """RFC 8693/9068 `scope` (space-separated string), or `scp` (a list, as some IdPs send)."""
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            return frozenset(value.split())
        if isinstance(value, list):
            return frozenset(v for v in value if isinstance(v, str) and v)
    return frozenset()


def make_principal(claims: dict[str, Any], issuer: str, via: Via, expires_at: float | None) -> Principal:
    """A Principal whose claims carry normalized `sub`, `iss` and `scope`."""
    scopes = scopes_from_claims(claims)
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        fallback = claims.get("client_id") or claims.get("azp") or claims.get("username") or ""
        subject = fallback if isinstance(fallback, str) else ""
    normalized = {**claims, "iss": issuer, "scope": " ".join(sorted(scopes))}
    if subject:
        normalized["sub"] = subject
    return Principal(subject=subject, issuer=issuer, scopes=scopes, claims=normalized, via=via, expires_at=expires_at)
