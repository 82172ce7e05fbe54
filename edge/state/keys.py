"""Redis key schema. Every key is namespaced and carries a TTL.

    <prefix>:{<rl tag>}:<g|s>:<policy>:<limit>/<window ms>:<partition>
        rate-limit state, a string: GCRA "ts:debt", sliding window "idx:cur:prev".
        TTL: GCRA until its debt drains (<= one window); sliding window until
        the window after the current one ends (<= two windows).
    <prefix>:{<backend key>}:idem
        idempotency record, a hash {st, fp, tok, rec}. TTL: the lock TTL while
        in flight; the retention period once completed or of unknown outcome.

`prefix` defaults to "edge". The part in braces is the Redis Cluster hash tag:
one request's keys always share a slot, so one Lua script can touch them all.
Rate limits of one request combine per-user, per-IP and global limits whose
keys are shared across requests, so all rate-limit keys share one tag
(default "rl") and live on one shard; idempotency records are tagged by their
own key and spread over the cluster. Limit and window are part of the
rate-limit key, so changing a policy starts it afresh instead of reading
state written under other parameters.
"""
from __future__ import annotations

import hashlib
import re
from functools import lru_cache

_SAFE = re.compile(r"^[A-Za-z0-9._@/:+=*|{} -]{1,128}$")


@lru_cache(maxsize=65536)
def partition(value: str) -> str:
    """A key-safe form of a partition value (principal, IP, route...): readable
    when short and plain, else a digest, so key length stays bounded."""
    if _SAFE.match(value):
        return value
    return "h-" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def rate_limit_key(prefix: str, tag: str, logical: str) -> str:
    return f"{prefix}:{{{tag}}}:{logical}"


def idempotency_key(prefix: str, key: str) -> str:
    return f"{prefix}:{{{key}}}:idem"
