"""API keys kept in the state store, added and revoked while the gateway runs.

Config keys (`auth.api_keys`) need a restart to change; these do not. A key is
`ek_` + 43 base64url characters (256 random bits); the gateway and the store
only ever hold its SHA-256. Its public id is the first 16 hex digits of that
hash: safe to show, log and type (it reveals nothing of a 256-bit key), and
what `edge keys revoke` and `DELETE /admin/keys/{id}` take.

Where the records live (`auth.api_key_store`):
* `store.backend: redis`: one Redis hash, `<key_prefix>:apikeys`, field = key
  id, value = the JSON record (hash, principal, scopes, tier, created, expires).
  Every gateway of the fleet reads it; `edge keys` writes it directly.
* `store.backend: memory`: a dict in each gateway process. Keys added through
  one process's admin API exist in that process only, and vanish with it.

Each process caches lookups (found and not found, in separate bounded LRUs so a
flood of made-up keys cannot evict real ones) for `cache_ttl`: that is the
revocation bound. A key revoked anywhere is refused by every gateway at most
`cache_ttl` later (the revoking process forgets it at once). A key added is
usable everywhere at once: nobody can have presented it before, so no process
holds it as "not found". Nothing is
served from a cache past `cache_ttl`: when the store cannot be asked, stored
keys are refused as `unavailable` (config keys still work).
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from ..state.errors import StoreUnavailable
from ..units import parse_duration
from .apikeys import api_key_principal, hash_api_key
from .cache import ExpiringLru
from .config import ApiKeyStoreConfig, Tier
from .errors import AuthError, invalid_token
from .principal import Principal

log = logging.getLogger("edge.auth.keystore")

KEY_PREFIX = "ek_"
ID_HEX_DIGITS = 16


class NewApiKey(BaseModel):
    """What `edge keys add` and `POST /admin/keys` take."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    principal: str
    # RFC 6749 section 3.3 scope-token characters.
    scopes: list[Annotated[str, Field(pattern=r"^[\x21\x23-\x5b\x5d-\x7e]{1,128}$")]] = Field(
        default_factory=list, max_length=64
    )
    tier: Tier | None = None
    expires_in: Annotated[float, BeforeValidator(parse_duration), Field(gt=0)] | None = Field(
        None, description="the key stops working this long after it is added"
    )

    @field_validator("principal")
    @classmethod
    def _principal(cls, v: str) -> str:
        # It becomes `sub` and gRPC metadata (x-user-id), which carries printable ASCII only.
        if not 1 <= len(v) <= 256 or not (v.isascii() and v.isprintable()) or v != v.strip():
            raise ValueError("principal must be 1 to 256 printable ASCII characters, no leading or trailing space")
        return v


def new_api_key() -> str:
    """A fresh key: `ek_` and 256 random bits, base64url."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_id(sha256_hex: str) -> str:
    """The public id of a key, from its hash."""
    return sha256_hex[:ID_HEX_DIGITS]


@dataclass(frozen=True)
class StoredKey:
    """One stored API key: everything but the key itself."""

    id: str
    sha256: str
    principal: str
    scopes: tuple[str, ...] = ()
    tier: str | None = None
    created: float = 0.0
    expires: float | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> StoredKey:
        data = json.loads(raw)
        return cls(
            id=str(data["id"]),
            sha256=str(data["sha256"]),
            principal=str(data["principal"]),
            scopes=tuple(str(s) for s in data.get("scopes") or ()),
            tier=data.get("tier"),
            created=float(data.get("created") or 0.0),
            expires=None if data.get("expires") is None else float(data["expires"]),
        )

    def public(self) -> dict[str, Any]:
        """What listings show (the hash stays in the store)."""
        return {
            "id": self.id,
            "principal": self.principal,
            "scopes": list(self.scopes),
            "tier": self.tier,
            "created": self.created,
            "expires": self.expires,
        }

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires


class KeyBackend(Protocol):
    """Where records live: four small operations, each atomic on the backend's side."""

    async def get(self, id: str) -> bytes | None: ...
    async def add(self, id: str, record: bytes) -> bool: ...  # False: the id exists
    async def remove(self, id: str) -> bool: ...  # False: there was no such id
    async def all(self) -> dict[str, bytes]: ...


class MemoryKeyBackend:
    """Per process (with `store.backend: memory`)."""

    shared = False

    def __init__(self) -> None:
        self._records: dict[str, bytes] = {}

    async def get(self, id: str) -> bytes | None:
        return self._records.get(id)

    async def add(self, id: str, record: bytes) -> bool:
        if id in self._records:
            return False
        self._records[id] = record
        return True

    async def remove(self, id: str) -> bool:
        return self._records.pop(id, None) is not None

    async def all(self) -> dict[str, bytes]:
        return dict(self._records)


