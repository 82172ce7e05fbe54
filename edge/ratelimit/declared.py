"""Rate limits backend teams declare in their own protos (`edge.options.v1`).

Read from the same descriptors as the routes, after every reload, so a team
that ships a new limit does not wait for a gateway config change. The config
stays in charge: a config policy with the same name overrides a declared one.
"""
from __future__ import annotations

import logging
from typing import Iterable

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import MethodDescriptor

from .. import options_pb2
from .config import RateLimitPolicy

log = logging.getLogger("edge.ratelimit")

_KEYS = {
    options_pb2.RATE_LIMIT_KEY_UNSPECIFIED: "principal",
    options_pb2.RATE_LIMIT_KEY_PRINCIPAL: "principal",
    options_pb2.RATE_LIMIT_KEY_IP: "ip",
    options_pb2.RATE_LIMIT_KEY_GLOBAL: "global",
}


def _rules(options_bytes: bytes, options_cls: type, extension: object) -> list[options_pb2.RateLimitRule]:
    # In a pool built from reflection the extension is an unknown field: re-parse
    # against the generated options class, where it is registered.
    options = options_cls.FromString(options_bytes)
    if not options.HasExtension(extension):
        return []
    return list(options.Extensions[extension].rate_limits)


def method_limits(method: MethodDescriptor) -> list[RateLimitPolicy]:
    """The declared limits of one method: its service's, then its own."""
    full = f"{method.containing_service.full_name}/{method.name}"
    rules = _rules(method.containing_service.GetOptions().SerializeToString(),
                   descriptor_pb2.ServiceOptions, options_pb2.service_policy)
    rules += _rules(method.GetOptions().SerializeToString(), descriptor_pb2.MethodOptions, options_pb2.method_policy)
    policies = []
    for rule in rules:
        name = rule.name or f"{method.name}-declared"
        try:
            policies.append(RateLimitPolicy(
                name=name, limit=rule.limit, window=rule.window_seconds, key=_KEYS.get(rule.key, "principal"),
                match=[full],
            ))
        except ValueError as exc:  # a bad declaration is the backend team's bug: skip it, loudly
            log.warning("ignoring rate limit %r declared on %s: %s", name, full, exc)
    return policies


def declared_limits(methods: Iterable[MethodDescriptor]) -> dict[str, list[RateLimitPolicy]]:
    out: dict[str, list[RateLimitPolicy]] = {}
    for method in methods:
        limits = method_limits(method)
        if limits:
            out[f"{method.containing_service.full_name}/{method.name}"] = limits
    return out
