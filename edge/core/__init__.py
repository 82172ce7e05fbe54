"""The protocol-neutral core: a resolved call in, its outcome in gRPC terms out.

    CallContext (edge/core/context.py)   route, request message(s), metadata, principal, deadline, record
    Core.run(ctx) -> Outcome             the stages (edge/core/stages.py), then the backend call
    Outcome                              grpc.StatusCode, details, reply or stream, metadata, rate-limit decision

Nothing here knows about HTTP bodies, ASGI or content types, and nothing here
imports an adapter (edge/protocols/); tests/test_import_cycles.py checks it.
"""
from .context import CallContext, Fingerprint, Next, Outcome, OutgoingMetadata, Requests, Stage
from .core import Core
from .metadata import MetadataRules, client_deadline
from .record import CallRecord
from .stages import Backend, Decode, Identity, Idempotency, RateLimits, chain

__all__ = [
    "Backend", "CallContext", "CallRecord", "Core", "Decode", "Fingerprint", "Identity", "Idempotency",
    "MetadataRules", "Next", "Outcome", "OutgoingMetadata", "RateLimits", "Requests", "Stage", "chain",
    "client_deadline",
]