class RedisKeyBackend:
    """One Redis hash `<key_prefix>:apikeys`, through the RedisStore's client, timeout and breaker."""

    shared = True

    def __init__(self, store: Any) -> None:
        self._store = store
        self.key = f"{store.prefix}:apikeys"

    async def get(self, id: str) -> bytes | None:
        return await self._store.call("apikey_get", self._store.client.hget, self.key, id)

    async def add(self, id: str, record: bytes) -> bool:
        return bool(await self._store.call("apikey_add", self._store.client.hsetnx, self.key, id, record))

    async def remove(self, id: str) -> bool:
        return bool(await self._store.call("apikey_remove", self._store.client.hdel, self.key, id))

    async def all(self) -> dict[str, bytes]:
        raw = await self._store.call("apikey_list", self._store.client.hgetall, self.key)
        return {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}


def backend_for(store: Any) -> KeyBackend:
    """The key backend that goes with the gateway's state store."""
    return RedisKeyBackend(store) if getattr(store, "shared", False) else MemoryKeyBackend()


class _Absent:
    """Cached 'no such key'."""


_ABSENT = _Absent()


class StoredKeys:
    """Adds, revokes, lists and checks stored keys; one per gateway process."""

    def __init__(
        self,
        config: ApiKeyStoreConfig,
        backend: KeyBackend,
        *,
        tier_claim: str = "tier",
        max_entries: int = 10000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.backend = backend
        self.tier_claim = tier_claim
        self._clock = clock
        self._found: ExpiringLru[tuple[StoredKey, Principal]] = ExpiringLru(max_entries, clock)
        self._absent: ExpiringLru[_Absent] = ExpiringLru(max_entries, clock)
        self._inflight: dict[str, asyncio.Future[tuple[StoredKey, Principal] | _Absent]] = {}
        #: Lookups that went to the backend: for tests and metrics.
        self.lookups = 0

    @property
    def shared(self) -> bool:
        return bool(getattr(self.backend, "shared", False))

    # -- per request --------------------------------------------------------

    async def authenticate(self, digest: str) -> Principal:
        """The principal of the stored key whose SHA-256 (`hash_api_key`) is `digest`; AuthError if none."""
        hit: tuple[StoredKey, Principal] | _Absent | None = self._found.get(digest)
        if hit is None:
            hit = self._absent.get(digest)
        if hit is None:
            pending = self._inflight.get(digest)
            if pending is None:
                pending = asyncio.ensure_future(self._lookup(digest))
                self._inflight[digest] = pending
                pending.add_done_callback(lambda _f: self._inflight.pop(digest, None))
            hit = await asyncio.shield(pending)
        if isinstance(hit, _Absent) or hit[0].expired(self._clock()):
            raise AuthError(401, "invalid_token", "API key is not valid", "bad_api_key")
        return hit[1]

    async def _lookup(self, digest: str) -> tuple[StoredKey, Principal] | _Absent:
        self.lookups += 1
        try:
            raw = await self.backend.get(key_id(digest))
        except StoreUnavailable as exc:
            log.warning("API key store unavailable: %s", exc)
            raise invalid_token("unavailable", "API key could not be checked: key store unavailable") from None
        deadline = self._clock() + self.config.cache_ttl
        entry: StoredKey | None = None
        if raw is not None:
            try:
                entry = StoredKey.from_json(raw)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("stored API key %s is unreadable (%s): refused", key_id(digest), exc)
        if entry is None or not hmac.compare_digest(entry.sha256, digest) or entry.expired(self._clock()):
            self._absent.put(digest, _ABSENT, deadline)
            return _ABSENT
        found = (entry, self._principal(entry))
        if entry.expires is not None:
            deadline = min(deadline, entry.expires)
        self._found.put(digest, found, deadline)
        return found

    def _principal(self, entry: StoredKey) -> Principal:
        return api_key_principal(entry.principal, entry.scopes, entry.tier, self.tier_claim, entry.id, entry.expires)

    # -- management (CLI, admin API) ----------------------------------------

    async def add(self, request: NewApiKey) -> tuple[str, StoredKey]:
        """A new key (returned once, never stored) and its record."""
        principal, scopes, tier, expires_in = request.principal, request.scopes, request.tier, request.expires_in
        for _ in range(4):  # an id collision (64 bits) is practically impossible; never overwrite one
            key = new_api_key()
            digest = hash_api_key(key)
            now = self._clock()
            entry = StoredKey(
                id=key_id(digest), sha256=digest, principal=principal, scopes=tuple(scopes), tier=tier,
                created=round(now, 3), expires=None if expires_in is None else round(now + expires_in, 3),
            )
            if await self.backend.add(entry.id, entry.to_json()):
                log.info("API key %s added for principal %r", entry.id, principal)
                return key, entry
        raise RuntimeError("could not find a free API key id")

    async def revoke(self, id: str) -> bool:
        """Delete a key by id; this process stops accepting it at once, others within cache_ttl."""
        raw = await self.backend.get(id)
        removed = await self.backend.remove(id)
        if raw is not None:
            try:
                self._found.pop(StoredKey.from_json(raw).sha256)
            except (ValueError, KeyError, TypeError):
                pass
        if removed:
            log.info("API key %s revoked", id)
        return removed

    async def list(self) -> list[StoredKey]:
        entries = []
        for id, raw in (await self.backend.all()).items():
            try:
                entries.append(StoredKey.from_json(raw))
            except (ValueError, KeyError, TypeError):
                log.error("stored API key %s is unreadable: skipped", id)
        return sorted(entries, key=lambda e: (e.created, e.id))
