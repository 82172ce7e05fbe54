"""API keys for server-to-server callers, known to the gateway only by their SHA-256."""
from __future__ import annotations

import hashlib
import hmac

from .config import API_KEY_ISSUER, ApiKeyEntry
from .errors import AuthError
from .principal import Principal, make_principal


def hash_api_key(key: str) -> str:
    """The hex SHA-256 to put in the config for `key` (keys are random, so a fast hash is enough)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKeyStore:
    """Maps a presented key to its principal; the plain key is never stored."""

    def __init__(self, entries: list[ApiKeyEntry]) -> None:
        self._entries = {entry.sha256: entry for entry in entries}

    def __bool__(self) -> bool:
        return bool(self._entries)

    def authenticate(self, key: str) -> Principal:
        digest = hash_api_key(key)
        # The lookup compares digests, not the secret; compare_digest keeps the final check constant-time anyway.
        entry = self._entries.get(digest)
        if entry is None or not hmac.compare_digest(entry.sha256, digest):
            raise AuthError(401, "invalid_token", "API key is not valid", "bad_api_key")
        claims = {"sub": entry.principal, "scope": " ".join(entry.scopes)}
        return make_principal(claims, API_KEY_ISSUER, "api_key", None)
