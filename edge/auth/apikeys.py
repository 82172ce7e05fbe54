"""API keys for server-to-server callers, known to the gateway only by their SHA-256."""
from __future__ import annotations

import hashlib
import hmac

from .config import API_KEY_ISSUER, ApiKeyEntry
from .principal import Principal, make_principal


def hash_api_key(key: str) -> str:
    """The hex SHA-256 to put in the config for `key` (keys are random, so a fast hash is enough)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def api_key_principal(
    principal: str, scopes: tuple[str, ...] | list[str], tier: str | None, tier_claim: str, key_id: str,
    expires_at: float | None = None,
) -> Principal:
    """The caller an API key stands for, config or stored alike: `sub`, `scope`, the key's id,
    and its tier under `tier_claim` (so rate-limit `vary_by_claim` can tell tiers apart)."""
    claims: dict[str, object] = {"sub": principal, "scope": " ".join(scopes), "key_id": key_id}
    if tier is not None:
        claims[tier_claim] = tier
    return make_principal(claims, API_KEY_ISSUER, "api_key", expires_at)


class ApiKeyStore:
    """The keys of `auth.api_keys`: maps a presented key to its principal; the plain key is never stored."""

    def __init__(self, entries: list[ApiKeyEntry], tier_claim: str = "tier") -> None:
        self._entries = {entry.sha256: entry for entry in entries}
        self._principals = {
            entry.sha256: api_key_principal(entry.principal, entry.scopes, entry.tier, tier_claim, entry.sha256[:16])
            for entry in entries
        }

    def __bool__(self) -> bool:
        return bool(self._entries)

    def find(self, digest: str) -> Principal | None:
        """The principal of the key whose SHA-256 is `digest`, if it is in the config."""
        # The lookup compares digests, not the secret; compare_digest keeps the final check constant-time anyway.
        entry = self._entries.get(digest)
        if entry is None or not hmac.compare_digest(entry.sha256, digest):
            return None
        return self._principals[digest]

    def entries(self) -> list[ApiKeyEntry]:
        return list(self._entries.values())
