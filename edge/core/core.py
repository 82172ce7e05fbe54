"""`Core`: one resolved call through the stages to its backend, whatever protocol it came in.

Built once by edge/runtime.py from the config; every adapter (edge/protocols/)
calls `run`. The engines the stages use stay reachable here for the adapters'
own multi-call endpoints (a batch authenticates and charges once for all its
items), for readiness (the store) and for the admin listener (API keys).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from transcoding.routes import Route

from ..auth import Authenticator, EffectivePolicy, PolicyResolver, Principal
from ..backends import BackendRegistry
from ..idempotency import IdempotencyEngine
from ..ratelimit import RateLimiter
from ..state import StateStore
from .context import CallContext, Outcome, Stage
from .metadata import MetadataRules
from .record import CallRecord
from .stages import Backend, Identity, RateLimits, chain


class Core:
    def __init__(
        self,
        registry: BackendRegistry,
        stages: Sequence[Stage],
        metadata: MetadataRules,
        *,
        authenticator: Authenticator | None = None,
        policies: PolicyResolver | None = None,
        limiter: RateLimiter | None = None,
        idempotency: IdempotencyEngine | None = None,
        store: StateStore | None = None,
    ) -> None:
        self.registry = registry
        self.stages = tuple(stages)
        self.metadata = metadata
        self.authenticator = authenticator
        self.policies = policies
        self.limiter = limiter
        self.idempotency = idempotency
        self.store = store  # the shared state store behind limits, idempotency and stored keys, if any
        self.identity = next((s for s in stages if isinstance(s, Identity)), None)
        self.limits = next((s for s in stages if isinstance(s, RateLimits)), None)
        self._handler = chain(self.stages, Backend())

    async def run(self, ctx: CallContext) -> Outcome:
        """The call's outcome in gRPC terms; a refusal on the way is raised (see edge/core/stages.py)."""
        outcome = await self._handler(ctx)
        outcome.ratelimit = ctx.ratelimit
        if outcome.stream is None and outcome.stored is None:
            record = ctx.record
            record.backend_seconds, record.grpc_code = outcome.backend_seconds, outcome.code
        return outcome

    async def authenticate(self, headers: Mapping[str, str], policy: EffectivePolicy,
                           record: CallRecord) -> Principal | None:
        """The caller of several calls, authenticated once under `policy` (see
        `Identity.authenticate_once`); None, and nothing recorded, without auth."""
        if self.identity is None:
            return None
        return await self.identity.authenticate_once(headers, policy, record)

    def policy_for(self, route: Route) -> EffectivePolicy | None:
        """The auth policy a route's calls meet (None: no auth configured)."""
        if self.policies is None:
            return None
        return self.policies.resolve(route.full_method, route.binding.http_method, route.template, route.method)
