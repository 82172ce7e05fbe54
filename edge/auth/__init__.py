"""Token validation and per-route auth policy for the gateway (no web framework here).

The app builds one `Authenticator` from `AuthConfig`, resolves each route's
`EffectivePolicy` with a `PolicyResolver`, and calls `authenticate()` per request.
"""
from .apikeys import hash_api_key
from .authenticator import Authenticator
from .config import API_KEY_ISSUER, ApiKeyEntry, AuthConfig, IntrospectionConfig, IssuerConfig, PolicyFields, PolicyRule
from .errors import AuthError
from .policy import EffectivePolicy, PolicyResolver, ProtoPolicy, pool_proto_lookup, proto_policy
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
