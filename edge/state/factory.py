"""The state store a configuration names, built (not yet connected).

Kept apart from `config.py` because building a store needs the store modules,
and the Redis store needs its configuration model: a factory inside
`config.py` made the two modules import each other. The Redis module (and so
the redis client library) is imported only when the config asks for Redis.
"""
from __future__ import annotations

from .config import StateConfig
from .memory import MemoryStore
from .store import StateStore


def build_store(config: StateConfig) -> StateStore:
    """The store the config names (not yet connected: Redis connects lazily)."""
    if config.backend == "redis":
        from .redis_store import RedisStore
        return RedisStore(config.redis)
    return MemoryStore(max_rate_keys=config.memory.max_rate_keys,
                       max_idempotency_keys=config.memory.max_idempotency_keys)
