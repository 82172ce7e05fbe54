"""Token validation and per-route auth policy for the gateway (no web framework here).

The app builds one `Authenticator` from `AuthConfig`, resolves each route's
`EffectivePolicy` with a `PolicyResolver`, and calls `authenticate()` per request.

Decisions worth knowing (each refusal is an `AuthError` with a short `reason`):
- A credential over `max_token_bytes` (default 8 KiB) is 431 `invalid_request`
  (`too_large`): it is a header too large to look at, not a bad token.
- JOSE headers that name keys (`jku`, `x5u`, `jwk`, `x5c`), any `crit` and
  `b64` make the token malformed (401): keys come only from the issuer's
  configured JWKS or secret, and nothing a token names is ever fetched.
- No credential at all is 401 with no `error` code (RFC 6750 section 3.1); a
  bearer token and an API key together are 400 `invalid_request`.
- An unreachable JWKS (past its grace period) or introspection endpoint is 401
  `unavailable`, so no request passes on keys the gateway could not check.
- Opaque (non-JWT) tokens go to the one issuer configured with introspection.
"""
from .apikeys import hash_api_key
from .authenticator import Authenticator
from .config import (
    API_KEY_ISSUER,
    ApiKeyEntry,
    AuthConfig,
    IntrospectionConfig,
    IssuerConfig,
    PolicyFields,
    PolicyRule,
)
from .errors import AuthError
from .policy import (
    EffectivePolicy,
    PolicyResolver,
    ProtoPolicy,
    pool_proto_lookup,
    proto_policy,
)
from .principal import AuthOutcome, Principal

__all__ = [
    "API_KEY_ISSUER",
    "ApiKeyEntry",
    "AuthConfig",
    "AuthError",
    "AuthOutcome",
    "Authenticator",
    "EffectivePolicy",
    "IntrospectionConfig",
    "IssuerConfig",
    "PolicyFields",
    "PolicyResolver",
    "PolicyRule",
    "Principal",
    "ProtoPolicy",
    "hash_api_key",
    "pool_proto_lookup",
    "proto_policy",
]
