"""Rate limits: policies from the config, evaluated per request against the state store."""
from .client_ip import client_ip
from .config import ClaimTiers, HybridConfig, RateLimitConfig, RateLimitPolicy
from .decision import AppliedPolicy, RateLimitDecision
from .errors import RateLimited, RateLimitUnavailable, refusal
from .headers import policy_field, rate_limit_headers, state_field
from .limiter import RateLimitContext, RateLimiter

__all__ = [
    "AppliedPolicy", "ClaimTiers", "HybridConfig", "RateLimitConfig", "RateLimitContext", "RateLimitDecision",
    "RateLimitPolicy", "RateLimitUnavailable", "RateLimited", "RateLimiter", "client_ip", "policy_field",
    "rate_limit_headers", "refusal", "state_field",
]
