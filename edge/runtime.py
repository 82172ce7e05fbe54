"""Building the offload engines a config asks for, and closing them again.

Each engine is built only when its config section is present, so a gateway
without `auth:` or `rate_limits:` pays nothing for them per request.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from .backends import BackendRegistry
from .config import GatewayConfig
from .pipeline import Pipeline

Closer = Callable[[], Awaitable[None]]


async def build_pipeline(config: GatewayConfig, registry: BackendRegistry) -> tuple[Pipeline, list[Closer]]:
    closers: list[Closer] = []
    authenticator = policies = limiter = idempotency = None
    store: Any = None
    stored_keys = config.auth is not None and config.auth.api_key_store is not None
    if config.rate_limits is not None or config.idempotency is not None or stored_keys:
        from .state import build_store

        store = build_store(config.store)
        start = getattr(store, "start", None)
        if start is not None:
            await start()
        closers.append(store.close)
    if config.auth is not None:
        from .auth import Authenticator, PolicyResolver

        authenticator = Authenticator(config.auth, state_store=store)
        await authenticator.start()
        closers.append(authenticator.close)
        policies = PolicyResolver(config.auth)
    if config.rate_limits is not None and config.rate_limits.enabled:
        from .ratelimit import RateLimiter

        from .ratelimit.declared import declared_limits

        limiter = RateLimiter(config.rate_limits, store)

        def declare(table: Any) -> None:
            limiter.set_declared_policies(declared_limits({r.method.full_name: r.method for r in table.routes}.values()))

        declare(registry.table)
        registry.on_rebuild.append(declare)
    if config.idempotency is not None and config.idempotency.enabled:
        from .idempotency import IdempotencyEngine

        idempotency = IdempotencyEngine(config.idempotency, store, longest_lock=longest_lock(config))
        closers.append(idempotency.close)  # closed before the store (closers run in reverse)
    partial = caching = None
    if config.partial_responses.enabled:
        from .partial import PartialResponses

        partial = PartialResponses(config.partial_responses)
        registry.on_rebuild.append(partial.clear)  # plans hold routes of the table they were made for
    if config.caching is not None:
        from .conditional import ConditionalGets

        caching = ConditionalGets(config.caching, config)
        registry.on_rebuild.append(caching.clear)
    pipeline = Pipeline(
        config, registry, authenticator=authenticator, policies=policies, limiter=limiter, idempotency=idempotency,
        store=store, partial=partial, caching=caching,
    )
    return pipeline, closers


def longest_lock(config: GatewayConfig) -> float:
    """The longest Idempotency-Key lock a request can hold under this config: the longest deadline
    a keyed call may have (a backend's `max_timeout`, the batch's `max_timeout`) plus `lock_margin`,
    within `max_lock_ttl`. How long a Redis restart holds keyed requests."""
    idem = config.idempotency
    assert idem is not None
    deadlines = [b.max_timeout for b in config.backends]
    if config.batch is not None:
        deadlines.append(config.batch.max_timeout)
    return min(max(deadlines) + idem.lock_margin, idem.max_lock_ttl)
