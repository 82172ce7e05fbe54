"""`/readyz`: may this process take traffic now?

Ready means: not draining, descriptors loaded for every required backend, no
required backend reporting NOT_SERVING on grpc.health.v1, and the shared store
reachable when limits or idempotency keys depend on it. The store answer is
cached for a second so a load balancer polling often costs one PING a second.

A backend that does not serve the health protocol, or cannot be reached, does
not fail readiness by itself: a backend outage would otherwise pull every
gateway out of its load balancer at once, and the calls already answer 503.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

from .backends import BackendRegistry

STORE_CHECK_TTL = 1.0


class Readiness:
    def __init__(self, registry: BackendRegistry, store: Any | None) -> None:
        self.registry = registry
        self.store = store if getattr(store, "ping", None) is not None else None
        self._store_ok: tuple[float, bool] | None = None
        self._lock = asyncio.Lock()

    async def _store_reachable(self) -> bool | None:
        if self.store is None:
            return None
        now = time.monotonic()
        cached = self._store_ok
        if cached is not None and now - cached[0] < STORE_CHECK_TTL:
            return cached[1]
        async with self._lock:
            cached = self._store_ok
            if cached is None or now - cached[0] >= STORE_CHECK_TTL:
                self._store_ok = (time.monotonic(), await self.store.ping())
        return self._store_ok[1]

    async def report(self, draining: bool) -> tuple[bool, dict[str, Any]]:
        backends = self.registry.status()
        store = await self._store_reachable()
        unhealthy = [name for name, b in backends.items() if b["required"] and b["health"] == "NOT_SERVING"]
        ready = self.registry.ready() and not draining and store is not False and not unhealthy
        body: dict[str, Any] = {"status": "ready" if ready else "not ready", "draining": draining, "backends": backends}
        if store is not None:
            body["store"] = "reachable" if store else "unreachable"
        return ready, body
