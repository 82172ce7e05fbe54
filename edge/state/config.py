"""Configuration of the state store (built from it by `factory.build_store`)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .duration import Duration


class BreakerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    failure_threshold: int = Field(3, ge=1, description="consecutive failures that open the breaker")
    open_for: Duration = Field(2.0, gt=0, description="how long calls fail fast before a probe")


class RedisConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = "redis://127.0.0.1:6379/0"
    cluster: bool = Field(False, description="connect with the Redis Cluster client (url names one startup node)")
    key_prefix: str = Field("edge", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    rate_limit_hash_tag: str = Field("rl", pattern=r"^[A-Za-z0-9._-]{1,32}$")
    timeout: Duration = Field(0.1, gt=0, description="per-operation timeout (socket read and connect)")
    max_connections: int = Field(256, ge=1)
    breaker: BreakerConfig = BreakerConfig()

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("redis url must start with redis://, rediss:// or unix://")
        return v


class MemoryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_rate_keys: int = Field(100_000, ge=100)
    max_idempotency_keys: int = Field(100_000, ge=100)


class StateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backend: Literal["memory", "redis"] = "memory"
    redis: RedisConfig = RedisConfig()
    memory: MemoryConfig = MemoryConfig()
