"""Building what a config asks for, once: the engines, the core's chain of stages,
and the REST adapter's own pieces; and closing them again.

Each engine is built only when its config section is present, and a stage whose
engine is not built is not in the chain at all, so a gateway without `auth:` or
`rate_limits:` pays nothing for them per request. The chain's order is fixed
here (edge/core/stages.py says why): identity, rate limits, decode, idempotency,
then the backend call. A new stage goes into `stages` at its place.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Awaitable, Callable

from .backends import BackendRegistry
from .config import GatewayConfig
from .core import Core, Decode, Identity, Idempotency, MetadataRules, RateLimits, Stage

if TYPE_CHECKING:
    from transcoding.routes import RouteTable

    from .auth import Authenticator
    from .conditional import ConditionalGets
    from .idempotency import IdempotencyEngine
    from .partial import PartialResponses
    from .state import StateStore

Closer = Callable[[], Awaitable[None]]


@dataclass
class Runtime:
    """The core, the REST adapter's offloads (`fields`, conditional GETs), and what to close."""

    core: Core
    partial: PartialResponses | None = None
    caching: ConditionalGets | None = None
    closers: list[Closer] = field(default_factory=list)


async def build_runtime(config: GatewayConfig, registry: BackendRegistry) -> Runtime:
    closers: list[Closer] = []
    authenticator = policies = limiter = idempotency = None
    store: StateStore | None = None
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

        def declare(table: RouteTable) -> None:
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
    stages: list[Stage] = []
    identity = None
    if authenticator is not None and policies is not None:
        identity = Identity(authenticator, policies)
        stages.append(identity)
    keys = Idempotency(idempotency) if idempotency is not None else None
    if limiter is not None:
        stages.append(RateLimits(limiter, keys))  # a keyed call's reservation goes with its charge
    stages.append(Decode(identity))
    if keys is not None:
        stages.append(keys)
    core = Core(
        registry, stages, _metadata_rules(config, authenticator, idempotency), authenticator=authenticator,
        policies=policies, limiter=limiter, idempotency=idempotency, store=store,
    )
    return Runtime(core, partial, caching, closers)


def _metadata_rules(config: GatewayConfig, authenticator: Authenticator | None,
                    idempotency: IdempotencyEngine | None) -> MetadataRules:
    stripped = frozenset(authenticator.stripped_header_names) if authenticator else frozenset()
    credentials = set(authenticator.credential_header_names) if authenticator else set()
    if idempotency is not None:
        credentials.add(idempotency.config.header.lower())
    trusted = list(config.rate_limits.trusted_proxies) if config.rate_limits is not None else []
    return MetadataRules(stripped=stripped, credentials=frozenset(credentials), trusted_proxies=trusted)


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
