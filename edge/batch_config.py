"""The `batch` section of the gateway config.

Kept apart from `edge/batch.py` because the config module must not import the
pipeline (which imports the config): `edge/config.py` imports this model, and
`edge/batch.py` re-exports it.

    batch:
      path: /v1/batch               # POST here is the batch endpoint, before any route lookup
      max_items: 20
      max_body_bytes: 1MiB
      max_concurrency: 10           # items in flight per batch
      max_concurrency_per_backend: 64   # items in flight per backend, across all batches (per process)
      stream_max_messages: 100      # a server-streaming item over this is refused (413)
      max_timeout: 30s              # the whole batch's deadline, whatever the client asks
      auth: required                # or optional: an anonymous batch whose items meet their own routes' policy
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .units import ByteSize, Duration


class BatchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field("/v1/batch", description="POST to this path is a batch; it shadows any route with that path")
    max_items: int = Field(20, ge=1, le=1000)
    max_body_bytes: ByteSize = Field(1024 * 1024, gt=0)
    max_concurrency: int = Field(10, ge=1, le=1000, description="items of one batch in flight at once")
    max_concurrency_per_backend: int = Field(
        64, ge=1, le=100_000, description="batch items in flight per backend, shared by all batches of a process"
    )
    stream_max_messages: int = Field(100, ge=1, le=100_000, description="cap for a server-streaming item's array")
    max_timeout: Duration = Field(
        30.0, gt=0, description="deadline of a whole batch; a client's grpc-timeout/X-Request-Timeout may shorten it"
    )
    auth: Literal["required", "optional"] = Field(
        "required",
        description="with auth configured: must the batch carry a credential ('optional': anonymous batches "
        "are let in and each item still meets its own route's policy)",
    )

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or any(c in value for c in "?#{}* ") or value == "/":
            raise ValueError(f"batch path {value!r} must be a literal absolute path such as '/v1/batch'")
        return value
